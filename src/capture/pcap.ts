import type { RecordParser } from './reader.js';
import { CaptureError, type CaptureStats, type Packet } from './types.js';

/** Size of the classic pcap global header. */
export const PCAP_GLOBAL_HEADER_LENGTH = 24;
/** Size of a classic pcap record header (ts_sec, ts_usec, incl_len, orig_len). */
export const PCAP_RECORD_HEADER_LENGTH = 16;

/**
 * incl_len accepted even when the header's snaplen is smaller: libpcap's MAXIMUM_SNAPLEN,
 * which is what libpcap (sf-pcap.c, max_snaplen_for_dlt) allows for most link types.
 */
export const PCAP_DEFAULT_MAX_CAPTURED_LENGTH = 262144;
/** Hard upper bound for one record, whatever snaplen the header states. */
export const MAX_RECORD_LENGTH = 256 * 1024 * 1024;

// Magic numbers as read little-endian from the first four bytes of the file.
const MAGIC_MICRO_LE = 0xa1b2c3d4;
const MAGIC_MICRO_BE = 0xd4c3b2a1;
const MAGIC_NANO_LE = 0xa1b23c4d;
const MAGIC_NANO_BE = 0x4d3cb2a1;

/** LINKTYPE_* is the low 26 bits of the header's network field. The upper bits carry FCS flags. */
const LINKTYPE_MASK = 0x03ffffff;

/** Tells whether buf starts with a classic pcap magic number (needs 4 bytes). */
export function isPcapMagic(buf: Buffer): boolean {
  if (buf.length < 4) return false;
  const magic = buf.readUInt32LE(0);
  return (
    magic === MAGIC_MICRO_LE ||
    magic === MAGIC_MICRO_BE ||
    magic === MAGIC_NANO_LE ||
    magic === MAGIC_NANO_BE
  );
}

/**
 * Parser for classic libpcap files: microsecond and nanosecond timestamps, either byte order.
 *
 * Length rule: a record is rejected as MAILTAP_ERR_CORRUPT when incl_len is larger than
 * max(snaplen, 262144) or than 256 MiB. libpcap also accepts incl_len above snaplen up to
 * its per-link-type maximum, but then cuts the data to snaplen. This parser delivers all
 * incl_len bytes, as pcap-parser 0.2.1 does.
 */
export class PcapParser implements RecordParser {
  private haveHeader = false;
  private littleEndian = true;
  private nanosecond = false;
  private linkType = 0;
  private maxCapturedLength = PCAP_DEFAULT_MAX_CAPTURED_LENGTH;

  constructor(
    private readonly file: string,
    private readonly onPacket: (p: Packet) => void,
    private readonly stats: CaptureStats,
  ) {}

  recordLength(buf: Buffer, pos: number, avail: number, base: number): number {
    if (!this.haveHeader) return PCAP_GLOBAL_HEADER_LENGTH;
    if (avail < PCAP_RECORD_HEADER_LENGTH) return PCAP_RECORD_HEADER_LENGTH;
    const capturedLength = this.littleEndian
      ? buf.readUInt32LE(pos + 8)
      : buf.readUInt32BE(pos + 8);
    this.checkCapturedLength(capturedLength, base + pos);
    return PCAP_RECORD_HEADER_LENGTH + capturedLength;
  }

  parse(buf: Buffer, pos: number, end: number, base: number): number {
    if (!this.haveHeader) {
      if (end - pos < PCAP_GLOBAL_HEADER_LENGTH) return pos;
      this.parseGlobalHeader(buf, pos);
      pos += PCAP_GLOBAL_HEADER_LENGTH;
    }

    const le = this.littleEndian;
    const stats = this.stats;
    const linkType = this.linkType;
    const maxCapturedLength = this.maxCapturedLength;

    while (end - pos >= PCAP_RECORD_HEADER_LENGTH) {
      const capturedLength = le ? buf.readUInt32LE(pos + 8) : buf.readUInt32BE(pos + 8);
      if (capturedLength > maxCapturedLength) this.checkCapturedLength(capturedLength, base + pos);
      const dataStart = pos + PCAP_RECORD_HEADER_LENGTH;
      const recordEnd = dataStart + capturedLength;
      if (recordEnd > end) break;

      let seconds = le ? buf.readUInt32LE(pos) : buf.readUInt32BE(pos);
      let fraction = le ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
      const originalLength = le ? buf.readUInt32LE(pos + 12) : buf.readUInt32BE(pos + 12);

      // Some writers put a whole number of seconds into the fraction field; carry it over so
      // that nanos stays below one second.
      let nanos: number;
      if (this.nanosecond) {
        if (fraction >= 1e9) {
          seconds += Math.floor(fraction / 1e9);
          fraction %= 1e9;
        }
        nanos = fraction;
      } else {
        if (fraction >= 1e6) {
          seconds += Math.floor(fraction / 1e6);
          fraction %= 1e6;
        }
        nanos = fraction * 1000;
      }

      stats.packets++;
      stats.bytes += capturedLength;
      if (capturedLength < originalLength) stats.snapTruncated++;
      this.onPacket({
        seconds,
        nanos,
        linkType,
        interfaceId: 0,
        data: buf.subarray(dataStart, recordEnd),
        originalLength,
        fileOffset: base + pos,
      });
      pos = recordEnd;
    }
    return pos;
  }

  private parseGlobalHeader(buf: Buffer, pos: number): void {
    const magic = buf.readUInt32LE(pos);
    this.littleEndian = magic === MAGIC_MICRO_LE || magic === MAGIC_NANO_LE;
    this.nanosecond = magic === MAGIC_NANO_LE || magic === MAGIC_NANO_BE;

    const le = this.littleEndian;
    const major = le ? buf.readUInt16LE(pos + 4) : buf.readUInt16BE(pos + 4);
    const minor = le ? buf.readUInt16LE(pos + 6) : buf.readUInt16BE(pos + 6);
    if (major !== 2) {
      throw new CaptureError(
        'MAILTAP_ERR_FORMAT',
        this.file,
        0,
        `unsupported pcap version ${major}.${minor} (only 2.x is read)`,
      );
    }
    const snapLength = le ? buf.readUInt32LE(pos + 16) : buf.readUInt32BE(pos + 16);
    const network = le ? buf.readUInt32LE(pos + 20) : buf.readUInt32BE(pos + 20);
    this.linkType = network & LINKTYPE_MASK;
    this.maxCapturedLength = Math.min(
      Math.max(snapLength, PCAP_DEFAULT_MAX_CAPTURED_LENGTH),
      MAX_RECORD_LENGTH,
    );
    this.haveHeader = true;
  }

  private checkCapturedLength(capturedLength: number, offset: number): void {
    if (capturedLength <= this.maxCapturedLength) return;
    throw new CaptureError(
      'MAILTAP_ERR_CORRUPT',
      this.file,
      offset,
      `invalid captured length ${capturedLength} (maximum ${this.maxCapturedLength})`,
    );
  }
}
