/**
 * Runs the MIME stage in a worker thread (message-worker.ts). The MIME stage took about 60 % of
 * the CPU time of `mailtap read` on the 30,000-session benchmark capture (Node 20.20, 2 cores),
 * so with a second core free the run took 4.4-4.8 s instead of 5.9-6.3 s. The price is a second
 * V8 heap: peak RSS about 50 MB higher. On a machine without an idle core nothing is gained.
 *
 * Message bytes travel in batches: ArrayBuffers of records, each a 9-byte header (type, message
 * id as uint32 LE, length as uint32 LE) followed by `length` bytes for RECORD_DATA. A batch is
 * sent when it is full and SEND_DELAY_MS after its first record, and its ArrayBuffer is
 * transferred, not copied. (Sent on every turn of the event loop, live capture posted a few
 * hundred bytes at a time, and postMessage took an eighth of the main thread at 60,000
 * packets/s.) Results come back as arrays of { id, info }.
 *
 * Flow control: a shared counter contains the bytes sent but not yet parsed. Past
 * MAX_IN_FLIGHT_BYTES the sender blocks in Atomics.wait until the worker catches up, so memory
 * stays bounded when the worker is slower than the packet stages.
 */
import { Worker } from 'node:worker_threads';

import type { MailLimits, MessageInfo } from './mail/types.js';

export const RECORD_DATA = 1;
export const RECORD_END_COMPLETE = 2;
export const RECORD_END_INCOMPLETE = 3;
export const RECORD_HEADER_LENGTH = 9;

/** Size of one batch buffer. */
const BATCH_BYTES = 256 * 1024;
/** Milliseconds a batch waits for more records before it is sent. */
const SEND_DELAY_MS = 2;
/** Bytes sent to the worker and not yet parsed before the sender waits. */
export const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
/** Milliseconds the sender waits for progress before it sends anyway and counts a stall. */
const STALL_TIMEOUT_MS = 10_000;

export interface MessageWorkerData {
  limits: Partial<MailLimits> | undefined;
  /** SharedArrayBuffer with one Int32: bytes in flight. */
  inFlight: SharedArrayBuffer;
}

export interface MessageResult {
  id: number;
  info: MessageInfo;
}

/**
 * Starts message-worker.js next to this file. Run from source (the tests run src/ through tsx),
 * the worker is message-worker.ts, and a worker thread does not inherit tsx's loader, so it
 * registers tsx itself before it loads the file.
 */
function startWorker(data: MessageWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./message-worker.js', import.meta.url), { workerData: data });
  }
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./message-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: data });
}

/**
 * The main-thread side of the message worker. write() and end() take the bytes of one message
 * at a time, by id; end() returns the promise of its MessageInfo. A message whose worker failed
 * resolves to undefined, as if it had not been parsed.
 */
export class MessageWorkerClient {
  /** Times the sender gave up waiting for the worker; non-zero means the worker stalled. */
  stalls = 0;

  private readonly worker: Worker;
  private readonly inFlight: Int32Array;
  private readonly pending = new Map<number, (info: MessageInfo | undefined) => void>();
  private nextId = 1;
  private batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
  private batchLength = 0;
  private sendScheduled = false;
  /** True once the worker stopped: its outstanding messages resolved to undefined. */
  failed = false;

  constructor(limits: Partial<MailLimits> | undefined) {
    const inFlight = new SharedArrayBuffer(4);
    this.inFlight = new Int32Array(inFlight);
    const data: MessageWorkerData = { limits, inFlight };
    this.worker = startWorker(data);
    this.worker.on('message', (results: MessageResult[]) => this.receive(results));
    this.worker.on('error', () => this.fail());
    this.worker.on('exit', () => this.fail());
  }

  /** Returns a new message id. */
  open(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  write(id: number, chunk: Buffer): void {
    if (this.failed) return;
    let pos = 0;
    while (pos < chunk.length) {
      if (BATCH_BYTES - this.batchLength < RECORD_HEADER_LENGTH + 1) this.send();
      const take = Math.min(chunk.length - pos, BATCH_BYTES - this.batchLength - RECORD_HEADER_LENGTH);
      this.writeHeader(RECORD_DATA, id, take);
      this.batch.set(chunk.subarray(pos, pos + take), this.batchLength);
      this.batchLength += take;
      pos += take;
    }
    this.scheduleSend();
  }

  /** Ends message `id` and returns its MessageInfo, or undefined when the worker failed. */
  end(id: number, complete: boolean): Promise<MessageInfo | undefined> {
    if (this.failed) return Promise.resolve(undefined);
    if (BATCH_BYTES - this.batchLength < RECORD_HEADER_LENGTH) this.send();
    this.writeHeader(complete ? RECORD_END_COMPLETE : RECORD_END_INCOMPLETE, id, 0);
    this.scheduleSend();
    return new Promise((resolve) => this.pending.set(id, resolve));
  }

  /** Sends the current batch now, so that every ended message gets its result. */
  flush(): void {
    if (this.batchLength > 0) this.send();
  }

  private writeHeader(type: number, id: number, length: number): void {
    const batch = this.batch;
    const at = this.batchLength;
    batch[at] = type;
    batch.writeUInt32LE(id, at + 1);
    batch.writeUInt32LE(length, at + 5);
    this.batchLength = at + RECORD_HEADER_LENGTH;
  }

  private scheduleSend(): void {
    if (this.sendScheduled) return;
    this.sendScheduled = true;
    setTimeout(() => {
      this.sendScheduled = false;
      this.flush();
    }, SEND_DELAY_MS);
  }

  private send(): void {
    const length = this.batchLength;
    const buffer = this.batch.buffer.slice(0, length) as ArrayBuffer;
    this.batchLength = 0;
    if (this.failed) return;
    this.waitForRoom(length);
    Atomics.add(this.inFlight, 0, length);
    this.worker.postMessage(buffer, [buffer]);
  }

  /** Blocks while the worker has more than MAX_IN_FLIGHT_BYTES to parse. */
  private waitForRoom(length: number): void {
    const deadline = Date.now() + STALL_TIMEOUT_MS;
    for (;;) {
      const current = Atomics.load(this.inFlight, 0);
      if (current + length <= MAX_IN_FLIGHT_BYTES || current === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.stalls++;
        return;
      }
      Atomics.wait(this.inFlight, 0, current, left);
    }
  }

  private receive(results: MessageResult[]): void {
    for (const { id, info } of results) {
      const resolve = this.pending.get(id);
      if (resolve === undefined) continue;
      this.pending.delete(id);
      resolve(info);
    }
  }

  /**
   * Stops the worker. Call it when no result is outstanding: the worker keeps the process alive
   * until then. (Toggling worker.unref() left its message port referenced on Node 20.20.)
   */
  close(): void {
    this.failed = true;
    void this.worker.terminate();
  }

  /** Resolves every outstanding message to undefined and parses nothing more. */
  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    for (const resolve of this.pending.values()) resolve(undefined);
    this.pending.clear();
  }
}
