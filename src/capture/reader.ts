import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';

import { isPcapMagic, PcapParser } from './pcap.js';
import { isPcapngMagic, PcapngParser } from './pcapng.js';
import { CaptureError, type CaptureStats, type Packet, type ProgressCallback } from './types.js';

/** Default size of one read from the input, in bytes. */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/**
 * Input bytes processed between two turns of the event loop. Tiny chunks would otherwise
 * spend more time in setImmediate than in parsing.
 */
const YIELD_INTERVAL_BYTES = 256 * 1024;

/** zlib rejects output chunk sizes below 64 bytes. */
const MIN_GZIP_CHUNK_SIZE = 64;

export interface ReadCaptureOptions {
  /** Counters to update in place; a fresh set is made when absent. */
  stats?: CaptureStats;
  /** Called after each chunk with the input bytes read so far (compressed bytes for gzip). */
  onProgress?: ProgressCallback;
  /** Bytes per read from the input; default DEFAULT_CHUNK_SIZE. */
  chunkSize?: number;
  /**
   * Called between chunks. A returned promise pauses reading until it settles, so a consumer
   * whose output is full (a slow pipe) keeps memory bounded. Reading stops when it resolves to
   * false.
   */
  waitForConsumer?: () => Promise<boolean> | undefined;
}

/**
 * A format parser that the chunk loop drives. Both methods take the buffer's file offset
 * (`base`, the input offset of buf[0]) so that packets and errors name absolute offsets.
 */
export interface RecordParser {
  /**
   * Returns the total length of the record at buf[pos], reading only buf[pos..pos+avail).
   * When avail is too short to hold the length field it returns the header size it needs
   * (a value larger than avail). Throws CaptureError for an impossible length.
   */
  recordLength(buf: Buffer, pos: number, avail: number, base: number): number;
  /**
   * Delivers every complete record in buf[pos..end) and returns the position of the first
   * record that is not complete (end when none is left).
   */
  parse(buf: Buffer, pos: number, end: number, base: number): number;
}

export function createCaptureStats(): CaptureStats {
  return { packets: 0, bytes: 0, inputBytes: 0, snapTruncated: 0, skippedBlocks: 0, dropped: 0 };
}

/**
 * Splits a stream of chunks into records. Records that lie inside one chunk are parsed in
 * place. A record that spans chunks is copied into a buffer of its own, which the packet's
 * data then views. No buffer is reused, so a view stays valid after the callback.
 */
class ChunkSplitter {
  /** Input offset of the next byte that feed() will receive. */
  offset = 0;
  private carry: Buffer | null = null;
  private carryLength = 0;
  private carryOffset = 0;

  constructor(
    private readonly parser: RecordParser,
    private readonly file: string,
  ) {}

  feed(chunk: Buffer): void {
    const chunkOffset = this.offset;
    this.offset += chunk.length;

    let pos = 0;
    if (this.carryLength > 0) {
      pos = this.fillCarry(chunk);
      if (this.carryLength > 0) return;
    }

    const stop = this.parser.parse(chunk, pos, chunk.length, chunkOffset);
    if (stop < chunk.length) {
      const rest = chunk.length - stop;
      const need = this.parser.recordLength(chunk, stop, rest, chunkOffset);
      this.carry = Buffer.allocUnsafe(Math.max(need, rest));
      chunk.copy(this.carry, 0, stop);
      this.carryLength = rest;
      this.carryOffset = chunkOffset + stop;
    }
  }

  /** Input offset of the record that is not yet complete, or of the end of input. */
  pendingOffset(): number {
    return this.carryLength > 0 ? this.carryOffset : this.offset;
  }

  /** Throws when the input ended inside a record. */
  finish(): void {
    if (this.carryLength > 0) {
      throw new CaptureError(
        'MAILTAP_ERR_TRUNCATED',
        this.file,
        this.carryOffset,
        `record cut by end of file (${this.carryLength} bytes present)`,
      );
    }
  }

  /** Moves bytes from the front of chunk into the carry buffer and returns how many it used. */
  private fillCarry(chunk: Buffer): number {
    let pos = 0;
    for (;;) {
      const carry = this.carry as Buffer;
      const need = this.parser.recordLength(carry, 0, this.carryLength, this.carryOffset);
      if (need <= this.carryLength) {
        this.parser.parse(carry, 0, this.carryLength, this.carryOffset);
        this.carry = null;
        this.carryLength = 0;
        return pos;
      }
      if (pos === chunk.length) return pos;

      if (need > carry.length) {
        const grown = Buffer.allocUnsafe(need);
        carry.copy(grown, 0, 0, this.carryLength);
        this.carry = grown;
      }
      const take = Math.min(need - this.carryLength, chunk.length - pos);
      chunk.copy(this.carry as Buffer, this.carryLength, pos, pos + take);
      this.carryLength += take;
      pos += take;
    }
  }
}

/** Chunks of a byte stream, counted, with read errors turned into CaptureError. */
class RawSource {
  bytesRead = 0;
  readonly chunks: AsyncGenerator<Buffer>;

  constructor(input: Readable, file: string) {
    this.chunks = this.read(input, file);
  }

  private async *read(input: Readable, file: string): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of input) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        this.bytesRead += bytes.length;
        yield bytes;
      }
    } catch (err) {
      if (err instanceof CaptureError) throw err;
      const reason = `read failed (${describe(err)})`;
      throw new CaptureError('MAILTAP_ERR_OPEN', file, this.bytesRead, reason);
    }
  }
}

/** Reads chunks until `count` bytes are there or the input ends, and returns them joined. */
async function peek(chunks: AsyncGenerator<Buffer>, count: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < count) {
    const next = await chunks.next();
    if (next.done) break;
    parts.push(next.value);
    length += next.value.length;
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts, length);
}

async function* prepend(first: Buffer, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.length > 0) yield first;
  yield* rest;
}

/**
 * Output chunk size of the decompressor.
 * NOTE: on a zlib error the output of the failing call is lost, so up to this many
 * decompressed bytes before a corrupt spot inside a member go undelivered.
 */
const GZIP_OUTPUT_CHUNK_SIZE = 256 * 1024;

/** Size of the gzip member trailer (CRC-32 and ISIZE). */
const GZIP_TRAILER_LENGTH = 8;

/** Decompressed chunks queued before the decompressor is paused. */
const GZIP_MAX_QUEUED_CHUNKS = 4;

/**
 * Decompresses a gzip stream, including several members one after the other. zlib errors
 * become MAILTAP_ERR_GZIP at the offset of the record that was being read.
 *
 * Output is collected from 'data' events rather than the stream's async iterator, because
 * the iterator drops chunks still buffered when the stream fails, and those chunks hold the
 * packets before the corrupt spot.
 */
async function* gunzipChunks(
  compressed: AsyncGenerator<Buffer>,
  chunkSize: number,
  file: string,
  pendingOffset: () => number,
): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({
    chunkSize: Math.max(MIN_GZIP_CHUNK_SIZE, Math.min(chunkSize, GZIP_OUTPUT_CHUNK_SIZE)),
  });
  const queue: Buffer[] = [];
  let ended = false;
  let zlibError: unknown = null;
  let sourceError: unknown = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const resolve = wake;
    wake = null;
    if (resolve) resolve();
  };

  gunzip.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    if (queue.length >= GZIP_MAX_QUEUED_CHUNKS) gunzip.pause();
    notify();
  });
  gunzip.on('end', () => {
    ended = true;
    notify();
  });
  gunzip.on('error', (err) => {
    if (zlibError === null) zlibError = err;
    notify();
  });

  const write = async (chunk: Buffer) => {
    if (gunzip.destroyed || gunzip.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        gunzip.off('drain', done);
        gunzip.off('close', done);
        resolve();
      };
      gunzip.on('drain', done);
      gunzip.on('close', done);
    });
  };

  // Each chunk is written once the next one has arrived. The last one is written in two
  // parts, so that a bad CRC in the final trailer fails a call of its own and the output of
  // the call before it is delivered.
  const pump = (async () => {
    try {
      let previous: Buffer | null = null;
      for await (const chunk of compressed) {
        if (previous) await write(previous);
        previous = chunk;
      }
      if (previous) {
        const split = Math.max(0, previous.length - GZIP_TRAILER_LENGTH);
        await write(previous.subarray(0, split));
        await write(previous.subarray(split));
      }
      if (!gunzip.destroyed) gunzip.end();
    } catch (err) {
      sourceError = err;
      notify();
    }
  })();

  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        if (queue.length === 0 && gunzip.isPaused()) gunzip.resume();
        yield chunk;
        continue;
      }
      if (sourceError !== null) throw sourceError;
      if (zlibError !== null) {
        throw new CaptureError(
          'MAILTAP_ERR_GZIP',
          file,
          pendingOffset(),
          `gzip stream is invalid (${describe(zlibError)})`,
        );
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    // The pump ends by itself once the decompressor and the input are destroyed. Awaiting
    // it here could hang on a stdin that sends no more data.
    gunzip.destroy();
    void pump;
  }
}

function checkChunkSize(chunkSize: number | undefined): number {
  if (chunkSize === undefined) return DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`invalid chunkSize ${chunkSize}: expected a positive integer of bytes`);
  }
  return chunkSize;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

function chooseParser(
  head: Buffer,
  file: string,
  onPacket: (p: Packet) => void,
  stats: CaptureStats,
): RecordParser {
  if (head.length === 0) throw new CaptureError('MAILTAP_ERR_FORMAT', file, 0, 'empty file');
  if (isPcapMagic(head)) return new PcapParser(file, onPacket, stats);
  if (isPcapngMagic(head)) return new PcapngParser(file, onPacket, stats);
  const magic = head.subarray(0, 4).toString('hex');
  throw new CaptureError(
    'MAILTAP_ERR_FORMAT',
    file,
    0,
    `unknown file format (first bytes 0x${magic}); expected pcap, pcapng or gzip`,
  );
}

/**
 * Reads a capture from a byte stream, for stdin and for tests, and destroys the stream when
 * done. `name` is used in errors and totalBytes in progress reports. See readCapture for the
 * rest of the contract.
 */
export async function readCaptureStream(
  input: Readable,
  name: string,
  onPacket: (p: Packet) => void,
  options: ReadCaptureOptions = {},
  totalBytes?: number,
): Promise<CaptureStats> {
  const stats = options.stats ?? createCaptureStats();
  const chunkSize = checkChunkSize(options.chunkSize);
  const onProgress = options.onProgress;
  const raw = new RawSource(input, name);

  try {
    const start = await peek(raw.chunks, 2);
    const gzipped = start.length >= 2 && start[0] === 0x1f && start[1] === 0x8b;

    let splitter: ChunkSplitter | null = null;
    const pendingOffset = () => (splitter ? splitter.pendingOffset() : 0);
    const chunks = gzipped
      ? gunzipChunks(prepend(start, raw.chunks), chunkSize, name, pendingOffset)
      : prepend(start, raw.chunks);

    const head = await peek(chunks, 4);
    if (head.length > 0 && head.length < 4) {
      const reason = `file too short for a capture header (${head.length} bytes)`;
      throw new CaptureError('MAILTAP_ERR_FORMAT', name, 0, reason);
    }
    splitter = new ChunkSplitter(chooseParser(head, name, onPacket, stats), name);

    let chunk: Buffer | null = head.length > 0 ? head : null;
    let bytesSinceYield = 0;
    let stopped = false;
    // A stats object shared across files keeps counting from where the previous file left it.
    const inputBytesBefore = stats.inputBytes;
    while (chunk !== null) {
      splitter.feed(chunk);
      stats.inputBytes = inputBytesBefore + splitter.offset;
      if (onProgress) onProgress(raw.bytesRead, totalBytes);
      bytesSinceYield += chunk.length;
      if (bytesSinceYield >= YIELD_INTERVAL_BYTES) {
        bytesSinceYield = 0;
        await yieldToEventLoop();
      }
      const wait = options.waitForConsumer?.();
      if (wait !== undefined && !(await wait)) {
        stopped = true;
        break;
      }

      const next = await chunks.next();
      chunk = next.done ? null : next.value;
    }
    // A stop requested by the consumer is no truncation, even in the middle of a record.
    if (!stopped) splitter.finish();
    return stats;
  } finally {
    input.destroy();
    raw.chunks.return(undefined).catch(() => {});
  }
}

/**
 * Reads a pcap or pcapng file, plain or gzip-compressed, and calls onPacket for each packet
 * in file order. The format is taken from the magic bytes. `path` "-" reads stdin.
 *
 * Throws CaptureError after delivering every packet before the bad point: MAILTAP_ERR_OPEN,
 * MAILTAP_ERR_FORMAT, MAILTAP_ERR_TRUNCATED, MAILTAP_ERR_CORRUPT or MAILTAP_ERR_GZIP. For a
 * gzip stream corrupt inside a member, packets in the last GZIP_OUTPUT_CHUNK_SIZE bytes
 * before the corrupt spot may be missing. Errors thrown by onPacket propagate unchanged.
 */
export async function readCapture(
  path: string,
  onPacket: (p: Packet) => void,
  options: ReadCaptureOptions = {},
): Promise<CaptureStats> {
  if (path === '-') return readCaptureStream(process.stdin, 'stdin', onPacket, options);

  const chunkSize = checkChunkSize(options.chunkSize);
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new CaptureError('MAILTAP_ERR_OPEN', path, 0, `cannot open file (${describe(err)})`);
  }

  let totalBytes: number | undefined;
  try {
    const info = await handle.stat();
    if (info.isDirectory()) {
      throw new CaptureError('MAILTAP_ERR_OPEN', path, 0, 'cannot read a directory');
    }
    totalBytes = info.isFile() ? info.size : undefined;
  } catch (err) {
    await handle.close();
    if (err instanceof CaptureError) throw err;
    throw new CaptureError('MAILTAP_ERR_OPEN', path, 0, `cannot stat file (${describe(err)})`);
  }

  const stream = handle.createReadStream({ highWaterMark: chunkSize });
  try {
    return await readCaptureStream(stream, path, onPacket, options, totalBytes);
  } finally {
    stream.destroy();
  }
}
