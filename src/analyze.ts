import type { Config } from './config/schema.js';
import { cidrContains } from './config/values.js';
import { Detector } from './detect/index.js';
import type { MailObservation, SessionObservation } from './detect/types.js';
import { Inventory } from './devices/inventory.js';
import { ANALYZER_STATE_VERSION, parseAnalyzerState, type AnalyzerState } from './analyze-state.js';
import type { Device, NeighborObservation } from './devices/types.js';
import { alertEvent } from './events/alert.js';
import type { EcsEvent } from './events/ecs.js';
import type { MessageInfo } from './mail/types.js';
import type { ScanResult } from './scan/types.js';
import type { SmtpSessionInfo, SmtpTransaction } from './smtp/types.js';
import type { Flow } from './tcp/types.js';

/** MIME anomalies after which the parser describes no more parts. */
const UNCHECKED_PARTS = new Set(['mime_too_deep', 'mime_too_many_parts']);

export { ANALYZER_STATE_VERSION, type AnalyzerState } from './analyze-state.js';

interface AddressClass {
  internal: boolean;
  relay: boolean;
}

/** Maximum number of addresses whose internal and relay classification is cached. */
const MAX_CLASSIFIED_ADDRESSES = 65536;

/**
 * The stages after SMTP: the device inventory and the detectors. It takes transactions and
 * sessions in the order the pipeline reports them and returns the alert events each one raised.
 */
export class Analyzer {
  private devices: Inventory;
  private detector: Detector;
  private readonly config: Config;
  private pending: EcsEvent[] = [];
  private readonly classes = new Map<string, AddressClass>();
  /** Newest capture time of a counted transaction or session, or -1 before the first. */
  private newestTs = -1;
  /** Transactions and sessions at or before this time were counted before a restore. */
  private countedUntil = -1;
  /** Transactions and sessions skipped because a restored state had counted them. */
  skippedAsCounted = 0;

  constructor(config: Config) {
    this.config = config;
    this.devices = this.newInventory();
    this.detector = this.newDetector();
  }

  /** The device inventory. */
  get inventory(): Inventory {
    return this.devices;
  }

  /**
   * Returns the inventory and detector state as plain data (copies) that JSON.stringify
   * keeps, with a version number. Save it and pass it to restore() after a restart.
   */
  snapshot(): AnalyzerState {
    return {
      version: ANALYZER_STATE_VERSION,
      newestTs: Math.max(this.newestTs, this.countedUntil),
      inventory: this.devices.exportState(),
      detector: this.detector.exportState(),
    };
  }

  /**
   * Continues from a state that snapshot() returned, possibly in an earlier process: known
   * devices, baselines, the new_sender learning period and open alerts carry on. Call it
   * before the first observation. Data that is not a state of this version is ignored, so
   * the analyzer stays empty and the method returns the reason, as a warning for the user.
   *
   * Transactions and sessions with a capture time at or before the state's newest one count
   * as seen already. They get a device but no counting and no detection, so reading the same
   * capture again, or again from its start after a crash, counts nothing twice. A transaction
   * that started before that time but ended after the state was saved is therefore not
   * counted either.
   */
  restore(data: unknown): string | undefined {
    const parsed = parseAnalyzerState(data);
    if ('error' in parsed) return parsed.error;
    const inventory = this.newInventory();
    const detector = this.newDetector();
    try {
      inventory.importState(parsed.state.inventory);
      detector.importState(parsed.state.detector, (key) => inventory.get(key));
    } catch (error) {
      return `saved state is damaged: ${(error as Error).message}`;
    }
    this.devices = inventory;
    this.detector = detector;
    this.countedUntil = parsed.state.newestTs;
    this.pending = [];
    return undefined;
  }

  private newInventory(): Inventory {
    return new Inventory(this.config, {
      maxDevices: this.config.detect.max_devices,
      routerMinIps: this.config.inventory.router_min_ips,
    });
  }

  private newDetector(): Detector {
    return new Detector(this.config, (alert, change) => this.pending.push(alertEvent(alert, change)));
  }

  /** Returns true when a restored state counted this time already, and otherwise records it as the newest. */
  private counted(ts: number): boolean {
    if (ts <= this.countedUntil) {
      this.skippedAsCounted++;
      return true;
    }
    if (ts > this.newestTs) this.newestTs = ts;
    return false;
  }

  /** Learns from an ARP, DHCP or neighbour discovery packet. */
  observeNeighbor(observation: NeighborObservation): void {
    this.devices.observeNeighbor(observation);
  }

  /** Returns the device that is the client of the flow. */
  clientDevice(flow: Flow, ts: number): Device {
    return this.devices.resolveClient(flow.client.mac, flow.client.ip, ts);
  }

  /** Counts a finished transaction, runs the detectors and returns the alert events raised. */
  transaction(
    tx: SmtpTransaction,
    message: MessageInfo | undefined,
    eventId: string,
    device: Device,
    scan?: ScanResult,
  ): EcsEvent[] {
    if (this.counted(tx.startTs)) return [];
    this.devices.recordTransaction(device, tx);
    // Built field by field rather than with object spreads, which made a temporary object and
    // a runtime copy per transaction.
    const client = this.classify(tx.flow.client.ip);
    const server = this.classify(tx.flow.server.ip);
    const observation: MailObservation = {
      ts: tx.startTs,
      eventId,
      device,
      clientIp: tx.flow.client.ip,
      serverIp: tx.flow.server.ip,
      serverPort: tx.flow.server.port,
      clientInternal: client.internal,
      serverInternal: server.internal,
      serverIsRelay: server.relay,
      recipients: tx.recipients.map((r) => (r.reply ? { address: r.address, code: r.reply.code } : { address: r.address })),
      accepted: tx.status === 'completed',
      tls: tx.tls,
      attachments: message === undefined || message.attachments.length === 0 ? [] : attachmentObservations(message),
    };
    if (tx.unlistedRecipients !== undefined) observation.unlistedRecipients = tx.unlistedRecipients;
    if (message?.anomalies.some((name) => UNCHECKED_PARTS.has(name))) observation.partsUnchecked = true;
    if (tx.helo !== undefined) observation.helo = tx.helo;
    if (tx.mailFrom !== undefined) observation.mailFrom = tx.mailFrom;
    if (tx.authMechanism !== undefined) observation.authMechanism = tx.authMechanism;
    if (tx.authUser !== undefined) observation.authUser = tx.authUser;
    if (scan !== undefined) observation.scan = scan;
    this.detector.observeTransaction(observation);
    return this.take();
  }

  /** Counts a finished session, runs the detectors and returns the alert events raised. */
  session(info: SmtpSessionInfo, device: Device): EcsEvent[] {
    if (this.counted(info.startTs)) return [];
    // A connection that carried no SMTP bytes (a SYN scan, a refused connection) is not counted
    // as a session of the device.
    if (info.flow.bytes[0] + info.flow.bytes[1] > 0) this.devices.recordSession(device, info.helo);
    const client = this.classify(info.flow.client.ip);
    const server = this.classify(info.flow.server.ip);
    const observation: SessionObservation = {
      ts: info.startTs,
      eventId: `${info.flow.id}-0`,
      device,
      clientIp: info.flow.client.ip,
      serverIp: info.flow.server.ip,
      serverPort: info.flow.server.port,
      clientInternal: client.internal,
      serverInternal: server.internal,
      serverIsRelay: server.relay,
      tls: info.tls,
      transactions: info.transactions,
    };
    if (info.helo !== undefined) observation.helo = info.helo;
    if (info.authMechanism !== undefined) observation.authMechanism = info.authMechanism;
    if (info.authUser !== undefined) observation.authUser = info.authUser;
    if (info.authSuccess !== undefined) observation.authSuccess = info.authSuccess;
    this.detector.observeSession(observation);
    return this.take();
  }

  /** Ends the input and returns the final state of the alerts that changed since they were last sent. */
  flush(ts: number): EcsEvent[] {
    this.detector.flush(ts);
    return this.take();
  }

  /**
   * Returns the ECS network.direction of a flow, judged by networks.internal. A client inside and a
   * server outside is outbound, the reverse inbound, both inside internal, both outside external.
   */
  direction(flow: Flow): 'outbound' | 'inbound' | 'internal' | 'external' {
    const client = this.classify(flow.client.ip).internal;
    const server = this.classify(flow.server.ip).internal;
    if (client) return server ? 'internal' : 'outbound';
    return server ? 'inbound' : 'external';
  }

  /** Returns whether an address is internal and a relay, cached because a site has few servers. */
  private classify(ip: string): AddressClass {
    let found = this.classes.get(ip);
    if (found === undefined) {
      found = {
        internal: this.devices.isInternal(ip),
        relay: this.config.networks.relays.some((cidr) => cidrContains(cidr, ip)),
      };
      // A bounded cache: past the bound it starts over rather than growing.
      if (this.classes.size >= MAX_CLASSIFIED_ADDRESSES) this.classes.clear();
      this.classes.set(ip, found);
    }
    return found;
  }

  private take(): EcsEvent[] {
    if (this.pending.length === 0) return [];
    const events = this.pending;
    this.pending = [];
    return events;
  }
}

/** Returns the attachments of a message as the detectors see them. */
function attachmentObservations(message: MessageInfo): MailObservation['attachments'] {
  // The fields keep this order: risky_attachment alerts show these objects as evidence.
  return message.attachments.map((part) => {
    const attachment: MailObservation['attachments'][number] =
      part.filename !== undefined
        ? { name: part.filename, mimeType: part.contentType, size: part.size }
        : { mimeType: part.contentType, size: part.size };
    if (part.sha256 !== undefined) attachment.sha256 = part.sha256;
    return attachment;
  });
}
