import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { CaptureError, readCapture, type CaptureStats, type Packet } from '../../src/capture/index.js';

const CAPTURES = join(import.meta.dirname, '../../../shared/captures');
const workDir = mkdtempSync(join(tmpdir(), 'mailtap-capture-pcapng-'));

/** Writes pcapng blocks in one byte order. */
class BlockWriter {
  constructor(readonly littleEndian: boolean) {}

  u16(v: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.littleEndian) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  }

  u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.littleEndian) b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    return b;
  }

  pad(data: Buffer): Buffer {
    const padding = (4 - (data.length % 4)) % 4;
    return Buffer.concat([data, Buffer.alloc(padding)]);
  }

  block(type: number, body: Buffer): Buffer {
    const length = 12 + body.length;
    return Buffer.concat([this.u32(type), this.u32(length), body, this.u32(length)]);
  }

  option(code: number, value: Buffer): Buffer {
    return Buffer.concat([this.u16(code), this.u16(value.length), this.pad(value)]);
  }

  sectionHeader(): Buffer {
    const body = Buffer.concat([this.u32(0x1a2b3c4d), this.u16(1), this.u16(0), Buffer.alloc(8, 0xff)]);
    return this.block(0x0a0d0d0a, body);
  }

  interfaceDescription(linkType: number, snapLength: number, options: Buffer[] = []): Buffer {
    const end = options.length > 0 ? [this.option(0, Buffer.alloc(0))] : [];
    return this.block(1, Buffer.concat([this.u16(linkType), this.u16(0), this.u32(snapLength), ...options, ...end]));
  }

  tsresol(value: number): Buffer {
    return this.option(9, Buffer.from([value]));
  }

  tsoffset(seconds: bigint): Buffer {
    const b = Buffer.alloc(8);
    if (this.littleEndian) b.writeBigInt64LE(seconds);
    else b.writeBigInt64BE(seconds);
    return this.option(14, b);
  }

  enhancedPacket(interfaceId: number, timestamp: bigint, data: Buffer, originalLength = data.length): Buffer {
    const body = Buffer.concat([
      this.u32(interfaceId),
      this.u32(Number(timestamp >> 32n)),
      this.u32(Number(timestamp & 0xffffffffn)),
      this.u32(data.length),
      this.u32(originalLength),
      this.pad(data),
    ]);
    return this.block(6, body);
  }

  obsoletePacket(interfaceId: number, timestamp: bigint, data: Buffer): Buffer {
    const body = Buffer.concat([
      this.u16(interfaceId),
      this.u16(0),
      this.u32(Number(timestamp >> 32n)),
      this.u32(Number(timestamp & 0xffffffffn)),
      this.u32(data.length),
      this.u32(data.length),
      this.pad(data),
    ]);
    return this.block(2, body);
  }

  simplePacket(data: Buffer, originalLength = data.length): Buffer {
    return this.block(3, Buffer.concat([this.u32(originalLength), this.pad(data)]));
  }
}

function writeCapture(name: string, bytes: Buffer): string {
  const path = join(workDir, name);
  writeFileSync(path, bytes);
  return path;
}

async function collect(file: string, stats?: CaptureStats): Promise<Packet[]> {
  const packets: Packet[] = [];
  await readCapture(file, (p) => packets.push({ ...p, data: Buffer.from(p.data) }), { stats });
  return packets;
}

async function readError(file: string, packets: Packet[] = []): Promise<CaptureError> {
  try {
    await readCapture(file, (p) => packets.push({ ...p, data: Buffer.from(p.data) }));
  } catch (err) {
    assert.ok(err instanceof CaptureError, `expected CaptureError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${file}: expected a CaptureError`);
}

const FRAME_A = Buffer.from('00112233445566778899aabb0800450000', 'hex');
const FRAME_B = Buffer.from('0102030405', 'hex');
const FRAME_C = Buffer.from('cafebabe', 'hex');

const le = new BlockWriter(true);
const be = new BlockWriter(false);

// Section 1, little-endian: interface 0 Ethernet at 10^-6 (default), interface 1 raw IP at
// 10^-9, interface 2 Linux SLL at 2^-10 with a 100 s offset. Section 2, big-endian: one
// interface with snaplen 3 and a simple packet block.
const section1 = [
  le.sectionHeader(),
  le.interfaceDescription(1, 65535),
  le.interfaceDescription(101, 262144, [le.tsresol(9)]),
  le.interfaceDescription(113, 0, [le.tsresol(0x8a), le.tsoffset(100n)]),
  le.enhancedPacket(0, 1700000000_123456n, FRAME_A),
  le.block(0x00000bad, Buffer.from('custom block body...')),
  le.enhancedPacket(1, 1700000001_987654321n, FRAME_B, 1500),
  le.enhancedPacket(2, (5n << 10n) + 512n, FRAME_C),
  le.block(5, Buffer.alloc(20)),
  le.simplePacket(FRAME_B),
  le.obsoletePacket(1, 42_000000001n, FRAME_C),
];
const section2 = [
  be.sectionHeader(),
  be.interfaceDescription(228, 3),
  be.simplePacket(FRAME_B),
  be.enhancedPacket(0, 1_000001n, FRAME_C),
];
const mixedFile = Buffer.concat([...section1, ...section2]);

test('mixed pcapng sections, interfaces and blocks', async () => {
  const stats: CaptureStats = {
    packets: 0,
    bytes: 0,
    inputBytes: 0,
    snapTruncated: 0,
    skippedBlocks: 0,
    dropped: 0,
  };
  const packets = await collect(writeCapture('mixed.pcapng', mixedFile), stats);
  assert.equal(packets.length, 7);

  const [epb0, epb1, epb2, spb1, opb, spb2, epb3] = packets;
  assert.deepEqual(
    [epb0.seconds, epb0.nanos, epb0.linkType, epb0.interfaceId],
    [1700000000, 123456000, 1, 0],
  );
  assert.deepEqual(epb0.data, FRAME_A);
  assert.equal(epb0.fileOffset, section1[0].length + section1[1].length + section1[2].length + section1[3].length);

  assert.deepEqual([epb1.seconds, epb1.nanos, epb1.linkType, epb1.interfaceId], [1700000001, 987654321, 101, 1]);
  assert.equal(epb1.originalLength, 1500);
  assert.deepEqual(epb1.data, FRAME_B);

  // 5 s + 512/1024 s, plus the interface's 100 s offset.
  assert.deepEqual([epb2.seconds, epb2.nanos, epb2.linkType, epb2.interfaceId], [105, 500000000, 113, 2]);
  assert.deepEqual(epb2.data, FRAME_C);

  // Simple packet blocks use interface 0 and carry no timestamp.
  assert.deepEqual([spb1.seconds, spb1.nanos, spb1.linkType, spb1.interfaceId], [0, 0, 1, 0]);
  assert.deepEqual(spb1.data, FRAME_B);

  assert.deepEqual([opb.seconds, opb.nanos, opb.linkType, opb.interfaceId], [42, 1, 101, 1]);
  assert.deepEqual(opb.data, FRAME_C);

  // Second section: big-endian, interfaces restart, snaplen 3 cuts the simple packet.
  assert.deepEqual([spb2.linkType, spb2.interfaceId, spb2.originalLength], [228, 0, FRAME_B.length]);
  assert.deepEqual(spb2.data, FRAME_B.subarray(0, 3));
  assert.deepEqual([epb3.seconds, epb3.nanos, epb3.linkType], [1, 1000, 228]);
  assert.deepEqual(epb3.data, FRAME_C);

  assert.equal(stats.packets, 7);
  assert.equal(stats.skippedBlocks, 2);
  assert.equal(stats.snapTruncated, 2);
  assert.equal(stats.inputBytes, mixedFile.length);
  assert.equal(stats.bytes, packets.reduce((sum, p) => sum + p.data.length, 0));
});

test('timestamps convert exactly at every resolution', async () => {
  // Reference: integer arithmetic on BigInt, independent of the parser's double paths.
  const resolutions = [0, 1, 3, 6, 9, 12, 0x80, 0x8a, 0x94, 0x9e, 0xa0, 0xa4];
  const values = [
    0n,
    1n,
    0xffffffffn,
    0x100000000n,
    1700000000_123456n,
    1700000000_123456789n,
    (1n << 53n) - 1n,
    1n << 53n,
    0xffffffffffffffffn,
    0x7fffffffffffffffn,
    0x123456789abcdefn,
    0xfedcba987654321n,
  ];
  let seed = 12345;
  for (let i = 0; i < 40; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const high = BigInt(seed % 0x40000000);
    seed = (seed * 1103515245 + 12345) % 2147483648;
    values.push((high << 32n) | BigInt(seed));
  }

  for (const resolution of resolutions) {
    const blocks = [le.sectionHeader(), le.interfaceDescription(1, 0, [le.tsresol(resolution)])];
    for (const ts of values) blocks.push(le.enhancedPacket(0, ts, FRAME_C));
    const packets = await collect(writeCapture(`ts-${resolution}.pcapng`, Buffer.concat(blocks)));

    const exponent = BigInt(resolution & 0x7f);
    const units = (resolution & 0x80 ? 2n : 10n) ** exponent;
    values.forEach((ts, i) => {
      const seconds = Number(ts / units);
      const nanos = Number(((ts % units) * 1_000_000_000n) / units);
      assert.equal(packets[i].seconds, seconds, `resolution 0x${resolution.toString(16)} ts ${ts}: seconds`);
      assert.equal(packets[i].nanos, nanos, `resolution 0x${resolution.toString(16)} ts ${ts}: nanos`);
    });
  }
});

test('derived pcapng matches the classic original', async () => {
  const expected = JSON.parse(readFileSync(join(CAPTURES, 'derived/expected.json'), 'utf8')) as {
    file: string;
    packets: string;
    linktype: string;
  }[];
  const entry = expected.find((e) => e.file === 'suricata-smtp-attachment-md5.pcapng');
  assert.ok(entry);

  const stats: CaptureStats = { packets: 0, bytes: 0, inputBytes: 0, snapTruncated: 0, skippedBlocks: 0, dropped: 0 };
  const packets = await collect(join(CAPTURES, 'derived', entry.file), stats);
  assert.equal(packets.length, Number(entry.packets));
  assert.equal(entry.linktype, 'Ethernet');
  assert.ok(packets.every((p) => p.linkType === 1));

  const original = await collect(join(CAPTURES, 'suricata/smtp-attachment-md5.pcap'));
  assert.equal(packets.length, original.length);
  for (let i = 0; i < original.length; i++) {
    assert.deepEqual(packets[i].data, original[i].data, `packet ${i}: data`);
    assert.equal(packets[i].originalLength, original[i].originalLength, `packet ${i}: originalLength`);
    assert.equal(packets[i].seconds, original[i].seconds, `packet ${i}: seconds`);
    assert.equal(packets[i].nanos, original[i].nanos, `packet ${i}: nanos`);
  }
  assert.equal(stats.bytes, original.reduce((sum, p) => sum + p.data.length, 0));
});

test('block length not a multiple of 4', async () => {
  const bad = le.enhancedPacket(0, 1n, FRAME_C);
  bad.writeUInt32LE(bad.length + 2, 4);
  const prefix = Buffer.concat([le.sectionHeader(), le.interfaceDescription(1, 0), le.enhancedPacket(0, 1n, FRAME_A)]);
  const packets: Packet[] = [];
  const err = await readError(writeCapture('len-mod4.pcapng', Buffer.concat([prefix, bad])), packets);
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, prefix.length);
  assert.equal(packets.length, 1);
});

test('block length below 12', async () => {
  const bad = Buffer.from(le.block(0xbad, Buffer.alloc(0)));
  bad.writeUInt32LE(8, 4);
  const prefix = le.sectionHeader();
  const err = await readError(writeCapture('len-small.pcapng', Buffer.concat([prefix, bad])));
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, prefix.length);
});

test('trailing block length mismatch', async () => {
  const bad = le.enhancedPacket(0, 1n, FRAME_C);
  bad.writeUInt32LE(bad.length + 4, bad.length - 4);
  const prefix = Buffer.concat([le.sectionHeader(), le.interfaceDescription(1, 0)]);
  const err = await readError(writeCapture('trailer.pcapng', Buffer.concat([prefix, bad])));
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, prefix.length);
  assert.match(err.message, /trailing length/);
});

test('captured length beyond the block', async () => {
  const bad = le.enhancedPacket(0, 1n, FRAME_C);
  bad.writeUInt32LE(200, 20);
  const prefix = Buffer.concat([le.sectionHeader(), le.interfaceDescription(1, 0)]);
  const err = await readError(writeCapture('caplen.pcapng', Buffer.concat([prefix, bad])));
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, prefix.length);
});

test('packet for an undeclared interface', async () => {
  const prefix = Buffer.concat([le.sectionHeader(), le.interfaceDescription(1, 0)]);
  const err = await readError(writeCapture('ifid.pcapng', Buffer.concat([prefix, le.enhancedPacket(3, 1n, FRAME_C)])));
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, prefix.length);
  assert.match(err.message, /interface 3/);
});

test('invalid byte-order magic', async () => {
  const shb = le.sectionHeader();
  shb.writeUInt32LE(0x11223344, 8);
  const err = await readError(writeCapture('bom.pcapng', shb));
  assert.equal(err.code, 'MAILTAP_ERR_FORMAT');
  assert.equal(err.offset, 0);
});

test('unsupported major version', async () => {
  const shb = be.sectionHeader();
  shb.writeUInt16BE(2, 12);
  const err = await readError(writeCapture('v2.pcapng', shb));
  assert.equal(err.code, 'MAILTAP_ERR_FORMAT');
  assert.match(err.message, /version 2\.0/);
});

test('block cut by end of file', async () => {
  const prefix = Buffer.concat([be.sectionHeader(), be.interfaceDescription(1, 0), be.enhancedPacket(0, 7n, FRAME_A)]);
  const last = be.enhancedPacket(0, 8n, FRAME_B);
  const packets: Packet[] = [];
  const file = writeCapture('cut.pcapng', Buffer.concat([prefix, last.subarray(0, last.length - 1)]));
  const err = await readError(file, packets);
  assert.equal(err.code, 'MAILTAP_ERR_TRUNCATED');
  assert.equal(err.offset, prefix.length);
  assert.equal(packets.length, 1);
  assert.deepEqual(packets[0].data, FRAME_A);
});

test('section header only gives no packets', async () => {
  const stats = await readCapture(writeCapture('shb-only.pcapng', le.sectionHeader()), () => assert.fail('no packet expected'));
  assert.equal(stats.packets, 0);
});
