import type { RawHeaderLine } from './headers.js';

/** Message fields that readMessageHeaders reports from their first occurrence. */
const MESSAGE_FIELDS = new Set([
  'reply-to',
  'subject',
  'date',
  'message-id',
  'in-reply-to',
  'x-mailer',
  'user-agent',
]);

/** Address fields: every occurrence is kept, and readMessageHeaders joins them. */
const ADDRESS_FIELDS = new Set(['from', 'to', 'cc']);

/** MIME fields that mailsplit's MimeNode reads, each with Headers.getFirst. */
const PART_FIELDS = new Set(['content-type', 'content-disposition', 'content-transfer-encoding']);

const LONGEST_KEPT_NAME = 'content-transfer-encoding'.length;

const LF = 0x0a;
const CR = 0x0d;
const CRLF_BYTES = Buffer.from('\r\n');

export interface HeaderBlockLimits {
  /** Bytes kept of one logical field, and of the repeated From, To or Cc fields together. */
  maxFieldBytes: number;
  /** Fields beyond this count set tooManyFields. They are still read. */
  maxFields: number;
}

interface KeptField {
  key: string;
  bytes: Buffer;
}

export interface CollectedHeaders {
  /** Kept message and MIME fields in input order. */
  lines: RawHeaderLine[];
  /** The kept Content-* fields as a header block for mailsplit's MimeNode. */
  partBlock: Buffer;
}

/**
 * Collects the fields of one header block that the MIME stage reports, field by field, so that
 * memory does not grow with the size of the block. Each field is cut at maxFieldBytes. Of the
 * root block it keeps the first Reply-To, Subject, Date, Message-ID, In-Reply-To, X-Mailer and
 * User-Agent, every From, To and Cc up to maxFieldBytes per name in total, and counts Received.
 * Of every block it keeps the first Content-Type, Content-Disposition and
 * Content-Transfer-Encoding. Everything else is counted and dropped. So it stores at most 13
 * kept fields and the one being read, each of at most maxFieldBytes: about 1.4 MB with the
 * default limit.
 *
 * The caller splits lines and decides which lines belong to the block (isHeaderLine).
 */
export class HeaderBlock {
  /** Fields started so far, kept or not. */
  fieldCount = 0;
  /** Received fields of the root block. They are counted, never kept. */
  receivedCount = 0;
  /** A field, or the From, To or Cc fields together, exceeded maxFieldBytes. */
  fieldTooLong = false;

  private readonly kept: KeptField[] = [];
  private readonly seen = new Set<string>();
  private readonly addressBytes = new Map<string, number>();

  private fieldKey = '';
  private keepField = false;
  /** Bytes of the current field up to maxFieldBytes, stored in fieldBuffer if it is kept. */
  private fieldBytes = 0;
  private fieldBuffer = Buffer.alloc(0);

  constructor(
    private readonly limits: HeaderBlockLimits,
    private readonly root: boolean,
  ) {}

  get tooManyFields(): boolean {
    return this.fieldCount > this.limits.maxFields;
  }

  /** Starts a field with its first line ("Name: value" and the line ending). */
  startField(line: Buffer): void {
    this.endField();
    this.fieldCount++;
    const key = fieldName(line);
    this.fieldKey = key;
    this.keepField = this.wants(key);
    if (this.root && key === 'received') {
      this.receivedCount++;
    }
    this.addLine(line);
  }

  /** Adds a continuation line (leading SP or HTAB) to the current field. */
  continueField(line: Buffer): void {
    this.addLine(line);
  }

  /** Records that the current field went on past what was passed in, so it was cut. */
  markFieldCut(): void {
    this.fieldTooLong = true;
  }

  /** Ends the block and returns the kept fields. */
  finish(): CollectedHeaders {
    this.endField();
    const lines: RawHeaderLine[] = [];
    const partFields: Buffer[] = [];
    for (const { key, bytes } of this.kept) {
      lines.push({ key, line: withoutLineEnding(bytes).toString('latin1') });
      if (PART_FIELDS.has(key)) {
        partFields.push(bytes);
        if (bytes[bytes.length - 1] !== LF) {
          // A cut field has no line ending of its own.
          partFields.push(CRLF_BYTES);
        }
      }
    }
    return { lines, partBlock: Buffer.concat(partFields) };
  }

  private wants(key: string): boolean {
    if (PART_FIELDS.has(key) || (this.root && MESSAGE_FIELDS.has(key))) {
      if (this.seen.has(key)) {
        return false;
      }
      this.seen.add(key);
      return true;
    }
    if (this.root && ADDRESS_FIELDS.has(key)) {
      if ((this.addressBytes.get(key) ?? 0) < this.limits.maxFieldBytes) {
        return true;
      }
      this.fieldTooLong = true;
    }
    return false;
  }

  private addLine(line: Buffer): void {
    const room = this.limits.maxFieldBytes - this.fieldBytes;
    let length = line.length;
    if (length > room) {
      this.fieldTooLong = true;
      length = room;
    }
    if (length <= 0) {
      return;
    }
    if (this.keepField) {
      // A copy: the caller may reuse the buffer the line is a view of.
      this.reserve(this.fieldBytes + length);
      line.copy(this.fieldBuffer, this.fieldBytes, 0, length);
    }
    this.fieldBytes += length;
  }

  private endField(): void {
    const key = this.fieldKey;
    const keep = this.keepField;
    const bytes = this.fieldBytes;
    this.fieldKey = '';
    this.keepField = false;
    this.fieldBytes = 0;
    if (!keep || bytes === 0) {
      return;
    }

    if (ADDRESS_FIELDS.has(key)) {
      const total = (this.addressBytes.get(key) ?? 0) + bytes;
      if (total > this.limits.maxFieldBytes) {
        // Whole fields only: a cut address list would end in a broken address.
        this.fieldTooLong = true;
        this.addressBytes.set(key, this.limits.maxFieldBytes);
        return;
      }
      this.addressBytes.set(key, total);
    }
    this.kept.push({ key, bytes: Buffer.from(this.fieldBuffer.subarray(0, bytes)) });
  }

  /** Grows fieldBuffer, which is reused from field to field, to at least size bytes. */
  private reserve(size: number): void {
    if (size <= this.fieldBuffer.length) {
      return;
    }
    // addLine never stores more than maxFieldBytes, so the buffer stays within that too.
    const capacity = Math.min(Math.max(size, this.fieldBuffer.length * 2, 256), this.limits.maxFieldBytes);
    const grown = Buffer.allocUnsafe(capacity);
    this.fieldBuffer.copy(grown, 0, 0, this.fieldBytes);
    this.fieldBuffer = grown;
  }
}

/**
 * Returns the lower-case name of a field from its first line, or "" when the name is longer
 * than any kept name. The line must pass isHeaderLine: a name of printable ASCII other than
 * ":", then optional SP or HTAB (obsolete syntax, RFC 5322 section 4.5), then ":".
 */
function fieldName(line: Buffer): string {
  let end = 0;
  while (end < line.length && line[end] > 0x20 && line[end] < 0x7f && line[end] !== 0x3a) {
    end++;
  }
  if (end > LONGEST_KEPT_NAME) {
    return '';
  }
  return line.toString('latin1', 0, end).toLowerCase();
}

function withoutLineEnding(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === LF || bytes[end - 1] === CR)) {
    end--;
  }
  return bytes.subarray(0, end);
}
