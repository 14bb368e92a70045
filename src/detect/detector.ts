import type { Config, SenderMatch } from '../config/schema.js';
import { cidrContains, type Cidr } from '../config/values.js';
import type { Device } from '../devices/types.js';
import { AlertBook, type AlertSink, type SavedAlert } from './alerts.js';
import { classifyAttachment, type AttachmentRisk } from './attachments.js';
import { DeviceVolume, type VolumeParams, type VolumeState } from './baseline.js';
import { deviceName, formatDuration } from './describe.js';
import { IdentityTracker, type IdentityChange, type IdentityState } from './identity.js';
import { LruMap } from './lru.js';
import { ruleSettings, type RuleSettings } from './rules.js';
import type { AttachmentObservation, MailObservation, RuleName, SessionObservation } from './types.js';

/**
 * Mechanisms whose client responses contain a reusable secret that anyone on the path can
 * decode: the password for PLAIN and LOGIN, a bearer token for XOAUTH2 and OAUTHBEARER.
 */
const CLEARTEXT_MECHANISMS = new Set(['PLAIN', 'LOGIN', 'XOAUTH2', 'OAUTHBEARER']);

/** Bits of the cached classification of a client IP address. */
const IS_RELAY = 1;
const IN_ALLOWED_NETWORK = 2;

/** Rejected recipients and risky attachments listed in the evidence of one match. */
const MAX_EVIDENCE_ITEMS = 10;

const RISK_TEXT: Record<AttachmentRisk, string> = {
  blocked_sha256: 'an attachment on the SHA-256 block list',
  executable: 'an executable attachment',
  double_extension: 'an executable attachment behind a double extension',
  macro_document: 'a macro-enabled document',
  parts_unchecked: 'a message nested too deep or with too many MIME parts to check its attachments',
};

/** Maximum length of a wire value (an EHLO name) quoted in an alert message. The evidence keeps it whole. */
const MAX_QUOTED = 64;

function quoted(value: string): string {
  return `"${value.length > MAX_QUOTED ? value.slice(0, MAX_QUOTED) + '…' : value}"`;
}

/** Returns the sentence that follows the device's name in an identity_change message. */
function identityText(change: IdentityChange): string {
  switch (change.kind) {
    case 'mac_changed':
      return `sent from ${change.ip}, which belonged to MAC ${change.previous} before`;
    case 'ehlo_changed':
      return `sent from ${change.ip} with EHLO name ${quoted(change.current)}, which used ${quoted(change.previous)} before`;
    case 'too_many_ehlo_names':
      return `used ${change.names.length} EHLO names, more than the limit of ${change.limit}`;
  }
}

/** The timestamps of a device's last N rejected recipients, N being the burst size. */
class RejectionRing {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(size: number) {
    this.ring = new Float64Array(size);
  }

  /** Returns the stored rejection times, oldest first. */
  times(): number[] {
    const out: number[] = [];
    const size = this.ring.length;
    for (let i = 0; i < this.filled; i++) out.push(this.ring[(this.next - this.filled + i + size) % size] as number);
    return out;
  }

  /** Adds one rejection and returns true when the last N rejections all fall within window seconds. */
  add(ts: number, window: number): boolean {
    this.ring[this.next] = ts;
    this.next = (this.next + 1) % this.ring.length;
    if (this.filled < this.ring.length) this.filled++;
    if (this.filled < this.ring.length) return false;
    // After the write, next points at the oldest of the last N.
    return ts - (this.ring[this.next] as number) <= window;
  }
}

/** Rated and spam messages of a device in the current spam_rate window. */
interface SpamWindow {
  window: number;
  rated: number;
  spam: number;
  alerted: boolean;
}

interface DeviceState {
  volume?: DeviceVolume;
  rejections?: RejectionRing;
  spam?: SpamWindow;
}

/** The learned state of a Detector as plain data that JSON keeps; see Detector.exportState. */
export interface DetectorState {
  /** Capture time of the first observation, which starts the new_sender learning period. */
  firstTs?: number;
  /** Per device key, least recently used first. */
  devices: [string, { volume?: VolumeState; rejections?: number[] }][];
  identity: IdentityState;
  alerts: SavedAlert[];
}

export interface DetectorStats {
  /** Devices with volume or rejection state. */
  devices: number;
  alerts: number;
  /** Client IP addresses and MACs tracked for identity_change. */
  addresses: number;
  macs: number;
  /** Device states and alerts evicted to stay within detect.max_devices and detect.max_alerts. */
  evictedDevices: number;
  evictedAlerts: number;
  /** Scheduled checks for pending alert updates. */
  queuedChecks: number;
  /** Observations ignored because their timestamp was not a finite, non-negative number. */
  invalidObservations: number;
}

/**
 * The detection engine: it applies the rules of RULES to each observation and reports alerts,
 * deduplicated per rule and device, through the emit callback. Time is the capture time of the
 * observations. The wall clock is never read.
 */
export class Detector {
  private readonly rules: RuleSettings;
  private readonly book: AlertBook;
  private readonly devices: LruMap<string, DeviceState>;
  private readonly identity: IdentityTracker;
  /** IS_RELAY and IN_ALLOWED_NETWORK per client IP address, because CIDR matching is slow. */
  private readonly addressFlags: LruMap<string, number>;
  private readonly allowed: readonly SenderMatch[];
  private readonly relays: readonly Cidr[];
  private readonly blocked: ReadonlySet<string>;
  private readonly volume: VolumeParams;
  private readonly thresholds: Config['thresholds'];
  private readonly scanConfig: Config['scan'];
  private firstTs: number | undefined;
  private invalid = 0;

  constructor(config: Config, emit: AlertSink) {
    this.rules = ruleSettings(config);
    this.thresholds = config.thresholds;
    this.scanConfig = config.scan;
    this.book = new AlertBook(
      {
        updateInterval: config.thresholds.alert_update_interval,
        reopenAfter: config.thresholds.alert_reopen_after,
        maxAlerts: config.detect.max_alerts,
        severity: this.rules.severity,
      },
      emit,
    );
    this.devices = new LruMap(config.detect.max_devices);
    this.identity = new IdentityTracker({
      window: config.thresholds.identity_window,
      maxNames: config.thresholds.identity_max_ehlo_names,
      maxEntries: config.detect.max_devices,
    });
    this.addressFlags = new LruMap(config.detect.max_devices);
    this.allowed = config.senders.allowed;
    this.relays = config.networks.relays;
    this.blocked = new Set(config.detect.blocked_sha256);
    this.volume = {
      window: config.thresholds.volume_window,
      factor: config.thresholds.volume_factor,
      floors: {
        messages: config.thresholds.volume_floor_messages,
        recipients: config.thresholds.volume_floor_recipients,
        domains: config.thresholds.volume_floor_domains,
      },
    };
  }

  observeTransaction(o: MailObservation): void {
    if (!this.accept(o.ts)) return;
    if (!o.clientInternal) return;
    this.checkIdentity(o);
    if (this.isRelay(o.clientIp)) {
      // A relay forwards the mail of other devices, which are judged when they send to it.
      // Its volume still counts, because a flood through the relay or from it shows there.
      if (o.mailFrom !== undefined) this.checkVolume(o);
      return;
    }
    if (o.mailFrom !== undefined) {
      this.checkUnauthorizedSender(o);
      this.checkNewSender(o);
      this.checkVolume(o);
    }
    this.checkRejectedRecipients(o);
    this.checkAttachments(o);
    if (o.scan !== undefined) this.checkScan(o);
  }

  observeSession(o: SessionObservation): void {
    if (!this.accept(o.ts)) return;
    this.checkCleartextAuth(o);
    if (!o.clientInternal) return;
    this.checkIdentity(o);
    this.checkRelayBypass(o);
  }

  /** Ends the input: emits the final state of every alert changed since its last emission. */
  flush(ts: number): void {
    if (Number.isFinite(ts)) this.book.sweep(ts);
    this.book.flush();
  }

  stats(): DetectorStats {
    return {
      devices: this.devices.size,
      alerts: this.book.size,
      addresses: this.identity.addresses.size,
      macs: this.identity.macNames.size,
      evictedDevices: this.devices.evicted,
      evictedAlerts: this.book.evicted,
      queuedChecks: this.book.queued,
      invalidObservations: this.invalid,
    };
  }

  /**
   * Returns what the detector learned, as copies in plain data: the start of the learning
   * period, per-device volume baselines and rejection times, identity bindings and open alerts.
   * Caches that are rebuilt from the config are left out.
   */
  exportState(): DetectorState {
    const state: DetectorState = {
      devices: this.devices.toArray().map(([key, device]) => {
        const saved: DetectorState['devices'][number][1] = {};
        if (device.volume) saved.volume = device.volume.toState(this.volume.window);
        if (device.rejections) saved.rejections = device.rejections.times();
        return [key, saved];
      }),
      identity: this.identity.exportState(),
      alerts: this.book.exportState(),
    };
    if (this.firstTs !== undefined) state.firstTs = this.firstTs;
    return state;
  }

  /**
   * Loads a state from exportState into a detector that has not observed anything yet.
   * Thresholds come from this detector's config, so a changed config applies at once.
   * `device` returns the live device record for a key (the inventory's), for the open alerts.
   */
  importState(state: DetectorState, device: (key: string) => Device | undefined): void {
    if (state.firstTs !== undefined) this.firstTs = state.firstTs;
    const burst = this.thresholds.rejected_recipients;
    for (const [key, saved] of state.devices) {
      const entry: DeviceState = {};
      if (saved.volume) {
        const volume = DeviceVolume.fromState(saved.volume, this.volume);
        if (volume) entry.volume = volume;
      }
      if (saved.rejections && saved.rejections.length > 0) {
        entry.rejections = new RejectionRing(burst);
        for (const ts of saved.rejections.slice(-burst)) entry.rejections.add(ts, 0);
      }
      this.devices.set(key, entry);
    }
    this.identity.importState(state.identity);
    this.book.importState(state.alerts, device);
  }

  private accept(ts: number): boolean {
    if (!Number.isFinite(ts) || ts < 0) {
      this.invalid++;
      return false;
    }
    this.firstTs ??= ts;
    this.book.sweep(ts);
    return true;
  }

  private enabled(rule: RuleName): boolean {
    return this.rules.enabled[rule];
  }

  private flags(ip: string): number {
    let flags = this.addressFlags.get(ip);
    if (flags === undefined) {
      flags = 0;
      if (this.relays.some((cidr) => cidrContains(cidr, ip))) flags |= IS_RELAY;
      if (this.allowed.some((match) => match.kind === 'network' && cidrContains(match.cidr, ip))) flags |= IN_ALLOWED_NETWORK;
      this.addressFlags.set(ip, flags);
    }
    return flags;
  }

  private isRelay(ip: string): boolean {
    return (this.flags(ip) & IS_RELAY) !== 0;
  }

  private state(device: Device): DeviceState {
    let state = this.devices.get(device.key);
    if (state === undefined) {
      state = {};
      this.devices.set(device.key, state);
    }
    return state;
  }

  private record(
    rule: RuleName,
    o: MailObservation | SessionObservation,
    summary: string,
    evidence: Record<string, unknown>,
    increment = 1,
  ): void {
    const message = `${deviceName(o.device, o.clientIp)} ${summary}`;
    this.book.record({ rule, device: o.device, ts: o.ts, eventId: o.eventId, message, evidence, increment });
  }

  private checkUnauthorizedSender(o: MailObservation): void {
    // Without a list of senders every device would match, so the rule needs one.
    if (!this.enabled('unauthorized_sender') || this.allowed.length === 0) return;
    const device = o.device;
    const allowed =
      (this.flags(o.clientIp) & IN_ALLOWED_NETWORK) !== 0 ||
      this.allowed.some((match) => {
        if (match.kind === 'mac') return device.mac !== undefined && !device.isRouter && match.mac === device.mac;
        return match.kind === 'label' && device.label !== undefined && match.label === device.label;
      });
    if (allowed) return;
    this.record('unauthorized_sender', o, 'sent mail but is not an allowed sender', {
      clientIp: o.clientIp,
      mac: device.mac,
      mailFrom: o.mailFrom,
      serverIp: o.serverIp,
      serverPort: o.serverPort,
      recipients: o.recipients.length,
    });
  }

  private checkNewSender(o: MailObservation): void {
    if (!this.enabled('new_sender')) return;
    // The inventory may or may not have counted this transaction yet, so a first MAIL FROM
    // at this very timestamp still counts as the first.
    const firstMail = o.device.firstMailSeen;
    if (firstMail !== undefined && firstMail < o.ts) return;
    if (o.ts - (this.firstTs as number) < this.thresholds.new_sender_learning) return;
    this.record('new_sender', o, 'sent mail for the first time', {
      clientIp: o.clientIp,
      mac: o.device.mac,
      mailFrom: o.mailFrom,
      serverIp: o.serverIp,
      serverPort: o.serverPort,
      deviceFirstSeen: o.device.firstSeen,
    });
  }

  private checkVolume(o: MailObservation): void {
    if (!this.enabled('volume_spike')) return;
    const state = this.state(o.device);
    state.volume ??= new DeviceVolume();
    const volume = state.volume;

    const verdict = volume.add(o.ts, o.recipients, this.volume, o.unlistedRecipients ?? 0);
    if (verdict === 'normal') return;

    const window = this.volume.window;
    const counts = volume.counts;
    const evidence = {
      window: { start: volume.window * window, end: (volume.window + 1) * window, seconds: window },
      messages: counts.messages,
      recipients: counts.recipients,
      domains: counts.domains,
      baseline: { ...volume.baseline, days: volume.baselineDays },
      threshold: { ...volume.threshold },
      exceeded: volume.exceeded(),
    };
    const summary =
      `sent ${counts.messages} messages to ${counts.recipients} recipients in ${counts.domains} domains ` +
      `within ${formatDuration(window)}, over its threshold of ${volume.threshold.messages} messages, ` +
      `${volume.threshold.recipients} recipients, ${volume.threshold.domains} domains`;
    // One match per window that crosses; later messages of that window refresh the evidence only.
    this.record('volume_spike', o, summary, evidence, verdict === 'crossed' ? 1 : 0);
  }

  private checkRejectedRecipients(o: MailObservation): void {
    if (!this.enabled('rejected_recipients')) return;
    const burst = this.thresholds.rejected_recipients;
    const window = this.thresholds.rejected_window;
    let matched = 0;
    const rejected: { address: string; code: number }[] = [];
    for (const recipient of o.recipients) {
      const code = recipient.code;
      if (code === undefined || code < 500 || code > 599) continue;
      const state = this.state(o.device);
      state.rejections ??= new RejectionRing(burst);
      if (state.rejections.add(o.ts, window)) matched++;
      if (rejected.length < MAX_EVIDENCE_ITEMS) rejected.push({ address: recipient.address, code });
    }
    if (matched === 0) return;
    this.record(
      'rejected_recipients',
      o,
      `had ${burst} or more recipients rejected with 5xx within ${formatDuration(window)}`,
      { burst, window, rejected, mailFrom: o.mailFrom, serverIp: o.serverIp, serverPort: o.serverPort },
      matched,
    );
  }

  private checkAttachments(o: MailObservation): void {
    if (!this.enabled('risky_attachment') || (o.attachments.length === 0 && !o.partsUnchecked)) return;
    const risky: (AttachmentObservation & { reason: AttachmentRisk })[] = [];
    for (const attachment of o.attachments) {
      const reason = classifyAttachment(attachment, this.blocked);
      if (reason !== undefined && risky.length < MAX_EVIDENCE_ITEMS) risky.push({ ...attachment, reason });
    }
    const first = risky[0];
    // A structure the parser gave up on can hide any attachment, so it counts as risky itself.
    const reason = first?.reason ?? (o.partsUnchecked ? 'parts_unchecked' : undefined);
    if (reason === undefined) return;
    this.record('risky_attachment', o, `sent ${RISK_TEXT[reason]}`, {
      attachments: risky,
      ...(o.partsUnchecked ? { partsUnchecked: true } : {}),
      mailFrom: o.mailFrom,
      recipients: o.recipients.length,
      serverIp: o.serverIp,
      serverPort: o.serverPort,
    });
  }

  private checkScan(o: MailObservation): void {
    const clamav = o.scan?.clamav;
    if (this.enabled('virus_found') && clamav?.status === 'scanned' && clamav.verdict.signatures.length > 0) {
      const signatures = clamav.verdict.signatures.slice(0, MAX_EVIDENCE_ITEMS);
      this.record('virus_found', o, `sent a message with ${signatures.join(', ')} (clamd)`, {
        signatures,
        mailFrom: o.mailFrom,
        recipients: o.recipients.length,
        serverIp: o.serverIp,
        serverPort: o.serverPort,
      });
    }
    const rspamd = o.scan?.rspamd;
    if (rspamd?.status !== 'scanned') return;
    const verdict = rspamd.verdict;
    const spam = verdict.score >= this.scanConfig.spam_score || verdict.action === 'reject';
    if (spam && this.enabled('spam_outbound')) {
      this.record('spam_outbound', o, `sent a message that rspamd scored ${verdict.score} (action ${verdict.action})`, {
        score: verdict.score,
        requiredScore: Number.isFinite(verdict.requiredScore) ? verdict.requiredScore : undefined,
        threshold: this.scanConfig.spam_score,
        action: verdict.action,
        symbols: verdict.symbols.slice(0, MAX_EVIDENCE_ITEMS),
        mailFrom: o.mailFrom,
        recipients: o.recipients.length,
        serverIp: o.serverIp,
        serverPort: o.serverPort,
      });
    }
    if (this.enabled('spam_rate')) this.checkSpamRate(o, spam);
  }

  private checkSpamRate(o: MailObservation, spam: boolean): void {
    const rate = this.scanConfig.spam_rate;
    const state = this.state(o.device);
    const window = Math.floor(o.ts / rate.window);
    if (state.spam === undefined || state.spam.window !== window) state.spam = { window, rated: 0, spam: 0, alerted: false };
    const counts = state.spam;
    counts.rated++;
    if (spam) counts.spam++;
    if (counts.rated < rate.min_messages || counts.spam < counts.rated * rate.share) return;
    const percent = Math.round((counts.spam / counts.rated) * 100);
    // One match per window that crosses; later messages of that window refresh the evidence only.
    this.record(
      'spam_rate',
      o,
      `sent ${counts.spam} spam messages out of ${counts.rated} rated within ${formatDuration(rate.window)} (${percent} %)`,
      {
        window: { start: window * rate.window, end: (window + 1) * rate.window, seconds: rate.window },
        rated: counts.rated,
        spam: counts.spam,
        share: counts.spam / counts.rated,
        threshold: { share: rate.share, minMessages: rate.min_messages, spamScore: this.scanConfig.spam_score },
      },
      counts.alerted ? 0 : 1,
    );
    counts.alerted = true;
  }

  private checkIdentity(o: MailObservation | SessionObservation): void {
    if (!this.enabled('identity_change')) return;
    // A router's MAC carries many hosts, and a host behind a router has no MAC of its own.
    const mac = o.device.isRouter || !o.device.key.startsWith('mac:') ? undefined : o.device.mac;
    for (const change of this.identity.observe(o.ts, o.clientIp, mac, o.helo)) {
      this.record('identity_change', o, identityText(change), { ...change });
    }
  }

  private checkCleartextAuth(o: SessionObservation): void {
    if (!this.enabled('cleartext_auth') || o.tls || o.authMechanism === undefined) return;
    const mechanism = o.authMechanism.toUpperCase();
    if (!CLEARTEXT_MECHANISMS.has(mechanism)) return;
    // NOTE: the session's tls flag does not tell whether AUTH came before or after STARTTLS,
    // so a session that authenticates in clear and then starts TLS is not caught.
    this.record('cleartext_auth', o, `sent AUTH ${mechanism} credentials without TLS to ${o.serverIp}:${o.serverPort}`, {
      mechanism,
      user: o.authUser,
      success: o.authSuccess,
      serverIp: o.serverIp,
      serverPort: o.serverPort,
    });
  }

  private checkRelayBypass(o: SessionObservation): void {
    // With no relays configured, direct delivery is the site's design.
    if (!this.enabled('relay_bypass') || this.relays.length === 0) return;
    if (o.serverInternal || o.serverIsRelay || this.isRelay(o.clientIp)) return;
    // A session counts once the client spoke SMTP, not for a bare TCP connection.
    const spokeSmtp = o.helo !== undefined || o.transactions > 0 || o.tls || o.authMechanism !== undefined;
    if (!spokeSmtp) return;
    this.record('relay_bypass', o, `sent SMTP straight to external server ${o.serverIp}:${o.serverPort}, bypassing the relays`, {
      serverIp: o.serverIp,
      serverPort: o.serverPort,
      helo: o.helo,
      tls: o.tls,
      transactions: o.transactions,
    });
  }
}
