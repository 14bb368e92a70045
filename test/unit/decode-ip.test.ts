import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, formatIPv4, formatIPv6, formatMac } from '../../src/decode/index.js';
import { LINKTYPE } from '../../src/decode/types.js';
import { ethernet, hex, ipv4, ipv6, packet, tcp } from './decode-frames.js';

const HOPOPTS = 0;
const ROUTING = 43;
const NO_NEXT_HEADER = 59;
const DSTOPTS = 60;

test('IPv4 header with options', () => {
  const decoder = new Decoder();
  const frame = hex(`
    47 00 00 30  00 01 00 00  40 06 00 00  0a 00 00 01  0a 00 00 02   # IHL 7 = 28 bytes, total 48
    07 07 04 00 00 00 00                                              # record route, one empty slot
    00                                                                # end of options list
    9c 40 00 19  00 00 03 e8  00 00 00 00  50 18 02 00  00 00 00 00   # 40000 -> 25, seq 1000, PSH ACK
  `);
  assert.equal(frame.length, 48);
  const segment = decoder.decode(packet(frame, LINKTYPE.RAW));
  assert.ok(segment);
  assert.equal(segment.srcPort, 40000);
  assert.equal(segment.dstPort, 25);
  assert.equal(segment.seq, 1000);
  assert.equal(segment.flags, 0x18);
  assert.equal(segment.payloadLength, 0);
});

test('IPv4 bad header lengths', () => {
  const decoder = new Decoder();
  const valid = ipv4(tcp());
  const ihl4 = Buffer.from(valid);
  ihl4[0] = 0x44;
  assert.equal(decoder.decode(packet(ihl4, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 1);

  const ihlPastFrame = Buffer.from(valid.subarray(0, 24));
  ihlPastFrame[0] = 0x4f; // 60-byte header in a 24-byte frame
  assert.equal(decoder.decode(packet(ihlPastFrame, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 2);

  const totalBelowHeader = ipv4(tcp(), { totalLength: 19 });
  assert.equal(decoder.decode(packet(totalBelowHeader, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 3);

  const version5 = Buffer.from(valid);
  version5[0] = 0x55;
  assert.equal(decoder.decode(packet(version5, LINKTYPE.IPV4)), undefined);
  assert.equal(decoder.stats.errors, 4);
  assert.equal(decoder.stats.tcp, 0);
});

test('IPv4 total length past frame', () => {
  const decoder = new Decoder();
  const frame = ipv4(tcp({ payload: Buffer.alloc(100, 0x41) }), { totalLength: 400 });
  assert.equal(decoder.decode(packet(frame, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 1);
  assert.equal(decoder.stats.snapTruncated, 0);
});

test('IPv4 snap length cut', () => {
  const decoder = new Decoder();
  const full = ethernet(ipv4(tcp({ payload: Buffer.alloc(1460, 0x41) })), 0x0800);
  assert.equal(full.length, 1514);
  const cut = full.subarray(0, 96);
  const segment = decoder.decode(packet(cut, LINKTYPE.ETHERNET, { originalLength: 1514 }));
  assert.ok(segment);
  assert.equal(segment.payloadLength, 1460);
  assert.equal(segment.payload.length, 96 - 14 - 20 - 20);
  assert.equal(decoder.stats.snapTruncated, 1);
  assert.equal(decoder.stats.tcp, 1);

  // Cut inside the TCP header: no segment, counted as truncated but not as an error.
  assert.equal(decoder.decode(packet(full.subarray(0, 40), LINKTYPE.ETHERNET, { originalLength: 1514 })), undefined);
  assert.equal(decoder.stats.snapTruncated, 2);
  assert.equal(decoder.stats.errors, 0);
});

test('IPv4 ethernet padding trimmed', () => {
  const decoder = new Decoder();
  const frame = Buffer.concat([ethernet(ipv4(tcp({ payload: hex('51 55 49 54') })), 0x0800), hex('00 00')]);
  assert.equal(frame.length, 60);
  const segment = decoder.decode(packet(frame, LINKTYPE.ETHERNET));
  assert.equal(segment?.payload.toString('latin1'), 'QUIT');
  assert.equal(segment?.payloadLength, 4);
});

test('IPv4 total length zero uses captured length', () => {
  // Captures taken before TCP segmentation offload carry total length 0.
  const decoder = new Decoder();
  const frame = ipv4(tcp({ payload: Buffer.alloc(3000, 0x42) }), { totalLength: 0 });
  const segment = decoder.decode(packet(frame, LINKTYPE.RAW));
  assert.equal(segment?.payloadLength, 3000);
});

test('IPv4 UDP and ICMP counted only', () => {
  const decoder = new Decoder();
  assert.equal(decoder.decode(packet(ipv4(Buffer.alloc(8), { protocol: 17 }), LINKTYPE.RAW)), undefined);
  assert.equal(decoder.decode(packet(ipv4(Buffer.alloc(8), { protocol: 1 }), LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.udp, 1);
  assert.equal(decoder.stats.otherProtocols, 1);
  assert.equal(decoder.stats.tcp, 0);
});

test('IPv6 hop-by-hop and destination options chain', () => {
  const decoder = new Decoder();
  const payload = hex(`
    3c 00 05 02 00 00 01 00    # hop-by-hop: next 60, 8 bytes, router alert, PadN
    06 01 01 04 00 00 00 00    # destination options: next TCP, 16 bytes, PadN of 4 ...
    01 04 00 00 00 00 00 00    # ... PadN of 4, Pad1 x2 (zeros)
  `);
  const frame = ipv6(Buffer.concat([payload, tcp({ srcPort: 1234, payload: hex('48 45 4c 4f') })]), HOPOPTS);
  const segment = decoder.decode(packet(frame, LINKTYPE.RAW));
  assert.ok(segment);
  assert.equal(segment.srcPort, 1234);
  assert.equal(segment.payload.toString('latin1'), 'HELO');
  assert.equal(segment.payloadLength, 4);
});

test('IPv6 routing and AH headers', () => {
  const decoder = new Decoder();
  const routing = hex('33 00 00 00 00 00 00 00'); // next 51 (AH), 8 bytes, type 0, segments left 0
  const ah = hex('06 04 00 00 00 00 01 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00');
  assert.equal(ah.length, (4 + 2) * 4); // AH length counts 4-byte units minus 2
  const frame = ipv6(Buffer.concat([routing, ah, tcp({ dstPort: 587 })]), ROUTING);
  assert.equal(decoder.decode(packet(frame, LINKTYPE.RAW))?.dstPort, 587);
  assert.equal(decoder.stats.tcp, 1);
});

test('IPv6 no next header and bad lengths', () => {
  const decoder = new Decoder();
  assert.equal(decoder.decode(packet(ipv6(Buffer.alloc(0), NO_NEXT_HEADER), LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.otherProtocols, 1);

  // Destination options claiming 16 bytes in an 8-byte payload.
  const overlong = ipv6(hex('06 01 00 00 00 00 00 00'), DSTOPTS);
  assert.equal(decoder.decode(packet(overlong, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 1);

  // Payload length larger than the frame, without a snap-length cut.
  const long = ipv6(tcp(), 6, 500);
  assert.equal(decoder.decode(packet(long, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 2);

  // The same with a snap-length cut decodes.
  assert.equal(decoder.decode(packet(long, LINKTYPE.RAW, { originalLength: 540 }))?.payloadLength, 480);
  assert.equal(decoder.stats.snapTruncated, 1);

  // An extension header that starts exactly at the end of the payload.
  const empty = ipv6(Buffer.alloc(0), HOPOPTS);
  assert.equal(decoder.decode(packet(empty, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 3);
});

test('IPv6 padding trimmed', () => {
  const decoder = new Decoder();
  const frame = Buffer.concat([ethernet(ipv6(tcp({ payload: hex('2e 0d 0a') }), 6), 0x86dd), Buffer.alloc(5)]);
  assert.equal(decoder.decode(packet(frame, LINKTYPE.ETHERNET))?.payload.toString('latin1'), '.\r\n');
});

test('RFC 5952 text forms', () => {
  const cases: [string, string][] = [
    ['20010db8000000000000000000000001', '2001:db8::1'], // 4.1 leading zeros
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // 4.2.3 first of equal runs
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // 4.2.2 single zero kept
    ['20010db8000000000000000000020001', '2001:db8::2:1'], // 4.2.1 longest run
    ['20010000000000010000000000000001', '2001:0:0:1::1'], // 4.2.3 longest run wins
    ['20010db8aaaabbbbccccddddeeeeffff', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff'], // 4.3 lower case
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['fe800000000000000000000000000000', 'fe80::'],
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'], // section 5, IPv4-mapped
  ];
  for (const [bytes, text] of cases) assert.equal(formatIPv6(hex(bytes), 0), text, bytes);
});

test('IPv6 text matches WHATWG URL serializer', () => {
  // The URL standard's IPv6 serializer compresses like RFC 5952 but prints IPv4-mapped addresses
  // in hexadecimal, so those are left out. Groups are drawn mostly from {0, 1} to make zero runs.
  let seed = 12345;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  const buf = Buffer.alloc(16);
  for (let i = 0; i < 20000; i++) {
    for (let g = 0; g < 8; g++) {
      const r = random() % 8;
      let group = random() & 0xffff;
      if (r < 5) group = 0;
      else if (r === 5) group = 1;
      buf.writeUInt16BE(group, g * 2);
    }
    if (buf.readUInt32BE(0) === 0 && buf.readUInt32BE(4) === 0 && buf.readUInt32BE(8) === 0xffff) continue;
    const expected = new URL(`http://[${buf.toString('hex').replace(/(.{4})(?!$)/g, '$1:')}]/`).hostname;
    assert.equal(`[${formatIPv6(buf, 0)}]`, expected);
  }
});

test('IPv4 and MAC text with cache collisions', () => {
  const buf = Buffer.alloc(6);
  for (let i = 0; i < 50000; i++) {
    buf.writeUInt32BE((Math.imul(i, 2654435761) ^ i) >>> 0, 0);
    buf.writeUInt16BE(i & 0xffff, 4);
    assert.equal(formatIPv4(buf, 0), `${buf[0]}.${buf[1]}.${buf[2]}.${buf[3]}`);
    assert.equal(formatMac(buf, 0), buf.toString('hex').replace(/(..)(?!$)/g, '$1:'));
  }
  assert.equal(formatIPv4(hex('c0a80001'), 0), '192.168.0.1');
  assert.equal(formatMac(hex('00DEADBEEF0f'), 0), '00:de:ad:be:ef:0f');
});

test('timestamp rounded to microseconds', () => {
  const decoder = new Decoder();
  const frame = ipv4(tcp());
  assert.equal(decoder.decode(packet(frame, LINKTYPE.RAW, { seconds: 1700000000, nanos: 123456789 }))?.ts, 1700000000.123457);
  assert.equal(decoder.decode(packet(frame, LINKTYPE.RAW, { seconds: 1700000000, nanos: 999999600 }))?.ts, 1700000001);
  assert.equal(decoder.decode(packet(frame, LINKTYPE.RAW, { seconds: 5, nanos: 1000 }))?.ts, 5.000001);
});
