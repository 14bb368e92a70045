/** LINKTYPE_* values from the tcpdump.org registry that the decoder handles. */
export const LINKTYPE = {
  NULL: 0, // BSD loopback, host byte order
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108, // OpenBSD loopback, network byte order
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** A TCP segment with the link and network fields that later stages need. */
export interface TcpSegment {
  /** Capture time in seconds, with microsecond precision. */
  ts: number;
  srcMac?: string; // "aa:bb:cc:dd:ee:ff", absent for link types without MACs
  dstMac?: string;
  /** VLAN ids from the outermost tag inwards; empty without tags. */
  vlans: number[];
  ipVersion: 4 | 6;
  srcIp: string; // dotted quad or RFC 5952 text
  dstIp: string;
  srcPort: number;
  dstPort: number;
  seq: number; // unsigned 32-bit
  ack: number;
  /** TCP flag bits: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20. */
  flags: number;
  window: number;
  /** TCP payload as captured; a view into the frame. */
  payload: Buffer;
  /** Payload length announced by the IP header; larger than payload.length when the snap length cut it. */
  payloadLength: number;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Decoder counters, reported in the summary. */
export interface DecodeStats {
  frames: number;
  tcp: number;
  udp: number;
  otherProtocols: number; // frames that decoded fine but carry neither TCP nor UDP
  unsupportedLinkType: number;
  /** Frames that were malformed: bad lengths, bad header fields. */
  errors: number;
  /** Frames cut by the snap length (decoded as far as they go). */
  snapTruncated: number;
  fragments: number;
  reassembled: number;
  /** Fragments dropped: timeouts, overlaps, memory bound. */
  fragmentsDropped: number;
}

/** Observation of a host from an ARP, DHCP or IPv6 neighbour discovery packet. */
export type NeighborObservation =
  | { kind: 'arp'; ts: number; mac: string; ip: string }
  | { kind: 'ndp'; ts: number; mac: string; ip: string }
  | { kind: 'dhcp'; ts: number; mac: string; ip?: string; hostname?: string; vendorClass?: string };
