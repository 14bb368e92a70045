import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

import {
  CaptureError,
  createCaptureStats,
  readCapture,
  readCaptureStream,
  type Packet,
} from '../../src/capture/index.js';

const REPO = join(import.meta.dirname, '../..');
const CAPTURES = join(REPO, '../shared/captures');
const workDir = mkdtempSync(join(tmpdir(), 'mailtap-capture-reader-'));

function allCaptures(): string[] {
  const files: string[] = [];
  for (const source of readdirSync(CAPTURES, { withFileTypes: true })) {
    if (!source.isDirectory()) continue;
    for (const name of readdirSync(join(CAPTURES, source.name))) {
      if (/\.(pcap|cap|pcapng)$/.test(name)) files.push(join(CAPTURES, source.name, name));
    }
  }
  return files.sort();
}

function writeCapture(name: string, bytes: Buffer): string {
  const path = join(workDir, name);
  writeFileSync(path, bytes);
  return path;
}

function copyPacket(p: Packet): Packet {
  return { ...p, data: Buffer.from(p.data) };
}

async function collect(file: string, chunkSize?: number): Promise<Packet[]> {
  const packets: Packet[] = [];
  await readCapture(file, (p) => packets.push(copyPacket(p)), { chunkSize });
  return packets;
}

async function readError(run: () => Promise<unknown>): Promise<CaptureError> {
  try {
    await run();
  } catch (err) {
    assert.ok(err instanceof CaptureError, `expected CaptureError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a CaptureError');
}

/** A classic pcap with `count` packets of varied sizes, little-endian, microseconds. */
function syntheticPcap(count: number): Buffer {
  const parts: Buffer[] = [Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex')];
  for (let i = 0; i < count; i++) {
    const data = Buffer.alloc(40 + ((i * 37) % 1400), i & 0xff);
    const header = Buffer.alloc(16);
    header.writeUInt32LE(1700000000 + i, 0);
    header.writeUInt32LE((i * 1009) % 1000000, 4);
    header.writeUInt32LE(data.length, 8);
    header.writeUInt32LE(data.length, 12);
    parts.push(header, data);
  }
  return Buffer.concat(parts);
}

const SUBMISSION = join(CAPTURES, 'suricata/smtp-attachment-md5.pcap');
const SUBMISSION_NG = join(CAPTURES, 'derived/suricata-smtp-attachment-md5.pcapng');

/** Reads bytes handed over as a stream of pieces of `size` bytes each. */
async function collectPieces(bytes: Buffer, size: number): Promise<Packet[]> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  const packets: Packet[] = [];
  await readCaptureStream(Readable.from(pieces), 'pieces', (p) => packets.push(copyPacket(p)));
  return packets;
}

test('records spanning chunks match', async () => {
  for (const file of allCaptures()) {
    const expected = await collect(file);
    const bytes = readFileSync(file);
    for (const size of [7, 100]) {
      assert.deepEqual(await collectPieces(bytes, size), expected, `${file} in pieces of ${size}`);
    }
  }
});

test('chunkSize option splits file reads', async () => {
  for (const file of [SUBMISSION, SUBMISSION_NG]) {
    const expected = await collect(file);
    assert.deepEqual(await collect(file, 7), expected, `${file} with chunkSize 7`);
  }
});

test('packets view the chunk without copying', async () => {
  const views: Buffer[] = [];
  await readCapture(SUBMISSION, (p) => views.push(p.data));
  assert.ok(views.length > 1);
  const first = views[0];
  for (const view of views) {
    assert.equal(view.buffer, first.buffer, 'every packet shares the chunk memory');
  }
});

test('gzip of pcap and pcapng', async () => {
  for (const file of [SUBMISSION, SUBMISSION_NG]) {
    const expected = await collect(file);
    const gz = writeCapture('plain.gz', gzipSync(readFileSync(file)));
    assert.deepEqual(await collect(gz), expected, `${file} gzip`);
    assert.deepEqual(await collect(gz, 7), expected, `${file} gzip, chunkSize 7`);
  }
});

test('multi-member gzip', async () => {
  const bytes = readFileSync(SUBMISSION_NG);
  const split = 1001;
  const file = writeCapture(
    'multi.pcapng.gz',
    Buffer.concat([gzipSync(bytes.subarray(0, split)), gzipSync(bytes.subarray(split))]),
  );
  assert.deepEqual(await collect(file), await collect(SUBMISSION_NG));
});

test('broken gzip checksum', async () => {
  const plain = syntheticPcap(50);
  const gz = gzipSync(plain);
  gz[gz.length - 6] ^= 0xff; // CRC-32 in the member trailer
  const packets: Packet[] = [];
  const stats = createCaptureStats();
  const file = writeCapture('badcrc.pcap.gz', gz);
  const err = await readError(() => readCapture(file, (p) => packets.push(p), { stats }));
  assert.equal(err.code, 'MAILTAP_ERR_GZIP');
  assert.equal(err.file, file);
  assert.equal(packets.length, 50);
  assert.equal(stats.packets, 50);
  assert.equal(err.offset, plain.length);
});

test('gzip cut short', async () => {
  const gz = gzipSync(syntheticPcap(500));
  const file = writeCapture('cut.pcap.gz', gz.subarray(0, gz.length - 100));
  const packets: Packet[] = [];
  const err = await readError(() => readCapture(file, (p) => packets.push(p)));
  assert.equal(err.code, 'MAILTAP_ERR_GZIP');
  assert.ok(packets.length > 400, `packets before the cut are delivered (${packets.length})`);
  const last = packets[packets.length - 1];
  assert.equal(err.offset, last.fileOffset + 16 + last.data.length);
});

test('garbage after the gzip header', async () => {
  const file = writeCapture('garbage.gz', Buffer.from('1f8b08000000000000ff0000ffffffffffffffff', 'hex'));
  const err = await readError(() => readCapture(file, () => {}));
  assert.equal(err.code, 'MAILTAP_ERR_GZIP');
  assert.equal(err.offset, 0);
});

test('stats are kept when reading fails', async () => {
  const plain = syntheticPcap(10);
  const file = writeCapture('cut.pcap', plain.subarray(0, plain.length - 1));
  const stats = createCaptureStats();
  const err = await readError(() => readCapture(file, () => {}, { stats }));
  assert.equal(err.code, 'MAILTAP_ERR_TRUNCATED');
  assert.equal(stats.packets, 9);
  assert.equal(stats.inputBytes, plain.length - 1);
});

test('progress reports file bytes', async () => {
  const plain = syntheticPcap(300);
  const file = writeCapture('progress.pcap', plain);
  const calls: [number, number | undefined][] = [];
  await readCapture(file, () => {}, { chunkSize: 4096, onProgress: (read, total) => calls.push([read, total]) });
  assert.ok(calls.length >= plain.length / 4096);
  assert.deepEqual(calls[calls.length - 1], [plain.length, plain.length]);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] >= calls[i - 1][0]);

  const gz = gzipSync(plain);
  const gzFile = writeCapture('progress.pcap.gz', gz);
  const gzCalls: [number, number | undefined][] = [];
  await readCapture(gzFile, () => {}, { onProgress: (read, total) => gzCalls.push([read, total]) });
  assert.deepEqual(gzCalls[gzCalls.length - 1], [gz.length, gz.length]);
});

test('event loop turns between chunks', async () => {
  let ticks = 0;
  let running = true;
  const spin = () => {
    ticks++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  let ticksAtFirst = -1;
  let ticksAtLast = -1;
  await readCapture(writeCapture('loop.pcap', syntheticPcap(10000)), () => {
    if (ticksAtFirst < 0) ticksAtFirst = ticks;
    ticksAtLast = ticks;
  }, { chunkSize: 64 * 1024 });
  running = false;
  assert.ok(ticksAtLast - ticksAtFirst >= 10, `immediates ran while reading (${ticksAtLast - ticksAtFirst})`);
});

test('stream of one-byte chunks', async () => {
  for (const file of [SUBMISSION, SUBMISSION_NG]) {
    const bytes = gzipSync(readFileSync(file));
    const chunks = Array.from(bytes, (b) => Buffer.from([b]));
    const packets: Packet[] = [];
    await readCaptureStream(Readable.from(chunks), 'test-stream', (p) => packets.push(copyPacket(p)));
    assert.deepEqual(packets, await collect(file));
  }
});

test('empty and too short input', async () => {
  const empty = await readError(() => readCapture(writeCapture('empty', Buffer.alloc(0)), () => {}));
  assert.equal(empty.code, 'MAILTAP_ERR_FORMAT');
  assert.match(empty.message, /empty file/);

  const emptyGzip = await readError(() => readCapture(writeCapture('empty.gz', gzipSync(Buffer.alloc(0))), () => {}));
  assert.equal(emptyGzip.code, 'MAILTAP_ERR_FORMAT');

  const short = await readError(() => readCapture(writeCapture('short', Buffer.from([0xd4, 0xc3, 0xb2])), () => {}));
  assert.equal(short.code, 'MAILTAP_ERR_FORMAT');
});

test('unknown magic', async () => {
  const err = await readError(() => readCapture(join(CAPTURES, 'derived/expected.json'), () => {}));
  assert.equal(err.code, 'MAILTAP_ERR_FORMAT');
  assert.equal(err.offset, 0);
});

test('missing file and directory', async () => {
  const missing = await readError(() => readCapture(join(workDir, 'no-such.pcap'), () => {}));
  assert.equal(missing.code, 'MAILTAP_ERR_OPEN');
  assert.match(missing.message, /ENOENT/);

  const directory = await readError(() => readCapture(workDir, () => {}));
  assert.equal(directory.code, 'MAILTAP_ERR_OPEN');
});

test('callback errors propagate unchanged', async () => {
  const failure = new Error('consumer failed');
  await assert.rejects(
    readCapture(SUBMISSION, () => {
      throw failure;
    }),
    (err) => err === failure,
  );
});

interface ChildResult {
  packets: [number, number, string, number][];
  progress: [number, number | null][];
  stats?: { packets: number; inputBytes: number };
  error?: { code: string; offset: number; file: string };
}

/** Runs readCapture('-') in a child node process with `input` on its stdin. */
function readThroughStdin(input: Buffer): Promise<ChildResult> {
  const moduleUrl = pathToFileURL(join(REPO, 'src/capture/index.ts')).href;
  const script = writeCapture(
    'stdin-reader.mts',
    Buffer.from(`
import { readCapture } from ${JSON.stringify(moduleUrl)};
const out = { packets: [], progress: [] };
try {
  out.stats = await readCapture('-', (p) => out.packets.push([p.seconds, p.nanos, p.data.toString('hex'), p.fileOffset]), {
    onProgress: (read, total) => out.progress.push([read, total ?? null]),
  });
} catch (err) {
  out.error = { code: err.code, offset: err.offset, file: err.file };
}
process.stdout.write(JSON.stringify(out));
`),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
    const output: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`stdin reader exited with ${code}`));
      else resolve(JSON.parse(Buffer.concat(output).toString('utf8')) as ChildResult);
    });
    child.stdin.end(input);
  });
}

test('stdin through a child process', async () => {
  const expected = (await collect(SUBMISSION_NG)).map((p) => [p.seconds, p.nanos, p.data.toString('hex'), p.fileOffset]);

  const plain = await readThroughStdin(readFileSync(SUBMISSION_NG));
  assert.equal(plain.error, undefined);
  assert.deepEqual(plain.packets, expected);
  assert.equal(plain.stats?.packets, expected.length);
  assert.ok(plain.progress.length > 0);
  assert.equal(plain.progress[plain.progress.length - 1][1], null, 'stdin has no total size');

  const gzipped = await readThroughStdin(gzipSync(readFileSync(SUBMISSION_NG)));
  assert.deepEqual(gzipped.packets, expected);

  const bytes = readFileSync(SUBMISSION);
  const cut = await readThroughStdin(bytes.subarray(0, bytes.length - 10));
  assert.equal(cut.error?.code, 'MAILTAP_ERR_TRUNCATED');
  assert.equal(cut.error?.file, 'stdin');
  const original = await collect(SUBMISSION);
  assert.equal(cut.packets.length, original.length - 1);
  assert.equal(cut.error?.offset, original[original.length - 1].fileOffset);
});
