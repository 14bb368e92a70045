import { connect, type Socket } from 'node:net';
import type { ClamavAddress } from '../config/scan-schema.js';
import { ScanFailure, type ClamavVerdict } from './types.js';

/** Bytes per INSTREAM chunk. clamd reads chunks of any size, up to StreamMaxLength in total. */
const CHUNK_BYTES = 64 * 1024;
/** Maximum reply size. clamd replies with one line per match, so more than this is not a reply. */
const MAX_REPLY_BYTES = 64 * 1024;
const INSTREAM = Buffer.from('zINSTREAM\0', 'latin1');
const END_OF_STREAM = Buffer.alloc(4);

/** Returns the address for log lines: the socket path or host:port. */
export function clamavAddressText(address: ClamavAddress): string {
  if (address.kind === 'unix') return address.path;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Parses clamd's reply to INSTREAM: "stream: OK", "stream: NAME FOUND" (one per match with
 * AllMatchScans), or "... ERROR". Items end in NUL (z-commands) or newline.
 */
export function parseClamavReply(reply: string): ClamavVerdict | ScanFailure {
  const signatures: string[] = [];
  let ok = false;
  for (const item of reply.split(/[\0\n]/)) {
    const line = item.trim();
    if (line.length === 0) continue;
    if (line.endsWith(' ERROR')) return new ScanFailure('error', `clamd replied: ${line}`);
    const text = line.startsWith('stream: ') ? line.slice(8) : line;
    if (text.endsWith(' FOUND')) signatures.push(text.slice(0, -6));
    else if (text === 'OK') ok = true;
    else return new ScanFailure('error', `unexpected clamd reply: ${line.slice(0, 200)}`);
  }
  if (!ok && signatures.length === 0) return new ScanFailure('error', 'clamd closed the connection without a verdict');
  return { signatures };
}

/**
 * A client of clamd's INSTREAM command: one connection per message, the message in
 * length-prefixed chunks (4-byte big-endian length), then a zero length.
 */
export class ClamavClient {
  readonly description: string;

  constructor(
    private readonly address: ClamavAddress,
    private readonly timeoutMs: number,
  ) {
    this.description = `clamd at ${clamavAddressText(address)}`;
  }

  /** Scans one message. Rejects with ScanFailure only. */
  scan(message: Buffer): Promise<ClamavVerdict> {
    return new Promise((resolve, reject) => {
      const socket: Socket =
        this.address.kind === 'unix'
          ? connect({ path: this.address.path })
          : connect({ host: this.address.host, port: this.address.port });
      const replies: Buffer[] = [];
      let replyBytes = 0;
      let settled = false;
      const finish = (outcome: ClamavVerdict | ScanFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (outcome instanceof ScanFailure) reject(outcome);
        else resolve(outcome);
      };
      const timer = setTimeout(
        () => finish(new ScanFailure('timeout', `${this.description} did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      socket.on('connect', () => {
        socket.write(INSTREAM);
        for (let pos = 0; pos < message.length; pos += CHUNK_BYTES) {
          const chunk = message.subarray(pos, pos + CHUNK_BYTES);
          const header = Buffer.allocUnsafe(4);
          header.writeUInt32BE(chunk.length, 0);
          socket.write(header);
          socket.write(chunk);
        }
        socket.write(END_OF_STREAM);
      });
      socket.on('data', (data: Buffer) => {
        replies.push(data);
        replyBytes += data.length;
        if (replyBytes > MAX_REPLY_BYTES) finish(new ScanFailure('error', `${this.description} sent an oversized reply`));
        // A reply is complete at its terminating NUL, and clamd then closes the connection too.
        // NOTE: with AllMatchScans, a NUL-terminated match that ends one read stops the reply
        // there, so later matches of a reply split across reads are lost.
        else if (data[data.length - 1] === 0) finish(parseClamavReply(Buffer.concat(replies).toString('utf8')));
      });
      socket.on('end', () => finish(parseClamavReply(Buffer.concat(replies).toString('utf8'))));
      socket.on('error', (error: NodeJS.ErrnoException) => {
        // clamd sends "INSTREAM size limit exceeded. ERROR" and closes while the rest is
        // still being written. The reply counts, not the broken pipe.
        if (replyBytes > 0) {
          finish(parseClamavReply(Buffer.concat(replies).toString('utf8')));
          return;
        }
        // A refused connection, a missing socket or a reset before any reply: clamd is not running.
        finish(new ScanFailure('unavailable', `cannot reach ${this.description} (${error.code ?? error.message})`));
      });
    });
  }
}
