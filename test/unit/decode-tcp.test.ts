import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../src/decode/index.js';
import { LINKTYPE, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../../src/decode/types.js';
import type { TcpSegment } from '../../src/decode/types.js';
import type { Packet } from '../../src/capture/types.js';
import { ethernet, hex, ipv4, ipv6, ipv6Fragment, packet, tcp } from './decode-frames.js';

test('TCP header with options', () => {
  const decoder = new Decoder();
  const segment = hex(`
    c3 50 00 19  ff ff ff fe  80 00 00 01   # 50000 -> 25, seq 0xfffffffe, ack 0x80000001
    90 12 fa f0  00 00 00 00                # data offset 9, SYN ACK, window 64240
    02 04 05 b4  01 01 08 0a 00 00 00 01 00 00 00 00   # MSS 1460, NOP NOP, timestamps
    45 48 4c 4f                             # "EHLO"
  `);
  const result = decoder.decode(packet(ipv4(segment), LINKTYPE.RAW));
  assert.ok(result);
  assert.equal(result.srcPort, 50000);
  assert.equal(result.dstPort, 25);
  assert.equal(result.seq, 0xfffffffe);
  assert.equal(result.ack, 0x80000001);
  assert.equal(result.flags, TCP_SYN | TCP_ACK);
  assert.equal(result.window, 64240);
  assert.equal(result.payload.toString('latin1'), 'EHLO');
  assert.equal(result.payloadLength, 4);
});

test('TCP flags byte', () => {
  const decoder = new Decoder();
  const fin = decoder.decode(packet(ipv4(tcp({ flags: TCP_FIN | TCP_ACK | TCP_PSH })), LINKTYPE.RAW));
  assert.equal(fin?.flags, 0x19);
  const ecnSyn = decoder.decode(packet(ipv4(tcp({ flags: 0xc2 })), LINKTYPE.RAW));
  assert.equal(ecnSyn?.flags, 0xc2); // SYN with ECE and CWR
});

test('TCP payload is a view into the frame', () => {
  const decoder = new Decoder();
  const frame = ethernet(ipv4(tcp({ payload: Buffer.from('RSET\r\n') })), 0x0800);
  const result = decoder.decode(packet(frame, LINKTYPE.ETHERNET));
  assert.ok(result);
  assert.equal(result.payload.buffer, frame.buffer);
  assert.equal(result.payload.byteOffset, frame.byteOffset + 54);
  frame[54] = 0x72;
  assert.equal(result.payload.toString('latin1'), 'rSET\r\n');
});

test('TCP bad data offsets', () => {
  const decoder = new Decoder();
  const below5 = tcp();
  below5[12] = 0x40;
  assert.equal(decoder.decode(packet(ipv4(below5), LINKTYPE.RAW)), undefined);

  const pastSegment = tcp({ payload: Buffer.alloc(4) });
  pastSegment[12] = 0x70; // 28-byte header in a 24-byte segment
  assert.equal(decoder.decode(packet(ipv4(pastSegment), LINKTYPE.RAW)), undefined);

  const shortSegment = ipv4(tcp().subarray(0, 12));
  assert.equal(decoder.decode(packet(shortSegment, LINKTYPE.RAW)), undefined);
  assert.equal(decoder.stats.errors, 3);
  assert.equal(decoder.stats.tcp, 0);
});

test('TCP header cut by snap length', () => {
  const decoder = new Decoder();
  const full = ipv6(tcp({ options: Buffer.alloc(12, 1), payload: Buffer.alloc(100) }), 6);
  assert.equal(decoder.decode(packet(full.subarray(0, 40 + 24), LINKTYPE.RAW, { originalLength: full.length })), undefined);
  assert.equal(decoder.stats.snapTruncated, 1);
  assert.equal(decoder.stats.errors, 0);

  const headerOnly = decoder.decode(packet(full.subarray(0, 40 + 32), LINKTYPE.RAW, { originalLength: full.length }));
  assert.equal(headerOnly?.payload.length, 0);
  assert.equal(headerOnly?.payloadLength, 100);
});

/** Mulberry32, a small seeded PRNG, so a failure can be reproduced. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ADDRESS = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9a-f:.]+)$/;

test('fuzzed frames never throw', () => {
  const random = prng(20240601);
  const int = (n: number): number => Math.floor(random() * n);
  const linkTypes = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147];
  const seeds: [Buffer, number][] = [
    [ethernet(ipv4(tcp({ payload: Buffer.alloc(40, 0x41) })), 0x0800), 1],
    [ethernet(ipv6(tcp(), 6), 0x86dd, [[0x88a8, 1], [0x8100, 2]]), 1],
    [ethernet(ipv4(tcp().subarray(0, 16), { moreFragments: true, id: 9 }), 0x0800), 1],
    [ethernet(ipv4(tcp().subarray(16), { fragmentOffset: 16, id: 9 }), 0x0800), 1],
    [ipv6(Buffer.concat([Buffer.from([44, 0, 1, 4, 0, 0, 0, 0]), ipv6Fragment(6, 0, true, 4), tcp()]), 0), 101],
    [Buffer.concat([hex('02000000'), ipv4(tcp())]), 0],
    [Buffer.concat([hex('0000 0001 0006 020000000001 0000 0800'), ipv4(tcp())]), 113],
    [Buffer.concat([hex('86dd 0000 00000001 0001 00 06 020000000001 0000'), ipv6(tcp(), 6)]), 276],
  ];

  const decoder = new Decoder({ maxFragmentBytes: 64 * 1024 });
  // The private method has no safety-net try/catch, so any out-of-bounds read would surface here.
  const decodeFrame = (decoder as unknown as { decodeFrame(p: Packet): unknown }).decodeFrame.bind(decoder);
  let decoded = 0;
  for (let i = 0; i < 30000; i++) {
    let data: Buffer;
    let linkType: number;
    if (i % 4 === 0) {
      data = Buffer.alloc(int(120));
      for (let j = 0; j < data.length; j++) data[j] = int(256);
      linkType = linkTypes[int(linkTypes.length)];
    } else {
      const [seed, seedLinkType] = seeds[int(seeds.length)];
      data = Buffer.from(int(3) === 0 ? seed.subarray(0, int(seed.length + 1)) : seed);
      for (let flips = int(6); flips > 0 && data.length > 0; flips--) data[int(data.length)] = int(256);
      linkType = int(10) === 0 ? linkTypes[int(linkTypes.length)] : seedLinkType;
    }
    const originalLength = int(3) === 0 ? data.length + int(2000) : data.length;
    const p = packet(data, linkType, { seconds: 1000 + (i >> 4), originalLength });
    let segment: TcpSegment | undefined;
    assert.doesNotThrow(() => {
      segment = decodeFrame(p) as TcpSegment | undefined;
    });
    if (segment === undefined) continue;
    decoded++;
    // Reads past the frame give undefined bytes, which would show up in these fields.
    assert.match(segment.srcIp, ADDRESS);
    assert.match(segment.dstIp, ADDRESS);
    assert.ok(segment.payload.length <= segment.payloadLength);
    assert.ok(Number.isInteger(segment.seq), `seq ${segment.seq}`);
    assert.ok(segment.seq >= 0 && segment.seq < 2 ** 32, `seq ${segment.seq}`);
    assert.ok(Number.isInteger(segment.srcPort), `port ${segment.srcPort}`);
    assert.ok(segment.srcPort < 65536, `port ${segment.srcPort}`);
    for (const vlan of segment.vlans) assert.ok(Number.isInteger(vlan) && vlan < 4096);
    if (segment.srcMac !== undefined) assert.match(segment.srcMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  }
  assert.equal(decoder.stats.frames, 0); // decodeFrame leaves the frame count to decode
  assert.ok(decoded > 1000, `decoded ${decoded}`);
});
