import type { DeliveredRing } from './delivered-ring.js';
import type { Anomaly, Direction, FlowLimits, FlowStats } from './types.js';
import { seqAdd, seqOffset } from './seq.js';

/**
 * Largest distance ahead of the next expected byte that a segment may start at. RFC 7323 window
 * scaling caps the receive window at 2^30 bytes, so data further ahead cannot be in the window.
 */
export const MAX_SEGMENT_OFFSET = 2 ** 30;

/**
 * Buffered pieces allowed per direction and across all streams. A piece costs about 420 bytes
 * besides its data (RSS growth over 200000 one-byte pieces on Node 20), so tiny pieces would use
 * far more memory than the byte bounds count. 2048 pieces hold 1 MiB in segments of 512 bytes,
 * and 262144 hold 256 MiB in 1 KiB pieces, with at most about 110 MiB of bookkeeping.
 */
export const MAX_PIECES_PER_DIRECTION = 2048;
export const MAX_PIECES_TOTAL = 262144;

/** Delivered segments per stream whose copies in the DeliveredRing can be compared. */
export const RECENT_SEGMENTS = 4;

/** Receiver of what a stream produces: the flow, which passes it on to the stream handler. */
export interface StreamOwner {
  deliver(direction: Direction, data: Buffer, ts: number): void;
  gap(direction: Direction, length: number, ts: number): void;
  anomaly(anomaly: Anomaly): void;
}

/** State shared by all streams of one flow table: counters, limits and the total buffered bytes. */
export interface ReassemblyContext {
  readonly stats: FlowStats;
  readonly limits: Readonly<Required<FlowLimits>>;
  /** Out-of-order bytes buffered by all streams together. */
  bufferedTotal: number;
  /** Out-of-order pieces buffered by all streams together. */
  bufferedPieces: number;
  /** Copies of recently delivered bytes; null when retransmissionBuffer is 0. */
  readonly deliveredRing: DeliveredRing | null;
}

/** An out-of-order piece of data, copied out of its packet. */
interface PendingSegment {
  seq: number;
  data: Buffer;
}

/** Shared empty list of a stream that buffers nothing; frozen, so a write to it throws. */
const NO_PENDING: PendingSegment[] = Object.freeze([]) as unknown as PendingSegment[];

/**
 * Reassembles one direction of a TCP connection into an ordered byte stream.
 *
 * In-order data goes to the owner as the packet's own view, without a copy. Data ahead of the
 * next expected byte is copied and buffered, sorted and without overlaps, until the hole before
 * it fills or is declared a gap.
 *
 * Overlaps follow the "first" policy: bytes seen first win, whether delivered or buffered. A later
 * copy of the same range is counted as a retransmission. It is compared with the first copy while
 * that copy is at hand. Buffered bytes always are, and delivered bytes are for the last
 * RECENT_SEGMENTS segments while the ring shared by all flows still contains them. A difference
 * is reported as the anomaly "retransmission_inconsistency".
 */
export class TcpStream {
  /** False until the SYN or the first data segment sets the sequence numbers. */
  initialized = false;
  /** Sequence number of the next byte to deliver. */
  nextSeq = 0;
  /** True once the SYN of this direction was seen; `isn` is then its sequence number. */
  synSeen = false;
  isn = 0;
  finSeen = false;
  /** Sequence number of the FIN, which follows the last data byte. */
  finSeq = 0;
  /** Out-of-order bytes buffered by this stream. */
  bufferedBytes = 0;
  /** Bytes delivered or declared lost since the start; used to tell a fresh stream. */
  consumedBytes = 0;
  /** True once the other side acknowledged bytes of this direction; `highestAck` is then set. */
  ackSeen = false;
  /** Highest acknowledgement number the other side sent for this direction. */
  highestAck = 0;
  /** True once the capture saw a segment of this direction; `seenEnd` is then set. */
  seenAny = false;
  /**
   * Sequence number after the highest byte the capture saw in this direction, counting the SYN
   * and the FIN as one byte each, as the peer's ACK does. Bytes cut by the snap length count as
   * seen: they crossed the capture point.
   */
  seenEnd = 0;
  /**
   * Window field of the other side's last segment, unscaled because the decoder does not pass
   * the window scale option. The largest unscaled window until the other side sends a segment.
   */
  receiveWindow = 65535;

  /** Buffered segments, sorted; NO_PENDING until the first one, so most streams need no array. */
  private pending: PendingSegment[] = NO_PENDING;
  /**
   * The last delivered segments as triples (sequence number, ring position, length), filled in
   * circular order; allocated on the first delivery.
   */
  private recent: number[] | null = null;
  /** Valid triples in `recent`. */
  private recentCount = 0;
  /** Triple that the next delivery overwrites. */
  private recentNext = 0;

  constructor(
    readonly direction: Direction,
    private readonly owner: StreamOwner,
    private readonly context: ReassemblyContext,
  ) {}

  /** Starts the sequence space at the SYN: data begins at ISN + 1. */
  startAtSyn(isn: number): void {
    this.initialized = true;
    this.synSeen = true;
    this.isn = isn;
    this.nextSeq = seqAdd(isn, 1);
    this.see(this.nextSeq);
  }

  /** Starts the sequence space at `seq` without a SYN: mid-stream, or from a SYN-ACK's ACK. */
  startAt(seq: number): void {
    this.initialized = true;
    this.nextSeq = seq >>> 0;
  }

  /** Returns true while nothing was delivered, buffered or declared lost in this direction. */
  isFresh(): boolean {
    return this.consumedBytes === 0 && this.bufferedBytes === 0;
  }

  /**
   * Takes the payload of one segment. `length` is the payload length from the IP header, which is
   * larger than `payload.length` when the snap length cut the frame.
   */
  addSegment(seq: number, payload: Buffer, length: number, ts: number): void {
    if (length < payload.length) length = payload.length;
    if (length === 0) return;
    // NOTE: mid-stream, the first data segment seen sets the start. When it was reordered, the
    // earlier bytes that arrive after it count as retransmitted data and are dropped.
    if (!this.initialized) this.startAt(seq);

    let offset = seqOffset(seq, this.nextSeq);
    if (offset <= MAX_SEGMENT_OFFSET) this.see(seqAdd(seq, length));

    // Keep-alives and Linux zero-window probes carry 0 or 1 byte at nextSeq - 1.
    if (offset === -1 && length <= 1) return;

    if (this.finSeen) {
      // Bytes at or after the FIN cannot be data (RFC 9293 section 3.10.7.4): drop them.
      const beforeFin = seqOffset(this.finSeq, seq);
      if (beforeFin <= 0) return;
      if (beforeFin < length) {
        length = beforeFin;
        if (payload.length > length) payload = payload.subarray(0, length);
      }
    }

    if (offset > MAX_SEGMENT_OFFSET) {
      this.owner.anomaly({
        name: 'tcp_segment_out_of_window',
        ts,
        direction: this.direction,
        detail: `seq ${seq} is ${offset} bytes after the next expected byte ${this.nextSeq}`,
      });
      return;
    }

    // Fast path: the next expected bytes and nothing buffered.
    if (offset === 0 && this.pending.length === 0) {
      if (payload.length > 0) this.deliver(payload, ts);
      if (length > payload.length) this.declareGap(length - payload.length, ts);
      return;
    }

    let delivered: OverlapResult = OVERLAP_NONE;
    if (offset < 0) {
      // Starts in data already delivered or declared lost.
      delivered = this.matchesDelivered(payload, offset) ? OVERLAP_SAME : OVERLAP_DIFFERENT;
      if (offset + length <= 0) {
        this.countRetransmission(seq, delivered === OVERLAP_DIFFERENT, ts);
        return;
      }
      payload = payload.subarray(Math.min(-offset, payload.length));
      length += offset;
      offset = 0;
    }

    const capturedEnd = seqAdd(this.nextSeq, offset + payload.length);
    this.insert(payload, offset, ts, seq, delivered);

    // Bytes cut by the snap length right at the next expected byte are not in this capture, so
    // declare them lost now (up to the next buffered segment) instead of holding data back.
    const cut = length - payload.length;
    if (cut > 0 && this.nextSeq === capturedEnd) {
      const hole = this.firstHole();
      this.declareGap(hole < 0 ? cut : Math.min(cut, hole), ts);
    }
    this.drain(ts);
    this.enforceLimits(ts);
  }

  /**
   * Takes an acknowledgement from the other side. When the peer acknowledges bytes that are
   * missing before buffered data, the capture lost them: declare the gap and deliver what follows.
   * An ACK beyond the next expected byte with nothing buffered declares nothing, because the
   * data it covers may still come later in the capture (each direction can be captured late).
   */
  acknowledge(ack: number, ts: number): void {
    if (!this.ackSeen) {
      this.ackSeen = true;
      this.highestAck = ack >>> 0;
      // With the SYN seen, the first ACK covers the sequence space from the ISN on; without it,
      // the first ACK is where counting starts.
      if (this.synSeen) this.countAcked(this.isn, seqOffset(ack, this.isn));
    } else {
      const advance = seqOffset(ack, this.highestAck);
      if (advance > 0) {
        this.countAcked(this.highestAck, advance);
        this.highestAck = ack >>> 0;
      }
    }
    while (this.pending.length > 0) {
      const acked = seqOffset(ack, this.nextSeq);
      if (acked <= 0) return;

      const hole = this.firstHole();
      if (acked < hole) {
        this.declareGap(acked, ts);
        return;
      }
      if (hole > 0) this.declareGap(hole, ts);
      this.drain(ts);
    }
  }

  /**
   * Returns true when a RST of this direction with sequence number `seq` can be in the receive
   * window: RFC 5961 section 3.2 has the receiver accept a RST only when RCV.NXT <= seq <
   * RCV.NXT + RCV.WND. Here RCV.NXT is nextSeq, or the other side's highest ACK when that is
   * ahead because the capture lost data, and RCV.WND is the unscaled window field. With window
   * scaling the real window is larger, so a RST this check takes is one the receiver takes too:
   * a forged RST cannot end the flow here while the connection goes on. Before any sequence
   * number of this direction is known, every RST is accepted.
   *
   * NOTE: a RST between the unscaled and the scaled window end is ignored although it ends the
   * connection, and the flow then stays open until idleTimeout. Stacks send a RST at SND.NXT or
   * at the ACK they reply to, so this needs more than a window of data lost by the capture.
   */
  acceptsReset(seq: number): boolean {
    let base: number;
    if (this.initialized) {
      const ackAhead = this.ackSeen && seqOffset(this.highestAck, this.nextSeq) > 0;
      base = ackAhead ? this.highestAck : this.nextSeq;
      if (seqOffset(seq, this.nextSeq) < 0) return false;
    } else if (this.ackSeen) {
      base = this.highestAck;
      if (seqOffset(seq, base) < 0) return false;
    } else {
      return true;
    }
    // RFC 5961 section 3.2 accepts a RST at exactly RCV.NXT, even with a zero window.
    return seqOffset(seq, base) < Math.max(this.receiveWindow, 1);
  }

  /** Records the FIN at `finSeq` (the sequence number after the segment's data). */
  setFin(finSeq: number): void {
    this.see(seqAdd(finSeq, 1));
    if (!this.initialized) this.startAt(finSeq);
    if (this.finSeen) return;
    this.finSeen = true;
    this.finSeq = finSeq >>> 0;
  }

  /**
   * Delivers everything buffered, declaring a gap for each hole, and for the bytes still missing
   * before the FIN when the FIN was seen. Called before the flow closes.
   */
  flush(ts: number): void {
    if (!this.initialized) return;
    while (this.pending.length > 0) {
      const hole = this.firstHole();
      if (hole > 0) this.declareGap(hole, ts);
      this.drain(ts);
    }
    if (this.finSeen) {
      const missing = seqOffset(this.finSeq, this.nextSeq);
      if (missing > 0) this.declareGap(missing, ts);
    }
  }

  /** Moves seenEnd forward to `end` when `end` lies after it. */
  private see(end: number): void {
    if (!this.seenAny || seqOffset(end, this.seenEnd) > 0) {
      this.seenAny = true;
      this.seenEnd = end >>> 0;
    }
  }

  /**
   * Counts `advance` bytes of sequence space from `from` on as acknowledged, and the part of them
   * after seenEnd as acknowledged but never seen. Because highestAck only moves forward, each
   * byte counts once. An advance beyond MAX_SEGMENT_OFFSET is no real ACK (a forged segment or a
   * flow picked up with a stale ACK) and counts nothing.
   */
  private countAcked(from: number, advance: number): void {
    if (advance <= 0 || advance > MAX_SEGMENT_OFFSET) return;
    const stats = this.context.stats;
    stats.ackedBytes += advance;
    if (!this.seenAny) {
      stats.ackedUnseenBytes += advance;
      return;
    }
    const beyond = seqOffset(seqAdd(from, advance), this.seenEnd);
    if (beyond > 0) stats.ackedUnseenBytes += Math.min(beyond, advance);
  }

  /** Frees buffered data and returns its bytes to the shared total. */
  release(): void {
    this.context.bufferedTotal -= this.bufferedBytes;
    this.context.bufferedPieces -= this.pending.length;
    this.bufferedBytes = 0;
    this.pending = NO_PENDING;
    this.recent = null;
    this.recentCount = 0;
  }

  /** Returns the distance from nextSeq to the first buffered segment, or -1 without one. */
  private firstHole(): number {
    const first = this.pending[0];
    return first === undefined ? -1 : seqOffset(first.seq, this.nextSeq);
  }

  /**
   * Places the captured bytes of a segment that starts `offset` (>= 0) bytes after nextSeq: the
   * parts that are new are buffered as copies, except a part at offset 0, which is delivered as a
   * view. Parts already buffered are compared with the new bytes. `delivered` is how the bytes of
   * the segment before nextSeq, already cut off, compared with the delivered copy. A
   * retransmission is counted, and reported when bytes differ, before any byte is delivered.
   */
  private insert(
    payload: Buffer,
    offset: number,
    ts: number,
    seq: number,
    delivered: OverlapResult,
  ): void {
    let pending = this.pending;
    if (pending === NO_PENDING) {
      pending = [];
      this.pending = pending;
    }
    const dataEnd = offset + payload.length;
    let cursor = offset;
    let index = this.firstEndingAfter(offset);
    let overlapped = false;
    let inconsistent = false;
    let inOrder: Buffer | null = null;
    let buffered = 0;
    const piecesBefore = pending.length;

    while (cursor < dataEnd && index < pending.length) {
      const segment = pending[index] as PendingSegment;
      const start = seqOffset(segment.seq, this.nextSeq);
      const end = start + segment.data.length;
      if (end <= cursor) {
        index++;
        continue;
      }

      if (start > cursor) {
        // New bytes before this buffered segment.
        const pieceEnd = Math.min(start, dataEnd);
        if (cursor === 0) {
          inOrder = payload.subarray(0 - offset, pieceEnd - offset);
        } else {
          pending.splice(index, 0, this.copyPiece(payload, offset, cursor, pieceEnd));
          buffered += pieceEnd - cursor;
          index++;
        }
        cursor = pieceEnd;
        if (cursor >= dataEnd) break;
      }

      // Bytes that this buffered segment already covers: the buffered copy wins.
      const overlapEnd = Math.min(end, dataEnd);
      overlapped = true;
      if (!inconsistent) {
        const payloadStart = cursor - offset;
        const payloadEnd = overlapEnd - offset;
        const copyStart = cursor - start;
        const copyEnd = overlapEnd - start;
        if (segment.data.compare(payload, payloadStart, payloadEnd, copyStart, copyEnd) !== 0) {
          inconsistent = true;
        }
      }
      cursor = overlapEnd;
      index++;
    }

    if (cursor < dataEnd) {
      if (cursor === 0) {
        inOrder = payload.subarray(0 - offset);
      } else {
        pending.splice(index, 0, this.copyPiece(payload, offset, cursor, dataEnd));
        buffered += dataEnd - cursor;
      }
    }

    if (buffered > 0) {
      const stats = this.context.stats;
      if (offset > 0) stats.outOfOrder++;
      this.bufferedBytes += buffered;
      this.context.bufferedTotal += buffered;
      this.context.bufferedPieces += pending.length - piecesBefore;
      if (this.context.bufferedTotal > stats.peakBufferedBytes) {
        stats.peakBufferedBytes = this.context.bufferedTotal;
      }
    }
    // The handler learns of the conflict before the segment's new bytes, while it is still at
    // the bytes the conflict concerns (the SMTP stage attaches it to the current transaction).
    if (overlapped || delivered !== OVERLAP_NONE) {
      this.countRetransmission(seq, inconsistent || delivered === OVERLAP_DIFFERENT, ts);
    }
    if (inOrder !== null) this.deliver(inOrder, ts);
  }

  /** Returns the index of the first buffered segment that ends after `offset`, by bisection. */
  private firstEndingAfter(offset: number): number {
    const pending = this.pending;
    let low = 0;
    let high = pending.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const segment = pending[middle] as PendingSegment;
      const end = seqOffset(segment.seq, this.nextSeq) + segment.data.length;
      if (end <= offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private copyPiece(payload: Buffer, offset: number, from: number, to: number): PendingSegment {
    // allocUnsafeSlow gives each piece its own memory, so a small piece does not keep a pooled
    // 8 KiB slab alive and the byte counts match what is buffered.
    const data = Buffer.allocUnsafeSlow(to - from);
    payload.copy(data, 0, from - offset, to - offset);
    return { seq: seqAdd(this.nextSeq, from), data };
  }

  /** Delivers the buffered segments that start at or before nextSeq. */
  private drain(ts: number): void {
    const pending = this.pending;
    let count = 0;
    while (count < pending.length) {
      const segment = pending[count] as PendingSegment;
      const start = seqOffset(segment.seq, this.nextSeq);
      if (start > 0) break;
      count++;

      const size = segment.data.length;
      this.bufferedBytes -= size;
      this.context.bufferedTotal -= size;
      if (-start >= size) continue;
      this.deliver(start < 0 ? segment.data.subarray(-start) : segment.data, ts);
    }
    if (count > 0) {
      pending.splice(0, count);
      this.context.bufferedPieces -= count;
    }
  }

  /**
   * Declares the first hole a gap while this stream buffers more than its share: above
   * maxBufferedPerDirection, or anything while all flows together buffer above maxBufferedTotal.
   * The piece counts are bounded the same way, by MAX_PIECES_PER_DIRECTION and MAX_PIECES_TOTAL.
   * The skipped bytes count as gap bytes and as bytes dropped by that limit.
   */
  private enforceLimits(ts: number): void {
    const limits = this.context.limits;
    const stats = this.context.stats;
    while (this.bufferedBytes > 0) {
      const context = this.context;
      if (
        this.bufferedBytes > limits.maxBufferedPerDirection ||
        this.pending.length > MAX_PIECES_PER_DIRECTION
      ) {
        stats.droppedBytesPerFlowLimit += this.skipFirstHole(ts);
      } else if (
        context.bufferedTotal > limits.maxBufferedTotal ||
        context.bufferedPieces > MAX_PIECES_TOTAL
      ) {
        stats.droppedBytesTotalLimit += this.skipFirstHole(ts);
      } else {
        return;
      }
    }
  }

  private skipFirstHole(ts: number): number {
    const hole = this.firstHole();
    if (hole > 0) this.declareGap(hole, ts);
    this.drain(ts);
    return hole > 0 ? hole : 0;
  }

  private deliver(data: Buffer, ts: number): void {
    const ring = this.context.deliveredRing;
    if (ring !== null) this.remember(ring, data);
    const size = data.length;
    this.nextSeq = seqAdd(this.nextSeq, size);
    this.consumedBytes += size;
    this.owner.deliver(this.direction, data, ts);
  }

  private declareGap(length: number, ts: number): void {
    this.nextSeq = seqAdd(this.nextSeq, length);
    this.consumedBytes += length;
    const stats = this.context.stats;
    stats.gaps++;
    stats.gapBytes += length;
    this.owner.gap(this.direction, length, ts);
  }

  private countRetransmission(seq: number, inconsistent: boolean, ts: number): void {
    const stats = this.context.stats;
    stats.retransmissions++;
    if (!inconsistent) return;
    stats.inconsistentRetransmissions++;
    this.owner.anomaly({
      name: 'retransmission_inconsistency',
      ts,
      direction: this.direction,
      detail: `segment at seq ${seq} differs from the bytes seen first`,
    });
  }

  /** Copies a segment about to be delivered at nextSeq into the ring and records where. */
  private remember(ring: DeliveredRing, data: Buffer): void {
    const position = ring.store(data);
    if (position < 0) return;
    let recent = this.recent;
    if (recent === null) {
      recent = new Array<number>(RECENT_SEGMENTS * 3).fill(0);
      this.recent = recent;
    }
    const index = this.recentNext * 3;
    recent[index] = this.nextSeq;
    recent[index + 1] = position;
    recent[index + 2] = data.length;
    this.recentNext = (this.recentNext + 1) % RECENT_SEGMENTS;
    if (this.recentCount < RECENT_SEGMENTS) this.recentCount++;
  }

  /**
   * Compares the captured bytes of a segment starting `offset` (< 0) bytes before nextSeq with
   * the recorded copies of delivered segments. Bytes without a copy are not compared.
   */
  private matchesDelivered(payload: Buffer, offset: number): boolean {
    const recent = this.recent;
    const ring = this.context.deliveredRing;
    if (recent === null || ring === null) return true;

    const payloadEnd = Math.min(0, offset + payload.length);
    for (let k = 0; k < this.recentCount; k++) {
      const seq = recent[k * 3] as number;
      const position = recent[k * 3 + 1] as number;
      const length = recent[k * 3 + 2] as number;
      const start = seqOffset(seq, this.nextSeq);
      const from = Math.max(start, offset);
      const to = Math.min(start + length, payloadEnd);
      if (from >= to || !ring.contains(position, length)) continue;
      if (!ring.equals(position, from - start, payload, from - offset, to - from)) return false;
    }
    return true;
  }
}

/** How a segment's bytes compare with a copy seen first: no overlap, the same bytes, or others. */
type OverlapResult = 0 | 1 | 2;
const OVERLAP_NONE = 0;
const OVERLAP_SAME = 1;
const OVERLAP_DIFFERENT = 2;
