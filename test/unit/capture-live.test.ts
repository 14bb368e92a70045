import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { LiveCapture, LiveCaptureError, defaultCaptureFilter, linkTypeOf } from '../../src/capture/live.js';
import type { Packet } from '../../src/capture/types.js';
import { missingCaptureCapabilities } from '../../src/cli/capabilities.js';
import { ethernet, hex, ipv4, ipv6, tcp } from './decode-frames.js';

const dir = mkdtempSync(join(tmpdir(), 'mailtap-live-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const canCapture = missingCaptureCapabilities()?.length === 0;
const hasTcpdump = spawnSync('tcpdump', ['--version']).status === 0;

/** Writes a classic pcap file (LINKTYPE_ETHERNET) with the frames. */
function writePcap(file: string, frames: Buffer[]): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const parts: Buffer[] = [header];
  frames.forEach((frame, index) => {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(1_000_000_000 + index, 0);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    parts.push(record, frame);
  });
  writeFileSync(file, Buffer.concat(parts));
}

function udp(srcPort: number, dstPort: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(srcPort, 0);
  header.writeUInt16BE(dstPort, 2);
  header.writeUInt16BE(8, 4);
  return header;
}

/** An ICMPv6 message of the type, with a zero code, checksum and body. */
function icmp6(type: number): Buffer {
  const body = Buffer.alloc(24);
  body[0] = type;
  return body;
}

const ARP_REQUEST = hex('0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002');
const C_TAG: [number, number] = [0x8100, 10];
const S_TAG: [number, number] = [0x88a8, 200];

describe('defaultCaptureFilter', () => {
  // Which frames the filter must take follows from its documented purpose; tcpdump, which
  // compiles the filter with the same libpcap, decides which ones it takes.
  it('takes SMTP, ARP, DHCP and neighbour discovery, untagged and in one or two VLAN tags', { skip: !hasTcpdump }, () => {
    const smtp = ipv4(tcp({ srcPort: 40000, dstPort: 25 }));
    const frames: [string, Buffer, boolean][] = [
      ['smtp 25', ethernet(smtp, 0x0800), true],
      ['smtps 465 reply', ethernet(ipv4(tcp({ srcPort: 465, dstPort: 50000 })), 0x0800), true],
      ['submission 587 over IPv6', ethernet(ipv6(tcp({ srcPort: 40000, dstPort: 587 }), 6), 0x86dd), true],
      ['http 80', ethernet(ipv4(tcp({ srcPort: 40000, dstPort: 80 })), 0x0800), false],
      ['arp', ethernet(ARP_REQUEST, 0x0806), true],
      ['dhcp discover', ethernet(ipv4(udp(68, 67), { protocol: 17 }), 0x0800), true],
      ['dns', ethernet(ipv4(udp(40000, 53), { protocol: 17 }), 0x0800), false],
      ['neighbour solicitation', ethernet(ipv6(icmp6(135), 58), 0x86dd), true],
      ['router advertisement', ethernet(ipv6(icmp6(134), 58), 0x86dd), true],
      ['echo request', ethernet(ipv6(icmp6(128), 58), 0x86dd), false],
      ['smtp in a VLAN', ethernet(smtp, 0x0800, [C_TAG]), true],
      ['arp in a VLAN', ethernet(ARP_REQUEST, 0x0806, [C_TAG]), true],
      ['http in a VLAN', ethernet(ipv4(tcp({ srcPort: 40000, dstPort: 80 })), 0x0800, [C_TAG]), false],
      ['smtp in QinQ', ethernet(smtp, 0x0800, [S_TAG, C_TAG]), true],
      ['neighbour advertisement in QinQ', ethernet(ipv6(icmp6(136), 58), 0x86dd, [S_TAG, C_TAG]), true],
      ['http in QinQ', ethernet(ipv4(tcp({ srcPort: 40000, dstPort: 80 })), 0x0800, [S_TAG, C_TAG]), false],
    ];
    const file = join(dir, 'filter.pcap');
    writePcap(file, frames.map(([, frame]) => frame));
    const filter = defaultCaptureFilter([25, 587, 2525, 465]);
    const result = spawnSync('tcpdump', ['-r', file, '-nn', '-tt', filter], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    // -tt prints each packet's seconds, which are 1e9 + its index in the file.
    const taken = new Set(result.stdout.split('\n').filter(Boolean).map((line) => Number(line.split('.')[0]) - 1_000_000_000));
    const wrong = frames.filter(([, , want], index) => taken.has(index) !== want).map(([name]) => name);
    assert.deepEqual(wrong, []);
  });

  it('lists each port once, sorted', () => {
    assert.match(defaultCaptureFilter([587, 25, 25]), /^\(tcp port \(25 or 587\)\) or \(arp\)/);
  });
});

describe('linkTypeOf', () => {
  it('maps the names cap returns to LINKTYPE_* numbers', () => {
    // Numbers from the tcpdump.org link-layer header type registry.
    assert.equal(linkTypeOf('ETHERNET'), 1);
    assert.equal(linkTypeOf('LINKTYPE_LINUX_SLL'), 113);
    assert.equal(linkTypeOf('RAW'), 101);
    assert.equal(linkTypeOf('Unknown linktype 276'), 276);
    assert.equal(linkTypeOf('IEEE802_11_RADIO'), undefined);
  });
});

describe('LiveCapture', { skip: !canCapture && 'needs CAP_NET_RAW and CAP_NET_ADMIN' }, () => {
  it('reports an unknown interface as an interface error', () => {
    assert.throws(
      () => LiveCapture.open({ interfaces: ['mt5none'], filter: '', bufferSize: 1 << 20, onPacket() {} }),
      (error: unknown) => error instanceof LiveCaptureError && error.kind === 'interface' && /"mt5none"/.test(error.message),
    );
  });

  it('reports a filter libpcap cannot compile as a filter error', () => {
    assert.throws(
      () => LiveCapture.open({ interfaces: ['lo'], filter: 'tcp port (', bufferSize: 1 << 20, onPacket() {} }),
      (error: unknown) =>
        error instanceof LiveCaptureError &&
        error.kind === 'filter' &&
        error.message.startsWith('invalid capture filter "tcp port (":'),
    );
  });

  it('captures loopback packets with the filter, as Ethernet frames stamped with the current time', async () => {
    const server = createServer((socket) => socket.end('220 ok\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const seen: { linkType: number; length: number; srcPort: number; dstPort: number; time: number }[] = [];
    const capture = LiveCapture.open({
      interfaces: ['lo'],
      filter: `tcp port ${port}`,
      bufferSize: 1 << 20,
      onPacket(packet: Packet) {
        // Ethernet (14 bytes) + IPv4 header without options (20 bytes), then the TCP ports.
        seen.push({
          linkType: packet.linkType,
          length: packet.data.length,
          srcPort: packet.data.readUInt16BE(34),
          dstPort: packet.data.readUInt16BE(36),
          time: packet.seconds * 1000 + packet.nanos / 1e6,
        });
      },
    });
    const before = Date.now();
    try {
      await new Promise<void>((resolve, reject) => {
        const client = createConnection(port, '127.0.0.1');
        client.on('error', reject).on('data', () => {}).on('close', () => resolve());
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      capture.close();
      server.close();
    }
    // A connection with data from the server and a FIN each way takes at least 6 segments.
    assert.ok(seen.length >= 6, `${seen.length} packets`);
    assert.equal(capture.stats.packets, seen.length);
    assert.ok(seen.every((p) => p.linkType === 1));
    assert.ok(seen.every((p) => p.srcPort === port || p.dstPort === port));
    assert.ok(seen.every((p) => p.time >= before - 5 && p.time <= Date.now() + 5));
    assert.equal(capture.stats.bytes, seen.reduce((sum, p) => sum + p.length, 0));
  });

  it('keeps the old filter when a new one is invalid', () => {
    const capture = LiveCapture.open({ interfaces: ['lo'], filter: 'tcp port 25', bufferSize: 1 << 20, onPacket() {} });
    try {
      assert.throws(() => capture.setFilter('port ('), (error: unknown) => error instanceof LiveCaptureError && error.kind === 'filter');
      assert.equal(capture.filter, 'tcp port 25');
      capture.setFilter('tcp port 587');
      assert.equal(capture.filter, 'tcp port 587');
    } finally {
      capture.close();
    }
  });
});

