/**
 * Frame builders and capture reading for the decode tests. Checksums are left zero because the
 * decoder does not verify them.
 */

import { createRequire } from 'node:module';
import type { Packet } from '../../src/capture/types.js';

/** Parses hex text; whitespace and `#` comments to the end of a line are ignored. */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
}

export function packet(
  data: Buffer,
  linkType: number,
  options: { seconds?: number; nanos?: number; originalLength?: number } = {},
): Packet {
  return {
    seconds: options.seconds ?? 1_000_000_000,
    nanos: options.nanos ?? 0,
    linkType,
    interfaceId: 0,
    data,
    originalLength: options.originalLength ?? data.length,
    fileOffset: 0,
  };
}

export interface TcpFields {
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  options?: Buffer;
  payload?: Buffer;
}

export function tcp(fields: TcpFields = {}): Buffer {
  const options = fields.options ?? Buffer.alloc(0);
  const payload = fields.payload ?? Buffer.alloc(0);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(fields.srcPort ?? 40000, 0);
  header.writeUInt16BE(fields.dstPort ?? 25, 2);
  header.writeUInt32BE(fields.seq ?? 1000, 4);
  header.writeUInt32BE(fields.ack ?? 0, 8);
  header[12] = ((20 + options.length) / 4) << 4;
  header[13] = fields.flags ?? 0x18;
  header.writeUInt16BE(fields.window ?? 512, 14);
  return Buffer.concat([header, options, payload]);
}

export interface Ipv4Fields {
  src?: number[];
  dst?: number[];
  protocol?: number;
  id?: number;
  moreFragments?: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragmentOffset?: number;
  options?: Buffer;
  /** Overrides the total length field. */
  totalLength?: number;
}

export function ipv4(payload: Buffer, fields: Ipv4Fields = {}): Buffer {
  const options = fields.options ?? Buffer.alloc(0);
  const header = Buffer.alloc(20);
  header[0] = 0x40 | ((20 + options.length) / 4);
  header.writeUInt16BE(fields.totalLength ?? 20 + options.length + payload.length, 2);
  header.writeUInt16BE(fields.id ?? 1, 4);
  const fragment = ((fields.fragmentOffset ?? 0) / 8) | (fields.moreFragments ? 0x2000 : 0);
  header.writeUInt16BE(fragment, 6);
  header[8] = 64;
  header[9] = fields.protocol ?? 6;
  Buffer.from(fields.src ?? [10, 0, 0, 1]).copy(header, 12);
  Buffer.from(fields.dst ?? [10, 0, 0, 2]).copy(header, 16);
  return Buffer.concat([header, options, payload]);
}

export const V6_SRC = hex('20010db8000000000000000000000001'); // 2001:db8::1
export const V6_DST = hex('20010db8000000000000000000000002'); // 2001:db8::2

/** Builds an IPv6 packet; `payload` includes any extension headers. */
export function ipv6(payload: Buffer, nextHeader: number, payloadLength = payload.length): Buffer {
  const header = Buffer.alloc(40);
  header[0] = 0x60;
  header.writeUInt16BE(payloadLength, 4);
  header[6] = nextHeader;
  header[7] = 64;
  V6_SRC.copy(header, 8);
  V6_DST.copy(header, 24);
  return Buffer.concat([header, payload]);
}

/** Builds an IPv6 fragment header (RFC 8200 section 4.5). */
export function ipv6Fragment(nextHeader: number, offset: number, more: boolean, id: number): Buffer {
  const header = Buffer.alloc(8);
  header[0] = nextHeader;
  header.writeUInt16BE(offset | (more ? 1 : 0), 2);
  header.writeUInt32BE(id, 4);
  return header;
}

export const MAC_DST = hex('020000000002');
export const MAC_SRC = hex('020000000001');

/** Builds an Ethernet frame with optional tags, each given as [TPID, TCI]. */
export function ethernet(payload: Buffer, etherType: number, tags: [number, number][] = []): Buffer {
  const parts = [MAC_DST, MAC_SRC];
  for (const [tpid, tci] of tags) {
    const tag = Buffer.alloc(4);
    tag.writeUInt16BE(tpid, 0);
    tag.writeUInt16BE(tci, 2);
    parts.push(tag);
  }
  const type = Buffer.alloc(2);
  type.writeUInt16BE(etherType, 0);
  parts.push(type, payload);
  return Buffer.concat(parts);
}

/** Reads a classic pcap file with pcap-parser, the reference reader. */
export function readPcap(file: string): Promise<Packet[]> {
  const require = createRequire(import.meta.url);
  const pcapParser = require('pcap-parser') as {
    parse(file: string): NodeJS.EventEmitter;
  };
  return new Promise((resolve, reject) => {
    const packets: Packet[] = [];
    let linkType = -1;
    const parser = pcapParser.parse(file);
    parser.on('globalHeader', (header: { linkLayerType: number }) => {
      linkType = header.linkLayerType;
    });
    parser.on(
      'packet',
      (record: {
        header: { timestampSeconds: number; timestampMicroseconds: number; originalLength: number };
        data: Buffer;
      }) => {
        packets.push({
          seconds: record.header.timestampSeconds,
          nanos: record.header.timestampMicroseconds * 1000,
          linkType,
          interfaceId: 0,
          data: record.data,
          originalLength: record.header.originalLength,
          fileOffset: 0,
        });
      },
    );
    parser.on('end', () => resolve(packets));
    parser.on('error', reject);
  });
}
