/**
 * Reads the size of the capture sockets' ring buffers. libpcap divides capture.buffer_size into
 * slots for the largest frame it expects: MTU-sized on an interface without offloads, 64 KiB
 * when the interface has segmentation offloads on (GRO, LRO, GSO, TSO), for the "any"
 * pseudo-interface and for links without Ethernet headers (tun). The number
 * of slots is the number of packets a burst can queue, so a 64 KiB slot size is worth a
 * warning. `ss -0 -e` (iproute2) prints the ring of every packet socket of the network
 * namespace, with its inode.
 */
import { spawnSync } from 'node:child_process';
import { findPacketSockets, ifindexOf } from './kernel-drops.js';

export interface RingSize {
  iface: string;
  /** Bytes per slot: the largest frame the socket can take without cutting it. */
  slotBytes: number;
  /** Slots in the ring: the packets it can queue. */
  slots: number;
}

/** Parses `ss -0 -e -H` output into ring sizes by socket inode. */
export function parseRingSizes(text: string): Map<string, { slotBytes: number; slots: number }> {
  const rings = new Map<string, { slotBytes: number; slots: number }>();
  let inode: string | undefined;
  for (const line of text.split('\n')) {
    const owner = /\bino:(\d+)/.exec(line);
    if (owner) inode = owner[1];
    const ring = /ring_rx\([^)]*\bfrm_size:(\d+),frm_nr:(\d+)/.exec(line);
    if (ring && inode !== undefined) rings.set(inode, { slotBytes: Number(ring[1]), slots: Number(ring[2]) });
  }
  return rings;
}

/**
 * Returns the ring of this process's capture socket on each interface that has one. Returns an
 * empty list when ss is missing or fails: the sizes only inform the log.
 */
export function readRingSizes(interfaces: readonly string[]): RingSize[] {
  const run = spawnSync('ss', ['-0', '-e', '-H'], { encoding: 'utf8', timeout: 2000 });
  if (run.status !== 0 || typeof run.stdout !== 'string') return [];
  const rings = parseRingSizes(run.stdout);
  const sizes: RingSize[] = [];
  for (const iface of interfaces) {
    const index = ifindexOf(iface, '/sys/class/net');
    if (index === undefined) continue;
    for (const socket of findPacketSockets(new Set([index]))) {
      const ring = rings.get(socket.inode);
      if (ring !== undefined) sizes.push({ iface, ...ring });
    }
  }
  return sizes;
}
