import { cidrContains, type Cidr } from '../config/values.js';
import type { Config } from '../config/schema.js';
import type { SmtpTransaction } from '../smtp/types.js';
import { vendorOf } from './oui.js';
import type { Device, NeighborObservation, Owner } from './types.js';

/** IP addresses kept per device, most recent last. */
export const MAX_IPS_PER_DEVICE = 16;
/** EHLO names kept per device, most recent last. */
export const MAX_EHLO_NAMES = 16;

export interface InventoryOptions {
  /** Devices kept; the least recently seen one is dropped past it. */
  maxDevices: number;
  /**
   * Distinct internal client IPs behind one MAC that mark the MAC as a router's. The hosts
   * behind it are then keyed by IP.
   */
  routerMinIps: number;
}

export const DEFAULT_INVENTORY_OPTIONS: InventoryOptions = { maxDevices: 10000, routerMinIps: 4 };

/** The inventory as plain data that JSON keeps; see Inventory.exportState. */
export interface InventoryState {
  /** Least recently seen first. */
  devices: Device[];
  routerMacs: string[];
  /** Internal client IPs seen behind each MAC not (yet) counted as a router's. */
  macClientIps: [string, string[]][];
}

interface KnownDevice {
  label: string;
  type: string;
  owner?: Owner;
  mac?: string;
  ips: Cidr[];
}

/**
 * The devices seen on the wire, learned from SMTP sessions and from ARP, DHCP and IPv6
 * neighbour discovery. A device is keyed by its MAC, except hosts that reach the sensor through
 * a router (their frames carry the router's MAC) or without a MAC: those are keyed by IP.
 */
export class Inventory {
  private readonly devices = new Map<string, Device>();
  private readonly known: KnownDevice[];
  private readonly internal: Cidr[];
  private readonly options: InventoryOptions;
  /** Internal client IPs seen behind each MAC, until the MAC counts as a router. */
  private readonly macClientIps = new Map<string, Set<string>>();
  private readonly routerMacs = new Set<string>();
  /** Addresses already matched against the internal networks, which cost BigInt arithmetic. */
  private readonly internalCache = new Map<string, boolean>();
  /**
   * Device keys "mac:<mac>" by MAC. Each SMTP session and transaction looks up its client's
   * device, and a key string made each time had to be hashed again for the map.
   */
  private readonly macKeys = new Map<string, string>();
  /** Key of the device that deviceFor() last put at the end of `devices`, or undefined. */
  private newestKey: string | undefined;
  evicted = 0;

  constructor(config: Pick<Config, 'devices' | 'networks'>, options: Partial<InventoryOptions> = {}) {
    this.options = { ...DEFAULT_INVENTORY_OPTIONS, ...options };
    this.internal = config.networks.internal;
    this.known = config.devices.map((entry) => ({
      label: entry.label,
      type: entry.type,
      ...(entry.owner ? { owner: entry.owner } : {}),
      ...(entry.mac ? { mac: entry.mac } : {}),
      ips: entry.ip,
    }));
  }

  /** Returns true when the address lies in one of the internal networks. */
  isInternal(ip: string): boolean {
    let internal = this.internalCache.get(ip);
    if (internal === undefined) {
      internal = this.internal.some((cidr) => cidrContains(cidr, ip));
      // Bounded: past the bound the cache starts over rather than growing.
      if (this.internalCache.size >= this.options.maxDevices * 4) this.internalCache.clear();
      this.internalCache.set(ip, internal);
    }
    return internal;
  }

  /** Learns from an ARP, NDP or DHCP packet. */
  observeNeighbor(observation: NeighborObservation): void {
    const { mac, ts } = observation;
    if (this.routerMacs.has(mac)) return;
    const device = this.deviceFor(this.macKey(mac), mac, observation.ip, ts);
    if (observation.ip !== undefined) this.addIp(device, observation.ip, ts);
    if (observation.kind === 'dhcp') {
      if (observation.hostname !== undefined) device.dhcpHostname = observation.hostname;
      if (observation.vendorClass !== undefined) device.dhcpVendorClass = observation.vendorClass;
    }
  }

  /**
   * Returns the device that a client with this MAC and IP is, creating it when new. Call it for
   * the client of every SMTP session.
   */
  resolveClient(mac: string | undefined, ip: string, ts: number): Device {
    if (mac !== undefined && !this.routerMacs.has(mac) && this.isInternal(ip)) {
      this.trackRouter(mac, ip);
    }
    const useMac = mac !== undefined && !this.routerMacs.has(mac) && this.isInternal(ip);
    const device = useMac ? this.deviceFor(this.macKey(mac), mac, ip, ts) : this.deviceFor(`ip:${ip}`, undefined, ip, ts);
    this.addIp(device, ip, ts);
    return device;
  }

  /** Records an EHLO or HELO name the device used. */
  addEhloName(device: Device, name: string): void {
    if (name === '' || device.ehloNames.at(-1) === name) return;
    const index = device.ehloNames.indexOf(name);
    if (index >= 0) device.ehloNames.splice(index, 1);
    device.ehloNames.push(name);
    if (device.ehloNames.length > MAX_EHLO_NAMES) device.ehloNames.shift();
  }

  /** Counts an SMTP session of the device as client. */
  recordSession(device: Device, helo: string | undefined): void {
    device.counters.sessions++;
    if (helo !== undefined) this.addEhloName(device, helo);
  }

  /** Counts a transaction of the device; its first MAIL FROM sets firstMailSeen. */
  recordTransaction(device: Device, tx: SmtpTransaction): void {
    const counters = device.counters;
    counters.transactions++;
    if (tx.status === 'completed') counters.messages++;
    counters.recipients += tx.recipients.length;
    for (const recipient of tx.recipients) if (recipient.accepted === false) counters.rejectedRecipients++;
    counters.bytes += tx.bodyBytes;
    if (tx.mailFrom !== undefined && device.firstMailSeen === undefined) device.firstMailSeen = tx.startTs;
    if (tx.helo !== undefined) this.addEhloName(device, tx.helo);
  }

  /** Returns the devices and router evidence as copies, in the order eviction uses. */
  exportState(): InventoryState {
    return {
      devices: structuredClone([...this.devices.values()]),
      routerMacs: [...this.routerMacs],
      macClientIps: [...this.macClientIps].map(([mac, ips]) => [mac, [...ips]]),
    };
  }

  /**
   * Loads a state from exportState into an inventory that has not seen anything yet. Labels,
   * types and owners are taken again from this inventory's config, so that an edited device
   * list applies to the devices already known.
   */
  importState(state: InventoryState): void {
    for (const mac of state.routerMacs) this.routerMacs.add(mac);
    for (const [mac, ips] of state.macClientIps) if (!this.routerMacs.has(mac)) this.macClientIps.set(mac, new Set(ips));
    // The newest devices are the ones kept when the saved ones are more than maxDevices.
    for (const saved of state.devices.slice(-this.options.maxDevices)) {
      const device: Device = structuredClone(saved);
      delete device.label;
      delete device.type;
      delete device.owner;
      device.isRouter = device.mac !== undefined && this.routerMacs.has(device.mac);
      this.applyKnown(device, device.mac, device.ips.at(-1)?.ip);
      this.devices.set(device.key, device);
      this.newestKey = device.key;
    }
  }

  /** Returns the device with this key, or undefined. */
  get(key: string): Device | undefined {
    return this.devices.get(key);
  }

  /** Returns every device, most recently seen first. */
  list(): Device[] {
    return [...this.devices.values()].sort((a, b) => b.lastSeen - a.lastSeen || a.key.localeCompare(b.key));
  }

  get size(): number {
    return this.devices.size;
  }

  private trackRouter(mac: string, ip: string): void {
    let ips = this.macClientIps.get(mac);
    if (ips === undefined) {
      ips = new Set();
      this.macClientIps.set(mac, ips);
      // The map is only a bounded hint; a full map starts over rather than growing.
      if (this.macClientIps.size > this.options.maxDevices) this.macClientIps.clear();
    }
    ips.add(ip);
    if (ips.size < this.options.routerMinIps) return;
    this.routerMacs.add(mac);
    this.macClientIps.delete(mac);
    const router = this.devices.get(`mac:${mac}`);
    if (router) router.isRouter = true;
  }

  /** Returns the device key of a MAC, "mac:<mac>". */
  private macKey(mac: string): string {
    let key = this.macKeys.get(mac);
    if (key === undefined) {
      key = `mac:${mac}`;
      // Bounded like the inventory: past the bound the cache starts over rather than growing.
      if (this.macKeys.size >= this.options.maxDevices) this.macKeys.clear();
      this.macKeys.set(mac, key);
    }
    return key;
  }

  private deviceFor(key: string, mac: string | undefined, ip: string | undefined, ts: number): Device {
    let device = this.devices.get(key);
    if (device !== undefined) {
      // Re-inserting keeps the map in least-recently-seen order for eviction. The device of
      // the previous call (the session after its transactions) is at the end already.
      if (key !== this.newestKey) {
        this.devices.delete(key);
        this.devices.set(key, device);
        this.newestKey = key;
      }
      if (ts > device.lastSeen) device.lastSeen = ts;
      if (ts < device.firstSeen) device.firstSeen = ts;
      return device;
    }
    device = {
      key,
      ips: [],
      ehloNames: [],
      firstSeen: ts,
      lastSeen: ts,
      counters: { sessions: 0, messages: 0, transactions: 0, recipients: 0, rejectedRecipients: 0, bytes: 0 },
      isRouter: mac !== undefined && this.routerMacs.has(mac),
    };
    if (mac !== undefined) {
      device.mac = mac;
      const vendor = vendorOf(mac);
      if (vendor !== undefined) device.vendor = vendor;
    }
    this.applyKnown(device, mac, ip);
    this.devices.set(key, device);
    this.newestKey = key;
    if (this.devices.size > this.options.maxDevices) {
      const oldest = this.devices.keys().next().value as string;
      this.devices.delete(oldest);
      this.evicted++;
    }
    return device;
  }

  /** Copies label, type and owner from the config's device list, matched by MAC, else by IP. */
  private applyKnown(device: Device, mac: string | undefined, ip: string | undefined): void {
    const match =
      (mac !== undefined ? this.known.find((known) => known.mac === mac) : undefined) ??
      (ip !== undefined ? this.known.find((known) => known.ips.some((cidr) => cidrContains(cidr, ip))) : undefined);
    if (match === undefined) return;
    device.label = match.label;
    device.type = match.type;
    if (match.owner) device.owner = match.owner;
  }

  private addIp(device: Device, ip: string, ts: number): void {
    const ips = device.ips;
    const last = ips.at(-1);
    if (last !== undefined && last.ip === ip) {
      if (ts > last.lastSeen) last.lastSeen = ts;
      return;
    }
    const index = ips.findIndex((entry) => entry.ip === ip);
    const entry = index >= 0 ? (ips.splice(index, 1)[0] as (typeof ips)[number]) : { ip, firstSeen: ts, lastSeen: ts };
    if (ts > entry.lastSeen) entry.lastSeen = ts;
    ips.push(entry);
    if (ips.length > MAX_IPS_PER_DEVICE) ips.shift();
    if (device.label === undefined) this.applyKnown(device, device.mac, ip);
  }
}
