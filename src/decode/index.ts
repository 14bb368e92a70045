/**
 * The decode stage: turns captured frames into TCP segments.
 *
 * Every frame increments `frames` and one outcome counter: `tcp` (a segment is returned), `udp`,
 * `otherProtocols` (ARP, ICMP, ESP, "no next header" and the like), `unsupportedLinkType`,
 * `errors` (malformed), `snapTruncated` (cut before the decoder could tell the outcome) or
 * `fragments` (an IP fragment). Exceptions:
 * - A fragment that completes a datagram also counts the outcome of the datagram, and an invalid
 *   fragment also counts as an error.
 * - A frame that the snap length cut inside the IP datagram counts `snapTruncated` on top of
 *   its outcome. When the cut falls inside the TCP header, no segment is returned.
 */

import type { Packet } from '../capture/types.js';
import type { DecodeStats, TcpSegment } from './types.js';
import { FragmentReassembler } from './fragments.js';
import { IPPROTO_TCP, IPPROTO_UDP, NetworkLayer, NetworkResult } from './ip.js';
import { ETHERTYPE_IPV4, LinkLayer, LinkResult } from './link.js';
import { ETHERTYPE_ARP, IPPROTO_ICMPV6, parseArp, parseDhcp, parseNdp } from './neighbors.js';
import { TcpHeader, TcpResult } from './tcp.js';
import type { NeighborObservation } from './types.js';
import { formatIPv4, formatIPv6, formatMac } from './text.js';

export { formatIPv4, formatIPv6, formatMac } from './text.js';
export { FragmentReassembler } from './fragments.js';
export type { FragmentCounters, FragmentLimits } from './fragments.js';

export interface DecoderOptions {
  /** Seconds of packet time an incomplete fragmented datagram is held. Default 30. */
  fragmentTimeout?: number;
  /** Bound on the bytes held for reassembly over all datagrams. Default 32 MiB. */
  maxFragmentBytes?: number;
  /**
   * Maximum fragments per datagram. Default 128, enough for a 65535-byte IPv4 datagram sent
   * with the 576-byte minimum MTU (119 fragments of 552 bytes).
   */
  maxFragmentsPerDatagram?: number;
  /** Receives the observations of ARP, DHCP and IPv6 neighbour discovery packets. Unset, they are only counted. */
  onNeighbor?: (observation: NeighborObservation) => void;
}

/**
 * The vlans of every segment without tags. One shared array instead of a new one per segment,
 * frozen so that a consumer cannot change it for all.
 */
const NO_VLANS = Object.freeze([]) as unknown as number[];

export const DEFAULT_FRAGMENT_TIMEOUT = 30;
export const DEFAULT_MAX_FRAGMENT_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_FRAGMENTS_PER_DATAGRAM = 128;

/** Decodes frames of any supported link type to TCP segments and counts everything else. */
export class Decoder {
  readonly stats: DecodeStats = {
    frames: 0,
    tcp: 0,
    udp: 0,
    otherProtocols: 0,
    unsupportedLinkType: 0,
    errors: 0,
    snapTruncated: 0,
    fragments: 0,
    reassembled: 0,
    fragmentsDropped: 0,
  };

  private readonly link = new LinkLayer();
  private readonly network: NetworkLayer;
  private readonly tcp = new TcpHeader();
  private readonly fragments: FragmentReassembler;

  constructor(options: DecoderOptions = {}) {
    this.fragments = new FragmentReassembler(
      {
        timeout: options.fragmentTimeout ?? DEFAULT_FRAGMENT_TIMEOUT,
        maxBytes: options.maxFragmentBytes ?? DEFAULT_MAX_FRAGMENT_BYTES,
        maxFragmentsPerDatagram:
          options.maxFragmentsPerDatagram ?? DEFAULT_MAX_FRAGMENTS_PER_DATAGRAM,
      },
      this.stats,
    );
    this.network = new NetworkLayer(this.stats, this.fragments);
    this.onNeighbor = options.onNeighbor;
  }

  private readonly onNeighbor: ((observation: NeighborObservation) => void) | undefined;

  /** Incomplete fragmented datagrams currently held. */
  get pendingFragmentedDatagrams(): number {
    return this.fragments.pending;
  }

  /**
   * Returns the TCP segment carried by the frame, or undefined (not TCP, malformed, a held
   * fragment: counted in `stats`). Never throws. The segment's payload is a view into
   * `packet.data`, except for reassembled datagrams, so a consumer that keeps it past the
   * packet's lifetime must copy it.
   */
  decode(packet: Packet): TcpSegment | undefined {
    this.stats.frames++;
    try {
      return this.decodeFrame(packet);
    } catch {
      // Every read is bounds-checked; this only guards against a bug turning into a crash.
      this.stats.errors++;
      return undefined;
    }
  }

  private decodeFrame(packet: Packet): TcpSegment | undefined {
    const data = packet.data;
    const snapCut = packet.originalLength > data.length;
    // Integer microseconds divided once, so the result is the double nearest to the decimal value.
    const ts = (packet.seconds * 1e6 + Math.round(packet.nanos / 1000)) / 1e6;
    if (this.fragments.pending > 0) this.fragments.expire(ts);

    const link = this.link;
    const linkResult = link.decode(data, packet.linkType);
    if (linkResult !== LinkResult.Ip) {
      if (linkResult === LinkResult.NotIp && link.etherType === ETHERTYPE_ARP && this.onNeighbor) {
        const arp = parseArp(data, link.networkOffset, ts);
        if (arp) this.onNeighbor(arp);
      }
      return this.countLinkFailure(linkResult, snapCut);
    }

    const network = this.network;
    const networkResult =
      link.etherType === ETHERTYPE_IPV4
        ? network.decodeIPv4(data, link.networkOffset, snapCut, ts)
        : network.decodeIPv6(data, link.networkOffset, snapCut, ts);
    if (networkResult === NetworkResult.Fragment) return undefined;
    if (networkResult === NetworkResult.Truncated) return this.countTruncated(snapCut);
    if (networkResult === NetworkResult.Malformed) {
      this.stats.errors++;
      return undefined;
    }
    if (network.truncated) this.stats.snapTruncated++;

    if (network.protocol !== IPPROTO_TCP) {
      if (network.protocol === IPPROTO_UDP) this.stats.udp++;
      else this.stats.otherProtocols++;
      if (this.onNeighbor) this.decodeNeighbor(this.onNeighbor, ts);
      return undefined;
    }

    const tcp = this.tcp;
    const buf = network.transport;
    const tcpResult = tcp.decode(buf, network.transportOffset, network.transportEnd, network.transportLength);
    if (tcpResult !== TcpResult.Ok) {
      // A cut inside the TCP header was counted as snapTruncated above.
      if (tcpResult === TcpResult.Malformed || !network.truncated) this.stats.errors++;
      return undefined;
    }
    this.stats.tcp++;

    const addresses = network.addressBuffer;
    const isIPv4 = network.version === 4;
    return {
      ts,
      srcMac: link.srcMacOffset >= 0 ? formatMac(data, link.srcMacOffset) : undefined,
      dstMac: link.dstMacOffset >= 0 ? formatMac(data, link.dstMacOffset) : undefined,
      vlans: link.vlans ?? NO_VLANS,
      ipVersion: network.version,
      srcIp: isIPv4 ? formatIPv4(addresses, network.srcOffset) : formatIPv6(addresses, network.srcOffset),
      dstIp: isIPv4 ? formatIPv4(addresses, network.dstOffset) : formatIPv6(addresses, network.dstOffset),
      srcPort: tcp.srcPort,
      dstPort: tcp.dstPort,
      seq: tcp.seq,
      ack: tcp.ack,
      flags: tcp.flags,
      window: tcp.window,
      payload: buf.subarray(tcp.payloadOffset, network.transportEnd),
      payloadLength: network.transportOffset + network.transportLength - tcp.payloadOffset,
    };
  }

  private decodeNeighbor(onNeighbor: (observation: NeighborObservation) => void, ts: number): void {
    const network = this.network;
    const buf = network.transport;
    const start = network.transportOffset;
    const end = network.transportEnd;
    let observation: NeighborObservation | undefined;
    if (network.protocol === IPPROTO_UDP && start + 8 <= end) {
      observation = parseDhcp(buf, start, end, ts);
    } else if (network.protocol === IPPROTO_ICMPV6 && network.version === 6) {
      observation = parseNdp(buf, start, end, network.addressBuffer, network.srcOffset, ts);
    }
    if (observation) onNeighbor(observation);
  }

  private countLinkFailure(result: LinkResult, snapCut: boolean): undefined {
    if (result === LinkResult.NotIp) this.stats.otherProtocols++;
    else if (result === LinkResult.Unsupported) this.stats.unsupportedLinkType++;
    else if (result === LinkResult.Truncated) this.countTruncated(snapCut);
    else this.stats.errors++;
    return undefined;
  }

  /** Headers cut short: a snap-length cut when the frame was longer on the wire, else an error. */
  private countTruncated(snapCut: boolean): undefined {
    if (snapCut) this.stats.snapTruncated++;
    else this.stats.errors++;
    return undefined;
  }
}
