import WebSocket from 'ws';
import type { EcsEvent } from '../events/ecs.js';
import type { SensorStats } from '../events/consumer.js';

/**
 * Client of a running sensor's event feed (`ws://HOST:PORT/v1/events`). The server greets with
 * `hello` (its newest sequence number), the client subscribes with `since`, and the server
 * replays the stored events after that number, sends `live`, then streams new events and a
 * `stats` message about once a second. After a disconnect the client reconnects with backoff
 * and subscribes again with since = the last sequence number it received, so nothing is lost
 * or counted twice while the server still stores those events.
 *
 * A sensor that started over on a new store numbers its events from 1 again. The client tells
 * this from a hello whose last_seq is below the newest sequence it received, or from a live
 * message with reset: true, and then accepts the new, lower numbers.
 */

/** Events replayed on the first connection: about the last hour of a busy site. */
export const INITIAL_REPLAY_EVENTS = 5000;

export interface FeedClientOptions {
  url: string;
  token?: string;
  onEvent(event: EcsEvent): void;
  onStats?(stats: SensorStats): void;
  /** Called whenever the connection state text changes. */
  onState?(state: string): void;
  /** Delay before the first reconnect in milliseconds. It doubles per attempt up to maxBackoffMs (default 10,000). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Events replayed on the first connection (since = last_seq minus this). */
  initialReplay?: number;
}

type ServerMessage =
  | { type: 'hello'; version?: string; sensor?: string; last_seq?: number }
  | { type: 'event'; seq?: number; event?: EcsEvent }
  | { type: 'live'; seq?: number; reset?: boolean }
  | { type: 'stats'; stats?: SensorStats }
  | { type: 'error'; error?: string; message?: string };

export class FeedClient {
  /** Sequence number of the newest event received, undefined before the first. */
  lastSeq: number | undefined;
  state = 'connecting';
  sensor: string | undefined;
  connections = 0;
  /** Messages that were not valid JSON or of an unknown type. */
  invalidMessages = 0;
  lastError: string | undefined;
  /** Times the sensor's store changed under the client (sequence numbers started over). */
  resets = 0;
  /** True when the sensor rejected the last attempt with HTTP 401: the token is missing or wrong. */
  tokenRejected = false;
  private socket: WebSocket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private stopped = false;
  /** Wall-clock time (ms) of the next reconnect attempt, for the header's countdown. */
  private retryAt = 0;

  constructor(private readonly options: FeedClientOptions) {
    this.backoffMs = options.minBackoffMs ?? 500;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.socket?.removeAllListeners();
    this.socket?.on('error', () => {});
    this.socket?.terminate();
    this.socket = undefined;
  }

  /** Returns the state for the header, with the seconds left before a retry. */
  describe(): string {
    if (this.state === 'disconnected') {
      const seconds = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      if (this.tokenRejected) return `${this.lastError ?? 'HTTP 401'}, retrying in ${seconds} s`;
      return `disconnected, retrying in ${seconds} s` + (this.lastError !== undefined ? ` (${this.lastError})` : '');
    }
    return this.sensor !== undefined && this.state === 'live' ? `live from ${this.sensor}` : this.state;
  }

  private setState(state: string): void {
    this.state = state;
    this.options.onState?.(this.describe());
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState('connecting');

    const headers: Record<string, string> = {};
    if (this.options.token !== undefined) headers.Authorization = `Bearer ${this.options.token}`;
    const socket = new WebSocket(this.options.url, { headers, handshakeTimeout: 10_000 });
    this.socket = socket;
    socket.on('message', (data) => this.handleMessage(socket, data.toString()));

    // The HTTP status explains a rejected upgrade better than the error that terminate() raises.
    let status: number | undefined;
    socket.on('unexpected-response', (_request, response) => {
      status = response.statusCode;
      if (status === 401) {
        this.lastError =
          this.options.token === undefined
            ? 'the sensor requires a token (HTTP 401): give --token'
            : 'the sensor refused the token (HTTP 401)';
      } else {
        this.lastError = `HTTP ${status}`;
      }
      socket.terminate();
    });
    socket.on('error', (error) => {
      if (status === undefined) this.lastError = error.message;
    });

    socket.on('close', (code) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (code === 4000) this.lastError = 'too slow, resuming';
      this.tokenRejected = status === 401;
      // The token will not change by itself, so retry at the slowest rate in case the sensor's tokens do.
      if (this.tokenRejected) this.backoffMs = this.options.maxBackoffMs ?? 10_000;
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 10_000);
    this.retryAt = Date.now() + delay;
    this.setState('disconnected');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private handleMessage(socket: WebSocket, text: string): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(text) as ServerMessage;
    } catch {
      this.invalidMessages++;
      return;
    }
    switch (message.type) {
      case 'hello': {
        this.connections++;
        this.sensor = typeof message.sensor === 'string' ? message.sensor : undefined;
        const serverLast = typeof message.last_seq === 'number' ? message.last_seq : 0;
        this.tokenRejected = false;
        if (this.lastSeq !== undefined && serverLast < this.lastSeq) {
          // Another store: its numbers start over, so the client starts as on a first connection.
          this.lastSeq = undefined;
          this.resets++;
        }
        const since =
          this.lastSeq !== undefined ? this.lastSeq : Math.max(0, serverLast - (this.options.initialReplay ?? INITIAL_REPLAY_EVENTS));
        socket.send(JSON.stringify({ type: 'subscribe', since }));
        this.setState('replaying');
        break;
      }
      case 'event': {
        const seq = message.seq;
        // A replay that overlaps what was already received is skipped, so nothing counts twice.
        if (typeof seq === 'number' && this.lastSeq !== undefined && seq <= this.lastSeq) return;
        if (typeof seq === 'number') this.lastSeq = seq;
        if (message.event !== undefined && typeof message.event === 'object') this.options.onEvent(message.event);
        // A connection that delivers events has recovered: the next outage starts at the short delay.
        this.backoffMs = this.options.minBackoffMs ?? 500;
        break;
      }
      case 'live':
        if (message.reset === true && typeof message.seq === 'number') {
          // The server has no events at our since, so the events after its seq are new, whatever their numbers.
          this.lastSeq = message.seq;
          this.resets++;
        }
        this.backoffMs = this.options.minBackoffMs ?? 500;
        this.lastError = undefined;
        this.setState('live');
        break;
      case 'stats':
        if (message.stats !== undefined) this.options.onStats?.(message.stats);
        break;
      case 'error':
        this.lastError = `${String(message.error ?? 'error')}: ${String(message.message ?? '')}`;
        break;
      default:
        this.invalidMessages++;
    }
  }
}
