/**
 * Link-layer decoding: finds the network-layer header behind Ethernet (with any stack of VLAN
 * tags), Linux cooked captures, raw IP and BSD loopback headers.
 */

import { LINKTYPE } from './types.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100; // IEEE 802.1Q customer tag
const ETHERTYPE_QINQ = 0x88a8; // IEEE 802.1ad service tag
const ETHERTYPE_QINQ_OLD = 0x9100; // pre-standard QinQ tag, still sent by some switches
const ETHERTYPE_PPPOE_SESSION = 0x8864;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;

/** OpenBSD and some other systems write DLT_RAW's own value (12 or 14) as the link type. */
const LINKTYPE_RAW_DLT12 = 12;
const LINKTYPE_RAW_DLT14 = 14;

const ARPHRD_ETHER = 1;

/** Address family values of BSD loopback headers: AF_INET, then AF_INET6 on BSDs, Darwin, Linux. */
const AF_INET = 2;
const AF_INET6_NETBSD_OPENBSD = 24;
const AF_INET6_FREEBSD = 28;
const AF_INET6_DARWIN = 30;
const AF_INET6_LINUX = 10;

/** Outcome of link-layer decoding. */
export const enum LinkResult {
  /** `etherType` and `networkOffset` locate an IPv4 or IPv6 header. */
  Ip,
  /** The frame is well formed but carries something other than IP (ARP, LLDP, ...). */
  NotIp,
  /** The captured bytes end inside the link-layer headers. */
  Truncated,
  /** A link-layer field has an impossible value. */
  Malformed,
  Unsupported,
}

/** Link-layer facts about the current frame; one instance is reused for every frame. */
export class LinkLayer {
  /** ETHERTYPE_IPV4 or ETHERTYPE_IPV6 when decode returned LinkResult.Ip. */
  etherType = 0;
  networkOffset = 0;
  /** Offsets of the MAC addresses in the frame, -1 when the link type has none. */
  srcMacOffset = -1;
  dstMacOffset = -1;
  /** VLAN ids, outermost first; undefined when the frame has no tags. */
  vlans: number[] | undefined = undefined;

  /** Decodes the link-layer headers of `data`, which came from an interface of `linkType`. */
  decode(data: Buffer, linkType: number): LinkResult {
    this.srcMacOffset = -1;
    this.dstMacOffset = -1;
    this.vlans = undefined;

    switch (linkType) {
      case LINKTYPE.ETHERNET:
        if (data.length < 14) return LinkResult.Truncated;
        this.dstMacOffset = 0;
        this.srcMacOffset = 6;
        return this.decodeEtherType(data, (data[12] << 8) | data[13], 14);

      case LINKTYPE.LINUX_SLL:
        return this.decodeSll(data);

      case LINKTYPE.LINUX_SLL2:
        return this.decodeSll2(data);

      case LINKTYPE.RAW:
      case LINKTYPE_RAW_DLT12:
      case LINKTYPE_RAW_DLT14:
        return this.decodeRaw(data, 0);

      case LINKTYPE.IPV4:
        return this.decodeRaw(data, 4);

      case LINKTYPE.IPV6:
        return this.decodeRaw(data, 6);

      case LINKTYPE.NULL:
      case LINKTYPE.LOOP:
        return this.decodeLoopback(data);

      default:
        return LinkResult.Unsupported;
    }
  }

  /**
   * Follows an EtherType through VLAN tags and PPPoE to the network header. Each VLAN tag is
   * 2 bytes of TCI (the VLAN id is its low 12 bits) and the next 2-byte EtherType.
   */
  private decodeEtherType(data: Buffer, etherType: number, offset: number): LinkResult {
    while (
      etherType === ETHERTYPE_VLAN ||
      etherType === ETHERTYPE_QINQ ||
      etherType === ETHERTYPE_QINQ_OLD
    ) {
      if (offset + 4 > data.length) return LinkResult.Truncated;
      const vlanId = ((data[offset] << 8) | data[offset + 1]) & 0x0fff;
      if (this.vlans === undefined) this.vlans = [vlanId];
      else this.vlans.push(vlanId);
      etherType = (data[offset + 2] << 8) | data[offset + 3];
      offset += 4;
    }

    // PPPoE session header (RFC 2516): version/type, code, session id, length, then PPP protocol.
    if (etherType === ETHERTYPE_PPPOE_SESSION) {
      if (offset + 8 > data.length) return LinkResult.Truncated;
      const pppProtocol = (data[offset + 6] << 8) | data[offset + 7];
      offset += 8;
      if (pppProtocol === PPP_IPV4) etherType = ETHERTYPE_IPV4;
      else if (pppProtocol === PPP_IPV6) etherType = ETHERTYPE_IPV6;
      else return LinkResult.NotIp;
    }

    // Set for other EtherTypes too, so that a caller can read ARP after a NotIp result.
    this.etherType = etherType;
    this.networkOffset = offset;
    if (etherType !== ETHERTYPE_IPV4 && etherType !== ETHERTYPE_IPV6) return LinkResult.NotIp;
    return LinkResult.Ip;
  }

  /**
   * Linux cooked header v1, 16 bytes: packet type 2, ARPHRD type 2, address length 2,
   * address 8 (zero-padded), protocol 2. The address is the sender's link-layer address, so
   * it becomes srcMac when it is a 6-byte Ethernet address. There is no destination address.
   */
  private decodeSll(data: Buffer): LinkResult {
    if (data.length < 16) return LinkResult.Truncated;
    const arphrd = (data[2] << 8) | data[3];
    const addressLength = (data[4] << 8) | data[5];
    if (arphrd === ARPHRD_ETHER && addressLength === 6) this.srcMacOffset = 6;
    return this.decodeEtherType(data, (data[14] << 8) | data[15], 16);
  }

  /**
   * Linux cooked header v2, 20 bytes: protocol 2, reserved 2, interface index 4, ARPHRD type 2,
   * packet type 1, address length 1, address 8. srcMac as for v1.
   */
  private decodeSll2(data: Buffer): LinkResult {
    if (data.length < 20) return LinkResult.Truncated;
    const arphrd = (data[8] << 8) | data[9];
    if (arphrd === ARPHRD_ETHER && data[11] === 6) this.srcMacOffset = 12;
    return this.decodeEtherType(data, (data[0] << 8) | data[1], 20);
  }

  /** Raw IP: the version nibble decides. `expectedVersion` 0 accepts 4 and 6. */
  private decodeRaw(data: Buffer, expectedVersion: number): LinkResult {
    if (data.length < 1) return LinkResult.Truncated;
    const version = data[0] >> 4;
    if (expectedVersion !== 0 && version !== expectedVersion) return LinkResult.Malformed;
    return this.setIpVersion(version, 0);
  }

  /**
   * BSD loopback: a 4-byte address family, in the capturing host's byte order for LINKTYPE_NULL
   * and in network byte order for LINKTYPE_LOOP. The family values are small, so the byte order
   * shows itself: a value above 0xffff read little-endian was written big-endian. Both link types
   * go through the same check because some writers get LOOP's byte order wrong.
   */
  private decodeLoopback(data: Buffer): LinkResult {
    if (data.length < 4) return LinkResult.Truncated;
    let family = (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0;
    if (family > 0xffff) family = ((data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]) >>> 0;

    if (family === AF_INET) return this.setEtherType(ETHERTYPE_IPV4, 4);
    if (
      family === AF_INET6_NETBSD_OPENBSD ||
      family === AF_INET6_FREEBSD ||
      family === AF_INET6_DARWIN ||
      family === AF_INET6_LINUX
    ) {
      return this.setEtherType(ETHERTYPE_IPV6, 4);
    }
    return LinkResult.NotIp;
  }

  private setIpVersion(version: number, offset: number): LinkResult {
    if (version === 4) return this.setEtherType(ETHERTYPE_IPV4, offset);
    if (version === 6) return this.setEtherType(ETHERTYPE_IPV6, offset);
    return LinkResult.Malformed;
  }

  private setEtherType(etherType: number, offset: number): LinkResult {
    this.etherType = etherType;
    this.networkOffset = offset;
    return LinkResult.Ip;
  }
}
