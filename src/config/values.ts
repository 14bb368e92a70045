import { isIP } from 'node:net';

/** An IPv4 or IPv6 network in CIDR form, parsed for matching. */
export interface Cidr {
  text: string;
  version: 4 | 6;
  /** Address bits as a bigint, masked to the prefix. */
  network: bigint;
  prefix: number;
}

function addressBits(ip: string, version: 4 | 6): bigint {
  if (version === 4) {
    return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  // Expand "::" and an embedded IPv4 tail into eight 16-bit groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const bits = addressBits(v4[1], 4);
    text = text.slice(0, -v4[1].length) + ((bits >> 16n) & 0xffffn).toString(16) + ':' + (bits & 0xffffn).toString(16);
  }
  const [head, tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** Parses "10.0.0.0/8", "fd00::/8" or a single address (a /32 or /128); undefined if invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const [ip, prefixText, extra] = text.trim().split('/');
  if (extra !== undefined || ip === undefined) return undefined;
  const kind = isIP(ip);
  if (kind === 0) return undefined;
  const version = kind as 4 | 6;
  const width = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(width)) || prefix < 0 || prefix > width) return undefined;
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(width - prefix);
  return { text: text.trim(), version, network: addressBits(ip, version) & mask, prefix };
}

/** Returns true when the address lies inside the network. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const kind = isIP(ip);
  if (kind !== cidr.version) return false;
  const width = kind === 4 ? 32 : 128;
  const shift = BigInt(width - cidr.prefix);
  return addressBits(ip, cidr.version) >> shift === cidr.network >> shift;
}

const MAC = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;

/** Normalizes "AA-BB-CC-DD-EE-FF" or "aa:bb:..." to lower-case colon form; undefined if invalid. */
export function parseMac(text: string): string | undefined {
  const trimmed = text.trim();
  return MAC.test(trimmed) ? trimmed.toLowerCase().replace(/-/g, ':') : undefined;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Parses "90s", "15m", "1h", "30d" or "2w" into seconds; undefined if invalid. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parses "512MiB", "10GB" or a plain byte count into bytes; undefined if invalid. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] as string).toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  return factor === undefined ? undefined : Math.round(Number(match[1]) * factor);
}
