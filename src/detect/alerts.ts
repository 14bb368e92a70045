import type { Device } from '../devices/types.js';
import { LruMap } from './lru.js';
import type { Alert, RuleName, Severity } from './types.js';

export type AlertChange = 'opened' | 'updated';
export type AlertSink = (alert: Alert, change: AlertChange) => void;

/** event.id values kept per alert, newest last. */
export const MAX_EVENT_IDS = 20;

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
  /** Changed since lastEmitted. */
  pending: boolean;
  /** The entry for lastEmitted is still in the due queue. */
  scheduled: boolean;
  /** Evicted or replaced by a new episode: its queue entries are stale. */
  retired: boolean;
}

/** One alert of the book as plain data, for saving. */
export interface SavedAlert {
  alert: Alert;
  lastEmitted: number;
  pending: boolean;
}

/** A check, updateInterval after an emission, whether the alert changed since. */
interface DueEntry {
  state: AlertState;
  emitted: number;
  due: number;
}

/**
 * The open alerts, one per rule and device. The first match emits "opened". Later matches
 * update the alert and emit "updated" at most once per updateInterval of capture time, so
 * the changes in between wait as a pending update for sweep(). Only flush(), an eviction and
 * a reopening send a pending update before its interval has passed.
 */
export class AlertBook {
  private readonly alerts: LruMap<string, AlertState>;
  /**
   * One entry per emission, in emission order, which is due order while capture time runs
   * forward. Entries of alerts emitted again or retired since are stale and skipped.
   */
  private queue: DueEntry[] = [];
  private head = 0;

  constructor(
    private readonly options: AlertBookOptions,
    private readonly emit: AlertSink,
  ) {
    // An alert evicted to make room sends its pending update first, so no change is lost.
    this.alerts = new LruMap(options.maxAlerts, (_id, state) => this.retire(state));
  }

  get size(): number {
    return this.alerts.size;
  }

  get evicted(): number {
    return this.alerts.evicted;
  }

  /** Entries in the due queue, stale ones included; at most 2 x maxAlerts + 64. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Returns the current state of an alert (not a copy), for tests and queries. */
  peek(id: string): Alert | undefined {
    return this.alerts.peek(id)?.alert;
  }

  /** Returns the open alerts, least recently used first, as copies. */
  exportState(): SavedAlert[] {
    return this.alerts.toArray().map(([, state]) => ({
      alert: { ...snapshot(state.alert), device: structuredClone(state.alert.device) },
      lastEmitted: state.lastEmitted,
      pending: state.pending,
    }));
  }

  /**
   * Adds saved alerts to the book, each with its update check scheduled as if it had just been
   * emitted at lastEmitted. `device` returns the live device record for a key, which replaces
   * the saved copy so that the alert follows later changes of the device.
   */
  importState(saved: readonly SavedAlert[], device: (key: string) => Device | undefined): void {
    const states: AlertState[] = [];
    for (const entry of saved) {
      const alert = { ...entry.alert, eventIds: entry.alert.eventIds.slice(-MAX_EVENT_IDS) };
      const live = device(alert.device.key);
      if (live !== undefined) alert.device = live;
      alert.owner = alert.device.owner;
      alert.severity = this.options.severity[alert.rule];
      const state: AlertState = { alert, lastEmitted: entry.lastEmitted, pending: entry.pending, scheduled: false, retired: false };
      this.alerts.set(alert.id, state);
      states.push(state);
    }
    // The due queue must be in due order, which is not the order of use.
    states.sort((a, b) => a.lastEmitted - b.lastEmitted);
    for (const state of states) if (!state.retired) this.schedule(state);
  }

  record(match: AlertMatch): void {
    const id = `${match.rule}-${match.device.key}`;
    const increment = match.increment ?? 1;
    const state = this.alerts.get(id);

    if (state === undefined || match.ts - state.alert.lastSeen > this.options.reopenAfter) {
      // A recurrence after a quiet period is a new episode under the same id.
      if (state !== undefined) this.retire(state);
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
      const opened: AlertState = { alert, lastEmitted: match.ts, pending: false, scheduled: false, retired: false };
      this.alerts.set(id, opened);
      this.schedule(opened);
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
      this.emitUpdate(state, match.ts);
      return;
    }
    state.pending = true;
    // Only input running backwards in time can leave a pending alert without its entry.
    if (!state.scheduled) this.schedule(state);
  }

  /** Emits the pending updates whose interval has passed; cheap to call on every observation. */
  sweep(ts: number): void {
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head] as DueEntry;
      if (entry.due > ts) break;
      this.head++;
      const state = entry.state;
      if (state.retired || state.lastEmitted !== entry.emitted) continue;
      state.scheduled = false;
      if (state.pending) this.emitUpdate(state, ts);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Emits every pending update, due or not. */
  flush(): void {
    for (const state of this.alerts.values()) {
      if (state.pending) this.emitUpdate(state, state.alert.lastSeen);
    }
  }

  /** Sends the pending update of an alert that leaves the book, so that no change is lost. */
  private retire(state: AlertState): void {
    state.retired = true;
    if (state.pending) this.emitUpdate(state, state.alert.lastSeen);
  }

  private emitUpdate(state: AlertState, ts: number): void {
    state.pending = false;
    state.lastEmitted = ts;
    if (!state.retired) this.schedule(state);
    this.emit(snapshot(state.alert), 'updated');
  }

  private schedule(state: AlertState): void {
    state.scheduled = true;
    this.queue.push({ state, emitted: state.lastEmitted, due: state.lastEmitted + this.options.updateInterval });
    // Each alert has at most one live entry, so dropping the stale ones bounds the queue.
    if (this.queue.length - this.head > 2 * this.options.maxAlerts + 64) {
      this.queue = this.queue.slice(this.head).filter((entry) => !entry.state.retired && entry.state.lastEmitted === entry.emitted);
      this.head = 0;
    }
  }
}

/**
 * Copies the parts of an alert that later matches change, so that a consumer may keep the
 * emitted object. Evidence objects are replaced, never modified, so they are shared.
 */
function snapshot(alert: Alert): Alert {
  return { ...alert, eventIds: alert.eventIds.slice() };
}
