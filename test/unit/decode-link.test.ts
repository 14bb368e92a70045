import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../src/decode/index.js';
import { LINKTYPE } from '../../src/decode/types.js';
import { ethernet, hex, ipv4, ipv6, packet, readPcap, tcp } from './decode-frames.js';

const CAPTURES = new URL('../../../shared/captures/', import.meta.url).pathname;

// IPv4 + TCP SYN 194.7.248.153:2127 -> 172.16.114.207:25, seq 3853009427 (0xe5a84213), window 512.
const IPV4_SYN = `
  45 00 00 28  12 34 40 00  40 06 00 00    # version 4, IHL 5, total 40, id 0x1234, DF, TTL 64, TCP
  c2 07 f8 99  ac 10 72 cf                 # 194.7.248.153 -> 172.16.114.207
  08 4f 00 19  e5 a8 42 13  00 00 00 00    # ports 2127 -> 25, seq, ack 0
  50 02 02 00  00 00 00 00                 # data offset 5, SYN, window 512, checksum, urgent
`;

function assertSyn(decoder: Decoder, data: Buffer, linkType: number): void {
  const segment = decoder.decode(packet(data, linkType));
  assert.ok(segment, 'a TCP segment');
  assert.equal(segment.ipVersion, 4);
  assert.equal(segment.srcIp, '194.7.248.153');
  assert.equal(segment.dstIp, '172.16.114.207');
  assert.equal(segment.srcPort, 2127);
  assert.equal(segment.dstPort, 25);
  assert.equal(segment.seq, 3853009427);
  assert.equal(segment.flags, 0x02);
  assert.equal(segment.window, 512);
  assert.equal(segment.payload.length, 0);
}

test('ethernet frame with padding', () => {
  const decoder = new Decoder();
  const frame = hex(`
    00 c0 4f a3 57 db  00 10 7b 38 46 33  08 00   # dst, src, IPv4
    ${IPV4_SYN}
    00 00 00 00 00 00                             # padding to the 60-byte minimum
  `);
  assert.equal(frame.length, 60);
  const segment = decoder.decode(packet(frame, LINKTYPE.ETHERNET, { seconds: 934000808, nanos: 568957000 }));
  assert.ok(segment);
  assert.equal(segment.dstMac, '00:c0:4f:a3:57:db');
  assert.equal(segment.srcMac, '00:10:7b:38:46:33');
  assert.deepEqual(segment.vlans, []);
  assert.equal(segment.ts, 934000808.568957);
  assert.equal(segment.payloadLength, 0);
  assert.equal(segment.payload.length, 0);
  assertSyn(decoder, frame, LINKTYPE.ETHERNET);
  assert.equal(decoder.stats.tcp, 2);
  assert.equal(decoder.stats.errors, 0);
});

test('ethernet 802.1Q tag', () => {
  const decoder = new Decoder();
  const frame = hex(`
    00 c0 4f a3 57 db  00 10 7b 38 46 33
    81 00 a0 64  08 00      # 802.1Q, priority 5, VLAN 100, then IPv4
    ${IPV4_SYN}
  `);
  assertSyn(decoder, frame, LINKTYPE.ETHERNET);
  assert.deepEqual(decoder.decode(packet(frame, LINKTYPE.ETHERNET))?.vlans, [100]);
});

test('ethernet QinQ tags outermost first', () => {
  const decoder = new Decoder();
  const frame = hex(`
    00 c0 4f a3 57 db  00 10 7b 38 46 33
    88 a8 00 0a  81 00 0f ff  08 00    # 802.1ad VLAN 10, then 802.1Q VLAN 4095, then IPv4
    ${IPV4_SYN}
  `);
  assertSyn(decoder, frame, LINKTYPE.ETHERNET);
  assert.deepEqual(decoder.decode(packet(frame, LINKTYPE.ETHERNET))?.vlans, [10, 4095]);

  const old = ethernet(hex(IPV4_SYN), 0x0800, [
    [0x9100, 7],
    [0x88a8, 8],
    [0x8100, 9],
  ]);
  assert.deepEqual(decoder.decode(packet(old, LINKTYPE.ETHERNET))?.vlans, [7, 8, 9]);
});

test('ethernet IPv6 in VLAN', () => {
  const decoder = new Decoder();
  const frame = ethernet(ipv6(tcp({ srcPort: 7562, dstPort: 25 }), 6), 0x86dd, [[0x8100, 125]]);
  const segment = decoder.decode(packet(frame, LINKTYPE.ETHERNET));
  assert.ok(segment);
  assert.equal(segment.ipVersion, 6);
  assert.equal(segment.srcIp, '2001:db8::1');
  assert.equal(segment.dstIp, '2001:db8::2');
  assert.deepEqual(segment.vlans, [125]);
});

test('ethernet non-IP and truncated frames', () => {
  const decoder = new Decoder();
  const arp = ethernet(Buffer.alloc(28), 0x0806);
  assert.equal(decoder.decode(packet(arp, LINKTYPE.ETHERNET)), undefined);
  assert.equal(decoder.stats.otherProtocols, 1);

  assert.equal(decoder.decode(packet(Buffer.alloc(10), LINKTYPE.ETHERNET)), undefined);
  assert.equal(decoder.stats.errors, 1);

  const cutTag = hex('020000000002 020000000001 8100 00');
  assert.equal(decoder.decode(packet(cutTag, LINKTYPE.ETHERNET, { originalLength: 64 })), undefined);
  assert.equal(decoder.stats.snapTruncated, 1);
  assert.equal(decoder.stats.frames, 3);
});

test('ethernet PPPoE session', () => {
  const decoder = new Decoder();
  const frame = hex(`
    00 c0 4f a3 57 db  00 10 7b 38 46 33  88 64
    11 00 00 01 00 2a  00 21     # version 1 type 1, session 1, length 42, PPP protocol IPv4
    ${IPV4_SYN}
  `);
  assertSyn(decoder, frame, LINKTYPE.ETHERNET);
});

test('linux SLL header', () => {
  const decoder = new Decoder();
  const frame = hex(`
    00 04  00 01  00 06      # outgoing, ARPHRD_ETHER, address length 6
    86 ae a5 f5 88 f4 00 00  # sender address, padded to 8 bytes
    08 00                    # IPv4
    ${IPV4_SYN}
  `);
  assertSyn(decoder, frame, LINKTYPE.LINUX_SLL);
  const segment = decoder.decode(packet(frame, LINKTYPE.LINUX_SLL));
  assert.equal(segment?.srcMac, '86:ae:a5:f5:88:f4');
  assert.equal(segment?.dstMac, undefined);
});

test('linux SLL with VLAN protocol', () => {
  const decoder = new Decoder();
  const frame = hex(`
    00 00  00 01  00 06  86 ae a5 f5 88 f4 00 00
    81 00  00 2a  08 00      # 802.1Q VLAN 42, then IPv4
    ${IPV4_SYN}
  `);
  assert.deepEqual(decoder.decode(packet(frame, LINKTYPE.LINUX_SLL))?.vlans, [42]);
});

test('linux SLL2 header', () => {
  const decoder = new Decoder();
  const frame = hex(`
    08 00  00 00  00 00 00 03   # IPv4, reserved, interface index 3
    00 01  00  06               # ARPHRD_ETHER, to us, address length 6
    a2 af ff 81 f7 ca 00 00     # sender address
    ${IPV4_SYN}
  `);
  assertSyn(decoder, frame, LINKTYPE.LINUX_SLL2);
  assert.equal(decoder.decode(packet(frame, LINKTYPE.LINUX_SLL2))?.srcMac, 'a2:af:ff:81:f7:ca');

  const loopback = Buffer.from(frame);
  loopback.writeUInt16BE(772, 8); // ARPHRD_LOOPBACK: no MAC
  loopback[11] = 0;
  assert.equal(decoder.decode(packet(loopback, LINKTYPE.LINUX_SLL2))?.srcMac, undefined);
});

test('raw IP link types', () => {
  const decoder = new Decoder();
  const frame = hex(IPV4_SYN);
  for (const linkType of [LINKTYPE.RAW, LINKTYPE.IPV4, 12, 14]) assertSyn(decoder, frame, linkType);

  const v6 = ipv6(tcp(), 6);
  assert.equal(decoder.decode(packet(v6, LINKTYPE.RAW))?.srcIp, '2001:db8::1');
  assert.equal(decoder.decode(packet(v6, LINKTYPE.IPV6))?.dstIp, '2001:db8::2');

  const errorsBefore = decoder.stats.errors;
  assert.equal(decoder.decode(packet(v6, LINKTYPE.IPV4)), undefined);
  assert.equal(decoder.stats.errors, errorsBefore + 1);
});

test('BSD loopback in both byte orders', () => {
  const decoder = new Decoder();
  assertSyn(decoder, hex(`02 00 00 00 ${IPV4_SYN}`), LINKTYPE.NULL); // little-endian host
  assertSyn(decoder, hex(`00 00 00 02 ${IPV4_SYN}`), LINKTYPE.NULL); // big-endian host
  assertSyn(decoder, hex(`00 00 00 02 ${IPV4_SYN}`), LINKTYPE.LOOP);

  const v6 = ipv6(tcp(), 6);
  for (const family of [24, 28, 30]) {
    for (const order of ['LE', 'BE'] as const) {
      const header = Buffer.alloc(4);
      if (order === 'LE') header.writeUInt32LE(family, 0);
      else header.writeUInt32BE(family, 0);
      const segment = decoder.decode(packet(Buffer.concat([header, v6]), LINKTYPE.NULL));
      assert.equal(segment?.ipVersion, 6, `family ${family} ${order}`);
    }
  }
  assert.equal(decoder.decode(packet(hex(`07 00 00 00 ${IPV4_SYN}`), LINKTYPE.NULL)), undefined);
  assert.equal(decoder.stats.otherProtocols, 1);
});

test('unsupported link type counted', () => {
  const decoder = new Decoder();
  assert.equal(decoder.decode(packet(hex(IPV4_SYN), 147)), undefined);
  assert.equal(decoder.stats.unsupportedLinkType, 1);
  assert.equal(decoder.stats.errors, 0);
});

test('ndpi smtp.pcap segments per direction', async () => {
  // nDPI's expected flow line: 51 packets client to server, 44 server to client, all TCP.
  const decoder = new Decoder();
  let toServer = 0;
  let toClient = 0;
  for (const p of await readPcap(`${CAPTURES}ndpi/smtp.pcap`)) {
    const segment = decoder.decode(p);
    if (segment?.srcIp === '194.7.248.153' && segment.srcPort === 2127 && segment.dstPort === 25) toServer++;
    if (segment?.srcIp === '172.16.114.207' && segment.srcPort === 25 && segment.dstPort === 2127) toClient++;
  }
  assert.equal(decoder.stats.frames, 95);
  assert.equal(toServer, 51);
  assert.equal(toClient, 44);
  assert.equal(decoder.stats.errors, 0);
});

test('ndpi smtp-starttls.pcap IPv6 in VLAN 125', async () => {
  // nDPI: flow 1 IPv4 17 + 19 packets; flow 2 IPv6 in VLAN 125, 16 + 17 packets.
  const decoder = new Decoder();
  const client = '2003:de:2016:125:fc36:8317:4e86:cb72';
  const server = '2003:de:2016:120::a08:53';
  let v6ToServer = 0;
  let v6ToClient = 0;
  let v4 = 0;
  for (const p of await readPcap(`${CAPTURES}ndpi/smtp-starttls.pcap`)) {
    const segment = decoder.decode(p);
    if (segment === undefined) continue;
    if (segment.ipVersion === 4) v4++;
    else {
      assert.deepEqual(segment.vlans, [125]);
      if (segment.srcIp === client && segment.srcPort === 7562 && segment.dstIp === server) v6ToServer++;
      if (segment.srcIp === server && segment.dstPort === 7562 && segment.dstIp === client) v6ToClient++;
    }
  }
  assert.equal(v4, 17 + 19);
  assert.equal(v6ToServer, 16);
  assert.equal(v6ToClient, 17);
  assert.equal(decoder.stats.frames, 69);
});

test('derived SLL capture equals its Ethernet original', async () => {
  const sll = await readPcap(`${CAPTURES}derived/suricata-firewall-122-smtp-simple-session.sll.pcap`);
  const eth = await readPcap(`${CAPTURES}suricata/firewall-122-smtp-simple-session.pcap`);
  assert.equal(sll[0].linkType, LINKTYPE.LINUX_SLL);
  assert.equal(sll.length, 24);
  assert.equal(eth.length, 24);

  const sllDecoder = new Decoder();
  const ethDecoder = new Decoder();
  for (let i = 0; i < sll.length; i++) {
    const a = sllDecoder.decode(sll[i]);
    const b = ethDecoder.decode(eth[i]);
    assert.ok(a && b, `frame ${i + 1}`);
    assert.deepEqual(
      [a.ts, a.srcIp, a.dstIp, a.srcPort, a.dstPort, a.seq, a.ack, a.flags, a.window, a.payload],
      [b.ts, b.srcIp, b.dstIp, b.srcPort, b.dstPort, b.seq, b.ack, b.flags, b.window, b.payload],
    );
    assert.equal(a.srcMac, b.srcMac, `frame ${i + 1} source MAC`);
  }

  // tcpdump's first line: "Out 86:ae:a5:f5:88:f4 ... 172.22.0.1.41656 > 172.22.0.3.25: Flags [S], seq 2375717787".
  const first = new Decoder().decode(sll[0]);
  assert.equal(first?.srcMac, '86:ae:a5:f5:88:f4');
  assert.equal(first?.srcIp, '172.22.0.1');
  assert.equal(first?.srcPort, 41656);
  assert.equal(first?.dstPort, 25);
  assert.equal(first?.seq, 2375717787);
  assert.equal(first?.flags, 0x02);
});

test('loopback NULL captures', async () => {
  // tcpdump: "AF IPv4 (2) ... 127.0.0.1.50287 > 127.0.0.1.25: Flags [S], seq 201142222".
  const packets = await readPcap(`${CAPTURES}suricata/smtp-pipelining.pcap`);
  assert.equal(packets[0].linkType, LINKTYPE.NULL);
  const decoder = new Decoder();
  const segments = packets.map((p) => decoder.decode(p));
  assert.equal(decoder.stats.tcp, 18);
  assert.equal(segments[0]?.srcPort, 50287);
  assert.equal(segments[0]?.seq, 201142222);

  // tcpdump: "127.0.0.1.51009 > 127.0.0.1.8000: Flags [P.], seq 462905074:462905243, ack 1881063790, win 6379".
  const [html] = await readPcap(`${CAPTURES}arkime/smtp-html.pcap`);
  const segment = new Decoder().decode(html);
  assert.ok(segment);
  assert.equal(segment.dstPort, 8000);
  assert.equal(segment.seq, 462905074);
  assert.equal(segment.ack, 1881063790);
  assert.equal(segment.window, 6379);
  assert.equal(segment.flags, 0x18);
  assert.equal(segment.payload.length, 462905243 - 462905074);
});

test('zeek IPv6 loopback capture', async () => {
  // tcpdump: "ethertype IPv6 (0x86dd), length 94: ::1.56660 > ::1.25: Flags [S], seq 839859356".
  const packets = await readPcap(`${CAPTURES}zeek/smtp-attachment-msg.pcap`);
  const decoder = new Decoder();
  const first = decoder.decode(packets[0]);
  assert.equal(first?.srcIp, '::1');
  assert.equal(first?.dstIp, '::1');
  assert.equal(first?.srcPort, 56660);
  assert.equal(first?.seq, 839859356);
  for (const p of packets.slice(1)) decoder.decode(p);
  assert.equal(decoder.stats.tcp, 17);
});

test('pcapng capture via the capture stage', async () => {
  // The capture stage's reader may hand out views into its chunk, so each segment is summarised
  // inside the callback.
  const { readCapture } = await import('../../src/capture/index.js');
  const decoder = new Decoder();
  const fromPcapng: string[] = [];
  await readCapture(`${CAPTURES}derived/suricata-smtp-attachment-md5.pcapng`, (p) => {
    const s = decoder.decode(p);
    if (s) fromPcapng.push(`${s.ts} ${s.srcMac} ${s.srcIp}:${s.srcPort} ${s.dstIp}:${s.dstPort} ${s.seq} ${s.payload.toString('hex')}`);
  });
  assert.equal(decoder.stats.frames, 26);

  const reference = new Decoder();
  const fromPcap: string[] = [];
  for (const p of await readPcap(`${CAPTURES}suricata/smtp-attachment-md5.pcap`)) {
    const s = reference.decode(p);
    if (s) fromPcap.push(`${s.ts} ${s.srcMac} ${s.srcIp}:${s.srcPort} ${s.dstIp}:${s.dstPort} ${s.seq} ${s.payload.toString('hex')}`);
  }
  assert.deepEqual(fromPcapng, fromPcap);

  // tcpdump: "00:00:cd:38:13:41 > 52:54:12:28:67:7a ... 192.168.92.1.39202 > 172.16.92.2.25: Flags [S], seq 878557031".
  assert.match(fromPcapng[0], /^\d+\.\d+ 00:00:cd:38:13:41 192\.168\.92\.1:39202 172\.16\.92\.2:25 878557031 $/);
});
