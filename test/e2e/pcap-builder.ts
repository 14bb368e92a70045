/**
 * Builds classic pcap files (little-endian, microsecond timestamps, LINKTYPE_ETHERNET) of
 * Ethernet/IPv4/TCP conversations with a full handshake, correct sequence numbers, ACKs and
 * checksums, so the end-to-end tests can feed the CLI traffic that no capture file contains.
 */

/** One side of a TCP connection. mac is "aa:bb:cc:dd:ee:ff", ip a dotted IPv4 address. */
export interface Endpoint {
  mac: string;
  ip: string;
  port: number;
}

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

/** Largest TCP payload per segment, as on Ethernet with a 1500-byte MTU. */
const MSS = 1460;

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((part) => parseInt(part, 16)));
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** Returns the RFC 1071 Internet checksum over the concatenated parts (each of even length but the last). */
function checksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i + 1 < part.length; i += 2) sum += part.readUInt16BE(i);
    if (part.length % 2 === 1) sum += part[part.length - 1] << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Collects packet records and writes them as one classic pcap file. */
export class PcapBuilder {
  private readonly records: Buffer[] = [];

  /** Packets added so far (each is two records: its header and its frame). */
  get packetCount(): number {
    return this.records.length / 2;
  }

  /** Appends one Ethernet frame captured at tsMicros. */
  addFrame(tsMicros: number, frame: Buffer): void {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(Math.floor(tsMicros / 1e6), 0);
    header.writeUInt32LE(tsMicros % 1e6, 4);
    header.writeUInt32LE(frame.length, 8);
    header.writeUInt32LE(frame.length, 12);
    this.records.push(header, frame);
  }

  /** Returns the file: the 24-byte global header, then the records in the order added. */
  toBuffer(): Buffer {
    const global = Buffer.alloc(24);
    global.writeUInt32LE(0xa1b2c3d4, 0);
    global.writeUInt16LE(2, 4);
    global.writeUInt16LE(4, 6);
    global.writeUInt32LE(65535, 16);
    global.writeUInt32LE(1, 20);
    return Buffer.concat([global, ...this.records]);
  }
}

/** One TCP connection written into a PcapBuilder, packet by packet, 100 µs apart. */
export class TcpConnection {
  private readonly builder: PcapBuilder;
  private readonly sides: [Endpoint, Endpoint];
  private readonly nextSeq: [number, number];
  private tsMicros: number;
  private ipId = 1;

  constructor(builder: PcapBuilder, client: Endpoint, server: Endpoint, startMicros: number) {
    this.builder = builder;
    this.sides = [client, server];
    this.nextSeq = [0x10000000 + client.port, 0x20000000 + server.port];
    this.tsMicros = startMicros;
  }

  /** Writes SYN, SYN-ACK and ACK. */
  handshake(): void {
    this.segment(0, TCP_SYN, Buffer.alloc(0));
    this.segment(1, TCP_SYN | TCP_ACK, Buffer.alloc(0));
    this.segment(0, TCP_ACK, Buffer.alloc(0));
  }

  /** Sends data from dir (0 client, 1 server) in MSS-sized segments; the peer ACKs each one. */
  send(dir: 0 | 1, data: Buffer | string): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    for (let offset = 0; offset < bytes.length; offset += MSS) {
      const end = Math.min(offset + MSS, bytes.length);
      this.segment(dir, TCP_ACK | (end === bytes.length ? TCP_PSH : 0), bytes.subarray(offset, end));
      this.segment(dir === 0 ? 1 : 0, TCP_ACK, Buffer.alloc(0));
    }
  }

  /** Closes from the client side: FIN, FIN, last ACK. */
  close(): void {
    this.segment(0, TCP_FIN | TCP_ACK, Buffer.alloc(0));
    this.segment(1, TCP_FIN | TCP_ACK, Buffer.alloc(0));
    this.segment(0, TCP_ACK, Buffer.alloc(0));
  }

  private segment(dir: 0 | 1, flags: number, payload: Buffer): void {
    const from = this.sides[dir];
    const to = this.sides[dir === 0 ? 1 : 0];
    const tcp = Buffer.alloc(20 + payload.length);
    tcp.writeUInt16BE(from.port, 0);
    tcp.writeUInt16BE(to.port, 2);
    tcp.writeUInt32BE(this.nextSeq[dir] >>> 0, 4);
    tcp.writeUInt32BE(flags & TCP_ACK ? this.nextSeq[dir === 0 ? 1 : 0] >>> 0 : 0, 8);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp.writeUInt16BE(64240, 14);
    payload.copy(tcp, 20);
    const source = ipBytes(from.ip);
    const destination = ipBytes(to.ip);
    const pseudo = Buffer.alloc(4);
    pseudo[1] = 6;
    pseudo.writeUInt16BE(tcp.length, 2);
    tcp.writeUInt16BE(checksum(source, destination, pseudo, tcp), 16);

    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip.writeUInt16BE(this.ipId++ & 0xffff, 4);
    ip.writeUInt16BE(0x4000, 6); // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    source.copy(ip, 12);
    destination.copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);

    const ethernet = Buffer.alloc(14);
    macBytes(to.mac).copy(ethernet, 0);
    macBytes(from.mac).copy(ethernet, 6);
    ethernet.writeUInt16BE(0x0800, 12);

    this.builder.addFrame(this.tsMicros, Buffer.concat([ethernet, ip, tcp]));
    this.tsMicros += 100;
    this.nextSeq[dir] += payload.length + (flags & (TCP_SYN | TCP_FIN) ? 1 : 0);
  }
}

/** One step of an SMTP conversation: what the client or the server sends. */
export type SmtpStep = { client: Buffer | string } | { server: Buffer | string };

/**
 * Writes a whole SMTP connection into builder: handshake, the steps in order, client-side close.
 * Strings are sent as Latin-1 bytes; pass a Buffer for UTF-8 text.
 */
export function addSmtpConnection(
  builder: PcapBuilder,
  client: Endpoint,
  server: Endpoint,
  startMicros: number,
  steps: SmtpStep[],
): void {
  const connection = new TcpConnection(builder, client, server, startMicros);
  connection.handshake();
  for (const step of steps) {
    if ('client' in step) connection.send(0, step.client);
    else connection.send(1, step.server);
  }
  connection.close();
}
