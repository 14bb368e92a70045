/**
 * IP fragment reassembly for IPv4 (RFC 791) and IPv6 (RFC 8200 section 4.5).
 *
 * Policy, the same for both versions:
 * - Overlaps: the first bytes received win. A fragment that overlaps bytes already held
 *   contributes only its new bytes and is counted once in `fragmentsDropped` (exact duplicates too).
 * - A fragment that is not the last one must carry a multiple of 8 bytes, and no datagram may
 *   grow past 65535 bytes of payload. Fragments that break either rule count as `errors`.
 * - Two different ends (a second last fragment, or a last fragment before bytes already held)
 *   make the datagram inconsistent: it is discarded and all its fragments count as dropped.
 * - Timeout: a datagram still incomplete `timeout` seconds (packet time) after its first
 *   fragment is discarded. Expiry runs when a fragment arrives and from `expire()`.
 * - Memory: held payload plus a fixed per-fragment overhead is bounded by `maxBytes`. A new
 *   fragment that does not fit evicts the oldest datagrams. A fragment that alone exceeds the
 *   bound, or that would take a datagram past `maxFragmentsPerDatagram`, is dropped.
 */

/** Bytes charged per held piece and per datagram on top of the payload, so empty pieces count. */
const PIECE_OVERHEAD = 64;
const DATAGRAM_OVERHEAD = 256;
const MAX_PAYLOAD = 65535;

interface Piece {
  start: number;
  end: number;
  data: Buffer;
}

interface Datagram {
  firstSeen: number;
  /** Held pieces, sorted by start, never overlapping. */
  pieces: Piece[];
  heldBytes: number;
  /** Payload length, known once the last fragment arrived; -1 before. */
  totalLength: number;
  fragments: number;
  chargedBytes: number;
}

export interface FragmentLimits {
  /** Seconds of packet time a datagram may stay incomplete. */
  timeout: number;
  /** Bound on held payload plus bookkeeping, in bytes, over all datagrams. */
  maxBytes: number;
  maxFragmentsPerDatagram: number;
}

/** Counters the reassembler updates; DecodeStats has all three. */
export interface FragmentCounters {
  reassembled: number;
  /** Fragments discarded by timeout, overlap, inconsistency, or a memory or count bound. */
  fragmentsDropped: number;
  /** Incremented for fragments with a length or offset that no valid datagram has. */
  errors: number;
}

/** Reassembles fragmented IP datagrams under the policy described at the top of this file. */
export class FragmentReassembler {
  private readonly counters: FragmentCounters;
  private readonly datagrams = new Map<string, Datagram>();
  private bytesHeld = 0;
  private readonly limits: FragmentLimits;

  constructor(limits: FragmentLimits, counters: FragmentCounters) {
    this.limits = limits;
    this.counters = counters;
  }

  /** Bytes currently charged against `maxBytes`. */
  get heldBytes(): number {
    return this.bytesHeld;
  }

  /** Number of incomplete datagrams held. */
  get pending(): number {
    return this.datagrams.size;
  }

  /**
   * Adds one fragment and returns the reassembled payload (a new buffer, without the IP header)
   * when this fragment completes its datagram. `key` identifies the datagram; `offset` is the
   * byte offset of `payload` in the datagram; `more` is the more-fragments flag. The payload is
   * copied, so the caller's frame buffer may be reused afterwards.
   */
  add(key: string, offset: number, payload: Buffer, more: boolean, now: number): Buffer | undefined {
    this.expire(now);

    const end = offset + payload.length;
    if (end > MAX_PAYLOAD || (more && (payload.length === 0 || payload.length % 8 !== 0))) {
      this.counters.errors++;
      return undefined;
    }

    let datagram = this.datagrams.get(key);
    if (datagram === undefined) {
      datagram = {
        firstSeen: now,
        pieces: [],
        heldBytes: 0,
        totalLength: -1,
        fragments: 0,
        chargedBytes: DATAGRAM_OVERHEAD,
      };
      if (!this.reserve(DATAGRAM_OVERHEAD + PIECE_OVERHEAD + payload.length, undefined)) {
        this.counters.fragmentsDropped++;
        return undefined;
      }
      this.bytesHeld += DATAGRAM_OVERHEAD;
      this.datagrams.set(key, datagram);
    }

    if (datagram.fragments >= this.limits.maxFragmentsPerDatagram) {
      this.counters.fragmentsDropped++;
      return undefined;
    }

    if (!more) {
      const lastPiece = datagram.pieces[datagram.pieces.length - 1];
      const inconsistent =
        (datagram.totalLength >= 0 && datagram.totalLength !== end) ||
        (lastPiece !== undefined && lastPiece.end > end);
      if (inconsistent) {
        this.discard(key, datagram, 1);
        return undefined;
      }
      datagram.totalLength = end;
    } else if (datagram.totalLength >= 0 && end > datagram.totalLength) {
      this.discard(key, datagram, 1);
      return undefined;
    }

    datagram.fragments++;
    const overlapped = this.insert(datagram, offset, payload);
    if (overlapped) this.counters.fragmentsDropped++;

    if (datagram.totalLength >= 0 && datagram.heldBytes === datagram.totalLength) {
      return this.complete(key, datagram);
    }
    return undefined;
  }

  /** Discards every datagram whose first fragment is older than the timeout at time `now`. */
  expire(now: number): void {
    // The map iterates in insertion order, which is arrival order unless packet time jumps back.
    for (const [key, datagram] of this.datagrams) {
      if (now - datagram.firstSeen < this.limits.timeout) break;
      this.discard(key, datagram, 0);
    }
  }

  /**
   * Stores the parts of [offset, offset + payload.length) that no held piece covers yet.
   * Returns true when some of the fragment's bytes were already held.
   */
  private insert(datagram: Datagram, offset: number, payload: Buffer): boolean {
    const end = offset + payload.length;
    const pieces = datagram.pieces;
    let cursor = offset;
    let overlapped = false;
    let index = 0;
    while (index < pieces.length && pieces[index].end <= offset) index++;

    while (cursor < end) {
      const next = index < pieces.length ? pieces[index] : undefined;
      if (next !== undefined && next.start <= cursor) {
        overlapped = true;
        cursor = Math.max(cursor, next.end);
        index++;
        continue;
      }

      const gapEnd = next === undefined ? end : Math.min(end, next.start);
      const bytes = Buffer.from(payload.subarray(cursor - offset, gapEnd - offset));
      const cost = PIECE_OVERHEAD + bytes.length;
      if (!this.reserve(cost, datagram)) {
        overlapped = true; // counted as dropped: the bytes could not be kept
        break;
      }
      pieces.splice(index, 0, { start: cursor, end: gapEnd, data: bytes });
      datagram.heldBytes += bytes.length;
      datagram.chargedBytes += cost;
      this.bytesHeld += cost;
      index++;
      cursor = gapEnd;
    }

    return overlapped;
  }

  /** Makes room for `cost` bytes by evicting the oldest datagrams other than `keep`. */
  private reserve(cost: number, keep: Datagram | undefined): boolean {
    if (cost > this.limits.maxBytes) return false;
    for (const [key, datagram] of this.datagrams) {
      if (this.bytesHeld + cost <= this.limits.maxBytes) break;
      if (datagram === keep) continue;
      this.discard(key, datagram, 0);
    }
    return this.bytesHeld + cost <= this.limits.maxBytes;
  }

  private complete(key: string, datagram: Datagram): Buffer {
    const out = Buffer.allocUnsafe(datagram.totalLength);
    for (const piece of datagram.pieces) piece.data.copy(out, piece.start);
    this.release(key, datagram);
    this.counters.reassembled++;
    return out;
  }

  /** Drops a datagram, counting its held fragments plus `extra` more as dropped. */
  private discard(key: string, datagram: Datagram, extra: number): void {
    this.counters.fragmentsDropped += datagram.fragments + extra;
    this.release(key, datagram);
  }

  private release(key: string, datagram: Datagram): void {
    this.bytesHeld -= datagram.chargedBytes;
    this.datagrams.delete(key);
  }
}
