/**
 * TCP sequence number arithmetic modulo 2^32 (RFC 9293 section 3.4). Sequence numbers are kept as
 * unsigned 32-bit integers in plain JS numbers.
 */

/**
 * Returns the signed distance from `base` to `seq`, in [-2^31, 2^31). Positive means `seq` lies
 * after `base`, which stays right across the wrap from 0xffffffff to 0.
 */
export function seqOffset(seq: number, base: number): number {
  return (seq - base) | 0;
}

/** Returns `seq + n` modulo 2^32. */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) >>> 0;
}
