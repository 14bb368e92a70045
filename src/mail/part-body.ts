import { createHash, type Hash } from 'node:crypto';
import type { Transform } from 'node:stream';
import { Decoder as Base64Decoder } from 'libbase64';
import { Decoder as QuotedPrintableDecoder } from 'libqp';
import type { MimePart } from './types.js';

/** Transfer encodings that need no decoding (RFC 2045 section 6.1). */
const IDENTITY_ENCODINGS = new Set(['', '7bit', '8bit', 'binary']);

/** Returns true when the body of a part with this Content-Transfer-Encoding can be decoded. */
export function isKnownTransferEncoding(encoding: string): boolean {
  return IDENTITY_ENCODINGS.has(encoding) || encoding === 'base64' || encoding === 'quoted-printable';
}

/**
 * Transfer-decodes the body of one leaf part and streams it into SHA-256, SHA-1 and MD5,
 * storing the decoded size and hashes on the part. base64 and quoted-printable go through the
 * libbase64 and libqp Decoder streams, and any other encoding is hashed as it is.
 */
export class LeafBody {
  // MD5 and SHA-1 beside SHA-256 because Zeek's files.log, Suricata's fileinfo and most threat
  // intelligence feeds still key files by them.
  private readonly hash: Hash = createHash('sha256');
  private readonly md5: Hash = createHash('md5');
  private readonly sha1: Hash = createHash('sha1');
  private readonly decoder: Transform | undefined;
  private size = 0;
  private finished = false;

  /** onDone runs once, after the last decoded byte was counted. */
  constructor(
    private readonly part: MimePart,
    encoding: string,
    private readonly onDone: (error?: Error) => void,
  ) {
    if (encoding === 'base64') {
      this.decoder = new Base64Decoder();
    } else if (encoding === 'quoted-printable') {
      this.decoder = new QuotedPrintableDecoder();
    }
    if (this.decoder !== undefined) {
      // With a 'data' listener attached both decoders push synchronously from write(), so
      // nothing queues up inside the stream. 'end' follows the flush of the last bytes.
      this.decoder.on('data', (decoded: Buffer) => this.update(decoded));
      this.decoder.on('end', () => this.finish());
      this.decoder.on('error', (error: Error) => this.finish(error));
    }
  }

  /** Takes encoded body bytes. The view is not kept after return. */
  write(encoded: Buffer): void {
    if (encoded.length === 0 || this.finished) {
      return;
    }
    if (this.decoder === undefined) {
      this.update(encoded);
      return;
    }
    // A stream that queued a write would keep the view, which the caller may reuse.
    const input = this.decoder.writableLength === 0 ? encoded : Buffer.from(encoded);
    this.decoder.write(input);
  }

  end(): void {
    if (this.decoder === undefined) {
      this.finish();
    } else if (!this.finished) {
      this.decoder.end();
    }
  }

  private update(decoded: Buffer): void {
    this.size += decoded.length;
    this.hash.update(decoded);
    this.md5.update(decoded);
    this.sha1.update(decoded);
  }

  private finish(error?: Error): void {
    if (this.finished) {
      return;
    }
    this.finished = true;
    this.part.size = this.size;
    this.part.sha256 = this.hash.digest('hex');
    this.part.md5 = this.md5.digest('hex');
    this.part.sha1 = this.sha1.digest('hex');
    this.onDone(error);
  }
}
