// Seeded pseudo-random numbers for the capture generator: the same seed gives the same capture.

/** Returns a sfc32 generator (Chris Doty-Humphrey's Small Fast Counting RNG) seeded by splitmix32. */
export function createRng(seed) {
  let s = seed >>> 0;
  const splitmix32 = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32();
  let b = splitmix32();
  let c = splitmix32();
  let d = splitmix32();

  /** Next unsigned 32-bit integer. */
  const u32 = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };

  const float = () => u32() / 4294967296;

  return {
    u32,
    float,
    /** Integer in [min, max], both ends included. */
    int: (min, max) => min + Math.floor(float() * (max - min + 1)),
    chance: (p) => float() < p,
    pick: (list) => list[Math.floor(float() * list.length)],
    /** Exponentially distributed value with the given mean. */
    exp: (mean) => -mean * Math.log(1 - float()),
    /** Index into weights, chosen with probability proportional to each weight. */
    weighted: (weights) => {
      let total = 0;
      for (const w of weights) total += w;
      let x = float() * total;
      for (let i = 0; i < weights.length; i++) {
        x -= weights[i];
        if (x < 0) return i;
      }
      return weights.length - 1;
    },
  };
}

/**
 * Fills a buffer of `size` bytes with generator output. Payloads that only need to look random
 * (TLS records, HTTP bodies, attachments) are views into this pool, so no bytes are generated per
 * packet.
 */
export function createRandomPool(rng, size) {
  const pool = Buffer.allocUnsafe(size);
  for (let i = 0; i + 4 <= size; i += 4) pool.writeUInt32LE(rng.u32(), i);
  return {
    pool,
    /** A view of n pseudo-random bytes; n must not exceed the pool size. */
    bytes(n) {
      const offset = rng.int(0, size - n);
      return pool.subarray(offset, offset + n);
    },
  };
}
