/**
 * Text forms of MAC, IPv4 and IPv6 addresses read straight from packet bytes.
 *
 * These run for every decoded segment, and a capture usually repeats the same few addresses,
 * so each formatter keeps a small direct-mapped cache keyed by the address bytes. A cache hit
 * allocates nothing. Each cache has a fixed number of slots, so memory stays bounded.
 * Callers must bounds-check: every function here reads its full address width from `offset`.
 */

const IPV4_SLOTS = 4096; // a power of two
const IPV6_SLOTS = 4096;
const MAC_SLOTS = 1024;

const ipv4Keys = new Uint32Array(IPV4_SLOTS);
const ipv4Text: (string | undefined)[] = new Array<string | undefined>(IPV4_SLOTS).fill(undefined);

const ipv6Keys = new Uint32Array(IPV6_SLOTS * 4);
const ipv6Text: (string | undefined)[] = new Array<string | undefined>(IPV6_SLOTS).fill(undefined);

const macKeys = new Uint32Array(MAC_SLOTS * 2);
const macText: (string | undefined)[] = new Array<string | undefined>(MAC_SLOTS).fill(undefined);

const HEX_BYTE: string[] = [];
for (let i = 0; i < 256; i++) HEX_BYTE.push(i.toString(16).padStart(2, '0'));

/** Formats the 6-byte MAC address at `offset` as lower-case "aa:bb:cc:dd:ee:ff". */
export function formatMac(buf: Uint8Array, offset: number): string {
  const high = (buf[offset] << 8) | buf[offset + 1];
  const low =
    ((buf[offset + 2] << 24) | (buf[offset + 3] << 16) | (buf[offset + 4] << 8) | buf[offset + 5]) >>>
    0;
  const slot = (Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 0) & (MAC_SLOTS - 1);
  const cached = macText[slot];
  if (cached !== undefined && macKeys[slot * 2] === high && macKeys[slot * 2 + 1] === low) {
    return cached;
  }

  const text =
    HEX_BYTE[buf[offset]] +
    ':' +
    HEX_BYTE[buf[offset + 1]] +
    ':' +
    HEX_BYTE[buf[offset + 2]] +
    ':' +
    HEX_BYTE[buf[offset + 3]] +
    ':' +
    HEX_BYTE[buf[offset + 4]] +
    ':' +
    HEX_BYTE[buf[offset + 5]];
  macKeys[slot * 2] = high;
  macKeys[slot * 2 + 1] = low;
  macText[slot] = text;
  return text;
}

/** Formats the 4-byte IPv4 address at `offset` as a dotted quad. */
export function formatIPv4(buf: Uint8Array, offset: number): string {
  const key =
    ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
  const slot = Math.imul(key, 0x9e3779b1) >>> 20; // top 12 bits: IPV4_SLOTS = 2^12
  const cached = ipv4Text[slot];
  if (cached !== undefined && ipv4Keys[slot] === key) return cached;

  const text = `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  ipv4Keys[slot] = key;
  ipv4Text[slot] = text;
  return text;
}

/**
 * Formats the 16-byte IPv6 address at `offset` in the RFC 5952 form. Groups are lower-case
 * hexadecimal without leading zeros. The longest run of two or more zero groups becomes "::",
 * the first one when two runs are equally long. IPv4-mapped addresses read "::ffff:192.0.2.1".
 */
export function formatIPv6(buf: Uint8Array, offset: number): string {
  const w0 = readU32(buf, offset);
  const w1 = readU32(buf, offset + 4);
  const w2 = readU32(buf, offset + 8);
  const w3 = readU32(buf, offset + 12);
  let hash = Math.imul(w0 ^ 0x27d4eb2f, 0x9e3779b1);
  hash = Math.imul(hash ^ w1, 0x85ebca6b);
  hash = Math.imul(hash ^ w2, 0xc2b2ae35);
  hash = Math.imul(hash ^ w3, 0x9e3779b1);
  const slot = (hash >>> 0) >>> 20; // top 12 bits: IPV6_SLOTS = 2^12
  const cached = ipv6Text[slot];
  const k = slot * 4;
  if (
    cached !== undefined &&
    ipv6Keys[k] === w0 &&
    ipv6Keys[k + 1] === w1 &&
    ipv6Keys[k + 2] === w2 &&
    ipv6Keys[k + 3] === w3
  ) {
    return cached;
  }

  const text = buildIPv6Text(buf, offset);
  ipv6Keys[k] = w0;
  ipv6Keys[k + 1] = w1;
  ipv6Keys[k + 2] = w2;
  ipv6Keys[k + 3] = w3;
  ipv6Text[slot] = text;
  return text;
}

function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
}

function buildIPv6Text(buf: Uint8Array, offset: number): string {
  const groups = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) groups[i] = (buf[offset + i * 2] << 8) | buf[offset + i * 2 + 1];

  // RFC 5952 section 5 recommends mixed notation for the IPv4-mapped prefix ::ffff:0:0/96.
  if (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    return `::ffff:${buf[offset + 12]}.${buf[offset + 13]}.${buf[offset + 14]}.${buf[offset + 15]}`;
  }

  // Find the first longest run of zero groups. A single zero group is never compressed.
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && groups[i] === 0) {
      if (runStart < 0) runStart = i;
    } else if (runStart >= 0) {
      if (i - runStart > bestLength) {
        bestStart = runStart;
        bestLength = i - runStart;
      }
      runStart = -1;
    }
  }

  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLength - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(':')) text += ':';
    text += groups[i].toString(16);
  }
  return text;
}
