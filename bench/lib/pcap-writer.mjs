// Classic pcap writer (little-endian, microsecond timestamps, LINKTYPE_ETHERNET) that builds
// Ethernet / optional 802.1Q / IPv4 or IPv6 / TCP, UDP and ARP frames in place in one large buffer.
import { closeSync, openSync, writeSync } from 'node:fs';

const BUFFER_SIZE = 16 * 1024 * 1024;
/** Largest frame the generator builds: 16 record + 18 Ethernet/VLAN + 40 IPv6 + 24 TCP + payload. */
const MAX_RECORD = 16 + 18 + 40 + 24 + 9000;

const BROADCAST_MAC = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** Bytes a TCP frame of this endpoint takes in the file, pcap record header included. */
export function tcpRecordLength(endpoint, payloadLength, flags) {
  const options = flags & TCP_SYN ? 4 : 0;
  return 16 + 14 + (endpoint.vlan ? 4 : 0) + (endpoint.ipv6 ? 40 : 20) + 20 + options + payloadLength;
}

export function udpRecordLength(endpoint, payloadLength) {
  return 16 + 14 + (endpoint.vlan ? 4 : 0) + (endpoint.ipv6 ? 40 : 20) + 8 + payloadLength;
}

export const ARP_RECORD_LENGTH = 16 + 60;

/** Adds the big-endian 16-bit words of buf[start, end) to sum, padding an odd tail with zero. */
function sumWords(buf, start, end, sum) {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

function foldChecksum(sum) {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export class PcapWriter {
  constructor(path) {
    this.fd = openSync(path, 'w');
    this.buf = Buffer.allocUnsafe(BUFFER_SIZE);
    this.pos = 0;
    this.packets = 0;
    this.bytes = 24;
    this.ipId = 1;
    // Global header: magic, version 2.4, thiszone 0, sigfigs 0, snaplen 65535, linktype 1.
    const b = this.buf;
    b.writeUInt32LE(0xa1b2c3d4, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt16LE(4, 6);
    b.writeInt32LE(0, 8);
    b.writeUInt32LE(0, 12);
    b.writeUInt32LE(65535, 16);
    b.writeUInt32LE(1, 20);
    this.pos = 24;
  }

  flush() {
    let offset = 0;
    while (offset < this.pos) offset += writeSync(this.fd, this.buf, offset, this.pos - offset);
    this.pos = 0;
  }

  close() {
    this.flush();
    closeSync(this.fd);
  }

  /** Reserves room for one record and returns the offset where the frame starts. */
  beginRecord(tsMicros, frameLength) {
    if (this.pos + MAX_RECORD > BUFFER_SIZE) this.flush();
    const b = this.buf;
    const p = this.pos;
    b.writeUInt32LE(Math.floor(tsMicros / 1e6), p);
    b.writeUInt32LE(tsMicros % 1e6, p + 4);
    b.writeUInt32LE(frameLength, p + 8);
    b.writeUInt32LE(frameLength, p + 12);
    this.pos = p + 16 + frameLength;
    this.packets++;
    this.bytes += 16 + frameLength;
    return p + 16;
  }

  /** Writes Ethernet (and the 802.1Q tag when vlan is set); returns the offset of the L3 header. */
  writeEthernet(p, dstMac, srcMac, vlan, etherType) {
    const b = this.buf;
    dstMac.copy(b, p);
    srcMac.copy(b, p + 6);
    if (vlan) {
      b.writeUInt16BE(0x8100, p + 12);
      b.writeUInt16BE(vlan & 0x0fff, p + 14);
      b.writeUInt16BE(etherType, p + 16);
      return p + 18;
    }
    b.writeUInt16BE(etherType, p + 12);
    return p + 14;
  }

  /** Writes the IP header; returns the checksum sum of the pseudo-header for TCP/UDP. */
  writeIp(p, ipv6, srcIp, dstIp, protocol, l4Length) {
    const b = this.buf;
    if (ipv6) {
      b.writeUInt32BE(0x60000000, p);
      b.writeUInt16BE(l4Length, p + 4);
      b[p + 6] = protocol;
      b[p + 7] = 64;
      srcIp.copy(b, p + 8);
      dstIp.copy(b, p + 24);
      return sumWords(b, p + 8, p + 40, protocol + l4Length);
    }
    b[p] = 0x45;
    b[p + 1] = 0;
    b.writeUInt16BE(20 + l4Length, p + 2);
    b.writeUInt16BE(this.ipId, p + 4);
    this.ipId = (this.ipId + 1) & 0xffff;
    b.writeUInt16BE(0x4000, p + 6); // don't fragment
    b[p + 8] = 64;
    b[p + 9] = protocol;
    b.writeUInt16BE(0, p + 10);
    srcIp.copy(b, p + 12);
    dstIp.copy(b, p + 16);
    b.writeUInt16BE(foldChecksum(sumWords(b, p, p + 20, 0)), p + 10);
    return sumWords(b, p + 12, p + 20, protocol + l4Length);
  }

  /**
   * Writes one TCP segment. dir 0 is client to server, 1 server to client. SYN segments carry an
   * MSS option.
   */
  tcp(tsMicros, endpoint, dir, flags, seq, ack, payload) {
    const frameLength = tcpRecordLength(endpoint, payload.length, flags) - 16;
    const b = this.buf;
    let p = this.beginRecord(tsMicros, frameLength);
    const client = dir === 0;
    p = this.writeEthernet(
      p,
      client ? endpoint.serverMac : endpoint.clientMac,
      client ? endpoint.clientMac : endpoint.serverMac,
      endpoint.vlan,
      endpoint.ipv6 ? 0x86dd : 0x0800,
    );
    const headerLength = flags & TCP_SYN ? 24 : 20;
    const l4Length = headerLength + payload.length;
    const pseudoSum = this.writeIp(
      p,
      endpoint.ipv6,
      client ? endpoint.clientIp : endpoint.serverIp,
      client ? endpoint.serverIp : endpoint.clientIp,
      6,
      l4Length,
    );
    p += endpoint.ipv6 ? 40 : 20;
    b.writeUInt16BE(client ? endpoint.clientPort : endpoint.serverPort, p);
    b.writeUInt16BE(client ? endpoint.serverPort : endpoint.clientPort, p + 2);
    b.writeUInt32BE(seq >>> 0, p + 4);
    b.writeUInt32BE(flags & TCP_ACK ? ack >>> 0 : 0, p + 8);
    b[p + 12] = (headerLength / 4) << 4;
    b[p + 13] = flags;
    b.writeUInt16BE(64240, p + 14);
    b.writeUInt16BE(0, p + 16);
    b.writeUInt16BE(0, p + 18);
    if (flags & TCP_SYN) {
      b[p + 20] = 2; // MSS option, kind 2, length 4
      b[p + 21] = 4;
      b.writeUInt16BE(endpoint.ipv6 ? 1440 : 1460, p + 22);
    }
    payload.copy(b, p + headerLength);
    const sum = sumWords(b, p, p + l4Length, pseudoSum);
    b.writeUInt16BE(foldChecksum(sum), p + 16);
  }

  udp(tsMicros, endpoint, dir, payload) {
    const frameLength = udpRecordLength(endpoint, payload.length) - 16;
    const b = this.buf;
    let p = this.beginRecord(tsMicros, frameLength);
    const client = dir === 0;
    p = this.writeEthernet(
      p,
      client ? endpoint.serverMac : endpoint.clientMac,
      client ? endpoint.clientMac : endpoint.serverMac,
      endpoint.vlan,
      endpoint.ipv6 ? 0x86dd : 0x0800,
    );
    const l4Length = 8 + payload.length;
    const pseudoSum = this.writeIp(
      p,
      endpoint.ipv6,
      client ? endpoint.clientIp : endpoint.serverIp,
      client ? endpoint.serverIp : endpoint.clientIp,
      17,
      l4Length,
    );
    p += endpoint.ipv6 ? 40 : 20;
    b.writeUInt16BE(client ? endpoint.clientPort : endpoint.serverPort, p);
    b.writeUInt16BE(client ? endpoint.serverPort : endpoint.clientPort, p + 2);
    b.writeUInt16BE(l4Length, p + 4);
    b.writeUInt16BE(0, p + 6);
    payload.copy(b, p + 8);
    const checksum = foldChecksum(sumWords(b, p, p + l4Length, pseudoSum));
    b.writeUInt16BE(checksum === 0 ? 0xffff : checksum, p + 6);
  }

  /** Writes an ARP request (op 1, broadcast) or reply (op 2), padded to the 60-byte minimum. */
  arp(tsMicros, op, senderMac, senderIp, targetMac, targetIp) {
    const b = this.buf;
    let p = this.beginRecord(tsMicros, 60);
    p = this.writeEthernet(p, op === 1 ? BROADCAST_MAC : targetMac, senderMac, 0, 0x0806);
    b.writeUInt16BE(1, p); // hardware type Ethernet
    b.writeUInt16BE(0x0800, p + 2);
    b[p + 4] = 6;
    b[p + 5] = 4;
    b.writeUInt16BE(op, p + 6);
    senderMac.copy(b, p + 8);
    senderIp.copy(b, p + 14);
    if (op === 1) b.fill(0, p + 18, p + 24);
    else targetMac.copy(b, p + 18);
    targetIp.copy(b, p + 24);
    b.fill(0, p + 28, p + 46);
  }
}
