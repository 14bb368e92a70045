import type { Config } from './config/schema.js';
import { cidrContains } from './config/values.js';
import { Detector } from './detect/index.js';
import type { MailObservation, SessionObservation } from './detect/types.js';
import { Inventory } from './devices/inventory.js';
import type { Device, NeighborObservation } from './devices/types.js';
import { alertEvent } from './events/alert.js';
import type { EcsEvent } from './events/ecs.js';
import type { MessageInfo } from './mail/types.js';
import type { ScanResult } from './scan/types.js';
import type { SmtpSessionInfo, SmtpTransaction } from './smtp/types.js';
import type { Flow } from './tcp/types.js';

interface AddressClass {
  internal: boolean;
  relay: boolean;
}

/** Addresses whose internal and relay classification is cached. */
const MAX_CLASSIFIED_ADDRESSES = 65536;

/**
 * The stages after SMTP: the device inventory and the detectors. It takes transactions and
 * sessions in the order the pipeline reports them and returns the alert events each one raised.
 */
export class Analyzer {
  readonly inventory: Inventory;
  private readonly detector: Detector;
  private readonly config: Config;
  private pending: EcsEvent[] = [];
  private readonly classes = new Map<string, AddressClass>();

  constructor(config: Config) {
    this.config = config;
    this.inventory = new Inventory(config, {
      maxDevices: config.detect.max_devices,
      routerMinIps: config.inventory.router_min_ips,
    });
    this.detector = new Detector(config, (alert, change) => this.pending.push(alertEvent(alert, change)));
  }

  /** Learns from an ARP, DHCP or neighbour discovery packet. */
  observeNeighbor(observation: NeighborObservation): void {
    this.inventory.observeNeighbor(observation);
  }

  /** Returns the device that is the client of the flow. */
  clientDevice(flow: Flow, ts: number): Device {
    return this.inventory.resolveClient(flow.client.mac, flow.client.ip, ts);
  }

  /** Counts a finished transaction and runs the detectors; returns the alert events raised. */
  transaction(
    tx: SmtpTransaction,
    message: MessageInfo | undefined,
    eventId: string,
    device: Device,
    scan?: ScanResult,
  ): EcsEvent[] {
    this.inventory.recordTransaction(device, tx);
    const observation: MailObservation = {
      ...this.endpoints(tx.flow, tx.startTs, eventId, device),
      recipients: tx.recipients.map((r) => (r.reply ? { address: r.address, code: r.reply.code } : { address: r.address })),
      accepted: tx.status === 'completed',
      tls: tx.tls,
      attachments: (message?.attachments ?? []).map((part) => ({
        ...(part.filename !== undefined ? { name: part.filename } : {}),
        mimeType: part.contentType,
        size: part.size,
        ...(part.sha256 !== undefined ? { sha256: part.sha256 } : {}),
      })),
    };
    if (tx.helo !== undefined) observation.helo = tx.helo;
    if (tx.mailFrom !== undefined) observation.mailFrom = tx.mailFrom;
    if (tx.authMechanism !== undefined) observation.authMechanism = tx.authMechanism;
    if (tx.authUser !== undefined) observation.authUser = tx.authUser;
    if (scan !== undefined) observation.scan = scan;
    this.detector.observeTransaction(observation);
    return this.take();
  }

  /** Counts a finished session and runs the detectors; returns the alert events raised. */
  session(info: SmtpSessionInfo, device: Device): EcsEvent[] {
    // A connection that carried no SMTP bytes (a SYN scan, a refused connection) is not counted
    // as a session of the device.
    if (info.flow.bytes[0] + info.flow.bytes[1] > 0) this.inventory.recordSession(device, info.helo);
    const observation: SessionObservation = {
      ...this.endpoints(info.flow, info.startTs, `${info.flow.id}-0`, device),
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

  /** End of input: returns the final state of the alerts that changed since they were last sent. */
  flush(ts: number): EcsEvent[] {
    this.detector.flush(ts);
    return this.take();
  }

  private endpoints(flow: Flow, ts: number, eventId: string, device: Device) {
    const client = this.classify(flow.client.ip);
    const server = this.classify(flow.server.ip);
    return {
      ts,
      eventId,
      device,
      clientIp: flow.client.ip,
      serverIp: flow.server.ip,
      serverPort: flow.server.port,
      clientInternal: client.internal,
      serverInternal: server.internal,
      serverIsRelay: server.relay,
    };
  }

  /** Returns whether an address is internal and a relay, cached because a site has few servers. */
  private classify(ip: string): AddressClass {
    let found = this.classes.get(ip);
    if (found === undefined) {
      found = {
        internal: this.inventory.isInternal(ip),
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
