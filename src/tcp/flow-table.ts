import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment } from '../decode/types.js';
import { DeliveredRing } from './delivered-ring.js';
import { makeFlowId } from './flow-id.js';
import { FlowList } from './flow-list.js';
import { FlowIndex } from './flow-index.js';
import { FlowState } from './flow-state.js';
import { seqAdd } from './seq.js';
import type { ReassemblyContext } from './stream.js';
import type {
  CloseReason,
  Direction,
  Endpoint,
  Flow,
  FlowLimits,
  FlowStats,
  FlowTableOptions,
  StreamHandler,
} from './types.js';

/**
 * Default memory bounds and timeouts.
 *
 * - maxBufferedPerDirection, 1 MiB: out-of-order data waits about one round trip for the
 *   retransmission of a lost segment, so the bound covers a bandwidth-delay product of 1 MiB
 *   (80 Mbit/s at 100 ms). Capture loss past it is declared by the peer's ACK long before.
 * - maxBufferedTotal, 256 MiB: 256 directions buffering up to their bound at once, a bound for
 *   the whole sensor.
 * - maxFlows, 32768: far above the concurrent SMTP connections of one site. It bounds the open
 *   flows and, separately, the closed flows kept for their late segments. Heap per flow in the
 *   flow table, without its handler: 640 bytes for a flow of SYNs only, 1450 bytes for an open
 *   flow with data both ways, 670 bytes for a flow closed by FIN. So the cap keeps SYN-only
 *   flows near 20 MiB, open flows near 46 MiB and closed ones near 21 MiB. Measured on Node
 *   20.20 as the growth of heapUsed after a full GC while 32768 flows of decoded Ethernet/IPv4
 *   frames (ISNs above 2^31) went into a table with a handler that keeps nothing. An SMTP
 *   session as the handler adds about 1.4 KiB for a SYN-only flow and 2 KiB for an open one.
 * - idleTimeout, 600 s: RFC 5321 section 4.5.3.2 lets a client wait 10 minutes for the reply to
 *   the end of DATA, so a shorter timeout could cut a live session.
 * - retransmissionBuffer, 8 MiB: the copies of delivered segments live until 8 MiB more were
 *   delivered, about 0.7 s at 100 Mbit/s of mail traffic. A fast retransmit comes one round
 *   trip after the original, well within that.
 */
export const DEFAULT_FLOW_LIMITS: Readonly<Required<FlowLimits>> = Object.freeze({
  maxBufferedPerDirection: 1024 * 1024,
  maxBufferedTotal: 256 * 1024 * 1024,
  maxFlows: 32768,
  idleTimeout: 600,
  retransmissionBuffer: 8 * 1024 * 1024,
});

/** Seconds of capture time between two scans for idle flows. */
const SWEEP_INTERVAL = 1;

/**
 * Groups TCP segments into flows and reassembles each direction into an ordered byte stream for
 * the flow's StreamHandler, with explicit gaps where bytes are missing.
 *
 * process() and closeAll() never throw. A handler that throws is counted in stats.handlerErrors
 * and receives no further call, not even onClose; later segments of its flow are ignored.
 */
export class FlowTable {
  readonly stats: FlowStats = {
    segments: 0,
    ignoredSegments: 0,
    flowsOpened: 0,
    flowsClosed: 0,
    activeFlows: 0,
    midstreamFlows: 0,
    retransmissions: 0,
    inconsistentRetransmissions: 0,
    outOfOrder: 0,
    gaps: 0,
    gapBytes: 0,
    droppedBytesPerFlowLimit: 0,
    droppedBytesTotalLimit: 0,
    evictedFlows: 0,
    timedOutFlows: 0,
    peakBufferedBytes: 0,
    unmatchedSegments: 0,
    resetsOutOfWindow: 0,
    suppressedAnomalies: 0,
    handlerErrors: 0,
    internalErrors: 0,
    ackedBytes: 0,
    ackedUnseenBytes: 0,
  };

  private readonly serverPorts: ReadonlySet<number>;
  private readonly createHandler: (flow: Flow, first: TcpSegment) => StreamHandler;
  private readonly limits: Readonly<Required<FlowLimits>>;
  private readonly context: ReassemblyContext;

  /** Every open or recently closed flow, by its tuple. */
  private readonly index = new FlowIndex<FlowState>();
  /** Open flows, least recently active first. */
  private readonly openFlows = new FlowList<FlowState>();
  /**
   * Flows closed by FIN, RST or a failed handler, kept until idle for idleTimeout so that their
   * late segments (the last ACK, retransmissions) do not open a mid-stream flow.
   */
  private readonly closedFlows = new FlowList<FlowState>();
  private nextSweepTs = -Infinity;
  /** Flow being worked on, dropped if the flow table's own code throws. */
  private current: FlowState | null = null;

  constructor(options: FlowTableOptions) {
    this.serverPorts = options.serverPorts;
    this.createHandler = options.onFlow;
    this.limits = resolveLimits(options.limits);
    const ringSize = this.limits.retransmissionBuffer;
    this.context = {
      stats: this.stats,
      limits: this.limits,
      bufferedTotal: 0,
      bufferedPieces: 0,
      deliveredRing: ringSize > 0 ? new DeliveredRing(ringSize) : null,
    };
  }

  /** Adds one segment. Never throws. */
  process(segment: TcpSegment): void {
    const stats = this.stats;
    stats.segments++;

    // Checked before anything is allocated: most traffic on a mirror port is not mail.
    const ports = this.serverPorts;
    if (!ports.has(segment.dstPort) && !ports.has(segment.srcPort)) {
      stats.ignoredSegments++;
      return;
    }

    try {
      this.dispatch(segment);
    } catch {
      this.recoverFromInternalError();
    }
    this.current = null;
    stats.activeFlows = this.openFlows.size;
  }

  /**
   * Moves the table's clock to `ts` without a segment: closes flows idle for longer than
   * idleTimeout, as a segment at that time would. A live capture calls it from a timer, so that
   * flows time out while no traffic arrives. Never throws.
   */
  advance(ts: number): void {
    if (ts < this.nextSweepTs) return;
    try {
      this.sweep(ts);
    } catch {
      this.recoverFromInternalError();
    }
    this.nextSweepTs = ts + SWEEP_INTERVAL;
    this.current = null;
    this.stats.activeFlows = this.openFlows.size;
  }

  /**
   * Ends the input: delivers the data every open flow buffers (with gaps for its holes), closes it
   * with reason "end" and removes closed flows. Never throws.
   */
  closeAll(ts: number): void {
    for (let state = this.openFlows.head; state !== null; state = this.openFlows.head) {
      this.current = state;
      try {
        this.closeFlow(state, 'end', ts);
      } catch {
        this.recoverFromInternalError();
        this.removeFlow(state);
      }
    }
    for (let state = this.closedFlows.head; state !== null; state = this.closedFlows.head) {
      this.removeFlow(state);
    }
    this.current = null;
    this.stats.activeFlows = 0;
  }

  private dispatch(segment: TcpSegment): void {
    const ts = segment.ts;
    if (ts >= this.nextSweepTs) {
      this.sweep(ts);
      this.nextSweepTs = ts + SWEEP_INTERVAL;
    }

    const state = this.index.get(segment);
    if (state === undefined) {
      this.openFlow(segment);
      return;
    }

    this.current = state;
    if (!state.closed) {
      this.handleSegment(state, this.index.direction, segment);
      return;
    }

    // A closed flow: only a new SYN reopens its 5-tuple.
    if ((segment.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      this.removeFlow(state);
      this.openFlow(segment);
      return;
    }
    this.stats.unmatchedSegments++;
    if (ts > state.flow.lastTs) state.flow.lastTs = ts;
    this.closedFlows.touch(state);
  }

  private openFlow(segment: TcpSegment): void {
    const stats = this.stats;
    const flags = segment.flags;
    const ts = segment.ts;
    if ((flags & TCP_RST) !== 0) {
      stats.unmatchedSegments++;
      return;
    }

    // The client is the SYN's sender or the SYN-ACK's receiver; mid-stream, the port decides.
    const syn = (flags & TCP_SYN) !== 0;
    let clientIsSource: boolean;
    if (syn) {
      clientIsSource = (flags & TCP_ACK) === 0;
    } else {
      const sourceIsServer = this.serverPorts.has(segment.srcPort);
      const destinationIsServer = this.serverPorts.has(segment.dstPort);
      // With both ports in the set, the lower one is the server (the destination on a tie).
      if (sourceIsServer && destinationIsServer) {
        clientIsSource = segment.srcPort >= segment.dstPort;
      } else {
        clientIsSource = destinationIsServer;
      }
    }

    const limits = this.limits;
    if (this.openFlows.size >= limits.maxFlows && this.openFlows.head !== null) {
      const victim = this.openFlows.head;
      this.current = victim;
      // The flow ends at its own last packet, not at the packet that pushed it out.
      this.closeFlow(victim, 'evicted', victim.flow.lastTs);
      stats.evictedFlows++;
    }

    const source = endpoint(segment.srcIp, segment.srcPort, segment.srcMac);
    const destination = endpoint(segment.dstIp, segment.dstPort, segment.dstMac);

    const flow: Flow = {
      id: '',
      client: clientIsSource ? source : destination,
      server: clientIsSource ? destination : source,
      vlans: segment.vlans.slice(),
      ipVersion: segment.ipVersion,
      startTs: ts,
      lastTs: ts,
      midstream: !syn,
      bytes: [0, 0],
      gapBytes: [0, 0],
      packets: [0, 0],
    };
    flow.id = makeFlowId(flow);

    const state = new FlowState(flow, this.context);
    this.current = state;
    this.index.add(state);
    this.openFlows.append(state);
    stats.flowsOpened++;
    if (!syn) stats.midstreamFlows++;

    try {
      state.handler = this.createHandler(flow, segment);
    } catch {
      state.fail();
      this.dropFailed(state);
      return;
    }
    this.handleSegment(state, clientIsSource ? 0 : 1, segment);
  }

  private handleSegment(state: FlowState, direction: Direction, segment: TcpSegment): void {
    const flow = state.flow;
    const flags = segment.flags;
    const ts = segment.ts;
    flow.packets[direction]++;
    if (ts > flow.lastTs) flow.lastTs = ts;
    this.openFlows.touch(state);

    // A SYN-only flow keeps its SYN's sequence number in the FlowState and no streams yet.
    if (
      direction === 0 &&
      (flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) === TCP_SYN &&
      segment.payloadLength === 0 &&
      segment.payload.length === 0 &&
      state.takeSyn(segment.seq)
    ) {
      return;
    }

    const streams = state.openStreams();
    const stream = streams[direction];
    const peer = streams[direction === 0 ? 1 : 0];
    if ((flags & TCP_RST) !== 0) {
      // A RST that the receiver would ignore must not end the flow: anyone can send one, and
      // the decoder does not verify checksums.
      if (!stream.acceptsReset(segment.seq)) {
        this.stats.resetsOutOfWindow++;
        state.anomaly({
          name: 'tcp_rst_out_of_window',
          ts,
          direction,
          detail: `RST with seq ${segment.seq} outside the receive window; next expected seq ${stream.nextSeq}`,
        });
        if (state.failed) this.dropFailed(state);
        return;
      }
      // Payload on a RST is diagnostic text (RFC 9293 section 3.5.3), not stream data.
      this.closeFlow(state, 'rst', ts);
      return;
    }

    peer.receiveWindow = segment.window;
    let dataSeq = segment.seq;
    if ((flags & TCP_SYN) !== 0) {
      if (!this.acceptSyn(state, direction, segment)) {
        if (state.failed) this.dropFailed(state);
        return;
      }
      dataSeq = seqAdd(dataSeq, 1);
    }

    const payload = segment.payload;
    const length = Math.max(segment.payloadLength, payload.length);
    if (length > 0) stream.addSegment(dataSeq, payload, length, ts);
    if ((flags & TCP_ACK) !== 0) peer.acknowledge(segment.ack, ts);

    if ((flags & TCP_FIN) !== 0) {
      // NOTE: the second FIN closes the flow at once, so a retransmission that fills a hole
      // after both FINs arrives too late: the hole is already a gap.
      stream.setFin(seqAdd(dataSeq, length));
      if (peer.finSeen && !state.failed) {
        this.closeFlow(state, 'fin', ts);
        return;
      }
    }
    if (state.failed) this.dropFailed(state);
  }

  /**
   * Applies a SYN or SYN-ACK to an open flow. Returns false when the segment is used up: a SYN
   * with a new initial sequence number ends the flow and opens a new one (the client reused
   * the port before this capture saw the old connection end).
   */
  private acceptSyn(state: FlowState, direction: Direction, segment: TcpSegment): boolean {
    const synAck = (segment.flags & TCP_ACK) !== 0;
    const streams = state.openStreams();
    const stream = streams[direction];

    if (stream.synSeen) {
      if (stream.isn === segment.seq) return true; // A retransmitted SYN.
    } else if (direction === (synAck ? 1 : 0) && stream.isFresh()) {
      stream.startAtSyn(segment.seq);
      const peer = streams[direction === 0 ? 1 : 0];
      if (synAck && !peer.initialized) peer.startAt(segment.ack);
      return true;
    }

    const ts = segment.ts;
    if (synAck) {
      state.anomaly({
        name: 'tcp_unexpected_syn_ack',
        ts,
        direction,
        detail: `SYN-ACK with seq ${segment.seq} on a flow whose sequence numbers are already set`,
      });
      return false;
    }
    state.anomaly({
      name: 'tcp_port_reuse',
      ts,
      direction,
      detail: `SYN with seq ${segment.seq} on an open flow; closing it and opening a new flow`,
    });
    this.closeFlow(state, 'evicted', ts);
    this.openFlow(segment);
    return false;
  }

  /**
   * Flushes both directions, calls onClose and frees the flow's memory. Flows closed by FIN or
   * RST stay in the table, marked closed, to absorb their late segments; others are removed.
   */
  private closeFlow(state: FlowState, reason: CloseReason, ts: number): void {
    if (state.closed) return;
    state.flush(ts);
    state.notifyClose(reason, ts);
    state.release();
    this.stats.flowsClosed++;
    if (reason === 'timeout') this.stats.timedOutFlows++;

    if (reason === 'fin' || reason === 'rst') this.keepClosed(state);
    else this.removeFlow(state);
  }

  /** Drops a flow whose handler threw, keeping it as closed so its later segments are ignored. */
  private dropFailed(state: FlowState): void {
    if (state.closed) return;
    state.release();
    this.stats.flowsClosed++;
    this.keepClosed(state);
  }

  /** Keeps a released flow for its late segments, removing the oldest past maxFlows closed flows. */
  private keepClosed(state: FlowState): void {
    const oldest = this.closedFlows.head;
    if (this.closedFlows.size >= this.limits.maxFlows && oldest !== null) this.removeFlow(oldest);
    this.closedFlows.append(state);
  }

  /** Removes a flow from the table altogether. */
  private removeFlow(state: FlowState): void {
    this.index.remove(state);
    state.list?.remove(state);
    if (!state.closed) {
      state.release();
      this.stats.flowsClosed++;
    }
  }

  /** Closes flows idle for longer than idleTimeout and removes closed flows as old. */
  private sweep(now: number): void {
    const deadline = now - this.limits.idleTimeout;
    for (let state = this.openFlows.head; state !== null; state = this.openFlows.head) {
      if (state.flow.lastTs >= deadline) break;
      this.current = state;
      this.closeFlow(state, 'timeout', now);
    }
    for (let state = this.closedFlows.head; state !== null; state = this.closedFlows.head) {
      if (state.flow.lastTs >= deadline) break;
      this.removeFlow(state);
    }
  }

  private recoverFromInternalError(): void {
    this.stats.internalErrors++;
    const state = this.current;
    if (state === null) return;
    try {
      state.handler = null;
      this.dropFailed(state);
    } catch {
      // The flow stays as it is; the counter above already records the failure.
    }
  }
}

/** Builds an endpoint with all its properties in one literal, so V8 stores them in the object. */
function endpoint(ip: string, port: number, mac: string | undefined): Endpoint {
  return mac === undefined ? { ip, port } : { ip, port, mac };
}

function resolveLimits(limits: Partial<FlowLimits> | undefined): Readonly<Required<FlowLimits>> {
  const resolved: Required<FlowLimits> = { ...DEFAULT_FLOW_LIMITS };
  if (limits !== undefined) {
    for (const name of Object.keys(resolved) as (keyof FlowLimits)[]) {
      const value = limits[name];
      if (value !== undefined) resolved[name] = value;
    }
  }
  checkLimit('maxBufferedPerDirection', resolved.maxBufferedPerDirection, 0);
  checkLimit('maxBufferedTotal', resolved.maxBufferedTotal, 0);
  checkLimit('maxFlows', resolved.maxFlows, 1);
  checkLimit('idleTimeout', resolved.idleTimeout, 0);
  checkLimit('retransmissionBuffer', resolved.retransmissionBuffer, 0);
  resolved.retransmissionBuffer = Math.floor(resolved.retransmissionBuffer);
  return Object.freeze(resolved);
}

function checkLimit(name: keyof FlowLimits, value: number, minimum: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < minimum) {
    throw new RangeError(
      `invalid flow limit ${name}: ${String(value)}; expected a number >= ${minimum}`,
    );
  }
}
