import { LruMap } from './lru.js';

/** EHLO names are cut to this length before they are kept: the RFC 5321 limit of a domain. */
const MAX_NAME_LENGTH = 255;

/** Names kept per MAC beyond the limit, so that a few more new ones are still recognised as new. */
const EXTRA_NAMES = 8;

export type IdentityChange =
  | { kind: 'mac_changed'; ip: string; previous: string; current: string; previousSeen: number }
  | { kind: 'ehlo_changed'; ip: string; previous: string; current: string; previousSeen: number }
  | { kind: 'too_many_ehlo_names'; mac: string; names: string[]; limit: number };

export interface AddressBinding {
  mac?: string;
  macSeen: number;
  helo?: string;
  heloSeen: number;
}

/** Saved form of an IdentityTracker, from exportState. */
export interface IdentityState {
  addresses: [string, AddressBinding][];
  macNames: [string, string[]][];
}

export interface IdentityOptions {
  /** Seconds within which a change of an IP address's MAC or EHLO name counts. */
  window: number;
  /** Distinct EHLO names a MAC may use. */
  maxNames: number;
  /** IP addresses and MACs tracked each; the least recently seen is evicted first. */
  maxEntries: number;
}

/**
 * The MAC and EHLO name last seen on each client IP address, and the distinct EHLO names of
 * each MAC, to notice a device replaced by another or one that impersonates several hosts.
 */
export class IdentityTracker {
  readonly addresses: LruMap<string, AddressBinding>;
  readonly macNames: LruMap<string, string[]>;

  constructor(private readonly options: IdentityOptions) {
    this.addresses = new LruMap(options.maxEntries);
    this.macNames = new LruMap(options.maxEntries);
  }

  /** Returns the bindings and EHLO names as plain data, least recently used first. */
  exportState(): IdentityState {
    return {
      addresses: this.addresses.toArray().map(([ip, binding]) => [ip, { ...binding }]),
      macNames: this.macNames.toArray().map(([mac, names]) => [mac, names.slice()]),
    };
  }

  /** Replaces the bindings and EHLO names with saved ones. */
  importState(state: IdentityState): void {
    for (const [ip, binding] of state.addresses) this.addresses.set(ip, { ...binding });
    for (const [mac, names] of state.macNames) this.macNames.set(mac, names.slice(-(this.options.maxNames + EXTRA_NAMES)));
  }

  /**
   * Records what a client showed and returns the changes it reveals. mac is undefined for a
   * client without a MAC of its own (behind a router); helo is undefined before EHLO/HELO.
   */
  observe(ts: number, ip: string, mac: string | undefined, rawHelo: string | undefined): IdentityChange[] {
    const changes: IdentityChange[] = [];
    const helo = rawHelo === undefined || rawHelo.trim() === '' ? undefined : rawHelo.trim().slice(0, MAX_NAME_LENGTH).toLowerCase();

    let binding = this.addresses.get(ip);
    if (binding === undefined) {
      binding = { mac, macSeen: ts, helo, heloSeen: ts };
      this.addresses.set(ip, binding);
    } else {
      if (mac !== undefined) {
        if (binding.mac !== undefined && binding.mac !== mac && ts - binding.macSeen <= this.options.window) {
          changes.push({ kind: 'mac_changed', ip, previous: binding.mac, current: mac, previousSeen: binding.macSeen });
        }
        binding.mac = mac;
        binding.macSeen = Math.max(binding.macSeen, ts);
      }
      if (helo !== undefined) {
        if (binding.helo !== undefined && binding.helo !== helo && ts - binding.heloSeen <= this.options.window) {
          changes.push({ kind: 'ehlo_changed', ip, previous: binding.helo, current: helo, previousSeen: binding.heloSeen });
        }
        binding.helo = helo;
        binding.heloSeen = Math.max(binding.heloSeen, ts);
      }
    }

    if (mac !== undefined && helo !== undefined) {
      const change = this.addName(mac, helo);
      if (change !== undefined) changes.push(change);
    }
    return changes;
  }

  private addName(mac: string, helo: string): IdentityChange | undefined {
    let names = this.macNames.get(mac);
    if (names === undefined) {
      names = [];
      this.macNames.set(mac, names);
    }
    if (names.includes(helo)) return undefined;
    names.push(helo);
    // Past the limit, the oldest name makes room, so a MAC that cycles through many names keeps matching.
    if (names.length > this.options.maxNames + EXTRA_NAMES) names.shift();
    if (names.length <= this.options.maxNames) return undefined;
    return { kind: 'too_many_ehlo_names', mac, names: names.slice(), limit: this.options.maxNames };
  }
}
