import type { ScanConfig } from '../config/scan-schema.js';
import { ClamavClient } from './clamav.js';
import { RspamdClient } from './rspamd.js';
import {
  SKIP_REASONS,
  ScanFailure,
  type ClamavVerdict,
  type RspamdVerdict,
  type ScanEnvelope,
  type ScanResult,
  type ScannerResult,
  type SkipReason,
} from './types.js';

/** While a scanner stays down, a reminder is logged at most this often. */
export const DOWN_LOG_INTERVAL_MS = 60_000;

export interface ScannerCounters {
  scanned: number;
  /** Messages it found a virus in (clamav) or rated spam (rspamd, by scan.spam_score or action reject). */
  flagged: number;
  notScanned: Record<SkipReason, number>;
}

export interface ScannerOptions {
  config: ScanConfig;
  /**
   * true for capture files: a full queue never drops a message, and the reader waits on busy()
   * instead. The queue can then grow past scan.queue while the reader processes one chunk of
   * the file, and its memory is bounded by scan.max_buffer (see reserve()). false for live
   * capture: a message that finds scan.queue messages waiting is not scanned.
   */
  wait: boolean;
  /**
   * Receives one line per scanner state change or reminder ("error: ..." or "... is back up ..."),
   * never one per message.
   */
  log(line: string): void;
  /** The Hostname header for rspamd. */
  hostname?: string;
  /** Wall clock in milliseconds, which tests replace. */
  now?: () => number;
  /** Clients to use instead of those built from the config; tests pass fakes. */
  clamav?: Pick<ClamavClient, 'scan' | 'description'>;
  rspamd?: Pick<RspamdClient, 'check' | 'description'> & { close?(): void };
}

function zeroCounters(): ScannerCounters {
  const notScanned = {} as Record<SkipReason, number>;
  for (const reason of SKIP_REASONS) notScanned[reason] = 0;
  return { scanned: 0, flagged: 0, notScanned };
}

/**
 * Up or down state of one scanner. After a timeout or a refused connection the scanner is
 * down: messages skip it for scan.retry_after seconds, then one message tries again. Only
 * the change to down, a reminder every DOWN_LOG_INTERVAL_MS and the change back up are logged.
 */
class Health {
  down = false;
  private reason: 'timeout' | 'unavailable' = 'unavailable';
  private retryAt = 0;
  private lastLog = 0;
  private missed = 0;

  constructor(
    private readonly name: string,
    private readonly retryMs: number,
    private readonly log: (line: string) => void,
    private readonly now: () => number,
  ) {}

  /** Returns undefined when the scanner may be called, and otherwise the skip reason to record. */
  blocked(): SkipReason | undefined {
    if (!this.down || this.now() >= this.retryAt) return undefined;
    this.missed++;
    return this.reason;
  }

  success(): void {
    if (!this.down) return;
    this.down = false;
    this.log(`${this.name} is back up. ${this.missed} message(s) were not scanned by it while it was down`);
    this.missed = 0;
  }

  failure(failure: ScanFailure): void {
    // An error reply comes from a working scanner, so only that message is not scanned.
    if (failure.reason === 'error') return;
    const now = this.now();
    this.missed++;
    this.reason = failure.reason;
    this.retryAt = now + this.retryMs;
    if (!this.down) {
      this.down = true;
      this.lastLog = now;
      this.log(
        `error: ${failure.message}. Messages are recorded as not scanned ` +
          `(reason ${failure.reason}) until it replies again`,
      );
    } else if (now - this.lastLog >= DOWN_LOG_INTERVAL_MS) {
      this.lastLog = now;
      this.log(`error: ${this.name} is still down (${failure.message}), ${this.missed} message(s) not scanned so far`);
    }
  }
}

interface Job {
  message: Buffer;
  envelope: ScanEnvelope;
  resolve(result: ScanResult): void;
}

/**
 * Sends messages to clamd and rspamd with a bounded queue (scan.queue) and at most
 * scan.concurrency messages in flight. scan() does not throw, and its promise resolves even
 * when a scanner fails: such a message gets a not_scanned result with the reason, and is counted.
 */
export class Scanner {
  readonly counters: { clamav?: ScannerCounters; rspamd?: ScannerCounters } = {};
  readonly maxSize: number;
  /** Bytes of message copies reserved for the scanners: messages being received, queued or in flight. */
  buffered = 0;
  private readonly maxBuffer: number;
  private readonly clamav: ScannerOptions['clamav'];
  private readonly rspamd: ScannerOptions['rspamd'];
  private readonly clamavHealth: Health | undefined;
  private readonly rspamdHealth: Health | undefined;
  private readonly queue: Job[] = [];
  private running = 0;
  private readonly spamScore: number;
  private readonly queueLimit: number;
  /** Queue length at which scan() drops a message: scan.queue for live capture, Infinity for files. */
  private readonly dropLimit: number;
  private readonly concurrency: number;
  private waiters: (() => void)[] = [];

  constructor(options: ScannerOptions) {
    const config = options.config;
    const now = options.now ?? Date.now;
    const timeoutMs = Math.round(config.timeout * 1000);
    const retryMs = Math.round(config.retry_after * 1000);
    this.clamav = options.clamav ?? (config.clamav ? new ClamavClient(config.clamav, timeoutMs) : undefined);
    this.rspamd = options.rspamd ?? (config.rspamd ? new RspamdClient(config.rspamd, timeoutMs, options.hostname) : undefined);
    if (this.clamav) {
      this.counters.clamav = zeroCounters();
      this.clamavHealth = new Health(this.clamav.description, retryMs, options.log, now);
    }
    if (this.rspamd) {
      this.counters.rspamd = zeroCounters();
      this.rspamdHealth = new Health(this.rspamd.description, retryMs, options.log, now);
    }
    this.maxSize = config.max_size;
    this.maxBuffer = config.max_buffer;
    this.spamScore = config.spam_score;
    this.queueLimit = config.queue;
    this.dropLimit = options.wait ? Infinity : config.queue;
    this.concurrency = config.concurrency;
  }

  /**
   * Reserves bytes for a message copy within scan.max_buffer and returns false when they do not
   * fit. The caller gives them back with release().
   */
  reserve(bytes: number): boolean {
    if (this.buffered + bytes > this.maxBuffer) return false;
    this.buffered += bytes;
    return true;
  }

  release(bytes: number): void {
    this.buffered = Math.max(0, this.buffered - bytes);
  }

  /** Messages waiting for a free slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** Returns whether a verdict of rspamd counts as spam: over scan.spam_score, or action reject. */
  isSpam(verdict: RspamdVerdict): boolean {
    return verdict.score >= this.spamScore || verdict.action === 'reject';
  }

  /** Queues one message. The promise resolves once every configured scanner returned a verdict or was skipped. */
  scan(message: Buffer, envelope: ScanEnvelope): Promise<ScanResult> {
    if (message.length > this.maxSize) return Promise.resolve(this.skip('too_large'));
    if (this.queue.length >= this.dropLimit) return Promise.resolve(this.skip('queue_full'));
    return new Promise((resolve) => {
      this.queue.push({ message, envelope, resolve });
      this.pump();
    });
  }

  /** Records a message that is not sent to the scanners at all (tls, too_large, queue_full). */
  skip(reason: SkipReason): ScanResult {
    const result: ScanResult = {};
    if (this.counters.clamav) {
      this.counters.clamav.notScanned[reason]++;
      result.clamav = { status: 'not_scanned', reason };
    }
    if (this.counters.rspamd) {
      this.counters.rspamd.notScanned[reason]++;
      result.rspamd = { status: 'not_scanned', reason };
    }
    return result;
  }

  /**
   * Returns, for the capture reader, a promise that resolves once the queue is below scan.queue,
   * or undefined when it already is.
   */
  busy(): Promise<void> | undefined {
    if (this.queue.length < this.queueLimit) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Closes the connections kept open. Call it when no scan is outstanding. */
  close(): void {
    this.rspamd?.close?.();
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const job = this.queue.shift();
      if (job === undefined) break;
      this.running++;
      void this.run(job).then((result) => {
        this.running--;
        job.resolve(result);
        this.pump();
      });
    }
    if (this.queue.length < this.queueLimit && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  private async run(job: Job): Promise<ScanResult> {
    const clamavCall = this.clamav
      ? this.callScanner(
          this.clamav,
          this.clamavHealth as Health,
          this.counters.clamav as ScannerCounters,
          (client) => client.scan(job.message),
          (verdict) => verdict.signatures.length > 0,
        )
      : undefined;
    const rspamdCall = this.rspamd
      ? this.callScanner(
          this.rspamd,
          this.rspamdHealth as Health,
          this.counters.rspamd as ScannerCounters,
          (client) => client.check(job.message, job.envelope),
          (verdict) => this.isSpam(verdict),
        )
      : undefined;
    const [clamav, rspamd] = await Promise.all([clamavCall, rspamdCall]);
    const result: ScanResult = {};
    if (clamav) result.clamav = clamav;
    if (rspamd) result.rspamd = rspamd;
    return result;
  }

  /** Calls one scanner unless it is down, and updates its health and counters. */
  private async callScanner<C, V>(
    client: C,
    health: Health,
    counters: ScannerCounters,
    call: (client: C) => Promise<V>,
    flagged: (verdict: V) => boolean,
  ): Promise<ScannerResult<V>> {
    const blocked = health.blocked();
    if (blocked !== undefined) {
      counters.notScanned[blocked]++;
      return { status: 'not_scanned', reason: blocked };
    }
    try {
      const verdict = await call(client);
      health.success();
      counters.scanned++;
      if (flagged(verdict)) counters.flagged++;
      return { status: 'scanned', verdict };
    } catch (error) {
      const failure = error instanceof ScanFailure ? error : new ScanFailure('error', String(error));
      health.failure(failure);
      counters.notScanned[failure.reason]++;
      return { status: 'not_scanned', reason: failure.reason };
    }
  }
}

export type { ClamavVerdict, RspamdVerdict };
