import { createHash, type Hash } from 'node:crypto';
import type { Analyzer } from './analyze.js';
import type { Packet } from './capture/types.js';
import { Decoder } from './decode/index.js';
import type { Device } from './devices/types.js';
import { sessionEvent, transactionEvent, type BodyDigest, type EcsEvent } from './events/ecs.js';
import { MessageParser } from './mail/index.js';
import type { MailLimits, MessageInfo } from './mail/types.js';
import { DEFAULT_SMTP_PORTS, IMPLICIT_TLS_PORTS, SmtpSession } from './smtp/index.js';
import type { BodySink, SmtpLimits, SmtpSessionInfo, SmtpTransaction } from './smtp/types.js';
import { MessageWorkerClient } from './pipeline-messages.js';
import { FlowTable } from './tcp/index.js';
import { scanFields, type ScanResult, type Scanner } from './scan/index.js';
import type { FlowLimits } from './tcp/types.js';

export interface PipelineOptions {
  /** Ports where SMTP is parsed; defaults to 25, 587 and 2525. */
  smtpPorts?: readonly number[];
  /** Ports where the session starts with TLS (SMTPS); defaults to 465. */
  implicitTlsPorts?: readonly number[];
  /** Skips header and MIME parsing of message bodies. */
  parseMessages?: boolean;
  /**
   * Parses messages in a worker thread (default true), in parallel with the packet stages. The
   * records are the same either way; false keeps everything on the calling thread.
   */
  messageWorker?: boolean;
  flowLimits?: Partial<FlowLimits>;
  smtpLimits?: Partial<SmtpLimits>;
  mailLimits?: Partial<MailLimits>;
  /**
   * Device inventory and detectors: they see every transaction and session, learn from ARP,
   * DHCP and neighbour discovery, and their alerts join the events after what raised them.
   */
  analyzer?: Analyzer;
  /**
   * Virus and spam scanning of each message (clamd, rspamd). A transaction's event waits for
   * its scan result; the packet stages do not.
   */
  scanner?: Scanner;
  /** Receives every event in order. Called asynchronously, after the body of a message is parsed. */
  onEvent(event: EcsEvent): void;
}

/** Counters of the SMTP and message stages; the packet stages keep their own. */
export interface PipelineCounters {
  sessions: number;
  transactions: number;
  events: number;
  anomalies: number;
  alerts: number;
  /** Connections to an SMTP port that carried no bytes: counted, not reported. */
  emptyFlows: number;
}

/**
 * The stages from a captured frame to ECS events: decode, TCP reassembly, SMTP, MIME.
 * Every stage below is synchronous except MIME parsing, so events pass through a promise chain
 * that keeps them in the order the SMTP stage finished them.
 */
export class Pipeline {
  readonly decoder: Decoder;
  readonly flows: FlowTable;
  /** The scanner of PipelineOptions, for the run summary. */
  get scanner(): Scanner | undefined {
    return this.options.scanner;
  }
  readonly counters: PipelineCounters = { sessions: 0, transactions: 0, events: 0, anomalies: 0, alerts: 0, emptyFlows: 0 };

  private readonly options: PipelineOptions;
  /** The analyzer of options, until replaceAnalyzer() sets another. */
  private analyzer: Analyzer | undefined;
  private readonly implicitTlsPorts: ReadonlySet<number>;
  private readonly bodies = new WeakMap<SmtpTransaction, BodyTap>();
  private tail: Promise<void> = Promise.resolve();
  /** Started at the first message body; undefined until then, or when messages stay in this thread. */
  private worker: MessageWorkerClient | undefined;
  private workerTried = false;
  private lastTs = 0;

  constructor(options: PipelineOptions) {
    this.options = options;
    this.analyzer = options.analyzer;
    this.decoder = new Decoder(
      options.analyzer ? { onNeighbor: (observation) => this.analyzer?.observeNeighbor(observation) } : {},
    );
    this.implicitTlsPorts = new Set(options.implicitTlsPorts ?? IMPLICIT_TLS_PORTS);
    const serverPorts = new Set([...(options.smtpPorts ?? DEFAULT_SMTP_PORTS), ...this.implicitTlsPorts]);
    const events = {
      openBody: (tx: SmtpTransaction) => this.openBody(tx),
      transaction: (tx: SmtpTransaction) => this.onTransaction(tx),
      session: (info: SmtpSessionInfo) => this.onSession(info),
    };
    this.flows = new FlowTable({
      serverPorts,
      limits: options.flowLimits,
      onFlow: (flow) =>
        new SmtpSession(flow, events, {
          implicitTls: this.implicitTlsPorts.has(flow.server.port),
          limits: options.smtpLimits,
        }),
    });
  }

  /** Feeds one captured frame through the stages. Never throws for bad input. */
  readonly handlePacket = (packet: Packet): void => {
    const segment = this.decoder.decode(packet);
    if (segment === undefined) return;
    this.lastTs = segment.ts;
    this.flows.process(segment);
  };

  /**
   * Moves the clock of the packet stages to `ts` (seconds) while no packet arrives, so that idle
   * flows time out and their sessions are reported. For live capture; never throws.
   */
  tick(ts: number): void {
    if (ts < this.lastTs) return;
    this.lastTs = ts;
    this.flows.advance(ts);
  }

  /**
   * Hands the inventory and detection to another analyzer (a reloaded configuration). The alert
   * updates the current one keeps are delivered first. What it learned is not copied here: the
   * caller restores the new analyzer from the old one's snapshot() before handing it over.
   */
  replaceAnalyzer(analyzer: Analyzer): void {
    const previous = this.analyzer;
    if (previous) {
      const ts = this.lastTs;
      this.enqueue(() => previous.flush(ts));
    }
    this.analyzer = analyzer;
  }

  /** Closes every open flow and waits until all events are delivered. */
  async finish(): Promise<void> {
    this.flows.closeAll(this.lastTs);
    this.worker?.flush();
    const analyzer = this.analyzer;
    if (analyzer) this.enqueue(() => analyzer.flush(this.lastTs));
    await this.tail;
    // Every result is in, so the worker can go; a later message starts a new one.
    this.worker?.close();
    this.worker = undefined;
    this.workerTried = false;
  }

  private openBody(tx: SmtpTransaction): BodySink {
    let parser: MessageSink | undefined;
    if (this.options.parseMessages !== false) {
      const worker = this.messageWorker();
      parser = worker ? new WorkerMessage(worker) : new MessageParser(this.options.mailLimits);
    }
    const tap = new BodyTap(parser, this.options.scanner);
    this.bodies.set(tx, tap);
    return tap;
  }

  /**
   * Returns the message worker, started on first use; undefined when it is off or failed. After a
   * failure the following messages are parsed in this thread.
   * NOTE: messages in flight when the worker fails are reported without MIME fields.
   */
  private messageWorker(): MessageWorkerClient | undefined {
    if (this.worker?.failed === true) this.worker = undefined;
    if (!this.workerTried) {
      this.workerTried = true;
      if (this.options.messageWorker !== false) {
        try {
          this.worker = new MessageWorkerClient(this.options.mailLimits);
        } catch {
          // No worker threads here (or the worker file is missing): parse in this thread.
          this.worker = undefined;
        }
      }
    }
    return this.worker;
  }

  private onTransaction(tx: SmtpTransaction): void {
    this.counters.transactions++;
    this.counters.anomalies += tx.anomalies.length;
    const tap = this.bodies.get(tx);
    // The digest and the result are all the tap still gives, so it is dropped now and not kept
    // as long as the transaction, which waits in the event chain.
    this.bodies.delete(tx);
    // A transaction without a body (rejected, reset) still had a sink opened at MAIL FROM,
    // but only a sink that received bytes describes a message.
    const hasBody = tap !== undefined && tap.size > 0;
    const digest = hasBody ? tap.digest() : undefined;
    const message = hasBody && tap.parser ? tap.parser.result : undefined;
    const scanned = this.scan(tx, hasBody ? tap : undefined);
    const build = (info: MessageInfo | undefined, scan: ScanResult | undefined): EcsEvent | EcsEvent[] => {
      if (info) this.counters.anomalies += info.anomalies.length;
      const event = transactionEvent(tx, info, digest);
      if (scan) (event.mailtap as Record<string, unknown>).scan = scanFields(scan);
      const analyzer = this.analyzer;
      if (!analyzer) return event;
      // The analyzer runs here, in event order, so that devices and alerts follow the records.
      const device = analyzer.clientDevice(tx.flow, tx.startTs);
      (event.mailtap as Record<string, unknown>).device = deviceSummary(device);
      setDirection(event, analyzer.direction(tx.flow));
      return [event, ...analyzer.transaction(tx, info, event.event.id, device, scan)];
    };
    // The body is parsed (and scanned) from now on; the event is built when the chain reaches it.
    // Promise.all only where there is a scan to wait for, because it costs several objects per
    // transaction.
    if (scanned !== undefined) {
      this.enqueue(() => Promise.all([message, scanned]).then(([info, scan]) => build(info, scan)));
    } else if (message !== undefined) {
      this.enqueue(() => message.then((info) => build(info, undefined)));
    } else {
      this.enqueue(() => build(undefined, undefined));
    }
  }

  /**
   * Starts the scan of a transaction's message. Returns undefined without a scanner. The promise
   * resolves to undefined without a message.
   */
  private scan(tx: SmtpTransaction, tap: BodyTap | undefined): Promise<ScanResult | undefined> | undefined {
    const scanner = this.options.scanner;
    if (!scanner) return undefined;
    const copy = tap?.takeCopy();
    if (tx.tls) {
      if (copy instanceof Buffer) scanner.release(copy.length);
      return Promise.resolve(scanner.skip('tls'));
    }
    if (copy === undefined) return Promise.resolve(undefined);
    if (typeof copy === 'string') return Promise.resolve(scanner.skip(copy));
    const envelope = {
      ...(tx.mailFrom !== undefined ? { mailFrom: tx.mailFrom } : {}),
      recipients: tx.recipients.filter((r) => r.accepted !== false).map((r) => r.address),
      clientIp: tx.flow.client.ip,
      ...(tx.helo !== undefined ? { helo: tx.helo } : {}),
    };
    return scanner.scan(copy, envelope).finally(() => scanner.release(copy.length));
  }

  private onSession(info: SmtpSessionInfo): void {
    const flow = info.flow;
    if (flow.bytes[0] + flow.bytes[1] + flow.gapBytes[0] + flow.gapBytes[1] === 0 && info.anomalies.length === 0) {
      // A connection that carried no bytes (a SYN scan, a refused or unanswered connection) is
      // no SMTP session: it is counted, not reported, so a SYN flood cannot flood the output.
      this.counters.emptyFlows++;
      return;
    }
    this.counters.sessions++;
    this.counters.anomalies += info.anomalies.length;
    // Transactions carry the session's envelope, so the session itself is reported only when it
    // had none (a probe, a STARTTLS session) or when it has anomalies that no transaction shows.
    const report = info.transactions === 0 || info.anomalies.length > 0;
    const analyzer = this.analyzer;
    if (!report && !analyzer) return;
    this.enqueue(() => {
        const event = report ? sessionEvent(info) : undefined;
        // The messages of a TLS session are invisible, so the session record carries their scan status.
        const scanner = this.options.scanner;
        if (event && scanner && info.tls) (event.mailtap as Record<string, unknown>).scan = scanFields(scanner.skip('tls'));
        if (!analyzer) return event ?? [];
        const device = analyzer.clientDevice(flow, info.startTs);
        if (event) {
          (event.mailtap as Record<string, unknown>).device = deviceSummary(device);
          setDirection(event, analyzer.direction(flow));
        }
        const alerts = analyzer.session(info, device);
        return event ? [event, ...alerts] : alerts;
    });
  }

  /**
   * Appends to the event chain. produce runs only when every earlier item is delivered, so the
   * analyzer receives transactions and sessions in the order the SMTP stage finished them.
   */
  private enqueue(produce: () => EcsEvent | EcsEvent[] | Promise<EcsEvent | EcsEvent[]>): void {
    this.tail = this.tail
      .then(produce)
      .then((ready) => {
        for (const event of Array.isArray(ready) ? ready : [ready]) {
          this.counters.events++;
          if (event.event.kind === 'alert') this.counters.alerts++;
          this.options.onEvent(event);
        }
      });
  }
}

/** The parser behind BodyTap: a MessageParser in this thread or a message in the worker. */
interface MessageSink extends BodySink {
  readonly result: Promise<MessageInfo | undefined>;
}

/** One message parsed by the message worker. */
class WorkerMessage implements MessageSink {
  private readonly id: number;
  private written = false;
  private resultPromise: Promise<MessageInfo | undefined> | undefined;

  constructor(private readonly worker: MessageWorkerClient) {
    this.id = worker.open();
  }

  get result(): Promise<MessageInfo | undefined> {
    // BodyTap.digest() ends the message before the result is read.
    return this.resultPromise ?? Promise.resolve(undefined);
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.written = true;
    this.worker.write(this.id, chunk);
  }

  end(complete: boolean): void {
    // A message without bytes is never reported (see onTransaction), so the worker needs no record.
    if (this.resultPromise === undefined && this.written) this.resultPromise = this.worker.end(this.id, complete);
  }
}

/** Returns the device fields of a transaction or session event; the inventory has the full record. */
function deviceSummary(device: Device): Record<string, unknown> {
  const summary: Record<string, unknown> = { key: device.key };
  if (device.label !== undefined) summary.label = device.label;
  if (device.type !== undefined) summary.type = device.type;
  if (device.vendor !== undefined) summary.vendor = device.vendor;
  return summary;
}

/**
 * Hashes the message as sent and passes it on to the MIME parser. With a scanner it also keeps
 * a copy of the message for it, within scan.max_size per message and scan.max_buffer in total.
 */
class BodyTap implements BodySink {
  size = 0;
  readonly parser: MessageSink | undefined;
  private readonly hash: Hash = createHash('sha256');
  private ended = false;
  private copy: Buffer[] | undefined;
  /** Bytes in copy, reserved in the scanner's max_buffer. */
  private copied = 0;
  /** Why the copy was dropped: over max_size, or no room left in max_buffer. */
  private dropped: 'too_large' | 'queue_full' | undefined;

  constructor(
    parser: MessageSink | undefined,
    private readonly scanner: Scanner | undefined,
  ) {
    this.parser = parser;
    if (scanner !== undefined) this.copy = [];
  }

  write(chunk: Buffer): void {
    if (this.ended) return;
    this.size += chunk.length;
    this.hash.update(chunk);
    this.parser?.write(chunk);
    if (this.copy !== undefined) this.keep(chunk);
  }

  private keep(chunk: Buffer): void {
    const scanner = this.scanner as Scanner;
    if (this.size > scanner.maxSize) this.dropCopy('too_large');
    else if (!scanner.reserve(chunk.length)) this.dropCopy('queue_full');
    // The SMTP stage may reuse the chunk's memory, so the scanner gets its own copy.
    else {
      this.copy?.push(Buffer.from(chunk));
      this.copied += chunk.length;
    }
  }

  private dropCopy(reason: 'too_large' | 'queue_full'): void {
    this.scanner?.release(this.copied);
    this.copied = 0;
    this.copy = undefined;
    this.dropped = reason;
  }

  /**
   * Returns the message for the scanner, or the reason it has none. Call once: the bytes stay
   * reserved in the scanner until the caller releases them.
   */
  takeCopy(): Buffer | 'too_large' | 'queue_full' {
    const copy = this.copy;
    this.copy = undefined;
    if (copy === undefined) return this.dropped ?? 'too_large';
    return Buffer.concat(copy);
  }

  end(complete: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.parser?.end(complete);
  }

  digest(): BodyDigest {
    // The SMTP stage reports a transaction after ending its body; end() here covers a stage
    // that did not, so the parser's result always settles.
    this.end(false);
    return { size: this.size, sha256: this.hash.digest('hex') };
  }
}

/**
 * Sets network.direction and, where the event has an email object, email.direction, which ECS
 * defines only as inbound or outbound (mail between two inside hosts stays unknown there).
 */
function setDirection(event: EcsEvent, direction: 'outbound' | 'inbound' | 'internal' | 'external'): void {
  const network = event.network as Record<string, unknown> | undefined;
  if (network) network.direction = direction;
  const email = event.email as Record<string, unknown> | undefined;
  if (email && (direction === 'outbound' || direction === 'inbound')) email.direction = direction;
}
