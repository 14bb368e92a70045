import type { Device } from '../devices/types.js';
import { LruMap } from './lru.js';
import type { Alert, RuleName, Severity } from './types.js';

export type AlertChange = 'opened' | 'updated';
export type AlertSink = (alert: Alert, change: AlertChange) => void;

/** event.id values kept per alert, newest last. */
export const MAX_EVENT_IDS = 20;

/** Capture seconds between two scans for pending updates that are due. */
const SWEEP_STEP = 1;

export interface AlertBookOptions {
  /** Minimum capture seconds between two emissions of one alert. */
  updateInterval: number;
  /** Capture seconds without a match after which the next match opens the alert again. */
  reopenAfter: number;
  maxAlerts: number;
  severity: Record<RuleName, Severity>;
}

/** One match of a rule, as a detector reports it. */
export interface AlertMatch {
  rule: RuleName;
  device: Device;
  ts: number;
  eventId: string;
  message: string;
  /** Replaces the alert's evidence: the latest match describes the current state. */
  evidence: Record<string, unknown>;
  /** Added to the alert's count: 1 for a new match (the default), 0 to refresh the evidence only. */
  increment?: number;
}

interface AlertState {
  alert: Alert;
  lastEmitted: number;
  pending: boolean;
}

/**
 * The open alerts, one per rule and device. The first match emits "opened"; later matches
 * update the alert and emit "updated" at most once per updateInterval of capture time, and
 * the rest wait as pending updates for sweep() or flush().
 */
export class AlertBook {
  private readonly alerts: LruMap<string, AlertState>;
  private readonly pending = new Set<AlertState>();
  private lastSweep = -Infinity;

  constructor(
    private readonly options: AlertBookOptions,
    private readonly emit: AlertSink,
  ) {
    // An alert forgotten to make room sends its pending update first, so no change is lost.
    this.alerts = new LruMap(options.maxAlerts, (_id, state) => this.emitPending(state));
  }

  get size(): number {
    return this.alerts.size;
  }

  get evicted(): number {
    return this.alerts.evicted;
  }

  /** Returns the current state of an alert (not a copy), for tests and queries. */
  peek(id: string): Alert | undefined {
    return this.alerts.peek(id)?.alert;
  }

  record(match: AlertMatch): void {
    const id = `${match.rule}-${match.device.key}`;
    const increment = match.increment ?? 1;
    const state = this.alerts.get(id);

    if (state === undefined || match.ts - state.alert.lastSeen > this.options.reopenAfter) {
      // A recurrence after a quiet period is a new episode under the same id.
      if (state !== undefined) this.emitPending(state);
      const alert: Alert = {
        id,
        rule: match.rule,
        severity: this.options.severity[match.rule],
        message: match.message,
        device: match.device,
        owner: match.device.owner,
        firstSeen: match.ts,
        lastSeen: match.ts,
        count: Math.max(1, increment),
        evidence: match.evidence,
        eventIds: [match.eventId],
      };
      const opened: AlertState = { alert, lastEmitted: match.ts, pending: false };
      this.alerts.set(id, opened);
      this.emit(snapshot(alert), 'opened');
      return;
    }

    const alert = state.alert;
    alert.count += increment;
    // Observations of several capture files may arrive slightly out of order.
    alert.firstSeen = Math.min(alert.firstSeen, match.ts);
    alert.lastSeen = Math.max(alert.lastSeen, match.ts);
    alert.message = match.message;
    alert.device = match.device;
    alert.owner = match.device.owner;
    alert.evidence = match.evidence;
    if (alert.eventIds[alert.eventIds.length - 1] !== match.eventId) {
      alert.eventIds.push(match.eventId);
      if (alert.eventIds.length > MAX_EVENT_IDS) alert.eventIds.shift();
    }

    if (match.ts - state.lastEmitted >= this.options.updateInterval) {
      this.emitState(state, match.ts);
    } else if (!state.pending) {
      state.pending = true;
      this.pending.add(state);
    }
  }

  /** Emits the pending updates whose interval has passed; cheap to call on every observation. */
  sweep(ts: number): void {
    if (ts - this.lastSweep < SWEEP_STEP) return;
    this.lastSweep = ts;
    for (const state of this.pending) {
      if (ts - state.lastEmitted >= this.options.updateInterval) this.emitState(state, ts);
    }
  }

  /** Emits every pending update, due or not. */
  flush(): void {
    for (const state of this.pending) this.emitState(state, state.alert.lastSeen);
  }

  private emitPending(state: AlertState): void {
    if (state.pending) this.emitState(state, state.alert.lastSeen);
  }

  private emitState(state: AlertState, ts: number): void {
    state.pending = false;
    this.pending.delete(state);
    state.lastEmitted = ts;
    this.emit(snapshot(state.alert), 'updated');
  }
}

/**
 * Copies the parts of an alert that later matches change, so that a consumer may keep the
 * emitted object. Evidence objects are replaced, never modified, so they are shared.
 */
function snapshot(alert: Alert): Alert {
  return { ...alert, eventIds: alert.eventIds.slice() };
}
