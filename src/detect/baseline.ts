/**
 * Mail volume of one device per window, and the baseline it is judged against.
 *
 * Windows are volume_window seconds long and aligned to the Unix epoch, so with the default
 * of 1h they are the UTC hours. When a window ends, its counts are folded into a slot for
 * its UTC day and hour, which keeps the maximum window count seen in that hour that day.
 * The baseline of a new window is the maximum of the slots of the same hour and the hours
 * either side on each of the previous BASELINE_DAYS days. The neighbouring hours let a daily
 * peak drift by an hour, as a local-time peak does in UTC when daylight saving time starts.
 * Taking 7 days includes the same weekday, so a weekly peak is part of its own baseline.
 *
 * A window alerts when a count exceeds max(factor x baseline, floor). A device without
 * history has a baseline of 0, so the floors alone decide for it. The alert is raised by the
 * message that crosses the threshold, not at the end of the window.
 */

export const BASELINE_DAYS = 7;
/** Today plus the days the baseline reads. */
const RING_DAYS = BASELINE_DAYS + 1;
const HOURS = 24;
const DAY = 86400;
const HOUR = 3600;

export const METRICS = ['messages', 'recipients', 'domains'] as const;
export type Metric = (typeof METRICS)[number];
export type VolumeCounts = Record<Metric, number>;

/** Slot values saturate here (Uint16Array). */
const SLOT_MAX = 0xffff;

/**
 * Maximum distinct recipient domains counted per window, where the count saturates. Domains
 * are kept as 32-bit FNV-1a hashes of their ASCII-lower-cased text, in an open-addressing table
 * twice this size (4 KiB per device), so two domains with the same hash count once.
 */
export const MAX_WINDOW_DOMAINS = 512;
const DOMAIN_TABLE_SIZE = MAX_WINDOW_DOMAINS * 2;

export interface VolumeParams {
  /** Window length in seconds. */
  window: number;
  factor: number;
  floors: VolumeCounts;
}

/** Outcome of one transaction for its window: under the threshold, the first over it, or a later one. */
export type VolumeVerdict = 'normal' | 'crossed' | 'over';

/** A DeviceVolume as plain data for saving, from DeviceVolume.toState. */
export interface VolumeState {
  /** Window length in seconds that `window` counts in. */
  windowLength: number;
  window: number;
  counts: VolumeCounts;
  alerted: boolean;
  /** Base64 of the day-and-hour slots (Uint16 values, little-endian). */
  slots: string;
  slotDays: number[];
  /** Hashes of the recipient domains counted in the current window. */
  domains: number[];
}

export class DeviceVolume {
  /** Maximum window count per ring day, hour and metric: ((day % RING_DAYS) * HOURS + hour) * 3 + metric. */
  private readonly slots = new Uint16Array(RING_DAYS * HOURS * METRICS.length);
  /** Day number (days since the epoch) whose counts each ring day contains, or -1 when unused. */
  private readonly slotDays = new Int32Array(RING_DAYS).fill(-1);
  private domainTable: Uint32Array | undefined;

  /** Window number (start / window length), or -1 before the first transaction. */
  window = -1;
  readonly counts: VolumeCounts = { messages: 0, recipients: 0, domains: 0 };
  readonly baseline: VolumeCounts = { messages: 0, recipients: 0, domains: 0 };
  readonly threshold: VolumeCounts = { messages: 0, recipients: 0, domains: 0 };
  /** Days among the previous BASELINE_DAYS with counts of any hour. */
  baselineDays = 0;
  /** Whether the current window crossed its threshold. Such a window is not learned. */
  alerted = false;

  /**
   * Counts one transaction with a MAIL FROM, its recipients and their domains, and `unlisted`
   * recipients whose addresses were not kept (they add to the count, not to the domains).
   */
  add(ts: number, recipients: readonly { address: string }[], params: VolumeParams, unlisted = 0): VolumeVerdict {
    const window = Math.floor(ts / params.window);
    // A window earlier than the current one (input slightly out of order) counts into the current one.
    if (window > this.window) {
      if (this.window >= 0) this.fold(params.window);
      this.start(window, params);
    }

    this.counts.messages++;
    this.counts.recipients += recipients.length + unlisted;
    for (const recipient of recipients) {
      const at = recipient.address.lastIndexOf('@');
      if (at >= 0) this.addDomain(recipient.address, at + 1);
    }

    const over =
      this.counts.messages > this.threshold.messages ||
      this.counts.recipients > this.threshold.recipients ||
      this.counts.domains > this.threshold.domains;
    if (!over) return 'normal';
    if (this.alerted) return 'over';
    this.alerted = true;
    return 'crossed';
  }

  /** Returns the state as plain data that JSON keeps. */
  toState(windowLength: number): VolumeState {
    // Written little-endian value by value, because the typed array uses the platform's byte
    // order and fromState reads little-endian.
    const slots = Buffer.alloc(this.slots.byteLength);
    this.slots.forEach((value, i) => slots.writeUInt16LE(value, i * 2));
    const domains: number[] = [];
    if (this.domainTable !== undefined) for (const hash of this.domainTable) if (hash !== 0) domains.push(hash);
    return {
      windowLength,
      window: this.window,
      counts: { ...this.counts },
      alerted: this.alerted,
      slots: slots.toString('base64'),
      slotDays: [...this.slotDays],
      domains,
    };
  }

  /**
   * Rebuilds a DeviceVolume from toState's data. The slots are kept whatever the parameters.
   * The current window is kept only when its length is still params.window, and its threshold
   * is computed again from params. Returns undefined for data of the wrong shape.
   */
  static fromState(state: VolumeState, params: VolumeParams): DeviceVolume | undefined {
    const volume = new DeviceVolume();
    const slots = Buffer.from(state.slots, 'base64');
    if (slots.length !== volume.slots.byteLength || state.slotDays.length !== RING_DAYS) return undefined;
    for (let i = 0; i < volume.slots.length; i++) volume.slots[i] = slots.readUInt16LE(i * 2);
    volume.slotDays.set(state.slotDays);
    if (state.windowLength !== params.window || state.window < 0) return volume;
    volume.start(state.window, params);
    volume.counts.messages = state.counts.messages;
    volume.counts.recipients = state.counts.recipients;
    volume.alerted = state.alerted;
    for (const hash of state.domains.slice(0, MAX_WINDOW_DOMAINS)) volume.insertHash(hash >>> 0 || 1);
    return volume;
  }

  /** Metrics of the current window over their threshold. */
  exceeded(): Metric[] {
    return METRICS.filter((metric) => this.counts[metric] > this.threshold[metric]);
  }

  /** Keeps the ended window's counts in its day and hour slot, unless it alerted. */
  private fold(windowLength: number): void {
    if (this.alerted) return;
    const start = this.window * windowLength;
    const day = Math.floor(start / DAY);
    const hour = Math.floor((start - day * DAY) / HOUR);
    const ring = day % RING_DAYS;
    if (this.slotDays[ring] !== day) {
      this.slots.fill(0, ring * HOURS * METRICS.length, (ring + 1) * HOURS * METRICS.length);
      this.slotDays[ring] = day;
    }
    const base = (ring * HOURS + hour) * METRICS.length;
    METRICS.forEach((metric, i) => {
      const value = Math.min(this.counts[metric], SLOT_MAX);
      if (value > (this.slots[base + i] as number)) this.slots[base + i] = value;
    });
  }

  private start(window: number, params: VolumeParams): void {
    this.window = window;
    this.alerted = false;
    this.counts.messages = 0;
    this.counts.recipients = 0;
    this.counts.domains = 0;
    if (this.domainTable !== undefined) this.domainTable.fill(0);

    const start = window * params.window;
    const day = Math.floor(start / DAY);
    const hour = Math.floor((start - day * DAY) / HOUR);
    this.baseline.messages = 0;
    this.baseline.recipients = 0;
    this.baseline.domains = 0;
    this.baselineDays = 0;
    for (let back = 1; back <= BASELINE_DAYS; back++) {
      if (day - back >= 0 && this.slotDays[(day - back) % RING_DAYS] === day - back) this.baselineDays++;
      for (let offset = -1; offset <= 1; offset++) {
        // Absolute hour arithmetic, so the neighbour of 00:00 is 23:00 of the day before.
        const absoluteHour = (day - back) * HOURS + hour + offset;
        const slotDay = Math.floor(absoluteHour / HOURS);
        const ring = slotDay % RING_DAYS;
        if (slotDay < 0 || this.slotDays[ring] !== slotDay) continue;
        const base = (ring * HOURS + (absoluteHour - slotDay * HOURS)) * METRICS.length;
        METRICS.forEach((metric, i) => {
          this.baseline[metric] = Math.max(this.baseline[metric], this.slots[base + i] as number);
        });
      }
    }
    for (const metric of METRICS) {
      this.threshold[metric] = Math.max(params.factor * this.baseline[metric], params.floors[metric]);
    }
  }

  private addDomain(address: string, start: number): void {
    if (this.counts.domains >= MAX_WINDOW_DOMAINS) return;
    // 0 marks an empty entry, so a hash of 0 is stored as 1.
    this.insertHash(domainHash(address, start) || 1);
  }

  /** Counts a domain hash (not 0) unless the window has it already. */
  private insertHash(hash: number): void {
    if (this.counts.domains >= MAX_WINDOW_DOMAINS) return;
    this.domainTable ??= new Uint32Array(DOMAIN_TABLE_SIZE);
    const table = this.domainTable;
    let index = hash & (DOMAIN_TABLE_SIZE - 1);
    while (table[index] !== 0) {
      if (table[index] === hash) return;
      index = (index + 1) & (DOMAIN_TABLE_SIZE - 1);
    }
    table[index] = hash;
    this.counts.domains++;
  }
}

/** 32-bit FNV-1a over the UTF-16 code units of text from start, with A-Z taken as a-z. */
function domainHash(text: string, start: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) code += 0x20;
    hash ^= code;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
