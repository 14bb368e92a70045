/**
 * ARP, DHCP and IPv6 neighbour discovery: the packets that tell which MAC uses which IP address
 * and what a host calls itself. The device inventory learns from them; nothing here is on the
 * path of TCP segments.
 */
import type { NeighborObservation } from './types.js';
import { formatIPv4, formatIPv6, formatMac } from './text.js';

export const ETHERTYPE_ARP = 0x0806;
export const IPPROTO_ICMPV6 = 58;
const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const DHCP_MAGIC_COOKIE = 0x63825363;

/** Longest DHCP host name or vendor class kept, in bytes (RFC 2132 allows 255). */
const MAX_DHCP_TEXT = 255;

/** Parses an ARP packet for IPv4 over Ethernet (RFC 826): the sender's MAC and IP address. */
export function parseArp(data: Buffer, offset: number, ts: number): NeighborObservation | undefined {
  if (offset + 28 > data.length) return undefined;
  const hardwareType = data.readUInt16BE(offset);
  const protocolType = data.readUInt16BE(offset + 2);
  if (hardwareType !== 1 || protocolType !== 0x0800 || data[offset + 4] !== 6 || data[offset + 5] !== 4) return undefined;
  const ip = formatIPv4(data, offset + 14);
  // An ARP probe (RFC 5227) has sender address 0.0.0.0: the host does not own an address yet.
  if (ip === '0.0.0.0') return undefined;
  return { kind: 'arp', ts, mac: formatMac(data, offset + 8), ip };
}

function dhcpText(data: Buffer, start: number, length: number): string {
  // Host names are ASCII by RFC 1123; anything else is kept as Latin-1 so no byte is lost.
  return data.toString('latin1', start, start + Math.min(length, MAX_DHCP_TEXT)).replace(/\0+$/, '');
}

/**
 * Parses a DHCP message (RFC 2131, options from RFC 2132) carried in UDP between ports 67 and
 * 68. It returns the client's MAC, host name (option 12) and vendor class (option 60), and its
 * address: the one a server ACK assigns, or the one a client requests or already uses.
 */
export function parseDhcp(
  data: Buffer,
  udpOffset: number,
  udpEnd: number,
  ts: number,
): NeighborObservation | undefined {
  const sourcePort = data.readUInt16BE(udpOffset);
  const destinationPort = data.readUInt16BE(udpOffset + 2);
  const ports = new Set([sourcePort, destinationPort]);
  if (!ports.has(DHCP_SERVER_PORT) || !ports.has(DHCP_CLIENT_PORT)) return undefined;
  const start = udpOffset + 8;
  if (start + 240 > udpEnd) return undefined;
  const op = data[start];
  if (data[start + 1] !== 1 || data[start + 2] !== 6) return undefined; // Ethernet addresses only
  if (data.readUInt32BE(start + 236) !== DHCP_MAGIC_COOKIE) return undefined;

  let messageType = 0;
  let hostname: string | undefined;
  let vendorClass: string | undefined;
  let requested: string | undefined;
  let at = start + 240;
  while (at < udpEnd) {
    const code = data[at] as number;
    if (code === 255) break; // end
    if (code === 0) {
      at++; // pad
      continue;
    }
    if (at + 2 > udpEnd) break;
    const length = data[at + 1] as number;
    const value = at + 2;
    if (value + length > udpEnd) break;
    if (code === 53 && length >= 1) messageType = data[value] as number;
    else if (code === 12 && length > 0) hostname = dhcpText(data, value, length);
    else if (code === 60 && length > 0) vendorClass = dhcpText(data, value, length);
    else if (code === 50 && length === 4) requested = formatIPv4(data, value);
    at = value + length;
  }

  const observation: NeighborObservation = { kind: 'dhcp', ts, mac: formatMac(data, start + 28) };
  const clientAddress = formatIPv4(data, start + 12);
  const yourAddress = formatIPv4(data, start + 16);
  const DHCPACK = 5;
  if (op === 2 && messageType === DHCPACK && yourAddress !== '0.0.0.0') observation.ip = yourAddress;
  else if (op === 1 && clientAddress !== '0.0.0.0') observation.ip = clientAddress;
  else if (op === 1 && requested !== undefined) observation.ip = requested;
  // Only the client's own messages name it; a server's reply may echo options it did not send.
  if (op === 1 && hostname !== undefined) observation.hostname = hostname;
  if (op === 1 && vendorClass !== undefined) observation.vendorClass = vendorClass;
  if (observation.ip === undefined && observation.hostname === undefined && observation.vendorClass === undefined) {
    return undefined;
  }
  return observation;
}

/**
 * Parses an IPv6 neighbour solicitation or advertisement (RFC 4861 section 4.3 and 4.4): the MAC
 * from the source or target link-layer address option, with the sender's or target's address.
 */
export function parseNdp(
  data: Buffer,
  icmpOffset: number,
  icmpEnd: number,
  sourceAddresses: Buffer,
  sourceOffset: number,
  ts: number,
): NeighborObservation | undefined {
  if (icmpOffset + 24 > icmpEnd) return undefined;
  const type = data[icmpOffset];
  const SOLICITATION = 135;
  const ADVERTISEMENT = 136;
  if (type !== SOLICITATION && type !== ADVERTISEMENT) return undefined;
  // Solicitation: the source link-layer option (1) belongs to the packet's source address.
  // Advertisement: the target link-layer option (2) belongs to the target address.
  const wantedOption = type === SOLICITATION ? 1 : 2;
  let at = icmpOffset + 24;
  while (at + 8 <= icmpEnd) {
    const optionType = data[at];
    const length = (data[at + 1] as number) * 8;
    if (length === 0 || at + length > icmpEnd) return undefined;
    if (optionType === wantedOption && length >= 8) {
      const mac = formatMac(data, at + 2);
      const ip =
        type === SOLICITATION ? formatIPv6(sourceAddresses, sourceOffset) : formatIPv6(data, icmpOffset + 8);
      // Duplicate address detection solicits from "::", which names no host.
      if (ip === '::') return undefined;
      return { kind: 'ndp', ts, mac, ip };
    }
    at += length;
  }
  return undefined;
}
