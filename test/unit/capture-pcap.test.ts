import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { CaptureError, readCapture, type Packet } from '../../src/capture/index.js';

const require = createRequire(import.meta.url);
const pcapParser = require('pcap-parser') as {
  parse(input: string): NodeJS.EventEmitter;
};

const CAPTURES = join(import.meta.dirname, '../../../shared/captures');
const workDir = mkdtempSync(join(tmpdir(), 'mailtap-capture-pcap-'));

interface ReferencePacket {
  header: {
    timestampSeconds: number;
    timestampMicroseconds: number;
    capturedLength: number;
    originalLength: number;
  };
  data: Buffer;
}

function classicCaptures(): string[] {
  const files: string[] = [];
  for (const source of readdirSync(CAPTURES, { withFileTypes: true })) {
    if (!source.isDirectory()) continue;
    for (const name of readdirSync(join(CAPTURES, source.name))) {
      if (name.endsWith('.pcap') || name.endsWith('.cap')) files.push(join(CAPTURES, source.name, name));
    }
  }
  return files.sort();
}

function parseWithReference(file: string): Promise<ReferencePacket[]> {
  return new Promise((resolve, reject) => {
    const packets: ReferencePacket[] = [];
    const parser = pcapParser.parse(file);
    parser.on('packet', (p: ReferencePacket) => packets.push(p));
    parser.on('error', reject);
    parser.on('end', () => resolve(packets));
  });
}

async function collect(file: string): Promise<Packet[]> {
  const packets: Packet[] = [];
  await readCapture(file, (p) => packets.push({ ...p, data: Buffer.from(p.data) }));
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

interface RecordSpec {
  seconds: number;
  fraction: number;
  data: Buffer;
  originalLength?: number;
  /** Overrides incl_len in the record header (data is still written as given). */
  capturedLength?: number;
}

interface HeaderSpec {
  littleEndian?: boolean;
  nanosecond?: boolean;
  snapLength?: number;
  network?: number;
  major?: number;
}

function pcapFile(header: HeaderSpec, records: RecordSpec[]): Buffer {
  const le = header.littleEndian ?? true;
  const parts: Buffer[] = [];
  const global = Buffer.alloc(24);
  const magic = header.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4;
  if (le) {
    global.writeUInt32LE(magic, 0);
    global.writeUInt16LE(header.major ?? 2, 4);
    global.writeUInt16LE(4, 6);
    global.writeUInt32LE(header.snapLength ?? 65535, 16);
    global.writeUInt32LE(header.network ?? 1, 20);
  } else {
    global.writeUInt32BE(magic, 0);
    global.writeUInt16BE(header.major ?? 2, 4);
    global.writeUInt16BE(4, 6);
    global.writeUInt32BE(header.snapLength ?? 65535, 16);
    global.writeUInt32BE(header.network ?? 1, 20);
  }
  parts.push(global);
  for (const r of records) {
    const h = Buffer.alloc(16);
    const fields = [r.seconds, r.fraction, r.capturedLength ?? r.data.length, r.originalLength ?? r.data.length];
    fields.forEach((v, i) => (le ? h.writeUInt32LE(v, i * 4) : h.writeUInt32BE(v, i * 4)));
    parts.push(h, r.data);
  }
  return Buffer.concat(parts);
}

function writeCapture(name: string, bytes: Buffer): string {
  const path = join(workDir, name);
  writeFileSync(path, bytes);
  return path;
}

const FRAME_A = Buffer.from('00112233445566778899aabb08004500', 'hex');
const FRAME_B = Buffer.from('ffeeddccbbaa', 'hex');

test('shared captures match pcap-parser', async () => {
  const files = classicCaptures();
  assert.ok(files.length >= 70, `expected the shared classic captures, found ${files.length}`);

  for (const file of files) {
    const expected = await parseWithReference(file);
    const actual = await collect(file);
    assert.equal(actual.length, expected.length, `${file}: packet count`);
    for (let i = 0; i < expected.length; i++) {
      const where = `${file} packet ${i}`;
      assert.deepEqual(actual[i].data, expected[i].data, `${where}: data`);
      assert.equal(actual[i].originalLength, expected[i].header.originalLength, `${where}: originalLength`);
      assert.equal(actual[i].seconds, expected[i].header.timestampSeconds, `${where}: seconds`);
      assert.equal(actual[i].nanos, expected[i].header.timestampMicroseconds * 1000, `${where}: nanos`);
      assert.equal(actual[i].interfaceId, 0, `${where}: interfaceId`);
    }
  }
});

test('packetlife capture offsets and link type', async () => {
  const packets = await collect(join(CAPTURES, 'packetlife/ipv4-smtp.cap'));
  assert.equal(packets[0].fileOffset, 24);
  // Each record is a 16-byte header plus its data.
  assert.equal(packets[1].fileOffset, 24 + 16 + packets[0].data.length);
  assert.equal(packets[0].linkType, 1);
});

test('big-endian microsecond pcap', async () => {
  const file = writeCapture(
    'be.pcap',
    pcapFile({ littleEndian: false, network: 101 }, [
      { seconds: 1700000000, fraction: 123456, data: FRAME_A },
      { seconds: 1700000001, fraction: 999999, data: FRAME_B, originalLength: 60 },
    ]),
  );
  const packets = await collect(file);
  assert.equal(packets.length, 2);
  assert.equal(packets[0].seconds, 1700000000);
  assert.equal(packets[0].nanos, 123456000);
  assert.equal(packets[0].linkType, 101);
  assert.deepEqual(packets[0].data, FRAME_A);
  assert.equal(packets[1].nanos, 999999000);
  assert.equal(packets[1].originalLength, 60);
  assert.deepEqual(packets[1].data, FRAME_B);
  assert.equal(packets[1].fileOffset, 24 + 16 + FRAME_A.length);
});

test('hand-laid big-endian bytes', async () => {
  // Global header and one record written out byte by byte, big-endian, nanosecond magic.
  const bytes = Buffer.from(
    'a1b23c4d' + '0002' + '0004' + '00000000' + '00000000' + '0000ffff' + '00000071' +
      '00000005' + '3b9ac9ff' + '00000002' + '00000004' + 'beef',
    'hex',
  );
  const packets = await collect(writeCapture('hand.pcap', bytes));
  assert.equal(packets.length, 1);
  assert.equal(packets[0].seconds, 5);
  assert.equal(packets[0].nanos, 999999999);
  assert.equal(packets[0].linkType, 113);
  assert.equal(packets[0].originalLength, 4);
  assert.deepEqual(packets[0].data, Buffer.from('beef', 'hex'));
});

test('nanosecond pcap in both byte orders', async () => {
  for (const littleEndian of [true, false]) {
    const file = writeCapture(
      `nano-${littleEndian}.pcap`,
      pcapFile({ littleEndian, nanosecond: true }, [
        { seconds: 1600000000, fraction: 123456789, data: FRAME_A },
      ]),
    );
    const packets = await collect(file);
    assert.equal(packets.length, 1);
    assert.equal(packets[0].seconds, 1600000000);
    assert.equal(packets[0].nanos, 123456789);
  }
});

test('fraction of a second or more carries', async () => {
  const file = writeCapture(
    'carry.pcap',
    pcapFile({}, [{ seconds: 10, fraction: 2500000, data: FRAME_B }]),
  );
  const packets = await collect(file);
  assert.equal(packets[0].seconds, 12);
  assert.equal(packets[0].nanos, 500000000);
});

test('link type FCS bits are masked', async () => {
  // Bits 28-31 of the network field tell FCS presence and length, not the link type.
  const file = writeCapture('fcs.pcap', pcapFile({ network: 0x10000001 }, [{ seconds: 1, fraction: 0, data: FRAME_B }]));
  const packets = await collect(file);
  assert.equal(packets[0].linkType, 1);
});

test('global header only gives no packets', async () => {
  const stats = await readCapture(writeCapture('empty.pcap', pcapFile({}, [])), () => assert.fail('no packet expected'));
  assert.equal(stats.packets, 0);
  assert.equal(stats.inputBytes, 24);
});

test('snap-truncated packets are counted', async () => {
  const file = writeCapture(
    'snap.pcap',
    pcapFile({ snapLength: 6 }, [
      { seconds: 1, fraction: 0, data: FRAME_B, originalLength: 1514 },
      { seconds: 2, fraction: 0, data: FRAME_B },
    ]),
  );
  const stats = await readCapture(file, () => {});
  assert.equal(stats.packets, 2);
  assert.equal(stats.snapTruncated, 1);
  assert.equal(stats.bytes, 12);
});

test('incl_len above snaplen but sane is accepted', async () => {
  const data = Buffer.alloc(1000, 7);
  const file = writeCapture('oversnap.pcap', pcapFile({ snapLength: 96 }, [{ seconds: 1, fraction: 0, data }]));
  const packets = await collect(file);
  assert.equal(packets.length, 1);
  assert.equal(packets[0].data.length, 1000);
});

test('incl_len above the limit is corrupt', async () => {
  const good = { seconds: 1, fraction: 0, data: FRAME_A };
  const bad = { seconds: 2, fraction: 0, data: FRAME_B, capturedLength: 262145 };
  const file = writeCapture('huge.pcap', pcapFile({ snapLength: 65535 }, [good, bad]));
  const packets: Packet[] = [];
  const err = await readError(file, packets);
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, 24 + 16 + FRAME_A.length);
  assert.equal(err.file, file);
  assert.match(err.message, /262145/);
  assert.equal(packets.length, 1);
});

test('incl_len limit follows a large snaplen', async () => {
  const data = Buffer.alloc(300000, 1);
  const file = writeCapture('bigsnap.pcap', pcapFile({ snapLength: 400000 }, [{ seconds: 1, fraction: 0, data }]));
  const packets = await collect(file);
  assert.equal(packets[0].data.length, 300000);

  const capped = writeCapture(
    'cap256.pcap',
    pcapFile({ snapLength: 0xffffffff }, [{ seconds: 1, fraction: 0, data: FRAME_B, capturedLength: 256 * 1024 * 1024 + 1 }]),
  );
  const err = await readError(capped);
  assert.equal(err.code, 'MAILTAP_ERR_CORRUPT');
  assert.equal(err.offset, 24);
});

test('record cut by end of file', async () => {
  const whole = pcapFile({}, [
    { seconds: 1, fraction: 0, data: FRAME_A },
    { seconds: 2, fraction: 0, data: FRAME_A },
  ]);
  const secondRecord = 24 + 16 + FRAME_A.length;
  // Cut inside the second record's data, then inside its header.
  for (const cut of [whole.length - 3, secondRecord + 5]) {
    const packets: Packet[] = [];
    const err = await readError(writeCapture(`cut-${cut}.pcap`, whole.subarray(0, cut)), packets);
    assert.equal(err.code, 'MAILTAP_ERR_TRUNCATED');
    assert.equal(err.offset, secondRecord);
    assert.equal(packets.length, 1);
    assert.deepEqual(packets[0].data, FRAME_A);
  }
});

test('global header cut by end of file', async () => {
  const err = await readError(writeCapture('short-header.pcap', pcapFile({}, []).subarray(0, 10)));
  assert.equal(err.code, 'MAILTAP_ERR_TRUNCATED');
  assert.equal(err.offset, 0);
});

test('unsupported major version', async () => {
  const err = await readError(writeCapture('v3.pcap', pcapFile({ major: 3 }, [])));
  assert.equal(err.code, 'MAILTAP_ERR_FORMAT');
  assert.match(err.message, /version 3\.4/);
});

test('derived Linux SLL capture matches the original', async () => {
  const expected = JSON.parse(readFileSync(join(CAPTURES, 'derived/expected.json'), 'utf8')) as {
    file: string;
    packets: string;
  }[];
  const entry = expected.find((e) => e.file === 'suricata-firewall-122-smtp-simple-session.sll.pcap');
  assert.ok(entry);

  const packets = await collect(join(CAPTURES, 'derived', entry.file));
  const original = await collect(join(CAPTURES, 'suricata/firewall-122-smtp-simple-session.pcap'));
  assert.equal(packets.length, Number(entry.packets));
  assert.equal(original.length, packets.length);

  // The SLL header is 16 bytes where Ethernet's is 14; the IP packet behind it is unchanged.
  for (let i = 0; i < packets.length; i++) {
    assert.equal(packets[i].linkType, 113, `packet ${i}: linkType`);
    assert.equal(original[i].linkType, 1, `packet ${i}: original linkType`);
    assert.deepEqual(packets[i].data.subarray(16), original[i].data.subarray(14), `packet ${i}: IP bytes`);
    assert.equal(packets[i].originalLength - 16, original[i].originalLength - 14, `packet ${i}: originalLength`);
    assert.equal(packets[i].seconds, original[i].seconds, `packet ${i}: seconds`);
    assert.equal(packets[i].nanos, original[i].nanos, `packet ${i}: nanos`);
  }
});
