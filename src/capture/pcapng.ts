import { MAX_RECORD_LENGTH } from './pcap.js';
import type { RecordParser } from './reader.js';
import { CaptureError, type CaptureErrorCode, type CaptureStats, type Packet } from './types.js';

// Block types (pcapng specification, draft-ietf-opsawg-pcapng). The section header block
// type reads the same in both byte orders.
const BLOCK_SECTION_HEADER = 0x0a0d0d0a;
const BLOCK_INTERFACE_DESCRIPTION = 0x00000001;
const BLOCK_OBSOLETE_PACKET = 0x00000002;
const BLOCK_SIMPLE_PACKET = 0x00000003;
const BLOCK_ENHANCED_PACKET = 0x00000006;

const BYTE_ORDER_MAGIC_LE = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_BE = 0x4d3c2b1a;

const OPTION_END = 0;
const OPTION_IF_TSRESOL = 9;
const OPTION_IF_TSOFFSET = 14;

/** Type, length and the trailing length copy: the smallest possible block. */
const MIN_BLOCK_LENGTH = 12;
/** Bytes needed to know a block's length: type, length and, for a SHB, the byte-order magic. */
const BLOCK_PREFIX_LENGTH = 12;

/** Tells whether buf starts with a pcapng section header block type (needs 4 bytes). */
export function isPcapngMagic(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32LE(0) === BLOCK_SECTION_HEADER;
}

/** Arithmetic that convertTimestamp uses for an interface's timestamp resolution. */
const enum TimestampPath {
  /** 10^-n with n <= 9, in doubles. */
  Decimal,
  /** 2^-n with n <= 32, in doubles. */
  Binary,
  /** Any other resolution, in BigInt. */
  BigInt,
}

/**
 * One interface of the current section. Timestamps count units of 10^-exponent seconds
 * (decimal) or 2^-exponent seconds (binary), set by the if_tsresol option. The default is 10^-6.
 * The remaining fields are constants of that resolution, computed once per interface.
 */
interface InterfaceInfo {
  linkType: number;
  snapLength: number;
  /** if_tsoffset: seconds added to every timestamp of the interface. */
  offsetSeconds: number;
  path: TimestampPath;
  /** The double paths apply while the timestamp's high word is below this. */
  highLimit: number;
  /** 2^(32-n): the value of one unit of the high word after dividing by 2^n. */
  highScale: number;
  /** 2^n. */
  twoN: number;
  /** 5^n, for the decimal path. */
  fiveN: number;
  /** Nanoseconds per unit (decimal path), or 5^9 * 2^(9-n) (binary path). */
  nanoScale: number;
  /** Units per second, for the BigInt path. */
  unitsPerSecond: bigint;
}

function makeInterface(
  linkType: number,
  snapLength: number,
  resolution: number,
  offsetSeconds: number,
): InterfaceInfo {
  const decimal = (resolution & 0x80) === 0;
  const n = resolution & 0x7f;
  const info: InterfaceInfo = {
    linkType,
    snapLength,
    offsetSeconds,
    path: TimestampPath.BigInt,
    highLimit: 0,
    highScale: 2 ** (32 - n),
    twoN: 2 ** n,
    fiveN: 5 ** n,
    nanoScale: 0,
    unitsPerSecond: (decimal ? 10n : 2n) ** BigInt(n),
  };
  // Below highLimit the quotient by 2^n stays under 2^53, so every double step is exact.
  if (decimal && n <= 9) {
    info.path = TimestampPath.Decimal;
    info.highLimit = 2 ** (21 + n);
    info.nanoScale = 10 ** (9 - n);
  } else if (!decimal && n <= 32) {
    info.path = TimestampPath.Binary;
    info.highLimit = 2 ** (21 + n);
    // 10^9 = 5^9 * 2^9 and fraction * 5^9 < 2^53, so the product and the power-of-two
    // scaling are exact and floor truncates like integer division.
    info.nanoScale = 1953125 * 2 ** (9 - n);
  }
  return info;
}

/** if_tsresol value for the default resolution, 10^-6 seconds. */
const DEFAULT_TSRESOL = 6;

/**
 * Parser for pcapng: several sections in either byte order, interface description blocks
 * with if_tsresol and if_tsoffset, enhanced, simple and obsolete packet blocks. Other block
 * types (name resolution, interface statistics, decryption secrets, custom) are skipped and
 * counted in stats.skippedBlocks.
 */
export class PcapngParser implements RecordParser {
  private littleEndian = true;
  private interfaces: InterfaceInfo[] = [];
  private sectionCount = 0;
  // Result of the last timestamp conversion, kept in fields so that no object is made per packet.
  private tsSeconds = 0;
  private tsNanos = 0;

  constructor(
    private readonly file: string,
    private readonly onPacket: (p: Packet) => void,
    private readonly stats: CaptureStats,
  ) {}

  recordLength(buf: Buffer, pos: number, avail: number, base: number): number {
    if (avail < BLOCK_PREFIX_LENGTH) return BLOCK_PREFIX_LENGTH;

    let le = this.littleEndian;
    if (buf.readUInt32LE(pos) === BLOCK_SECTION_HEADER) {
      const magic = buf.readUInt32LE(pos + 8);
      if (magic === BYTE_ORDER_MAGIC_LE) {
        le = true;
      } else if (magic === BYTE_ORDER_MAGIC_BE) {
        le = false;
      } else {
        const code = this.sectionCount === 0 ? 'MAILTAP_ERR_FORMAT' : 'MAILTAP_ERR_CORRUPT';
        const hex = magic.toString(16).padStart(8, '0');
        throw this.error(code, base + pos, `invalid pcapng byte-order magic 0x${hex}`);
      }
    }

    const length = le ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
    if (length < MIN_BLOCK_LENGTH || length % 4 !== 0 || length > MAX_RECORD_LENGTH) {
      throw this.error(
        'MAILTAP_ERR_CORRUPT',
        base + pos,
        `invalid pcapng block length ${length} (must be a multiple of 4, 12 to ${MAX_RECORD_LENGTH})`,
      );
    }
    return length;
  }

  parse(buf: Buffer, pos: number, end: number, base: number): number {
    while (end - pos >= BLOCK_PREFIX_LENGTH) {
      const length = this.recordLength(buf, pos, end - pos, base);
      if (length > end - pos) break;

      const type = buf.readUInt32LE(pos) === BLOCK_SECTION_HEADER
        ? BLOCK_SECTION_HEADER
        : this.u32(buf, pos);
      if (type === BLOCK_SECTION_HEADER) this.parseSectionHeader(buf, pos, length, base);

      const trailer = this.u32(buf, pos + length - 4);
      if (trailer !== length) {
        throw this.error(
          'MAILTAP_ERR_CORRUPT',
          base + pos,
          `pcapng block length ${length} does not match trailing length ${trailer}`,
        );
      }

      switch (type) {
        case BLOCK_SECTION_HEADER:
          break;
        case BLOCK_ENHANCED_PACKET:
          this.parsePacketBlock(buf, pos, length, base, false);
          break;
        case BLOCK_SIMPLE_PACKET:
          this.parseSimplePacket(buf, pos, length, base);
          break;
        case BLOCK_INTERFACE_DESCRIPTION:
          this.parseInterfaceDescription(buf, pos, length, base);
          break;
        case BLOCK_OBSOLETE_PACKET:
          this.parsePacketBlock(buf, pos, length, base, true);
          break;
        default:
          this.stats.skippedBlocks++;
      }
      pos += length;
    }
    return pos;
  }

  private u32(buf: Buffer, at: number): number {
    return this.littleEndian ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
  }

  private u16(buf: Buffer, at: number): number {
    return this.littleEndian ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
  }

  private error(code: CaptureErrorCode, offset: number, reason: string): CaptureError {
    return new CaptureError(code, this.file, offset, reason);
  }

  private parseSectionHeader(buf: Buffer, pos: number, length: number, base: number): void {
    // recordLength has validated the byte-order magic already.
    this.littleEndian = buf.readUInt32LE(pos + 8) === BYTE_ORDER_MAGIC_LE;
    if (length < 28) {
      throw this.error('MAILTAP_ERR_CORRUPT', base + pos, `section header block too short (${length} bytes)`);
    }
    const major = this.u16(buf, pos + 12);
    const minor = this.u16(buf, pos + 14);
    if (major !== 1) {
      throw this.error(
        'MAILTAP_ERR_FORMAT',
        base + pos,
        `unsupported pcapng version ${major}.${minor} (only 1.x is read)`,
      );
    }
    this.interfaces = [];
    this.sectionCount++;
  }

  private parseInterfaceDescription(buf: Buffer, pos: number, length: number, base: number): void {
    if (length < 20) {
      throw this.error(
        'MAILTAP_ERR_CORRUPT',
        base + pos,
        `interface description block too short (${length} bytes)`,
      );
    }
    let resolution = DEFAULT_TSRESOL;
    let offsetSeconds = 0;

    // Options: code (2), length (2), value padded to a multiple of 4.
    const optionsEnd = pos + length - 4;
    let at = pos + 16;
    while (at + 4 <= optionsEnd) {
      const code = this.u16(buf, at);
      const valueLength = this.u16(buf, at + 2);
      if (code === OPTION_END) break;
      const valueStart = at + 4;
      if (valueStart + valueLength > optionsEnd) {
        throw this.error('MAILTAP_ERR_CORRUPT', base + pos, `interface option ${code} runs past its block`);
      }
      if (code === OPTION_IF_TSRESOL && valueLength >= 1) {
        resolution = buf[valueStart];
      } else if (code === OPTION_IF_TSOFFSET && valueLength >= 8) {
        const offset = this.littleEndian
          ? buf.readBigInt64LE(valueStart)
          : buf.readBigInt64BE(valueStart);
        offsetSeconds = Number(offset);
      }
      at = valueStart + ((valueLength + 3) & ~3);
    }
    this.interfaces.push(
      makeInterface(this.u16(buf, pos + 8), this.u32(buf, pos + 12), resolution, offsetSeconds),
    );
  }

  private interfaceAt(id: number, offset: number): InterfaceInfo {
    const info = this.interfaces[id];
    if (info === undefined) {
      throw this.error(
        'MAILTAP_ERR_CORRUPT',
        offset,
        `packet refers to interface ${id}, but the section describes ${this.interfaces.length}`,
      );
    }
    return info;
  }

  /** Enhanced packet block, or the obsolete packet block, which has a 16-bit interface id. */
  private parsePacketBlock(
    buf: Buffer,
    pos: number,
    length: number,
    base: number,
    obsolete: boolean,
  ): void {
    const offset = base + pos;
    if (length < 32) {
      throw this.error('MAILTAP_ERR_CORRUPT', offset, `packet block too short (${length} bytes)`);
    }
    const interfaceId = obsolete ? this.u16(buf, pos + 8) : this.u32(buf, pos + 8);
    const info = this.interfaceAt(interfaceId, offset);
    const capturedLength = this.u32(buf, pos + 20);
    const originalLength = this.u32(buf, pos + 24);
    if (capturedLength > length - 32) {
      throw this.error(
        'MAILTAP_ERR_CORRUPT',
        offset,
        `captured length ${capturedLength} exceeds the packet block length ${length}`,
      );
    }
    this.convertTimestamp(info, this.u32(buf, pos + 12), this.u32(buf, pos + 16));
    const dataStart = pos + 28;
    const data = buf.subarray(dataStart, dataStart + capturedLength);
    this.deliver(info, interfaceId, data, originalLength, offset);
  }

  /** Simple packet block: interface 0, no timestamp, captured length from the snap length. */
  private parseSimplePacket(buf: Buffer, pos: number, length: number, base: number): void {
    const offset = base + pos;
    if (length < 16) {
      throw this.error('MAILTAP_ERR_CORRUPT', offset, `simple packet block too short (${length} bytes)`);
    }
    const info = this.interfaceAt(0, offset);
    const originalLength = this.u32(buf, pos + 8);
    let capturedLength = originalLength;
    if (info.snapLength !== 0 && info.snapLength < capturedLength) capturedLength = info.snapLength;
    if (capturedLength > length - 16) {
      throw this.error(
        'MAILTAP_ERR_CORRUPT',
        offset,
        `simple packet block of ${length} bytes cannot hold ${capturedLength} captured bytes`,
      );
    }
    this.tsSeconds = 0;
    this.tsNanos = 0;
    const data = buf.subarray(pos + 12, pos + 12 + capturedLength);
    this.deliver(info, 0, data, originalLength, offset);
  }

  private deliver(
    info: InterfaceInfo,
    interfaceId: number,
    data: Buffer,
    originalLength: number,
    offset: number,
  ): void {
    const stats = this.stats;
    stats.packets++;
    stats.bytes += data.length;
    if (data.length < originalLength) stats.snapTruncated++;
    this.onPacket({
      seconds: this.tsSeconds,
      nanos: this.tsNanos,
      linkType: info.linkType,
      interfaceId,
      data,
      originalLength,
      fileOffset: offset,
    });
  }

  /** Splits the 64-bit timestamp high:low into tsSeconds and tsNanos exactly. */
  private convertTimestamp(info: InterfaceInfo, high: number, low: number): void {
    if (high < info.highLimit) {
      const twoN = info.twoN;
      const fraction = low % twoN;
      // t = floor(ts / 2^n), below 2^53 thanks to highLimit.
      const t = high * info.highScale + (low - fraction) / twoN;
      if (info.path === TimestampPath.Decimal) {
        // ts = t * 2^n + fraction and t = q * 5^n + r, so ts = q * 10^n + (r * 2^n + fraction).
        const fiveN = info.fiveN;
        let q = Math.floor(t / fiveN);
        let r = t - q * fiveN;
        if (r < 0) {
          q--;
          r += fiveN;
        } else if (r >= fiveN) {
          q++;
          r -= fiveN;
        }
        this.tsSeconds = q + info.offsetSeconds;
        this.tsNanos = (r * twoN + fraction) * info.nanoScale;
      } else {
        this.tsSeconds = t + info.offsetSeconds;
        this.tsNanos = Math.floor(fraction * info.nanoScale);
      }
      return;
    }
    const units = info.unitsPerSecond;
    const ts = (BigInt(high) << 32n) | BigInt(low);
    this.tsSeconds = Number(ts / units) + info.offsetSeconds;
    this.tsNanos = Number(((ts % units) * 1_000_000_000n) / units);
  }
}
