import { createHash, type Hash } from 'node:crypto';
import type { Transform } from 'node:stream';
import { Decoder as QuotedPrintableDecoder } from 'libqp';
import type { MimePart } from './types.js';

/** Transfer encodings that need no decoding (RFC 2045 section 6.1). */
const IDENTITY_ENCODINGS = new Set(['', '7bit', '8bit', 'binary']);

/** Returns true when the body of a part with this Content-Transfer-Encoding can be decoded. */
export function isKnownTransferEncoding(encoding: string): boolean {
  return IDENTITY_ENCODINGS.has(encoding) || encoding === 'base64' || encoding === 'quoted-printable';
}

// Digests of zero bytes, so that a part with an empty body needs no Hash objects.
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const EMPTY_SHA1 = createHash('sha1').digest('hex');
const EMPTY_MD5 = createHash('md5').digest('hex');

/** base64 value of each byte; PAD for "=", SKIP for any byte outside the alphabet. */
const PAD = 64;
const SKIP = 255;
const BASE64_VALUES = new Uint8Array(256).fill(SKIP);
for (let i = 0; i < 64; i++) {
  BASE64_VALUES['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
}
BASE64_VALUES[0x3d] = PAD;

/** Input bytes decoded per pass into the shared output buffer (3 output bytes per 4 input). */
const BASE64_INPUT_STEP = 64 * 1024;
// Shared by all decoders: write() hands its content to the hashes before it returns, and the
// hashes copy what they need, so one buffer serves every part.
const base64Output = Buffer.allocUnsafe((BASE64_INPUT_STEP / 4) * 3 + 3);

/**
 * Incremental base64 decoder with the output of libbase64's Decoder stream, without a stream
 * and without building strings. Bytes outside the base64 alphabet are skipped. "=" ends a
 * segment: the characters of an unfinished quartet before it give the bytes they complete (two
 * characters one byte, three characters two bytes, one character none), and decoding starts a
 * new quartet after it. The end of the input ends a segment the same way.
 */
export class Base64Decoder {
  /** Bits of the characters of the current quartet, 6 per character. */
  private bits = 0;
  /** Characters of the current quartet so far, 0 to 3. */
  private count = 0;

  /** Decodes input and passes the bytes to emit, which must not keep the view. */
  write(input: Buffer, emit: (decoded: Buffer) => void): void {
    for (let start = 0; start < input.length; start += BASE64_INPUT_STEP) {
      const end = Math.min(input.length, start + BASE64_INPUT_STEP);
      const length = this.decodeRange(input, start, end);
      if (length > 0) {
        emit(base64Output.subarray(0, length));
      }
    }
  }

  /** Decodes an unfinished quartet at the end of the input. */
  end(emit: (decoded: Buffer) => void): void {
    const length = this.endSegment(0);
    if (length > 0) {
      emit(base64Output.subarray(0, length));
    }
  }

  private decodeRange(input: Buffer, start: number, end: number): number {
    const out = base64Output;
    let bits = this.bits;
    let count = this.count;
    let length = 0;
    for (let i = start; i < end; i++) {
      const value = BASE64_VALUES[input[i]];
      if (value < 64) {
        bits = (bits << 6) | value;
        if (++count === 4) {
          out[length++] = bits >>> 16;
          out[length++] = (bits >>> 8) & 0xff;
          out[length++] = bits & 0xff;
          bits = 0;
          count = 0;
        }
      } else if (value === PAD) {
        this.bits = bits;
        this.count = count;
        length = this.endSegment(length);
        bits = 0;
        count = 0;
      }
    }
    this.bits = bits;
    this.count = count;
    return length;
  }

  /** Writes the bytes an unfinished quartet completes at offset and starts a new quartet. */
  private endSegment(offset: number): number {
    const { bits, count } = this;
    this.bits = 0;
    this.count = 0;
    if (count === 2) {
      base64Output[offset] = (bits >>> 4) & 0xff;
      return offset + 1;
    }
    if (count === 3) {
      base64Output[offset] = (bits >>> 10) & 0xff;
      base64Output[offset + 1] = (bits >>> 2) & 0xff;
      return offset + 2;
    }
    return offset;
  }
}

/**
 * Transfer-decodes the body of one leaf part and streams it into SHA-256, SHA-1 and MD5,
 * storing the decoded size and hashes on the part. base64 goes through Base64Decoder,
 * quoted-printable through libqp's Decoder stream, and any other encoding is hashed as it is.
 * The Hash objects are made on the first decoded byte.
 */
export class LeafBody {
  // MD5 and SHA-1 beside SHA-256 because Zeek's files.log, Suricata's fileinfo and most threat
  // intelligence feeds still key files by them.
  private hash: Hash | undefined;
  private md5: Hash | undefined;
  private sha1: Hash | undefined;
  private readonly base64: Base64Decoder | undefined;
  private readonly decoder: Transform | undefined;
  private readonly emit = (decoded: Buffer): void => this.update(decoded);
  private size = 0;
  private finished = false;

  /** onDone runs once, after the last decoded byte was counted. */
  constructor(
    private readonly part: MimePart,
    encoding: string,
    private readonly onDone: (error?: Error) => void,
  ) {
    if (encoding === 'base64') {
      this.base64 = new Base64Decoder();
    } else if (encoding === 'quoted-printable') {
      this.decoder = new QuotedPrintableDecoder();
      // With a 'data' listener attached the decoder pushes synchronously from write(), so
      // nothing queues up inside the stream. 'end' follows the flush of the last bytes.
      this.decoder.on('data', this.emit);
      this.decoder.on('end', () => this.finish());
      this.decoder.on('error', (error: Error) => this.finish(error));
    }
  }

  /** Takes encoded body bytes. The view is not kept after return. */
  write(encoded: Buffer): void {
    if (encoded.length === 0 || this.finished) {
      return;
    }
    if (this.base64 !== undefined) {
      this.base64.write(encoded, this.emit);
    } else if (this.decoder !== undefined) {
      // A stream that queued a write would keep the view, which the caller may reuse.
      const input = this.decoder.writableLength === 0 ? encoded : Buffer.from(encoded);
      this.decoder.write(input);
    } else {
      this.update(encoded);
    }
  }

  end(): void {
    if (this.finished) {
      return;
    }
    if (this.decoder !== undefined) {
      this.decoder.end();
      return;
    }
    if (this.base64 !== undefined) {
      this.base64.end(this.emit);
      // The libbase64 stream this replaces reported its end on the next tick, and the order in
      // which results settle decides the order of output records, so the tick is kept.
      process.nextTick(() => this.finish());
      return;
    }
    this.finish();
  }

  private update(decoded: Buffer): void {
    if (decoded.length === 0) {
      return;
    }
    if (this.hash === undefined) {
      this.hash = createHash('sha256');
      this.md5 = createHash('md5');
      this.sha1 = createHash('sha1');
    }
    this.size += decoded.length;
    this.hash.update(decoded);
    this.md5!.update(decoded);
    this.sha1!.update(decoded);
  }

  private finish(error?: Error): void {
    if (this.finished) {
      return;
    }
    this.finished = true;
    this.part.size = this.size;
    if (this.hash === undefined) {
      this.part.sha256 = EMPTY_SHA256;
      this.part.md5 = EMPTY_MD5;
      this.part.sha1 = EMPTY_SHA1;
    } else {
      this.part.sha256 = this.hash.digest('hex');
      this.part.md5 = this.md5!.digest('hex');
      this.part.sha1 = this.sha1!.digest('hex');
    }
    this.onDone(error);
  }
}
