/**
 * Counts the packets the kernel dropped before the capture read them, as pcap_stats does.
 *
 * When the ring buffer of a capture socket is full, the kernel drops what the filter passed and
 * counts it in the socket, not in the interface statistics. cap does not expose pcap_stats.
 * This module therefore finds the process's packet sockets: /proc/self/net/packet lists each
 * socket's inode and interface index, and /proc/self/fd maps inodes to descriptors. It reads
 * their counters with getsockopt(PACKET_STATISTICS) through the native module (native.ts).
 * Without that module the counts are unavailable, never guessed.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { captureNative, nativeLoadError } from './native.js';

interface PacketSocket {
  fd: number;
  inode: string;
}

/**
 * Returns the packet sockets of this process bound to one of the interface indexes (0 is the
 * "any" pseudo-interface). `procRoot` is for tests.
 */
export function findPacketSockets(ifindexes: ReadonlySet<number>, procRoot = '/proc/self'): PacketSocket[] {
  let table: string;
  try {
    table = readFileSync(`${procRoot}/net/packet`, 'ascii');
  } catch {
    return [];
  }
  const lines = table.trim().split('\n');
  const header = (lines.shift() ?? '').trim().split(/\s+/);
  const ifaceColumn = header.indexOf('Iface');
  const inodeColumn = header.indexOf('Inode');
  if (ifaceColumn < 0 || inodeColumn < 0) return [];
  const wanted = new Set<string>();
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (ifindexes.has(Number(fields[ifaceColumn]))) wanted.add(fields[inodeColumn] ?? '');
  }
  if (wanted.size === 0) return [];

  const sockets: PacketSocket[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`${procRoot}/fd`);
  } catch {
    return [];
  }
  for (const name of fds) {
    const inode = socketInode(`${procRoot}/fd/${name}`);
    if (inode !== undefined && wanted.has(inode)) sockets.push({ fd: Number(name), inode });
  }
  return sockets;
}

/** Returns the inode of the socket a /proc fd link points to, or undefined for anything else. */
function socketInode(link: string): string | undefined {
  try {
    const target = readlinkSync(link);
    return target.startsWith('socket:[') ? target.slice(8, -1) : undefined;
  } catch {
    return undefined;
  }
}

/** Returns the interface index from sysfs: 0 for "any", undefined when the interface is unknown. */
export function ifindexOf(iface: string, sysRoot: string): number | undefined {
  if (iface === 'any') return 0;
  if (iface.includes('/') || iface === '.' || iface === '..') return undefined;
  try {
    const index = Number(readFileSync(`${sysRoot}/${iface}/ifindex`, 'ascii').trim());
    return Number.isInteger(index) ? index : undefined;
  } catch {
    return undefined;
  }
}

export interface KernelCounts {
  /** Packets that passed the capture filter, dropped ones included. */
  received: number;
  /** Packets the kernel dropped because the capture's buffer was full. */
  dropped: number;
}

/**
 * Adds up the kernel counters of the capture sockets on a set of interfaces from its creation
 * on. Create it right after the capture opened, and call rescan() right after a reopen. The
 * kernel resets the counters on each read. A socket that closes takes its unread counts with
 * it, so read() before closing.
 */
export class KernelDropCounter {
  /** Reason the counts are unavailable, or undefined when they are read. */
  readonly unavailable: string | undefined;
  private sockets: PacketSocket[] = [];
  private readonly ifindexes = new Set<number>();
  private readonly totals: KernelCounts = { received: 0, dropped: 0 };

  constructor(
    private readonly interfaces: readonly string[],
    private readonly procRoot = '/proc/self',
    sysRoot = '/sys/class/net',
  ) {
    const native = captureNative();
    for (const iface of interfaces) {
      const index = ifindexOf(iface, sysRoot);
      if (index !== undefined) this.ifindexes.add(index);
    }
    if (native === undefined) {
      this.unavailable = nativeLoadError();
    } else {
      this.sockets = findPacketSockets(this.ifindexes, procRoot);
      this.unavailable = this.sockets.length === 0 ? `no capture socket on ${interfaces.join(', ')} was found in ${procRoot}/net/packet` : undefined;
      this.discardFirstReadings(this.sockets);
    }
  }

  /**
   * Takes the first reading of new sockets and discards it. Until libpcap attaches the filter,
   * a new socket takes every frame on the interface, and libpcap then drains those frames
   * without handing them to cap, so the first reading counts packets that the filter never
   * passed, and drops among them. Taken right after the capture opened, before cap delivered
   * anything, the reading contains little else.
   */
  private discardFirstReadings(sockets: readonly PacketSocket[]): void {
    const native = captureNative();
    if (native === undefined) return;
    for (const socket of sockets) {
      try {
        native.readStats(socket.fd);
      } catch {
        // Closed already: found again by the next rescan.
      }
    }
  }

  /**
   * Finds the capture sockets again after the capture reopened them (a reload with a new
   * filter) and discards their first readings. Call it right after the reopen.
   */
  rescan(): void {
    if (this.unavailable !== undefined) return;
    const known = new Set(this.sockets.map((socket) => socket.inode));
    this.sockets = findPacketSockets(this.ifindexes, this.procRoot);
    this.discardFirstReadings(this.sockets.filter((socket) => !known.has(socket.inode)));
  }

  /** Returns the counts since the counter was created, or undefined when unavailable. */
  read(): KernelCounts | undefined {
    const native = captureNative();
    if (this.unavailable !== undefined || native === undefined) return undefined;
    if (this.sockets.some((socket) => socketInode(`${this.procRoot}/fd/${socket.fd}`) !== socket.inode)) this.rescan();
    for (const socket of this.sockets) {
      try {
        const [received, dropped] = native.readStats(socket.fd);
        this.totals.received += received;
        this.totals.dropped += dropped;
      } catch {
        // Closed between the check and the read: found again on the next read.
      }
    }
    return { ...this.totals };
  }
}
