import type { EcsEvent } from '../events/ecs.js';
import type { SensorStats } from '../events/consumer.js';

/**
 * The dashboard's state, fed by ECS events and SensorStats and read by the view. It draws
 * nothing and uses no terminal, so it is tested on its own. Every collection has a cap:
 * devices, alerts and per-device transactions are dropped oldest first past their limits.
 */

export type Severity = 'low' | 'medium' | 'high' | 'critical';

const SEVERITY_RANK: Record<Severity, number> = { low: 1, medium: 2, high: 3, critical: 4 };

/** Minutes of per-minute history kept, overall and per device. */
export const HISTORY_MINUTES = 60;

export interface ModelLimits {
  /** Maximum number of devices. The device seen longest ago is dropped first. */
  maxDevices: number;
  /** Maximum number of alerts. The alert updated longest ago is dropped first. */
  maxAlerts: number;
  /** Maximum number of recent transactions per device, for the detail view. */
  maxTransactionsPerDevice: number;
}

export const DEFAULT_MODEL_LIMITS: ModelLimits = { maxDevices: 20_000, maxAlerts: 1_000, maxTransactionsPerDevice: 50 };

/** One SMTP transaction or session as the detail view lists it. All strings are raw wire text. */
export interface TransactionSummary {
  /** Capture time in seconds since the epoch. */
  time: number;
  kind: 'transaction' | 'session';
  from?: string;
  recipients: string[];
  subject?: string;
  attachments: string[];
  reply?: string;
  server?: string;
  helo?: string;
  tls: boolean;
}

function slot(minute: number): number {
  return ((minute % HISTORY_MINUTES) + HISTORY_MINUTES) % HISTORY_MINUTES;
}

/** Per-minute counts over the last HISTORY_MINUTES minutes, as a ring indexed by minute number. */
export class MinuteCounter {
  private readonly counts = new Int32Array(HISTORY_MINUTES);
  /** Minute number (seconds / 60, floored) of the newest slot written. */
  private newest = -Infinity;

  add(time: number, amount = 1): void {
    this.cachedMinute = NaN;
    const minute = Math.floor(time / 60);
    if (minute > this.newest) {
      if (this.newest === -Infinity || minute - this.newest >= HISTORY_MINUTES) {
        this.counts.fill(0);
      } else {
        for (let m = this.newest + 1; m <= minute; m++) this.counts[slot(m)] = 0;
      }
      this.newest = minute;
    } else if (minute <= this.newest - HISTORY_MINUTES) {
      return; // older than the history
    }
    this.counts[slot(minute)] += amount;
  }

  /** Returns the counts of the `minutes` minutes up to and including the one of `now`, oldest first. */
  series(now: number, minutes = HISTORY_MINUTES): number[] {
    const last = Math.floor(now / 60);
    const out: number[] = [];
    for (let m = last - minutes + 1; m <= last; m++) out.push(this.at(m));
    return out;
  }

  /** Returns the sum over the HISTORY_MINUTES minutes up to and including the one of `now`. */
  total(now: number): number {
    const last = Math.floor(now / 60);
    if (last === this.cachedMinute) return this.cachedTotal;
    let sum = 0;
    if (last - this.newest < HISTORY_MINUTES) {
      for (let m = last - HISTORY_MINUTES + 1; m <= last; m++) sum += this.at(m);
    }
    this.cachedMinute = last;
    this.cachedTotal = sum;
    return sum;
  }

  /** Cached result of total() for cachedMinute. add() resets cachedMinute. */
  private cachedMinute = NaN;
  private cachedTotal = 0;

  private at(minute: number): number {
    if (minute > this.newest || minute <= this.newest - HISTORY_MINUTES) return 0;
    return this.counts[slot(minute)];
  }
}

export interface DeviceState {
  key: string;
  label?: string;
  type?: string;
  vendor?: string;
  mac?: string;
  ip?: string;
  ehloNames: string[];
  dhcpHostname?: string;
  owner?: string;
  firstSeen: number;
  lastSeen: number;
  sessions: number;
  /** Transactions the server accepted (event.outcome "success"). */
  messages: number;
  /** RCPT TO addresses over all transactions. */
  recipients: number;
  messagesPerMinute: MinuteCounter;
  recipientsPerMinute: MinuteCounter;
  /** Open alerts by rule id, with their severity. */
  alerts: Map<string, Severity>;
  /** Highest severity of the device's alerts, 0 without alerts. */
  severityRank: number;
  /** Newest last. */
  transactions: TransactionSummary[];
}

export interface AlertState {
  id: string;
  rule: string;
  severity: Severity;
  message: string;
  deviceKey: string;
  /** Matches folded into the alert (mailtap.alert.count). */
  count: number;
  /** Emissions received for the alert (opened and updated). */
  emissions: number;
  firstSeen: number;
  lastSeen: number;
}

export type SortKey = 'status' | 'messages' | 'last-seen' | 'name';
export const SORT_KEYS: SortKey[] = ['status', 'messages', 'last-seen', 'name'];

type Fields = Record<string, unknown>;

function objectAt(value: unknown, ...path: string[]): Fields | undefined {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Fields)[key];
  }
  return typeof current === 'object' && current !== null ? (current as Fields) : undefined;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Parses an ISO 8601 timestamp to seconds since the epoch, NaN when invalid. */
function seconds(value: unknown): number {
  return typeof value === 'string' ? Date.parse(value) / 1000 : NaN;
}

function severityOf(value: unknown): Severity {
  return value === 'low' || value === 'medium' || value === 'high' || value === 'critical' ? value : 'medium';
}

export class DashboardModel {
  readonly limits: ModelLimits;
  /** Devices in least-recently-seen-first order: a device seen again moves to the end. */
  readonly devices = new Map<string, DeviceState>();
  /** Alerts in least-recently-updated-first order. */
  readonly alerts = new Map<string, AlertState>();
  readonly messagesPerMinute = new MinuteCounter();
  stats: SensorStats | undefined;
  /** Clock of the last-hour figures and the chart: the newest event time seen, in seconds since the epoch. */
  now = 0;
  events = 0;
  /** Events that lacked the fields the dashboard needs. */
  invalidEvents = 0;
  droppedDevices = 0;
  droppedAlerts = 0;
  /** Sort keys of deviceList, kept between calls so that a redraw allocates less. */
  private sortScratch = new Float64Array(0);
  /** Incremented on every change, so the view redraws only when something changed. */
  version = 0;

  constructor(limits: Partial<ModelLimits> = {}) {
    this.limits = { ...DEFAULT_MODEL_LIMITS, ...limits };
  }

  /** Applies one ECS event from the pipeline or the feed. A malformed event is counted in invalidEvents. */
  ingest(event: EcsEvent): void {
    this.events++;
    this.version++;
    try {
      this.apply(event);
    } catch {
      // Feed events are untrusted JSON: a field of an unexpected type must not stop the dashboard.
      this.invalidEvents++;
    }
  }

  private apply(event: EcsEvent): void {
    const meta = objectAt(event, 'event');
    const time = seconds(event['@timestamp']);
    if (meta === undefined || !Number.isFinite(time)) {
      this.invalidEvents++;
      return;
    }
    const end = seconds(meta.end);
    this.advanceClock(Number.isFinite(end) ? end : time);
    const dataset = meta.dataset;
    if (dataset === 'mailtap.alert') this.ingestAlert(event, meta, time);
    else if (dataset === 'mailtap.smtp') this.ingestSmtp(event, meta, time);
    else if (dataset === 'mailtap.device') this.touchDevice(event, time);
    else this.invalidEvents++;
  }

  /** Stores the sensor's latest figures. */
  setStats(stats: SensorStats): void {
    this.stats = stats;
    this.version++;
  }

  /** Moves the clock forward, for a live feed whose events may pause. */
  advanceClock(time: number): void {
    if (time > this.now) {
      this.now = time;
      this.version++;
    }
  }

  /** Returns the device's accepted messages within the last hour of the model's clock. */
  messagesLastHour(device: DeviceState): number {
    return device.messagesPerMinute.total(this.now);
  }

  recipientsLastHour(device: DeviceState): number {
    return device.recipientsPerMinute.total(this.now);
  }

  /** Returns the alerts newest first. */
  alertList(): AlertState[] {
    const list = [...this.alerts.values()];
    list.sort((a, b) => b.lastSeen - a.lastSeen || SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]);
    return list;
  }

  /** Returns the alerts of one device, newest first. */
  alertsOf(key: string): AlertState[] {
    return this.alertList().filter((alert) => alert.deviceKey === key);
  }

  /**
   * Returns the devices that match filter, sorted. The filter is a case-insensitive substring of
   * the label, vendor, MAC, IP address, key, type or an EHLO name.
   */
  deviceList(filter = '', sort: SortKey = 'status'): DeviceState[] {
    const needle = filter.trim().toLowerCase();
    const list: DeviceState[] = [];
    for (const device of this.devices.values()) {
      if (needle === '' || deviceMatches(device, needle)) list.push(device);
    }

    const now = this.now;
    if (sort === 'name') {
      const names = list.map(deviceName);
      const order = names.map((_, i) => i);
      order.sort((a, b) => {
        if (names[a] !== names[b]) return names[a] < names[b] ? -1 : 1;
        return list[a].key < list[b].key ? -1 : 1;
      });
      return order.map((i) => list[i]);
    }

    // The sort keys go into typed arrays once per device, so that the comparator (about 140,000
    // calls for 10,000 devices) reads numbers and allocates nothing.
    const count = list.length;
    if (this.sortScratch.length < count * 2) this.sortScratch = new Float64Array(count * 2 + 64);
    const primary = this.sortScratch.subarray(0, count);
    const lastSeen = this.sortScratch.subarray(this.sortScratch.length - count);
    for (let i = 0; i < count; i++) {
      const device = list[i];
      lastSeen[i] = device.lastSeen;
      if (sort === 'status') primary[i] = device.severityRank * 1e9 + Math.min(device.messagesPerMinute.total(now), 1e9 - 1);
      else if (sort === 'messages') primary[i] = device.messagesPerMinute.total(now);
    }

    const order = new Array<number>(count);
    for (let i = 0; i < count; i++) order[i] = i;
    order.sort((a, b) => primary[b] - primary[a] || lastSeen[b] - lastSeen[a] || (list[a].key < list[b].key ? -1 : 1));
    const sorted = new Array<DeviceState>(count);
    for (let i = 0; i < count; i++) sorted[i] = list[order[i]];
    return sorted;
  }

  private ingestSmtp(event: EcsEvent, meta: Fields, time: number): void {
    const device = this.touchDevice(event, time);
    if (device === undefined) return;
    const smtp = objectAt(event, 'smtp') ?? {};
    const email = objectAt(event, 'email') ?? {};
    const server = objectAt(event, 'server') ?? objectAt(event, 'destination');

    const helo = stringOf(smtp.helo);
    if (helo !== undefined && !device.ehloNames.includes(helo)) {
      device.ehloNames.push(helo);
      if (device.ehloNames.length > 8) device.ehloNames.shift();
    }

    const isTransaction = meta.action === 'smtp-transaction';
    const recipients = stringsOf(smtp.rcpt_to);
    const attachments: string[] = [];
    if (Array.isArray(email.attachments)) {
      for (const attachment of email.attachments) {
        const file = objectAt(attachment, 'file');
        attachments.push(stringOf(file?.name) ?? stringOf(file?.mime_type) ?? '?');
      }
    }

    if (isTransaction) {
      if (meta.outcome === 'success') {
        device.messages++;
        device.messagesPerMinute.add(time);
        this.messagesPerMinute.add(time);
      }
      device.recipients += recipients.length;
      device.recipientsPerMinute.add(time, recipients.length);
    } else {
      device.sessions++;
    }

    const serverText = server !== undefined && server.ip !== undefined ? `${String(server.ip)}:${String(server.port ?? '')}` : undefined;
    const summary: TransactionSummary = {
      time,
      kind: isTransaction ? 'transaction' : 'session',
      recipients,
      attachments,
      tls: smtp.tls === true,
    };
    const from = stringOf(smtp.mail_from) ?? stringsOf(objectAt(email, 'from')?.address)[0];
    if (from !== undefined) summary.from = from;
    const subject = stringOf(email.subject);
    if (subject !== undefined) summary.subject = subject;
    const reply = stringOf(smtp.last_reply);
    if (reply !== undefined) summary.reply = reply;
    if (serverText !== undefined) summary.server = serverText;
    if (helo !== undefined) summary.helo = helo;

    device.transactions.push(summary);
    if (device.transactions.length > this.limits.maxTransactionsPerDevice) device.transactions.shift();
  }

  private ingestAlert(event: EcsEvent, meta: Fields, time: number): void {
    const id = stringOf(meta.id);
    const device = this.touchDevice(event, time);
    const alertFields = objectAt(event, 'mailtap', 'alert') ?? {};
    // touchDevice already counted an event without a device in invalidEvents.
    if (device === undefined) return;
    if (id === undefined) {
      this.invalidEvents++;
      return;
    }

    const rule = stringOf(objectAt(event, 'rule')?.id) ?? id;
    const severity = severityOf(alertFields.severity);
    const count = typeof alertFields.count === 'number' ? alertFields.count : 1;
    const start = seconds(meta.start);

    const existing = this.alerts.get(id);
    if (existing !== undefined) {
      this.alerts.delete(id);
      existing.emissions++;
      existing.count = Math.max(existing.count, count);
      existing.severity = severity;
      existing.message = stringOf(event.message) ?? existing.message;
      existing.lastSeen = Math.max(existing.lastSeen, time);
      this.alerts.set(id, existing);
    } else {
      this.alerts.set(id, {
        id,
        rule,
        severity,
        message: stringOf(event.message) ?? rule,
        deviceKey: device.key,
        count,
        emissions: 1,
        firstSeen: Number.isFinite(start) ? start : time,
        lastSeen: time,
      });
      while (this.alerts.size > this.limits.maxAlerts) {
        const oldest = this.alerts.keys().next().value as string;
        this.alerts.delete(oldest);
        this.droppedAlerts++;
      }
    }

    device.alerts.set(rule, severity);
    device.severityRank = Math.max(device.severityRank, SEVERITY_RANK[severity]);
  }

  /** Finds or creates the device an event names, updates its fields and moves it to the newest end. */
  private touchDevice(event: EcsEvent, time: number): DeviceState | undefined {
    const fields = objectAt(event, 'mailtap', 'device');
    const source = objectAt(event, 'source') ?? objectAt(event, 'client');
    const sourceIp = stringOf(source?.ip);
    const key = stringOf(fields?.key) ?? (sourceIp !== undefined ? `ip:${sourceIp}` : undefined);
    if (key === undefined) {
      this.invalidEvents++;
      return undefined;
    }

    let device = this.devices.get(key);
    if (device !== undefined) {
      this.devices.delete(key);
    } else {
      device = {
        key,
        ehloNames: [],
        firstSeen: time,
        lastSeen: time,
        sessions: 0,
        messages: 0,
        recipients: 0,
        messagesPerMinute: new MinuteCounter(),
        recipientsPerMinute: new MinuteCounter(),
        alerts: new Map(),
        severityRank: 0,
        transactions: [],
      };
      while (this.devices.size >= this.limits.maxDevices) {
        const oldest = this.devices.keys().next().value as string;
        this.devices.delete(oldest);
        this.droppedDevices++;
      }
    }

    this.devices.set(key, device);
    if (time > device.lastSeen) device.lastSeen = time;
    if (time < device.firstSeen) device.firstSeen = time;

    if (fields !== undefined) {
      device.label = stringOf(fields.label) ?? device.label;
      device.type = stringOf(fields.type) ?? device.type;
      device.vendor = stringOf(fields.vendor) ?? device.vendor;
      device.mac = stringOf(fields.mac) ?? device.mac;
      device.dhcpHostname = stringOf(fields.dhcp_hostname) ?? device.dhcpHostname;
      for (const name of stringsOf(fields.ehlo_names)) {
        if (!device.ehloNames.includes(name) && device.ehloNames.length < 8) device.ehloNames.push(name);
      }
      const ips = stringsOf(fields.ips);
      if (ips.length > 0) device.ip = ips[ips.length - 1];
      const owner = objectAt(fields, 'owner');
      if (owner !== undefined) device.owner = stringOf(owner.name) ?? device.owner;
    }

    const ownerOfAlert = objectAt(event, 'mailtap', 'alert', 'owner');
    if (ownerOfAlert !== undefined) device.owner = stringOf(ownerOfAlert.name) ?? device.owner;
    if (sourceIp !== undefined) device.ip = sourceIp;
    const sourceMac = stringOf(source?.mac);
    if (sourceMac !== undefined && device.mac === undefined) device.mac = sourceMac;
    return device;
  }
}

/**
 * Returns the name the table shows for a device: its configured label, else its vendor, else a
 * name it gave itself (DHCP host name, first EHLO name), else its IP address or key.
 */
export function deviceName(device: DeviceState): string {
  return device.label ?? device.vendor ?? device.dhcpHostname ?? device.ehloNames[0] ?? device.ip ?? device.key;
}

function deviceMatches(device: DeviceState, needle: string): boolean {
  const fields = [device.label, device.vendor, device.mac, device.ip, device.key, device.type, ...device.ehloNames];
  return fields.some((field) => field !== undefined && field.toLowerCase().includes(needle));
}

export function severityRankName(rank: number): Severity | undefined {
  return (['low', 'medium', 'high', 'critical'] as const)[rank - 1];
}
