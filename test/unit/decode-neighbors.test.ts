import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readCapture } from '../../src/capture/index.js';
import { Decoder } from '../../src/decode/index.js';
import { parseArp, parseDhcp, parseNdp } from '../../src/decode/neighbors.js';
import type { NeighborObservation } from '../../src/decode/types.js';

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

describe('parseArp', () => {
  // RFC 826 request for IPv4 over Ethernet: who has 10.98.0.1, tell 10.98.0.31.
  const request = hex('0001 0800 06 04 0001 30055c980031 0a62001f 000000000000 0a620001');

  it('returns the sender MAC and IP', () => {
    assert.deepEqual(parseArp(request, 0, 5), { kind: 'arp', ts: 5, mac: '30:05:5c:98:00:31', ip: '10.98.0.31' });
  });

  it('ignores probes from 0.0.0.0', () => {
    const probe = Buffer.from(request);
    probe.fill(0, 14, 18);
    assert.equal(parseArp(probe, 0, 5), undefined);
  });

  it('ignores truncated packets', () => {
    assert.equal(parseArp(request.subarray(0, 27), 0, 5), undefined);
  });
});

/** A BOOTP message (RFC 2131 section 2) in UDP, with the options given as code-value pairs. */
function dhcpPacket(op: number, sourcePort: number, ciaddr: string, yiaddr: string, options: [number, Buffer][]): Buffer {
  const bootp = Buffer.alloc(240);
  bootp[0] = op;
  bootp[1] = 1; // Ethernet
  bootp[2] = 6;
  Buffer.from(ciaddr.split('.').map(Number)).copy(bootp, 12);
  Buffer.from(yiaddr.split('.').map(Number)).copy(bootp, 16);
  hex('00408c980041').copy(bootp, 28);
  bootp.writeUInt32BE(0x63825363, 236);
  const encoded = options.flatMap(([code, value]) => [Buffer.from([code, value.length]), value]);
  const payload = Buffer.concat([bootp, ...encoded, Buffer.from([255])]);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sourcePort, 0);
  udp.writeUInt16BE(sourcePort === 68 ? 67 : 68, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([udp, payload]);
}

describe('parseDhcp', () => {
  it('reads host name, vendor class and requested address of a REQUEST', () => {
    const packet = dhcpPacket(1, 68, '0.0.0.0', '0.0.0.0', [
      [53, Buffer.from([3])],
      [50, Buffer.from([10, 98, 0, 41])],
      [12, Buffer.from('axis-00408c980041')],
      [60, Buffer.from('AXIS,Network Camera,M3106-L Mk II')],
    ]);
    assert.deepEqual(parseDhcp(packet, 0, packet.length, 7), {
      kind: 'dhcp',
      ts: 7,
      mac: '00:40:8c:98:00:41',
      ip: '10.98.0.41',
      hostname: 'axis-00408c980041',
      vendorClass: 'AXIS,Network Camera,M3106-L Mk II',
    });
  });

  it('takes the assigned address from an ACK but not its options', () => {
    const packet = dhcpPacket(2, 67, '0.0.0.0', '10.98.0.162', [
      [53, Buffer.from([5])],
      [12, Buffer.from('echoed-by-server')],
    ]);
    assert.deepEqual(parseDhcp(packet, 0, packet.length, 8), { kind: 'dhcp', ts: 8, mac: '00:40:8c:98:00:41', ip: '10.98.0.162' });
  });

  it('stops at an option that runs past the packet', () => {
    const packet = dhcpPacket(1, 68, '0.0.0.0', '0.0.0.0', [[12, Buffer.from('printer')]]);
    const cut = packet.subarray(0, packet.length - 4);
    assert.equal(parseDhcp(cut, 0, cut.length, 1), undefined);
  });

  it('ignores UDP between other ports', () => {
    const packet = dhcpPacket(1, 68, '10.98.0.5', '0.0.0.0', []);
    packet.writeUInt16BE(5353, 2);
    assert.equal(parseDhcp(packet, 0, packet.length, 1), undefined);
  });
});

describe('parseNdp', () => {
  // RFC 4861 4.4: neighbour advertisement for 2001:db8::31 with a target link-layer option.
  const advertisement = hex(
    '88 00 0000 60000000 20010db8000000000000000000000031 02 01 30055c980031',
  );
  const source = hex('fe800000000000000000000000000001');

  it('reads the target address and MAC of an advertisement', () => {
    assert.deepEqual(parseNdp(advertisement, 0, advertisement.length, source, 0, 3), {
      kind: 'ndp',
      ts: 3,
      mac: '30:05:5c:98:00:31',
      ip: '2001:db8::31',
    });
  });

  it('reads the source of a solicitation', () => {
    const solicitation = Buffer.from(advertisement);
    solicitation[0] = 135;
    solicitation[24] = 1; // source link-layer address option
    assert.deepEqual(parseNdp(solicitation, 0, solicitation.length, source, 0, 4), {
      kind: 'ndp',
      ts: 4,
      mac: '30:05:5c:98:00:31',
      ip: 'fe80::1',
    });
  });

  it('rejects an option of length zero', () => {
    const broken = Buffer.from(advertisement);
    broken[25] = 0;
    assert.equal(parseNdp(broken, 0, broken.length, source, 0, 3), undefined);
  });
});

describe('Decoder onNeighbor', () => {
  it('reports the DHCP clients of the story capture', async () => {
    const seen: NeighborObservation[] = [];
    const decoder = new Decoder({ onNeighbor: (observation) => seen.push(observation) });
    await readCapture(new URL('../../captures/story.pcap', import.meta.url).pathname, (packet) => {
      decoder.decode(packet);
    });
    // Host names and vendor classes as udhcpc sent them (captures/README.md, story.pcap hosts).
    const names = new Map(seen.filter((o) => o.kind === 'dhcp' && o.hostname).map((o) => [o.mac, o]));
    const printer = names.get('30:05:5c:98:00:31');
    assert.ok(printer?.kind === 'dhcp');
    assert.equal(printer.hostname, 'BRN30055C980031');
    assert.equal(printer.vendorClass, 'Brother MFC-L2750DW');
    const camera = names.get('00:40:8c:98:00:41');
    assert.ok(camera?.kind === 'dhcp');
    assert.equal(camera.hostname, 'axis-00408c980041');
    assert.equal(camera.vendorClass, 'AXIS,Network Camera,M3106-L Mk II');
    const laptop = names.get('fc:77:74:98:00:77');
    assert.ok(laptop?.kind === 'dhcp');
    assert.equal(laptop.hostname, 'DESKTOP-7QK2M4N');
    assert.equal(laptop.vendorClass, 'MSFT 5.0');
    const assigned = seen.filter((o) => o.kind === 'dhcp' && o.ip === '10.98.0.162');
    assert.ok(assigned.length > 0, 'the laptop pool address 10.98.0.162');
    assert.ok(seen.some((o) => o.kind === 'arp'), 'ARP frames');
  });
});
