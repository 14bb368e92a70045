/**
 * WebSocket feed of the sensor's events (docs/feed.md). The sensor hands every stored event to
 * `event()`. Each client gets the events that pass its filter, in sequence order, after a replay
 * from the store when it subscribed with `since`.
 *
 * Replay hands over to live without a gap or a duplicate. The client starts collecting live
 * events before the store iterator opens, and LevelDB iterators read a snapshot taken when they
 * open. So every event is either in the snapshot or collected, and the two are deduplicated by
 * sequence number.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer, type RawData, WebSocket } from 'ws';
import type { ListenAddress } from '../config/outputs-schema.js';
import type { Config } from '../config/schema.js';
import type { EventConsumer, SensorStats } from '../events/consumer.js';
import type { EcsEvent } from '../events/ecs.js';
import type { EventStore } from '../store/index.js';
import {
  CLOSE_CODES,
  FEED_PATH,
  ProtocolError,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  eventFacts,
  matches,
  parseClientMessage,
  wantsStats,
  type EventFacts,
  type Subscription,
} from './protocol.js';

/** The part of a pino logger the feed uses. */
export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const SILENT: Logger = { info() {}, warn() {}, error() {} };

export interface FeedOptions {
  config: Config;
  /** Event store for `since` replay. Without it, clients get live events only. */
  store?: EventStore;
  logger?: Logger;
  /** The mailtap version for the hello message. */
  version?: string;
  /** Overrides config.feed.listen, for `read --serve HOST:PORT`. */
  listen?: ListenAddress;
}

/** A feed that cannot start: a non-loopback address without tokens, unreadable TLS files, a port in use. */
export class FeedStartError extends Error {
  readonly code = 'MAILTAP_ERR_FEED';

  /** `config` when the configuration forbids the start (exit status 2), `listen` when the listen call fails. */
  constructor(
    message: string,
    readonly reason: 'config' | 'listen' = 'listen',
  ) {
    super(message);
  }
}

/** Maximum number of invalid messages a client may send before it is closed with 1008. */
const MAX_CLIENT_ERRORS = 10;
/** Maximum number of subscribe messages per client and minute, because each one restarts its replay from the store. */
const MAX_SUBSCRIBES_PER_MINUTE = 30;
/** Milliseconds a client gets to complete the close handshake on shutdown before it is terminated. */
const SHUTDOWN_GRACE_MS = 1000;
/** Milliseconds between checks of a replaying client's socket while the replay waits for it to drain. */
const DRAIN_POLL_MS = 5;
/** Maximum number of rejected logins logged one by one per minute. The rest are counted and reported in one line. */
const REJECTIONS_LOGGED_PER_MINUTE = 3;

export interface FeedCounters {
  connections: number;
  rejectedUnauthorized: number;
  rejectedFull: number;
  eventsIn: number;
  /** Events handed in again with a sequence already seen (a capture read twice). */
  duplicatesIn: number;
  messagesSent: number;
  slowConsumerCloses: number;
  deadClients: number;
  clientErrors: number;
  replayErrors: number;
  /** Number of times a replaying client's collected live events passed feed.max_buffered and were dropped for another store pass. */
  replayOverflows: number;
}

/** One event serialized once for all clients. */
interface Prepared {
  seq: number;
  facts: EventFacts;
  data: Buffer;
}

class FeedClient {
  subscription: Subscription | undefined;
  /** Counter incremented by every subscribe, so that the replay of an earlier subscribe stops. */
  generation = 0;
  replaying = false;
  /** Live events that arrived during the replay. */
  collected: Prepared[] = [];
  collectedBytes = 0;
  /** Flag set when the collected events passed feed.max_buffered and were dropped, so the replay reads them from the store. */
  overflowed = false;
  /** The newest sequence this client has been sent or has passed over by its filter. */
  lastSeq = 0;
  alive = true;
  closed = false;
  errors = 0;
  /** Times of the recent subscribe messages, in ms. */
  subscribeTimes: number[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly id: number,
    readonly remote: string,
  ) {}
}

export class FeedServer implements EventConsumer {
  readonly counters: FeedCounters = {
    connections: 0,
    rejectedUnauthorized: 0,
    rejectedFull: 0,
    eventsIn: 0,
    duplicatesIn: 0,
    messagesSent: 0,
    slowConsumerCloses: 0,
    deadClients: 0,
    clientErrors: 0,
    replayErrors: 0,
    replayOverflows: 0,
  };

  private readonly clients = new Set<FeedClient>();
  private readonly tokenDigests: Buffer[];
  private readonly wss: WebSocketServer;
  private readonly heartbeat: NodeJS.Timeout;
  private lastSeq: number;
  private lastStatsAt = 0;
  private nextClientId = 1;
  private closing = false;
  /** Rate limit of the log lines about rejected logins. */
  private rejections = { windowStart: 0, logged: 0, suppressed: 0 };

  private constructor(
    private readonly server: Server,
    private readonly options: FeedOptions,
    private readonly logger: Logger,
  ) {
    const feed = options.config.feed;
    this.tokenDigests = feed.tokens.map(digest);
    this.lastSeq = options.store ? options.store.nextSequence - 1 : 0;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: feed.max_payload,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    server.on('upgrade', (request, socket, head) => this.upgrade(request, socket, head));
    server.on('request', (request, response) => {
      const found = new URL(request.url ?? '/', 'http://feed').pathname === FEED_PATH;
      response.writeHead(found ? 426 : 404, { 'content-type': 'text/plain' });
      response.end(found ? 'WebSocket upgrade required\n' : 'not found\n');
    });
    this.heartbeat = setInterval(() => this.ping(), feed.heartbeat * 1000);
    this.heartbeat.unref();
  }

  /**
   * Starts listening on config.feed.listen (or options.listen). Throws FeedStartError for a
   * non-loopback address without tokens, TLS files that cannot be read, or a failed listen.
   */
  static async start(options: FeedOptions): Promise<FeedServer> {
    const feed = options.config.feed;
    const listen = options.listen ?? feed.listen;
    if (!isLoopback(listen.host) && feed.tokens.length === 0) {
      throw new FeedStartError(
        `not serving the feed on ${listen.host}: it is not a loopback address and feed.tokens is empty; ` +
          'set feed.tokens in the config, or listen on 127.0.0.1 or ::1',
        'config',
      );
    }
    let server: Server;
    if (feed.tls.cert !== undefined && feed.tls.key !== undefined) {
      let cert: Buffer;
      let key: Buffer;
      try {
        cert = readFileSync(feed.tls.cert);
        key = readFileSync(feed.tls.key);
      } catch (error) {
        throw new FeedStartError(`cannot read the feed's TLS certificate or key: ${(error as Error).message}`);
      }
      server = createHttpsServer({ cert, key });
    } else {
      server = createHttpServer();
    }
    const logger = options.logger ?? SILENT;
    const instance = new FeedServer(server, options, logger);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(listen.port, listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      clearInterval(instance.heartbeat);
      throw new FeedStartError(`cannot listen on ${formatHost(listen.host)}:${listen.port}: ${(error as Error).message}`);
    }
    server.on('error', (error) => logger.error({ err: error }, 'feed server error'));
    logger.info({ url: instance.url }, 'feed listening');
    return instance;
  }

  /** Address the server listens on. The port is the real one when port 0 was configured. */
  get address(): ListenAddress {
    const info = this.server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  get url(): string {
    const { host, port } = this.address;
    const scheme = this.options.config.feed.tls.cert !== undefined ? 'wss' : 'ws';
    return `${scheme}://${formatHost(host)}:${port}${FEED_PATH}`;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Sends a stored event to every subscribed client whose filter it passes. Errors are logged, not thrown. */
  event(event: EcsEvent): void {
    try {
      this.publish(event);
    } catch (error) {
      this.logger.error({ err: error, id: event.event?.id }, 'feed could not publish an event');
    }
  }

  private publish(event: EcsEvent): void {
    this.counters.eventsIn++;
    let seq = event.event.sequence;
    if (seq === undefined) {
      seq = this.lastSeq + 1; // without a store the feed numbers the events itself
    } else if (seq <= this.lastSeq) {
      this.counters.duplicatesIn++;
      return;
    }
    this.lastSeq = seq;
    if (this.clients.size === 0) return;
    let prepared: Prepared | undefined;
    for (const client of this.clients) {
      if (client.subscription === undefined || client.closed) continue;
      prepared ??= prepare(event, seq);
      if (client.replaying) {
        this.collect(client, prepared);
      } else {
        this.sendEvent(client, prepared);
      }
    }
  }

  /**
   * Sends the figures to clients subscribed to stats. Calls within 90% of feed.stats_interval of
   * the last send are skipped, so a timer that fires slightly early still sends.
   */
  stats(stats: SensorStats): void {
    const now = Date.now();
    if (now - this.lastStatsAt < this.options.config.feed.stats_interval * 900) return;
    this.lastStatsAt = now;
    let data: Buffer | undefined;
    for (const client of this.clients) {
      if (client.subscription === undefined || client.closed || !wantsStats(client.subscription)) continue;
      data ??= Buffer.from(JSON.stringify({ type: 'stats', stats }));
      if (client.ws.bufferedAmount + data.length > this.options.config.feed.max_buffered) {
        this.closeSlow(client);
        continue;
      }
      client.ws.send(data, { binary: false });
    }
  }

  /** Closes every client with 1001 and stops listening. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    const closed = [...this.clients].map(
      (client) =>
        new Promise<void>((resolve) => {
          if (client.ws.readyState === WebSocket.CLOSED) return resolve();
          client.ws.once('close', () => resolve());
          client.closed = true;
          client.ws.close(CLOSE_CODES.goingAway, 'sensor shutting down');
          setTimeout(() => {
            client.ws.terminate();
            resolve();
          }, SHUTDOWN_GRACE_MS).unref();
        }),
    );
    await Promise.all(closed);
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.flushRejections();
    this.logger.info({ counters: this.counters }, 'feed closed');
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(request.url ?? '/', 'http://feed').pathname;
    if (path !== FEED_PATH) return rejectUpgrade(socket, 404, 'Not Found');
    if (this.closing) return rejectUpgrade(socket, 503, 'Service Unavailable');
    if (!this.authorized(request)) {
      this.counters.rejectedUnauthorized++;
      this.logRejection(remoteOf(request));
      return rejectUpgrade(socket, 401, 'Unauthorized', 'WWW-Authenticate: Bearer realm="mailtap"\r\n');
    }
    if (this.clients.size >= this.options.config.feed.max_clients) {
      this.counters.rejectedFull++;
      return rejectUpgrade(socket, 503, 'Service Unavailable');
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request));
  }

  /**
   * Logs a rejected login with the remote address (never the token): at most
   * REJECTIONS_LOGGED_PER_MINUTE lines a minute, then one line with the count of the others.
   */
  private logRejection(remote: string): void {
    const now = Date.now();
    const window = this.rejections;
    if (now - window.windowStart >= 60_000) {
      this.flushRejections();
      window.windowStart = now;
      window.logged = 0;
    }
    if (window.logged < REJECTIONS_LOGGED_PER_MINUTE) {
      window.logged++;
      this.logger.warn({ remote }, 'feed client rejected: missing or wrong token (HTTP 401)');
    } else {
      window.suppressed++;
    }
  }

  private flushRejections(): void {
    const window = this.rejections;
    if (window.suppressed === 0) return;
    this.logger.warn(
      { count: window.suppressed, since: new Date(window.windowStart).toISOString() },
      `feed rejected ${window.suppressed} more clients with a missing or wrong token (HTTP 401)`,
    );
    window.suppressed = 0;
  }

  /**
   * Checks the Bearer token or the token subprotocol in constant time. Every client is authorized
   * when feed.tokens is empty. Only the first 4 candidate tokens of a request are compared.
   */
  private authorized(request: IncomingMessage): boolean {
    if (this.tokenDigests.length === 0) return true;
    const candidates: string[] = [];
    const header = request.headers.authorization;
    if (header !== undefined && header.startsWith('Bearer ')) candidates.push(header.slice(7).trim());
    const protocols = request.headers['sec-websocket-protocol'];
    if (protocols !== undefined) {
      for (const protocol of protocols.split(',')) {
        const name = protocol.trim();
        if (name.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) candidates.push(name.slice(TOKEN_SUBPROTOCOL_PREFIX.length));
      }
    }
    let ok = false;
    for (const candidate of candidates.slice(0, 4)) {
      const given = digest(candidate);
      // Every token is compared, so the time does not depend on which one matched.
      for (const expected of this.tokenDigests) if (timingSafeEqual(given, expected)) ok = true;
    }
    return ok;
  }

  private accept(ws: WebSocket, request: IncomingMessage): void {
    const client = new FeedClient(ws, this.nextClientId++, remoteOf(request));
    this.clients.add(client);
    this.counters.connections++;
    this.logger.info({ client: client.id, remote: client.remote }, 'feed client connected');
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (data, isBinary) => this.receive(client, data, isBinary));
    ws.on('error', (error) => {
      // ws closes the connection itself after an error (1009 for a message over maxPayload).
      this.logger.warn({ client: client.id, err: error }, 'feed client error');
    });
    ws.on('close', (code, reason) => {
      client.closed = true;
      this.clients.delete(client);
      this.logger.info({ client: client.id, code, reason: reason.toString() }, 'feed client disconnected');
    });
    this.send(client, {
      type: 'hello',
      version: this.options.version ?? 'unknown',
      sensor: this.options.config.sensor.name,
      last_seq: this.lastSeq,
    });
  }

  private receive(client: FeedClient, data: RawData, isBinary: boolean): void {
    if (client.closed) return;
    if (isBinary) {
      this.counters.clientErrors++;
      this.closeClient(client, CLOSE_CODES.policyViolation, 'binary messages are not supported');
      return;
    }
    let subscription: Subscription;
    try {
      subscription = parseClientMessage(rawText(data), this.options.config);
    } catch (error) {
      this.counters.clientErrors++;
      if (!(error instanceof ProtocolError)) {
        this.logger.error({ client: client.id, err: error }, 'feed could not handle a client message');
        this.closeClient(client, CLOSE_CODES.internalError, 'internal error');
        return;
      }
      if (++client.errors > MAX_CLIENT_ERRORS) {
        this.closeClient(client, CLOSE_CODES.policyViolation, 'too many invalid messages');
        return;
      }
      this.send(client, { type: 'error', error: error.code, message: error.message });
      return;
    }
    const now = Date.now();
    client.subscribeTimes = client.subscribeTimes.filter((time) => now - time < 60_000);
    client.subscribeTimes.push(now);
    if (client.subscribeTimes.length > MAX_SUBSCRIBES_PER_MINUTE) {
      this.counters.clientErrors++;
      this.closeClient(client, CLOSE_CODES.policyViolation, 'too many subscribe messages');
      return;
    }
    this.subscribe(client, subscription);
  }

  private subscribe(client: FeedClient, subscription: Subscription): void {
    client.generation++;
    client.subscription = subscription;
    client.collected = [];
    client.collectedBytes = 0;
    client.overflowed = false;

    const since = subscription.since;
    if (since === undefined) {
      client.replaying = false;
      client.lastSeq = this.lastSeq;
      this.send(client, { type: 'live', seq: this.lastSeq });
      return;
    }

    // A since above the newest sequence comes from another store because the sensor started over.
    // Every later event has a smaller number than it, so the client starts again at last_seq.
    const reset = since > this.lastSeq ? { reset: true } : {};
    const store = this.options.store;
    if (store === undefined) {
      client.replaying = false;
      client.lastSeq = this.lastSeq;
      this.send(client, { type: 'error', error: 'no_store', message: 'this sensor has no event store, so "since" cannot be replayed; sending live events only' });
      this.send(client, { type: 'live', seq: this.lastSeq, ...reset });
      return;
    }

    if (since > this.lastSeq) {
      client.replaying = false;
      client.lastSeq = this.lastSeq;
      this.send(client, { type: 'live', seq: this.lastSeq, reset: true });
      return;
    }

    // Collecting starts before the iterator opens, as the file comment explains.
    client.replaying = true;
    client.lastSeq = since;
    this.replay(client, store, client.generation).catch((error: unknown) => {
      this.counters.replayErrors++;
      this.logger.error({ client: client.id, err: error }, 'feed replay failed');
      this.closeClient(client, CLOSE_CODES.internalError, `replay failed; resume with since=${client.lastSeq}`);
    });
  }

  /**
   * Sends the stored events after client.lastSeq, paced by the socket: the replay waits whenever
   * half of feed.max_buffered is queued. Live events that arrive meanwhile are collected. When they
   * pass feed.max_buffered, they are dropped and the replay reads them from the store in another
   * pass, because every event is stored before it reaches the feed. The replay hands over to live
   * once a pass ends with the collected events intact and room for them in the socket's queue.
   */
  private async replay(client: FeedClient, store: EventStore, generation: number): Promise<void> {
    const maxBuffered = this.options.config.feed.max_buffered;
    const current = (): boolean => !client.closed && client.generation === generation && !this.closing;
    for (;;) {
      client.overflowed = false;
      for await (const event of store.range({ sinceSequence: client.lastSeq })) {
        if (!current()) return;
        const seq = event.event.sequence ?? 0;
        if (seq <= client.lastSeq) continue;
        const facts = eventFacts(event);
        if (client.subscription !== undefined && matches(client.subscription, facts)) {
          const data = serialize(seq, event);
          if (client.ws.bufferedAmount + data.length > maxBuffered / 2) {
            // A new subscribe may start its own replay meanwhile, and that replay then owns lastSeq.
            if (!(await this.waitForRoom(client, () => client.ws.bufferedAmount <= maxBuffered / 4, current))) return;
          }
          client.ws.send(data, { binary: false });
          this.counters.messagesSent++;
        }
        client.lastSeq = seq;
      }
      if (!current()) return;
      // The collected events go out at once below, so they must fit under the limit with what is queued.
      const fits = (): boolean => client.overflowed || client.ws.bufferedAmount + client.collectedBytes <= maxBuffered;
      if (!(await this.waitForRoom(client, fits, current))) return;
      if (!client.overflowed) break;
    }
    client.replaying = false;
    const collected = client.collected;
    client.collected = [];
    client.collectedBytes = 0;
    this.send(client, { type: 'live', seq: client.lastSeq });
    for (const prepared of collected) this.sendEvent(client, prepared);
  }

  /**
   * Waits until `ready()` returns true. Returns false when the replay was superseded, or when the
   * socket took no data for half of feed.heartbeat. Such a client has stopped reading and is closed with 4000.
   */
  private async waitForRoom(client: FeedClient, ready: () => boolean, current: () => boolean): Promise<boolean> {
    const stallMs = this.options.config.feed.heartbeat * 500;
    let lowest = client.ws.bufferedAmount;
    let progressAt = Date.now();
    while (!ready()) {
      await delay(DRAIN_POLL_MS);
      if (!current()) return false;
      const amount = client.ws.bufferedAmount;
      const now = Date.now();
      if (amount < lowest) {
        lowest = amount;
        progressAt = now;
      } else if (now - progressAt >= stallMs) {
        this.closeSlow(client);
        return false;
      }
    }
    return true;
  }

  /** Keeps a live event for a client in replay. Past feed.max_buffered, the replay reads the events from the store instead. */
  private collect(client: FeedClient, prepared: Prepared): void {
    if (client.overflowed || !matches(client.subscription as Subscription, prepared.facts)) return;
    client.collected.push(prepared);
    client.collectedBytes += prepared.data.length;
    if (client.collectedBytes > this.options.config.feed.max_buffered) {
      this.counters.replayOverflows++;
      client.overflowed = true;
      client.collected = [];
      client.collectedBytes = 0;
    }
  }

  private sendEvent(client: FeedClient, prepared: Prepared): void {
    if (prepared.seq <= client.lastSeq) return;
    if (!matches(client.subscription as Subscription, prepared.facts)) {
      client.lastSeq = prepared.seq;
      return;
    }
    if (client.ws.bufferedAmount + prepared.data.length > this.options.config.feed.max_buffered) {
      this.closeSlow(client);
      return;
    }
    client.ws.send(prepared.data, { binary: false });
    client.lastSeq = prepared.seq;
    this.counters.messagesSent++;
  }

  private closeSlow(client: FeedClient): void {
    this.counters.slowConsumerCloses++;
    this.logger.warn(
      { client: client.id, remote: client.remote, bufferedAmount: client.ws.bufferedAmount, lastSeq: client.lastSeq },
      'feed client closed: queue full',
    );
    // The close frame follows the queued events, so a client that reads everything has seen lastSeq.
    this.closeClient(client, CLOSE_CODES.slowConsumer, `queue full; resume with since=${client.lastSeq}`);
  }

  private closeClient(client: FeedClient, code: number, reason: string): void {
    if (client.closed) return;
    client.closed = true;
    client.replaying = false;
    client.collected = [];
    this.clients.delete(client);
    client.ws.close(code, reason);
  }

  private send(client: FeedClient, message: object): void {
    if (client.closed || client.ws.readyState !== WebSocket.OPEN) return;
    client.ws.send(JSON.stringify(message));
  }

  /** Drops clients that sent no pong to the previous ping, and pings the others. */
  private ping(): void {
    if (this.rejections.suppressed > 0 && Date.now() - this.rejections.windowStart >= 60_000) this.flushRejections();
    for (const client of this.clients) {
      if (!client.alive) {
        this.counters.deadClients++;
        this.logger.warn({ client: client.id, remote: client.remote }, 'feed client dropped: no pong to the last ping');
        client.closed = true;
        this.clients.delete(client);
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }
}

function prepare(event: EcsEvent, seq: number): Prepared {
  return { seq, facts: eventFacts(event), data: serialize(seq, event) };
}

function serialize(seq: number, event: EcsEvent): Buffer {
  return Buffer.from(`{"type":"event","seq":${seq},"event":${JSON.stringify(event)}}`);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

function rejectUpgrade(socket: Duplex, status: number, text: string, headers = ''): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n${headers}\r\n`);
}

function remoteOf(request: IncomingMessage): string {
  const socket = request.socket as Socket;
  return `${formatHost(socket.remoteAddress ?? '?')}:${socket.remotePort ?? 0}`;
}

function formatHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Returns whether the host is a loopback address (127.0.0.0/8, ::1) or "localhost". */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host.toLowerCase().startsWith('::ffff:127.');
}
