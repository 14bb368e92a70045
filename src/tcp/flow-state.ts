import type { IndexedFlow } from './flow-index.js';
import type { FlowListNode, FlowList } from './flow-list.js';
import { TcpStream, type ReassemblyContext, type StreamOwner } from './stream.js';
import type { Anomaly, CloseReason, Direction, Flow, StreamHandler } from './types.js';

/**
 * Anomalies of one name that a flow passes to its handler per ANOMALY_PERIOD seconds of capture
 * time. Later ones in the same period are only counted in stats.suppressedAnomalies, so a burst
 * of forged segments costs the handler at most this many anomaly records per period.
 */
export const ANOMALY_BURST = 8;
export const ANOMALY_PERIOD = 60;

/**
 * Anomalies passed on without the rate limit. Each retransmission_inconsistency marks a part of
 * the stream that may differ from what the receiver got. A limit would let a sender use it up
 * on harmless overlaps before the overlap that matters.
 */
const UNLIMITED_ANOMALIES: ReadonlySet<string> = new Set(['retransmission_inconsistency']);

/** Rate limit state of one anomaly name on one flow. */
interface AnomalyWindow {
  /** Capture time at which the current period started. */
  start: number;
  /** Anomalies of the name in the current period, passed on or not. */
  count: number;
}

/**
 * One flow of the flow table: the public Flow record, its two streams and its handler. It passes
 * what the streams produce to the handler and turns a handler exception into a failed flow.
 */
export class FlowState implements StreamOwner, FlowListNode<FlowState>, IndexedFlow<FlowState> {
  prev: FlowState | null = null;
  next: FlowState | null = null;
  list: FlowList<FlowState> | null = null;
  hash = 0;
  nextInBucket: FlowState | null = null;

  /** Null before onFlow returned and after the handler failed or the flow closed. */
  handler: StreamHandler | null = null;
  /** True once the flow was closed or dropped; the table keeps it only to ignore late segments. */
  closed = false;
  /** True once the handler threw; nothing more is passed to it. */
  failed = false;

  /**
   * The two directions, client to server first. Null until a segment needs them, because a flow
   * of SYNs only (a SYN flood, a refused connection) needs no more than the SYN's sequence
   * number, and null again once the flow is released.
   */
  private streams: [TcpStream, TcpStream] | null = null;
  /** True when a client SYN was taken while the streams did not exist; `synIsn` is its seq. */
  private synTaken = false;
  /** Sequence number of that SYN as a signed 32-bit integer, which V8 stores without a box. */
  private synIsn = 0;
  /** Rate limit state per anomaly name; null until the flow's first anomaly. */
  private anomalyWindows: Map<string, AnomalyWindow> | null = null;

  constructor(
    readonly flow: Flow,
    private readonly context: ReassemblyContext,
  ) {}

  deliver(direction: Direction, data: Buffer, ts: number): void {
    const handler = this.handler;
    if (handler === null) return;
    this.flow.bytes[direction] += data.length;
    try {
      handler.onData(direction, data, ts);
    } catch {
      this.fail();
    }
  }

  gap(direction: Direction, length: number, ts: number): void {
    this.flow.gapBytes[direction] += length;
    const handler = this.handler;
    if (handler === null) return;
    try {
      handler.onGap(direction, length, ts);
    } catch {
      this.fail();
    }
  }

  /** Passes an anomaly to the handler unless its name reached the rate limit on this flow. */
  anomaly(anomaly: Anomaly): void {
    const handler = this.handler;
    if (handler === null) return;
    if (!this.admitAnomaly(anomaly)) {
      this.context.stats.suppressedAnomalies++;
      return;
    }
    try {
      handler.onAnomaly(anomaly);
    } catch {
      this.fail();
    }
  }

  private admitAnomaly(anomaly: Anomaly): boolean {
    if (UNLIMITED_ANOMALIES.has(anomaly.name)) return true;
    let windows = this.anomalyWindows;
    if (windows === null) {
      windows = new Map();
      this.anomalyWindows = windows;
    }
    const window = windows.get(anomaly.name);
    if (window === undefined) {
      windows.set(anomaly.name, { start: anomaly.ts, count: 1 });
      return true;
    }
    if (anomaly.ts - window.start >= ANOMALY_PERIOD) {
      window.start = anomaly.ts;
      window.count = 0;
    }
    window.count++;
    return window.count <= ANOMALY_BURST;
  }

  /** Calls onClose once and detaches the handler, so nothing reaches it afterwards. */
  notifyClose(reason: CloseReason, ts: number): void {
    const handler = this.handler;
    if (handler === null) return;
    this.handler = null;
    try {
      handler.onClose(reason, ts);
    } catch {
      this.fail();
    }
  }

  /** Marks the handler as failed after it threw; the flow table then drops the flow. */
  fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.handler = null;
    this.context.stats.handlerErrors++;
  }

  /**
   * Takes a client SYN without creating the streams. Returns false when the streams must handle
   * it instead: they exist already, or an earlier SYN had another sequence number.
   */
  takeSyn(isn: number): boolean {
    if (this.streams !== null || this.closed) return false;
    if (!this.synTaken) {
      this.synTaken = true;
      this.synIsn = isn | 0;
      return true;
    }
    return this.synIsn === (isn | 0);
  }

  /** Returns the streams, created on first use; throws for a released flow (a bug). */
  openStreams(): [TcpStream, TcpStream] {
    let streams = this.streams;
    if (streams === null) {
      if (this.closed) throw new Error(`flow ${this.flow.id} was released`);
      streams = [new TcpStream(0, this, this.context), new TcpStream(1, this, this.context)];
      if (this.synTaken) streams[0].startAtSyn(this.synIsn >>> 0);
      this.streams = streams;
    }
    return streams;
  }

  /** Delivers what both streams buffer, with gaps for their holes. */
  flush(ts: number): void {
    const streams = this.streams;
    if (streams === null) return;
    streams[0].flush(ts);
    streams[1].flush(ts);
  }

  /** Frees the streams and their buffered data and marks the flow closed. */
  release(): void {
    const streams = this.streams;
    if (streams !== null) {
      streams[0].release();
      streams[1].release();
      this.streams = null;
    }
    this.closed = true;
    this.handler = null;
    this.anomalyWindows = null;
  }
}
