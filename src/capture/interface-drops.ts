import { readFileSync } from 'node:fs';

/** Drop counters the kernel keeps for a network interface, since the interface came up. */
export interface InterfaceDrops {
  /** Frames the kernel dropped after the driver received them (rx_dropped). */
  rxDropped: number;
  /** Frames the network card missed for lack of buffer space (rx_missed_errors). */
  rxMissed: number;
}

/** Reads one counter from sysfs; undefined when the file is missing or not a number. */
function readCounter(root: string, iface: string, name: string): number | undefined {
  try {
    const value = Number(readFileSync(`${root}/${iface}/statistics/${name}`, 'ascii').trim());
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the drop counters of an interface from /sys/class/net/IFACE/statistics. Returns
 * undefined when the interface has no such directory (a name with a slash, an interface that
 * went away, a system without sysfs). `root` is for tests.
 */
export function readInterfaceDrops(iface: string, root = '/sys/class/net'): InterfaceDrops | undefined {
  if (iface.includes('/') || iface === '.' || iface === '..') return undefined;
  const rxDropped = readCounter(root, iface, 'rx_dropped');
  const rxMissed = readCounter(root, iface, 'rx_missed_errors');
  if (rxDropped === undefined && rxMissed === undefined) return undefined;
  return { rxDropped: rxDropped ?? 0, rxMissed: rxMissed ?? 0 };
}

/** IFF_UP in the interface flags (linux/if.h): the interface is administratively up. */
const IFF_UP = 0x1;

/**
 * Returns whether an interface is up (`ip link set IFACE up`) from /sys/class/net/IFACE/flags,
 * or undefined when it does not exist. The "any" pseudo-interface is always up. A link without
 * carrier is up in this sense, and libpcap opens it. `root` is for tests.
 */
export function interfaceIsUp(iface: string, root = '/sys/class/net'): boolean | undefined {
  if (iface === 'any') return true;
  if (iface.includes('/') || iface === '.' || iface === '..') return undefined;
  try {
    const flags = Number.parseInt(readFileSync(`${root}/${iface}/flags`, 'ascii').trim(), 16);
    return Number.isNaN(flags) ? undefined : (flags & IFF_UP) !== 0;
  } catch {
    return undefined;
  }
}

/**
 * Counts the drops of a set of interfaces since it was created: the kernel counters run from
 * when each interface came up, so the first reading is the baseline. A counter that goes
 * backwards belongs to a recreated interface and counts from 0.
 */
export class InterfaceDropCounter {
  /** The previous reading of each interface. */
  private readonly last = new Map<string, number>();
  private total = 0;

  constructor(
    readonly interfaces: readonly string[],
    private readonly root = '/sys/class/net',
  ) {
    for (const iface of interfaces) {
      const drops = readInterfaceDrops(iface, root);
      this.last.set(iface, drops ? drops.rxDropped + drops.rxMissed : 0);
    }
  }

  /** Returns the drops of all interfaces since the counter was created. */
  read(): number {
    for (const iface of this.interfaces) {
      const drops = readInterfaceDrops(iface, this.root);
      if (drops === undefined) continue;
      const now = drops.rxDropped + drops.rxMissed;
      const last = this.last.get(iface) ?? 0;
      this.total += now >= last ? now - last : now;
      this.last.set(iface, now);
    }
    return this.total;
  }
}
