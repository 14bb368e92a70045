/**
 * Copies of recently delivered segments, shared by all streams of a flow table, so that a
 * retransmission can be compared with the bytes delivered first.
 *
 * One ring for all flows instead of one per stream: the copies go to consecutive memory, which
 * stays in cache, and the memory is fixed whatever the number of flows. The price is coverage:
 * a copy lives until `size` more bytes were delivered across all flows.
 *
 * Positions are virtual: the count of ring bytes passed before the copy. Position p sits at ring
 * index p % size, because the unused end of the ring, skipped when a copy would not fit there,
 * is counted as well. Each copy is thus contiguous.
 */
export class DeliveredRing {
  private ring: Buffer | null = null;
  /** Virtual position of the next byte to write. */
  private written = 0;

  constructor(readonly size: number) {}

  /** Copies `data` into the ring and returns its position, or -1 when it does not fit. */
  store(data: Buffer): number {
    const length = data.length;
    const size = this.size;
    if (length > size || length === 0) return -1;

    let ring = this.ring;
    if (ring === null) {
      ring = Buffer.allocUnsafeSlow(size);
      this.ring = ring;
    }
    let index = this.written % size;
    if (index + length > size) {
      this.written += size - index;
      index = 0;
    }
    // Uint8Array.prototype.set skips the argument checks of Buffer.copy.
    ring.set(data, index);
    const position = this.written;
    this.written += length;
    return position;
  }

  /** Returns true while the copy of `length` bytes at `position` has not been overwritten. */
  contains(position: number, length: number): boolean {
    return position >= 0 && position + this.size >= this.written && length <= this.size;
  }

  /**
   * Compares `count` bytes of `payload` from `payloadStart` with the copy at `position` from
   * `copyStart`. The caller checks contains() first.
   */
  equals(
    position: number,
    copyStart: number,
    payload: Buffer,
    payloadStart: number,
    count: number,
  ): boolean {
    const ring = this.ring as Buffer;
    const index = (position % this.size) + copyStart;
    return ring.compare(payload, payloadStart, payloadStart + count, index, index + count) === 0;
  }
}
