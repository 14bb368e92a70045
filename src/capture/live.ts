import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { createCaptureStats } from './reader.js';
import type { CaptureStats, Packet } from './types.js';
import { captureNative } from './native.js';

/**
 * The part of the `cap` addon this module uses. close() must only be called after a successful
 * open(): cap 0.2.1 aborts the process (a failed assertion in nan) when a handle whose open()
 * threw is closed, and freeing any handle can crash it later. See newCap().
 *
 * cap opens the device with pcap_create, a snap length of 65535, promiscuous mode, immediate
 * mode and the given buffer size, and emits each packet after copying it into the buffer passed
 * to open().
 */
interface CapSession {
  open(device: string, filter: string, bufferSize: number, buffer: Buffer): string;
  close(): void;
  on(event: 'packet', listener: (length: number, truncated: boolean) => void): this;
  removeAllListeners(event?: string): this;
}
interface CapModule {
  Cap: new () => CapSession;
}

let capModule: CapModule | undefined;

/**
 * Every handle this module created, kept referenced for the life of the process, because cap
 * 0.2.1 frees its handles unsafely. Its destructor runs when the garbage collector frees a
 * handle. After close(), the handle's libuv poll handle is stopped but never uv_close()d, so it
 * stays in the event loop's handle list while its memory is freed. A later change to that list
 * then writes into freed memory, which crashed 9 of 12 runs of test/unit/capture-live.test.ts. After a failed open(), the
 * destructor stops a poll handle that was never started. A closed handle keeps only its small
 * native object, and handles are created per interface at start and per filter change.
 *
 * NOTE: a handle whose open() threw also keeps the libpcap handle it opened before the error, so
 * a bad filter costs one socket with a 64 KiB buffer (the probe in setFilter) or one with the
 * configured buffer (at start).
 */
const retainedHandles: CapSession[] = [];

/** Creates a cap handle that is never freed (see retainedHandles). */
function newCap(): CapSession {
  const cap = new (loadCap().Cap)();
  retainedHandles.push(cap);
  return cap;
}

/** Loads the native addon on first use, so that commands reading files never load it. */
function loadCap(): CapModule {
  capModule ??= createRequire(import.meta.url)('cap') as CapModule;
  return capModule;
}

/**
 * Bytes of the packet buffer given to cap. libpcap's largest snap length is 262144 bytes, so a
 * frame is never cut by the buffer, only by the snap length of 65535 that cap sets.
 */
const PACKET_BUFFER = 262144;

/** Link types by the names cap's open() returns; other types come as "Unknown linktype N". */
const LINK_TYPES: Readonly<Record<string, number>> = {
  NULL: 0,
  ETHERNET: 1,
  // DLT_RAW is 12 or 14 depending on the system; LINKTYPE_RAW (101) names it in capture files.
  RAW: 101,
  LINKTYPE_LINUX_SLL: 113,
};

/** Returns the DLT_ number libpcap uses on Linux for a LINKTYPE_ number (they differ for raw IP). */
function dltOf(linkType: number): number {
  return linkType === 101 ? 12 : linkType;
}

/** Returns the LINKTYPE_* number for the string cap's open() returns; undefined if unknown. */
export function linkTypeOf(name: string): number | undefined {
  const known = LINK_TYPES[name];
  if (known !== undefined) return known;
  const match = /^Unknown linktype (\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Builds the default capture filter: SMTP on the given TCP ports, and for the device inventory ARP,
 * DHCP (UDP 67 and 68) and IPv6 neighbour discovery (ICMPv6 types 133 to 137: router
 * solicitation and advertisement, neighbour solicitation and advertisement, redirect). The
 * same again inside one VLAN tag and inside two (802.1ad, QinQ): each `vlan` in a pcap filter
 * moves the offsets of what follows it past one more tag.
 */
/**
 * Returns the default filter: the SMTP ports, ARP, DHCP and IPv6 neighbour discovery, also in
 * one or two VLAN tags unless `vlan` is false. Links without Ethernet headers (the "any"
 * pseudo-interface, raw IP) have no VLAN tags, and libpcap rejects `vlan` on them.
 */
export function defaultCaptureFilter(ports: readonly number[], vlan = true): string {
  const unique = [...new Set(ports)].sort((a, b) => a - b);
  const smtp = unique.length > 0 ? `tcp port (${unique.join(' or ')})` : undefined;
  const parts = [
    ...(smtp ? [smtp] : []),
    'arp',
    'udp port (67 or 68)',
    'icmp6 and icmp6[icmp6type] >= 133 and icmp6[icmp6type] <= 137',
  ];
  const base = parts.map((part) => `(${part})`).join(' or ');
  return vlan ? `${base} or (vlan and (${base} or (vlan and (${base}))))` : base;
}

export type LiveCaptureErrorKind = 'interface' | 'filter';

/** An interface that cannot be opened, or a filter that libpcap cannot compile. */
export class LiveCaptureError extends Error {
  readonly code = 'MAILTAP_ERR_CAPTURE';

  constructor(
    readonly kind: LiveCaptureErrorKind,
    readonly iface: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'LiveCaptureError';
  }
}

export interface LiveCaptureOptions {
  interfaces: readonly string[];
  /** BPF filter in pcap-filter syntax; empty captures everything. */
  filter: string;
  /**
   * Filter for an interface whose link type `filter` does not compile for, such as the default
   * filter without its VLAN part for "any". Checked only when the native module is loaded.
   */
  fallbackFilter?: string;
  /** Kernel buffer per interface, in bytes. */
  bufferSize: number;
  /**
   * Receives every packet. The packet and its data are reused for the next packet, so the
   * callback must copy what it keeps, as with the file readers.
   */
  onPacket(packet: Packet): void;
}

/** One open interface. */
interface Session {
  iface: string;
  index: number;
  cap: CapSession;
  buffer: Buffer;
  linkType: number;
  /** The filter in use: the capture's filter, or its fallback. */
  filter: string;
}

/**
 * Returns the clock that stamps live packets, in milliseconds since the Unix epoch: the wall
 * clock at process start plus the monotonic time since, so that it never steps back. Timers
 * that drive the pipeline between packets must read the same clock.
 */
export function captureClock(): number {
  return performance.timeOrigin + performance.now();
}

/** Sets the packet's time to now. */
function now(packet: Packet): void {
  const ms = captureClock();
  const seconds = Math.floor(ms / 1000);
  packet.seconds = seconds;
  packet.nanos = Math.min(999999999, Math.floor((ms - seconds * 1000) * 1e6));
}

/**
 * Captures from one or more interfaces with libpcap (through the `cap` addon) and hands each
 * packet to one callback, in the order the event loop receives them.
 *
 * NOTE: cap writes "Warning: IFACE: no IPv4 address assigned - This may not actually work" to
 * stderr when it opens an interface without an IPv4 address, as a mirror port usually is. The
 * warning comes from pcap_lookupnet, only matters for filters on broadcast addresses, and is a
 * line that is not JSON in the log.
 *
 * NOTE: when a captured interface goes down or is deleted, cap 0.2.1 fails an assertion in its
 * poll callback and the process aborts. Opening an interface that is down fails with "That
 * device is not up". A service manager has to restart the sensor (the unit has
 * Restart=on-failure), and `mailtap live` waits for a down interface before it opens it.
 *
 * NOTE: cap does not pass the pcap_pkthdr timestamp on, so a packet's time is the time its
 * callback runs. With immediate mode this is within a fraction of a millisecond of the kernel's
 * time while the sensor keeps up, later when packets waited in the kernel buffer.
 */
export class LiveCapture {
  readonly stats: CaptureStats = createCaptureStats();
  private sessions: Session[] = [];
  private filterText: string;
  private fallbackFilter: string | undefined;
  private closed = false;

  private constructor(private readonly options: LiveCaptureOptions) {
    this.filterText = options.filter;
    this.fallbackFilter = options.fallbackFilter;
  }

  /** Opens every interface; throws LiveCaptureError and closes what was opened when one fails. */
  static open(options: LiveCaptureOptions): LiveCapture {
    const capture = new LiveCapture(options);
    try {
      options.interfaces.forEach((iface, index) => {
        capture.sessions.push(capture.openSession(iface, index, capture.filterForLink(iface, options.filter, options.fallbackFilter)));
      });
    } catch (error) {
      capture.close();
      throw error;
    }
    return capture;
  }

  get filter(): string {
    return this.filterText;
  }

  /** Filter in use on each interface, by name, where it is the fallback filter. */
  fallbackInterfaces(): string[] {
    return this.sessions.filter((session) => session.filter !== this.filterText).map((session) => session.iface);
  }

  /** Link type of each interface, by name. */
  linkTypes(): Record<string, number> {
    return Object.fromEntries(this.sessions.map((session) => [session.iface, session.linkType]));
  }

  /**
   * Replaces the filter on every interface. The filter is checked for every interface's link
   * type first, so that a bad filter throws LiveCaptureError and leaves the capture as it was.
   * Packets that arrive while an interface is reopened are not captured.
   */
  setFilter(filter: string, fallbackFilter?: string): void {
    if (this.closed || (filter === this.filterText && fallbackFilter === this.fallbackFilter)) return;
    const chosen = this.sessions.map((session) => this.checkedFilter(session, filter, fallbackFilter));
    const sessions = this.sessions;
    this.sessions = [];
    for (const session of sessions) {
      session.cap.removeAllListeners('packet');
      session.cap.close();
    }
    this.filterText = filter;
    this.fallbackFilter = fallbackFilter;
    sessions.forEach((session, i) => this.sessions.push(this.openSession(session.iface, session.index, chosen[i] ?? filter)));
  }

  /**
   * Returns the filter to use on an open session's interface, or throws LiveCaptureError. With
   * the native module the check compiles the filter for the link type and opens nothing.
   * Without it, a handle is opened with the filter and a 64 KiB buffer, and when the filter
   * fails, that handle's socket stays open (see retainedHandles).
   */
  private checkedFilter(session: Session, filter: string, fallbackFilter: string | undefined): string {
    const native = captureNative();
    if (native !== undefined && session.linkType >= 0) {
      const problem = native.checkFilter(dltOf(session.linkType), filter);
      if (problem === null) return filter;
      if (fallbackFilter !== undefined && native.checkFilter(dltOf(session.linkType), fallbackFilter) === null) return fallbackFilter;
      throw filterError(session.iface, filter, problem);
    }
    const probe = newCap();
    try {
      probe.open(session.iface, filter, 65536, Buffer.alloc(PACKET_BUFFER));
    } catch (error) {
      throw filterError(session.iface, filter, error);
    }
    probe.close();
    return filter;
  }

  /**
   * Returns `filter`, or `fallbackFilter` when the interface's link type rejects `filter` but
   * not the fallback. Finding the link type opens the interface once without a filter and with
   * a 64 KiB buffer, so it happens only when there is a fallback and the native module to check.
   */
  private filterForLink(iface: string, filter: string, fallbackFilter: string | undefined): string {
    const native = captureNative();
    if (fallbackFilter === undefined || native === undefined) return filter;
    const probe = newCap();
    let linkType: number | undefined;
    try {
      linkType = linkTypeOf(probe.open(iface, '', 65536, Buffer.alloc(PACKET_BUFFER)));
      probe.close();
    } catch {
      // The interface cannot be opened: openSession reports it.
      return filter;
    }
    if (linkType === undefined || native.checkFilter(dltOf(linkType), filter) === null) return filter;
    return native.checkFilter(dltOf(linkType), fallbackFilter) === null ? fallbackFilter : filter;
  }

  /** Stops capturing on every interface. Packets already in the kernel buffer are not read. */
  close(): void {
    this.closed = true;
    for (const session of this.sessions) {
      session.cap.removeAllListeners('packet');
      try {
        session.cap.close();
      } catch {
        // Already closed.
      }
    }
    this.sessions = [];
  }

  private openSession(iface: string, index: number, filter: string): Session {
    if (iface !== 'any' && (!/^[^/\0]+$/.test(iface) || !existsSync(`/sys/class/net/${iface}`))) {
      const reason = 'no such interface ("ip link" lists the interfaces)';
      throw new LiveCaptureError('interface', iface, reason, `cannot capture on interface "${iface}": ${reason}`);
    }
    const cap = newCap();
    // cap keeps only a raw pointer to this buffer and writes every packet into it, so the session
    // keeps a reference to it for as long as the capture runs.
    const buffer = Buffer.alloc(PACKET_BUFFER);
    let linkName: string;
    try {
      linkName = cap.open(iface, filter, this.options.bufferSize, buffer);
    } catch (error) {
      // Opening without the filter distinguishes a filter error from an interface error.
      if (filter !== '') {
        const plain = newCap();
        let interfaceOpens = false;
        try {
          plain.open(iface, '', 65536, Buffer.alloc(PACKET_BUFFER));
          interfaceOpens = true;
          plain.close();
        } catch {
          // The interface itself fails: reported below with the first error.
        }
        if (interfaceOpens) throw filterError(iface, filter, error);
      }
      const reason = errorText(error);
      throw new LiveCaptureError('interface', iface, reason, `cannot capture on interface "${iface}": ${reason}`);
    }
    const linkType = linkTypeOf(linkName) ?? -1;
    const packet: Packet = {
      seconds: 0,
      nanos: 0,
      linkType,
      interfaceId: index,
      data: buffer,
      originalLength: 0,
      fileOffset: 0,
    };
    const stats = this.stats;
    const onPacket = this.options.onPacket;
    cap.on('packet', (length: number) => {
      now(packet);
      packet.data = buffer.subarray(0, length);
      packet.originalLength = length;
      stats.packets++;
      stats.bytes += length;
      onPacket(packet);
    });
    return { iface, index, cap, buffer, linkType, filter };
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim();
}

function filterError(iface: string, filter: string, error: unknown): LiveCaptureError {
  const reason = errorText(error);
  return new LiveCaptureError('filter', iface, reason, `invalid capture filter "${filter}": ${reason}`);
}
