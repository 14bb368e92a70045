/**
 * Sends alerts to webhooks, device owners by e-mail, and syslog. `event()` only queues, so the
 * capture never waits. Each target sends from its own queue, one alert at a time, with retries
 * and exponential backoff. For webhooks and e-mail, a rate limit per target, rule and device
 * turns a burst of updates into one notification per `interval`.
 */
import type { Config } from '../config/schema.js';
import type { EventConsumer } from '../events/consumer.js';
import type { EcsEvent } from '../events/ecs.js';
import type { Logger } from '../feed/server.js';
import { alertInfo, type AlertInfo } from './alert-info.js';
import { PermanentError, emailTarget, syslogTarget, webhookTarget, type Target } from './targets.js';

export interface NotifierOptions {
  config: Config;
  logger?: Logger;
  version?: string;
  /** First retry delay in milliseconds before jitter. It doubles per attempt up to MAX_RETRY_DELAY_MS. */
  retryBaseMs?: number;
}

export interface NotifyCounters {
  alerts: number;
  queued: number;
  sent: number;
  failed: number;
  retries: number;
  /** Notifications left out by the rate limit. */
  rateLimited: number;
  /** Notifications dropped because notify.queue_size notifications were already queued. */
  dropped: number;
  /** E-mails not sent because the device has no owner e-mail and fallback_to is empty. */
  noRecipient: number;
}

const MAX_RETRY_DELAY_MS = 60_000;
/** Maximum number of rule and device pairs remembered per target for the rate limit. The oldest is forgotten first. */
const MAX_RATE_KEYS = 10_000;
/** Maximum time in milliseconds that close() waits for queued notifications. */
const CLOSE_TIMEOUT_MS = 5000;

/** Interval in which repeats of the same delivery failure of a target are counted, not logged. */
const FAILURE_LOG_INTERVAL_MS = 10 * 60_000;

const SILENT: Logger = { info() {}, warn() {}, error() {} };

interface TargetState {
  target: Target;
  queue: AlertInfo[];
  running: boolean;
  /** Last notification time in ms per "rule|device key". */
  lastSent: Map<string, number>;
  /** The last failure that was logged, so that the same failure is logged once per interval. */
  lastFailure: { message: string; at: number; suppressed: number } | undefined;
}

export class Notifier implements EventConsumer {
  readonly counters: NotifyCounters = {
    alerts: 0,
    queued: 0,
    sent: 0,
    failed: 0,
    retries: 0,
    rateLimited: 0,
    dropped: 0,
    noRecipient: 0,
  };

  private readonly targets: TargetState[];
  private readonly logger: Logger;
  private readonly retryBaseMs: number;
  private readonly queueSize: number;
  private pending = 0;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(options: NotifierOptions, targets?: Target[]) {
    const notify = options.config.notify;
    const version = options.version ?? 'unknown';
    this.logger = options.logger ?? SILENT;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.queueSize = notify.queue_size;
    const built = targets ?? [
      ...notify.webhooks.map((webhook) => webhookTarget(webhook, version)),
      ...(notify.email.enabled ? [emailTarget(notify.email, version)] : []),
      ...(notify.syslog.enabled ? [syslogTarget(notify.syslog, version)] : []),
    ];
    this.targets = built.map((target) => ({ target, queue: [], running: false, lastSent: new Map(), lastFailure: undefined }));
  }

  /** True when any target is configured. Without one, the sensor need not add the notifier. */
  get enabled(): boolean {
    return this.targets.length > 0;
  }

  /** Queues an alert event for every target whose filter and rate limit let it through. */
  event(event: EcsEvent): void {
    if (this.closed || event.event.kind !== 'alert') return;
    const info = alertInfo(event);
    if (info === undefined) return;
    this.counters.alerts++;

    const now = Date.now();
    for (const state of this.targets) {
      const target = state.target;
      if (info.rank < target.minRank) continue;
      if (target.rules.size > 0 && !target.rules.has(info.rule)) continue;
      if (!target.updates && info.action !== 'alert-opened') continue;

      if (target.hasRecipient !== undefined && !target.hasRecipient(info)) {
        this.counters.noRecipient++;
        continue;
      }
      if (target.interval !== undefined && !this.allow(state, info, now, target.interval)) {
        this.counters.rateLimited++;
        continue;
      }
      if (this.pending >= this.queueSize) {
        this.counters.dropped++;
        if (this.counters.dropped === 1 || this.counters.dropped % 1000 === 0) {
          this.logger.warn({ target: target.name, dropped: this.counters.dropped }, 'notification queue full: alert dropped');
        }
        continue;
      }

      this.pending++;
      this.counters.queued++;
      state.queue.push(info);
      if (!state.running) void this.run(state);
    }
  }

  /** Resolves when every queued notification was sent or failed. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Waits up to CLOSE_TIMEOUT_MS for queued notifications, then releases the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (this.pending > 0) this.logger.warn({ pending: this.pending }, 'notifier closed with notifications still queued');
    for (const state of this.targets) state.target.close?.();
  }

  /** Logs a failed notification, except a repeat of the last failure within FAILURE_LOG_INTERVAL_MS. */
  private logFailure(state: TargetState, info: AlertInfo, attempts: number, error: unknown): void {
    const message = (error as Error).message;
    const now = Date.now();
    const last = state.lastFailure;
    if (last !== undefined && last.message === message && now - last.at < FAILURE_LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    const suppressed = last !== undefined && last.message === message ? last.suppressed : 0;
    state.lastFailure = { message, at: now, suppressed: 0 };
    this.logger.error(
      { target: state.target.name, alert: info.id, attempts, err: error, ...(suppressed > 0 ? { repeatsNotLogged: suppressed } : {}) },
      `notification failed: ${message}`,
    );
  }

  /** Records the notification time and returns true unless one was sent within `interval` seconds. */
  private allow(state: TargetState, info: AlertInfo, now: number, interval: number): boolean {
    const key = `${info.rule}|${info.deviceKey}`;
    const last = state.lastSent.get(key);
    if (last !== undefined && now - last < interval * 1000) return false;
    state.lastSent.delete(key);
    state.lastSent.set(key, now);
    if (state.lastSent.size > MAX_RATE_KEYS) {
      const oldest = state.lastSent.keys().next().value as string;
      state.lastSent.delete(oldest);
    }
    return true;
  }

  private async run(state: TargetState): Promise<void> {
    state.running = true;
    while (state.queue.length > 0) {
      const info = state.queue.shift() as AlertInfo;
      await this.deliver(state, info);
      this.pending--;
    }
    state.running = false;
    if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async deliver(state: TargetState, info: AlertInfo): Promise<void> {
    const target = state.target;
    for (let attempt = 0; ; attempt++) {
      try {
        await target.deliver(info);
        this.counters.sent++;
        this.logger.info({ target: target.name, alert: info.id, action: info.action }, 'notification sent');
        return;
      } catch (error) {
        const last = attempt >= target.retries || error instanceof PermanentError || this.closed;
        if (last) {
          this.counters.failed++;
          this.logFailure(state, info, attempt + 1, error);
          return;
        }
        this.counters.retries++;
        const delay = Math.min(MAX_RETRY_DELAY_MS, this.retryBaseMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        this.logger.warn(
          { target: target.name, alert: info.id, attempt: attempt + 1, delayMs: Math.round(delay) },
          `notification failed, retrying: ${(error as Error).message}`,
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
