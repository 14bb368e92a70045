/**
 * IPv4 and IPv6 header decoding up to the transport header, with fragment reassembly.
 *
 * Length rules for both versions:
 * - A datagram shorter than the captured bytes is followed by link-layer padding (Ethernet pads
 *   frames to 60 bytes), which is trimmed.
 * - A datagram longer than the captured bytes is decoded as far as it goes when the snap length
 *   cut the frame (`truncated` is set). Without a snap-length cut it is malformed.
 * - A length field of 0 (IPv4 total length, IPv6 payload length) means "the captured length".
 *   Captures taken before TCP segmentation offload show IPv4 total length 0, and IPv6 jumbograms
 *   (RFC 2675) carry 0 in the payload length.
 * Header checksums are not verified, because checksum offload makes them wrong in many captures
 * taken on the sending host.
 */

import type { DecodeStats } from './types.js';
import { FragmentReassembler } from './fragments.js';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
const IPPROTO_HOPOPTS = 0;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_AH = 51;
const IPPROTO_DSTOPTS = 60;
const IPPROTO_MOBILITY = 135;
const IPPROTO_HIP = 139;
const IPPROTO_SHIM6 = 140;

const IPV4_MORE_FRAGMENTS = 0x2000;
const IPV4_OFFSET_MASK = 0x1fff;

export const enum NetworkResult {
  /** `protocol` and the transport fields locate the transport header. */
  Transport,
  /** The frame was an IP fragment and is held for reassembly (or dropped, and counted). */
  Fragment,
  /** The captured bytes end before the headers needed to go on. */
  Truncated,
  Malformed,
}

/** Network-layer facts about the current frame; one instance is reused for every frame. */
export class NetworkLayer {
  version: 4 | 6 = 4;
  /** The frame; the source and destination addresses are at these offsets in it. */
  addressBuffer: Buffer = Buffer.alloc(0);
  srcOffset = 0;
  dstOffset = 0;
  /** IP protocol number of the transport header (IPv6: the last next-header value). */
  protocol = 0;
  /** Buffer with the transport header: the frame, or a reassembled datagram's payload. */
  transport: Buffer = Buffer.alloc(0);
  transportOffset = 0;
  /** End of the captured transport bytes in `transport`. */
  transportEnd = 0;
  /** Transport header plus payload length, from the IP length fields. */
  transportLength = 0;
  /** True when the snap length cut the datagram before its end. */
  truncated = false;

  private readonly stats: DecodeStats;
  private readonly fragments: FragmentReassembler;

  constructor(stats: DecodeStats, fragments: FragmentReassembler) {
    this.stats = stats;
    this.fragments = fragments;
  }

  /** Decodes the IPv4 header at `offset`. `snapCut` is true when the snap length cut the frame. */
  decodeIPv4(data: Buffer, offset: number, snapCut: boolean, now: number): NetworkResult {
    this.truncated = false;
    if (offset + 20 > data.length) return NetworkResult.Truncated;
    const versionIhl = data[offset];
    if (versionIhl >> 4 !== 4) return NetworkResult.Malformed;
    const headerLength = (versionIhl & 0x0f) * 4;
    if (headerLength < 20) return NetworkResult.Malformed;
    if (offset + headerLength > data.length) return NetworkResult.Truncated;

    let totalLength = (data[offset + 2] << 8) | data[offset + 3];
    if (totalLength === 0) totalLength = data.length - offset;
    if (totalLength < headerLength) return NetworkResult.Malformed;
    const datagramEnd = offset + totalLength;
    const capturedEnd = this.capturedEnd(data, datagramEnd, snapCut);
    if (capturedEnd < 0) return NetworkResult.Malformed;

    this.version = 4;
    this.addressBuffer = data;
    this.srcOffset = offset + 12;
    this.dstOffset = offset + 16;
    this.protocol = data[offset + 9];

    const flagsOffset = (data[offset + 6] << 8) | data[offset + 7];
    const payloadOffset = offset + headerLength;
    if ((flagsOffset & (IPV4_MORE_FRAGMENTS | IPV4_OFFSET_MASK)) === 0) {
      this.setTransport(data, payloadOffset, capturedEnd, datagramEnd - payloadOffset);
      return NetworkResult.Transport;
    }

    // RFC 791 identifies a datagram by source, destination, protocol and identification.
    this.stats.fragments++;
    if (this.truncated) return this.dropTruncatedFragment();
    const key =
      `4:${data.readUInt32BE(offset + 12)}:${data.readUInt32BE(offset + 16)}:` +
      `${this.protocol}:${(data[offset + 4] << 8) | data[offset + 5]}`;
    const reassembled = this.fragments.add(
      key,
      (flagsOffset & IPV4_OFFSET_MASK) * 8,
      data.subarray(payloadOffset, datagramEnd),
      (flagsOffset & IPV4_MORE_FRAGMENTS) !== 0,
      now,
    );
    if (reassembled === undefined) return NetworkResult.Fragment;
    this.setTransport(reassembled, 0, reassembled.length, reassembled.length);
    return NetworkResult.Transport;
  }

  /**
   * Decodes the IPv6 header at `offset` and walks its extension headers to the first header
   * that is not one, which becomes `protocol` (59, "no next header", included).
   */
  decodeIPv6(data: Buffer, offset: number, snapCut: boolean, now: number): NetworkResult {
    this.truncated = false;
    if (offset + 40 > data.length) return NetworkResult.Truncated;
    if (data[offset] >> 4 !== 6) return NetworkResult.Malformed;

    let payloadLength = (data[offset + 4] << 8) | data[offset + 5];
    if (payloadLength === 0) payloadLength = data.length - offset - 40;
    const datagramEnd = offset + 40 + payloadLength;
    const capturedEnd = this.capturedEnd(data, datagramEnd, snapCut);
    if (capturedEnd < 0) return NetworkResult.Malformed;

    this.version = 6;
    this.addressBuffer = data;
    this.srcOffset = offset + 8;
    this.dstOffset = offset + 24;
    return this.walkIPv6Headers(data, offset, data[offset + 6], offset + 40, capturedEnd, datagramEnd, now);
  }

  private walkIPv6Headers(
    buf: Buffer,
    ipOffset: number,
    nextHeader: number,
    position: number,
    capturedEnd: number,
    end: number,
    now: number,
  ): NetworkResult {
    let reassembled = false;

    // Every extension header is at least 8 bytes long, so the loop ends within end / 8 rounds.
    for (;;) {
      let headerLength: number;
      switch (nextHeader) {
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
        case IPPROTO_MOBILITY:
        case IPPROTO_HIP:
        case IPPROTO_SHIM6:
          if (position + 2 > end) return NetworkResult.Malformed;
          if (position + 2 > capturedEnd) return NetworkResult.Truncated;
          headerLength = (buf[position + 1] + 1) * 8;
          break;

        case IPPROTO_AH:
          if (position + 2 > end) return NetworkResult.Malformed;
          if (position + 2 > capturedEnd) return NetworkResult.Truncated;
          headerLength = (buf[position + 1] + 2) * 4;
          break;

        case IPPROTO_FRAGMENT: {
          if (position + 8 > end) return NetworkResult.Malformed;
          if (position + 8 > capturedEnd) return NetworkResult.Truncated;
          const fragmentField = (buf[position + 2] << 8) | buf[position + 3];
          const fragmentOffset = fragmentField & 0xfff8;
          const more = (fragmentField & 1) !== 0;
          const innerNext = buf[position];
          if (fragmentOffset === 0 && !more) {
            // An atomic fragment (RFC 6946): a complete datagram with a fragment header.
            nextHeader = innerNext;
            position += 8;
            continue;
          }
          if (reassembled) return NetworkResult.Malformed; // a fragment inside a fragment

          this.stats.fragments++;
          if (this.truncated) return this.dropTruncatedFragment();
          // RFC 8200 identifies a datagram by source, destination and identification.
          const key =
            `6:${buf.toString('latin1', ipOffset + 8, ipOffset + 40)}:` +
            `${buf.readUInt32BE(position + 4)}`;
          const payload = buf.subarray(position + 8, end);
          const datagram = this.fragments.add(key, fragmentOffset, payload, more, now);
          if (datagram === undefined) return NetworkResult.Fragment;

          buf = datagram;
          reassembled = true;
          nextHeader = innerNext;
          position = 0;
          capturedEnd = datagram.length;
          end = datagram.length;
          continue;
        }

        default:
          this.protocol = nextHeader;
          this.setTransport(buf, position, capturedEnd, end - position);
          return NetworkResult.Transport;
      }

      if (position + headerLength > end) return NetworkResult.Malformed;
      if (position + headerLength > capturedEnd) return NetworkResult.Truncated;
      nextHeader = buf[position];
      position += headerLength;
    }
  }

  /**
   * Returns the end of the captured datagram bytes, trimming padding after `datagramEnd`, or -1
   * when the datagram runs past the captured bytes without a snap-length cut to explain it.
   */
  private capturedEnd(data: Buffer, datagramEnd: number, snapCut: boolean): number {
    if (datagramEnd <= data.length) return datagramEnd;
    if (!snapCut) return -1;
    this.truncated = true;
    return data.length;
  }

  private setTransport(buf: Buffer, offset: number, capturedEnd: number, length: number): void {
    this.transport = buf;
    this.transportOffset = offset;
    this.transportEnd = capturedEnd;
    this.transportLength = length;
  }

  /** Counts a fragment that the snap length cut as dropped, because it cannot be reassembled. */
  private dropTruncatedFragment(): NetworkResult {
    this.stats.fragmentsDropped++;
    return NetworkResult.Fragment;
  }
}
