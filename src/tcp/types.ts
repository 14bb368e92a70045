import type { TcpSegment } from '../decode/types.js';

/** 0: client to server (the side that opened the connection), 1: server to client. */
export type Direction = 0 | 1;

/** Something unusual seen on a flow or in a protocol, recorded rather than thrown. */
export interface Anomaly {
  /** Stable snake_case name, such as "retransmission_inconsistency" or "smtp_unmatched_reply". */
  name: string;
  ts: number;
  /** Free text with the values involved; sanitized by consumers before display. */
  detail?: string;
  direction?: Direction;
}

export interface Endpoint {
  ip: string;
  port: number;
  mac?: string;
}

/** One TCP connection as the flow table tracks it. */
export interface Flow {
  /**
   * Stable id: same capture, same id. Zeek-like "C" + 17 base62 digits of a SHA-1 of the VLAN ids,
   * the 5-tuple and the first timestamp.
   */
  id: string;
  client: Endpoint;
  server: Endpoint;
  vlans: number[];
  ipVersion: 4 | 6;
  startTs: number;
  lastTs: number;
  /** True when no SYN was seen, so the connection was picked up mid-stream. */
  midstream: boolean;
  /** Bytes delivered to the handler, per direction. */
  bytes: [number, number];
  /** Bytes lost to gaps, per direction. */
  gapBytes: [number, number];
  packets: [number, number];
}

export type CloseReason = 'fin' | 'rst' | 'timeout' | 'end' | 'evicted';

/** Receiver of the ordered byte streams of one flow. The flow table calls it; it never throws. */
export interface StreamHandler {
  /** Ordered payload bytes. The buffer may be a view: copy what is kept after the call. */
  onData(direction: Direction, data: Buffer, ts: number): void;
  /** length bytes are missing in this direction before the next onData. */
  onGap(direction: Direction, length: number, ts: number): void;
  onAnomaly(anomaly: Anomaly): void;
  /** Called exactly once; nothing is delivered afterwards. */
  onClose(reason: CloseReason, ts: number): void;
}

/** Memory bounds and timeouts of the flow table, with defaults in tcp/flow-table.ts. */
export interface FlowLimits {
  /** Out-of-order bytes buffered per direction before a gap is declared. */
  maxBufferedPerDirection: number;
  /** Out-of-order bytes buffered across all flows. */
  maxBufferedTotal: number;
  /** Concurrent flows; the least recently active flow is evicted past it. */
  maxFlows: number;
  /** Seconds without a packet before a flow is closed with reason "timeout". */
  idleTimeout: number;
  /**
   * Bytes of recently delivered data kept across all flows, so that a retransmission can be
   * compared with what was delivered first. 0 turns the comparison off for delivered bytes.
   */
  retransmissionBuffer?: number;
}

export interface FlowStats {
  segments: number;
  /** Segments of flows where neither port is a server port. */
  ignoredSegments: number;
  flowsOpened: number;
  flowsClosed: number;
  activeFlows: number;
  midstreamFlows: number;
  retransmissions: number;
  inconsistentRetransmissions: number;
  outOfOrder: number;
  gaps: number;
  gapBytes: number;
  /**
   * Bytes given up because a memory bound was reached: holes declared as gaps before the peer
   * acknowledged them or the flow ended, so that the buffered data after them could be delivered.
   */
  droppedBytesPerFlowLimit: number;
  droppedBytesTotalLimit: number;
  evictedFlows: number;
  timedOutFlows: number;
  /** Peak of out-of-order bytes buffered across all flows. */
  peakBufferedBytes: number;
  /** Segments for a closed flow that are not a new SYN, and RST segments without a flow. */
  unmatchedSegments: number;
  /** RST segments ignored because their sequence number was outside the receiver's window. */
  resetsOutOfWindow: number;
  /** Anomalies not passed to the handler because their flow reached the rate limit for the name. */
  suppressedAnomalies: number;
  /** Exceptions thrown by a stream handler (or by onFlow); the flow is dropped without onClose. */
  handlerErrors: number;
  /** Exceptions from the flow table's own code; the flow is dropped. Non-zero means a bug. */
  internalErrors: number;
  /**
   * Sequence space that receivers acknowledged, over all flows and directions: each advance of
   * a direction's highest ACK, from its first ACK on. With ackedUnseenBytes it gives the
   * capture-loss estimate of Zeek's capture-loss script.
   */
  ackedBytes: number;
  /**
   * Part of ackedBytes beyond the highest sequence number the capture saw from the sender: bytes
   * that crossed the wire but not the capture. Each byte counts once.
   */
  ackedUnseenBytes: number;
}

export interface FlowTableOptions {
  /** Ports that identify the server side when no SYN was seen. Flows touching none are ignored. */
  serverPorts: ReadonlySet<number>;
  /** Creates the handler for a new flow. */
  onFlow(flow: Flow, first: TcpSegment): StreamHandler;
  limits?: Partial<FlowLimits>;
}
