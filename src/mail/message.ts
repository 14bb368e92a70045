import mailsplit from '@zone-eu/mailsplit';
import type { BodySink } from '../smtp/types.js';
import type { MailLimits, MessageInfo, MimePart } from './types.js';
import { HeaderBlock } from './header-block.js';
import { readMessageHeaders, type MessageHeaders } from './headers.js';
import { describePart } from './part-headers.js';
import { isKnownTransferEncoding, LeafBody } from './part-body.js';

export const DEFAULT_MAIL_LIMITS: Required<MailLimits> = {
  // Postfix's default header_size_limit (102400 bytes), which applies to one logical header.
  maxHeaderBytes: 102_400,
  // An anomaly threshold chosen well above real mail, where fields number in the tens and
  // sendmail bounces a message with more than 25 Received fields (MaxHopCount default).
  maxHeaderFields: 1000,
  // mailsplit's own default cap on MIME nodes (maxChildNodes).
  maxParts: 1000,
  // Real mail rarely nests beyond 5 levels; deeper trees are a parser-evasion pattern.
  maxDepth: 32,
};

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const NEWLINE_DASH = Buffer.from('\n-');
const CRLF_BYTES = Buffer.from('\r\n');
const LF_BYTES = Buffer.from('\n');
const CR_BYTES = Buffer.from('\r');

// Maximum transport padding after a delimiter (RFC 2046 section 5.1.1). It is capped at the
// RFC 5322 line length so that a pending delimiter candidate stays small.
const MAX_DELIMITER_PADDING = 998;

const enum Mode {
  Header,
  Body,
  /** Analysis stopped (a limit or an internal error): bytes are only counted. */
  Ignore,
}

/** Line ending held back from the content because a delimiter line may follow it. */
const enum PendingEol {
  None,
  Lf,
  CrLf,
  /** A CR at the end of a write: the first half of a CRLF, or content if no LF follows. */
  Cr,
}

interface OpenMultipart {
  boundary: Buffer;
  path: string;
  depth: number;
  subtype: string;
  children: number;
}

/** Tree position of the part whose header block is being read. */
interface PendingNode {
  path: string;
  depth: number;
  parentSubtype: string | undefined;
}

type BoundaryMatch = { index: number; close: boolean };

/**
 * Streams one message body and extracts its headers and MIME tree (a BodySink of the SMTP
 * stage). The body is split into lines synchronously in write(), so memory stays bounded
 * whatever the producer does. Of a header block the parser keeps only the fields it reports,
 * each cut at maxHeaderBytes (see HeaderBlock), and reads on to the blank line however long
 * the block is. It also holds one partial line of at most maxHeaderBytes or the longest
 * boundary plus 1006 bytes, and the state of the open parts. The Content-* fields are parsed
 * with mailsplit's MimeNode and libmime; leaf bodies are decoded with libbase64 or libqp and
 * hashed. Delimiter lines are matched here rather than by mailsplit's Splitter, which queues
 * input and parses it later, so a producer that never yields would make it hold the whole
 * message.
 *
 * NOTE: message/rfc822 parts are reported as leaves (size and SHA-256 of the enclosed message
 * as sent). Attachments inside a forwarded message are not listed.
 */
export class MessageParser implements BodySink {
  readonly result: Promise<MessageInfo>;

  private readonly limits: Required<MailLimits>;
  private resolveResult!: (info: MessageInfo) => void;

  private mode = Mode.Header;
  private size = 0;
  private ended = false;
  private partCount = 0;
  private pendingBodies = 0;

  private readonly parts: MimePart[] = [];
  private readonly anomalies = new Set<string>();
  private messageHeaders: MessageHeaders | undefined;

  /** Open multipart nodes, outermost first. */
  private readonly stack: OpenMultipart[] = [];
  private longestBoundary = 0;

  private node: PendingNode = { path: '1', depth: 0, parentSubtype: undefined };
  private headerBlock: HeaderBlock;
  /** The rest of a header line longer than headerLineLimit() is skipped up to its line feed. */
  private skippingHeaderLine = false;

  private leaf: LeafBody | undefined;
  private pendingEol = PendingEol.None;
  private atLineStart = true;

  /** Start of a line not yet complete at the end of a write: a header line or a delimiter candidate. */
  private held = Buffer.alloc(0);
  private heldLength = 0;

  constructor(limits?: Partial<MailLimits>) {
    this.limits = { ...DEFAULT_MAIL_LIMITS, ...limits };
    this.headerBlock = this.newHeaderBlock(true);
    this.result = new Promise((resolve) => {
      this.resolveResult = resolve;
    });
  }

  write(chunk: Buffer): void {
    if (this.ended) {
      return;
    }
    this.size += chunk.length;
    if (this.mode === Mode.Ignore || chunk.length === 0) {
      return;
    }
    try {
      this.consume(chunk);
    } catch {
      this.stopAnalysis('mime_parse_error');
    }
  }

  end(complete: boolean): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    // Added first: finishing the last part can settle the result at once, and the anomaly
    // must be in it.
    if (!complete) {
      this.anomalies.add('message_truncated');
    }
    try {
      this.finishInput(complete);
    } catch {
      this.stopAnalysis('mime_parse_error');
    }
    this.resolveIfDone();
  }

  // ---- line splitting ---------------------------------------------------------------------

  private consume(chunk: Buffer): void {
    let pos = 0;
    if (this.heldLength > 0 || this.skippingHeaderLine) {
      pos = this.continueHeldLine(chunk);
    }
    while (pos < chunk.length) {
      if (this.mode === Mode.Header) {
        pos = this.consumeHeader(chunk, pos);
      } else if (this.mode === Mode.Body) {
        pos = this.consumeBody(chunk, pos);
      } else {
        return;
      }
    }
  }

  /** Completes the line held from earlier writes with the start of this chunk. */
  private continueHeldLine(chunk: Buffer): number {
    const lineFeed = chunk.indexOf(LF);
    const end = lineFeed < 0 ? chunk.length : lineFeed + 1;

    if (this.mode === Mode.Header) {
      if (this.skippingHeaderLine) {
        this.skippingHeaderLine = lineFeed < 0;
        return end;
      }
      const room = this.headerLineLimit() - this.heldLength;
      if (end <= room) {
        this.appendHeld(chunk.subarray(0, end));
        if (lineFeed >= 0) {
          this.handleHeaderLine(this.takeHeld(), true);
        }
        return end;
      }
      this.appendHeld(chunk.subarray(0, room));
      this.handleHeaderLine(this.takeHeld(), false);
      if (this.mode !== Mode.Header) {
        // The line started the body: the rest of it is body content.
        return room;
      }
      this.skippingHeaderLine = lineFeed < 0;
      return end;
    }

    // Body: the held bytes start a line that may be a delimiter.
    const room = this.maxCandidateLength() - this.heldLength;
    if (end > room) {
      // Too long for a delimiter line: it is content, including the rest of this line.
      const held = this.takeHeld();
      this.bodyContent(held, 0, held.length);
      this.bodyContent(chunk, 0, end);
      this.atLineStart = lineFeed >= 0;
      return end;
    }
    this.appendHeld(chunk.subarray(0, end));
    if (lineFeed >= 0) {
      this.handleCandidateLine(this.takeHeld());
    }
    return end;
  }

  private consumeHeader(chunk: Buffer, start: number): number {
    let pos = start;
    while (pos < chunk.length && this.mode === Mode.Header) {
      const lineFeed = chunk.indexOf(LF, pos);
      if (lineFeed < 0) {
        const limit = this.headerLineLimit();
        if (chunk.length - pos <= limit) {
          this.appendHeld(chunk.subarray(pos));
          return chunk.length;
        }
        this.handleHeaderLine(chunk.subarray(pos, pos + limit), false);
        if (this.mode !== Mode.Header) {
          return pos + limit;
        }
        this.skippingHeaderLine = true;
        return chunk.length;
      }
      this.handleHeaderLine(chunk.subarray(pos, lineFeed + 1), true);
      pos = lineFeed + 1;
    }
    return pos;
  }

  /**
   * Passes body bytes on in runs as long as possible: only a line that starts with "-" can be a
   * delimiter, so the scan jumps from one "\n-" to the next and checks just those lines.
   */
  private consumeBody(chunk: Buffer, start: number): number {
    let pos = start;
    while (pos < chunk.length && this.mode === Mode.Body) {
      if (this.stack.length === 0) {
        this.bodyContent(chunk, pos, chunk.length);
        this.atLineStart = chunk[chunk.length - 1] === LF;
        return chunk.length;
      }

      if (this.atLineStart && chunk[pos] === DASH) {
        const lineFeed = chunk.indexOf(LF, pos);
        if (lineFeed < 0) {
          if (chunk.length - pos <= this.maxCandidateLength()) {
            this.appendHeld(chunk.subarray(pos));
          } else {
            this.bodyContent(chunk, pos, chunk.length);
            this.atLineStart = false;
          }
          return chunk.length;
        }
        this.handleCandidateLine(chunk.subarray(pos, lineFeed + 1));
        pos = lineFeed + 1;
        continue;
      }

      const next = chunk.indexOf(NEWLINE_DASH, pos);
      if (next < 0) {
        this.bodyContent(chunk, pos, chunk.length);
        this.atLineStart = chunk[chunk.length - 1] === LF;
        return chunk.length;
      }
      this.bodyContent(chunk, pos, next + 1);
      this.atLineStart = true;
      pos = next + 1;
    }
    return pos;
  }

  private handleCandidateLine(line: Buffer): void {
    const match = this.matchBoundary(line);
    if (match !== undefined) {
      this.onBoundary(match);
      return;
    }
    this.bodyContent(line, 0, line.length);
    this.atLineStart = line[line.length - 1] === LF;
  }

  /**
   * Handles one line of a header block. A line longer than headerLineLimit() arrives as its
   * first headerLineLimit() bytes with complete false, and the caller skips the rest of it
   * unless the line turned out to start the body. Such a line is neither blank nor a delimiter.
   */
  private handleHeaderLine(line: Buffer, complete: boolean): void {
    if (complete && this.stack.length > 0 && line[0] === DASH) {
      const match = this.matchBoundary(line);
      if (match !== undefined) {
        // A part that has headers and no body.
        this.endHeaderBlock();
        this.onBoundary(match);
        return;
      }
    }
    if (complete && isBlankLine(line)) {
      this.endHeaderBlock();
      this.atLineStart = true;
      return;
    }
    const first = this.headerBlock.fieldCount === 0;
    if (!isHeaderLine(line, first)) {
      // Python's email package reads such a line as the first body line; so does this parser.
      this.anomalies.add('mime_header_missing_separator');
      this.endHeaderBlock();
      if (this.mode === Mode.Body) {
        this.bodyContent(line, 0, line.length);
        this.atLineStart = complete && line[line.length - 1] === LF;
      }
      return;
    }
    if (first || (line[0] !== 0x20 && line[0] !== 0x09)) {
      this.headerBlock.startField(line);
    } else {
      this.headerBlock.continueField(line);
    }
    if (!complete) {
      this.headerBlock.markFieldCut();
    }
  }

  // ---- body content and the line ending before a delimiter -------------------------------

  /**
   * Writes body bytes [start, end) to the current leaf, holding back a final line ending: the
   * line ending in front of a delimiter line belongs to the delimiter (RFC 2046 section 5.1.1).
   */
  private bodyContent(buf: Buffer, start: number, end: number): void {
    if (end <= start) {
      return;
    }
    if (this.leaf === undefined) {
      // Preamble, epilogue, or a part not analysed.
      this.pendingEol = PendingEol.None;
      return;
    }
    let from = start;
    if (this.pendingEol === PendingEol.Cr && buf[from] === LF) {
      from++;
      this.pendingEol = PendingEol.CrLf;
      if (from === end) {
        return;
      }
    }
    this.flushPendingEol();

    let to = end;
    if (buf[to - 1] === LF) {
      to--;
      this.pendingEol = PendingEol.Lf;
      if (to > from && buf[to - 1] === CR) {
        to--;
        this.pendingEol = PendingEol.CrLf;
      }
    } else if (buf[to - 1] === CR) {
      to--;
      this.pendingEol = PendingEol.Cr;
    }
    if (to > from) {
      this.leaf.write(buf.subarray(from, to));
    }
  }

  private flushPendingEol(): void {
    const pending = this.pendingEol;
    this.pendingEol = PendingEol.None;
    if (this.leaf === undefined || pending === PendingEol.None) {
      return;
    }
    if (pending === PendingEol.CrLf) {
      this.leaf.write(CRLF_BYTES);
    } else if (pending === PendingEol.Lf) {
      this.leaf.write(LF_BYTES);
    } else {
      this.leaf.write(CR_BYTES);
    }
  }

  private finishLeaf(): void {
    if (this.leaf !== undefined) {
      this.leaf.end();
      this.leaf = undefined;
    }
    this.pendingEol = PendingEol.None;
  }

  // ---- delimiters -------------------------------------------------------------------------

  /** Checks a line against the open boundaries, innermost first. */
  private matchBoundary(line: Buffer): BoundaryMatch | undefined {
    for (let index = this.stack.length - 1; index >= 0; index--) {
      const close = compareDelimiter(line, this.stack[index].boundary);
      if (close !== undefined) {
        return { index, close };
      }
    }
    return undefined;
  }

  private onBoundary(match: BoundaryMatch): void {
    if (this.mode === Mode.Ignore) {
      return;
    }
    // The line ending before the delimiter is not content, so it is dropped here.
    this.pendingEol = PendingEol.None;
    this.finishLeaf();
    if (match.index < this.stack.length - 1) {
      // An outer delimiter ends inner multiparts that were never closed.
      this.anomalies.add('mime_multipart_unclosed');
      this.stack.length = match.index + 1;
    }
    const parent = this.stack[match.index];
    if (match.close) {
      // What follows is the epilogue: not content of any part.
      this.stack.pop();
      this.mode = Mode.Body;
      this.atLineStart = true;
      return;
    }
    parent.children++;
    this.startHeaderBlock({
      path: `${parent.path}.${parent.children}`,
      depth: parent.depth + 1,
      parentSubtype: parent.subtype,
    });
  }

  // ---- header blocks and parts ------------------------------------------------------------

  private startHeaderBlock(node: PendingNode): void {
    this.node = node;
    this.headerBlock = this.newHeaderBlock(node.depth === 0);
    this.mode = Mode.Header;
    this.atLineStart = true;
  }

  private newHeaderBlock(root: boolean): HeaderBlock {
    const { maxHeaderBytes, maxHeaderFields } = this.limits;
    return new HeaderBlock({ maxFieldBytes: maxHeaderBytes, maxFields: maxHeaderFields }, root);
  }

  /** Parses the collected header fields, records the part and gets ready for its body. */
  private endHeaderBlock(): void {
    const block = this.headerBlock;
    const { lines: headers, partBlock } = block.finish();
    if (block.fieldTooLong) {
      this.anomalies.add('mime_header_too_long');
    }
    if (block.tooManyFields) {
      this.anomalies.add('mime_too_many_header_fields');
    }
    this.mode = Mode.Body;
    this.atLineStart = true;

    this.partCount++;
    if (this.partCount > this.limits.maxParts) {
      this.stopAnalysis('mime_too_many_parts');
      return;
    }

    // Only the Content-* fields go to MimeNode, which reads nothing else.
    const mimeNode = new mailsplit.MimeNode(false);
    mimeNode.addHeaderChunk(partBlock);
    mimeNode.parseHeaders();

    if (this.node.depth === 0) {
      this.messageHeaders = readMessageHeaders(headers, block.receivedCount);
    }

    const { part, boundary, multipart } = describePart(mimeNode, headers, this.node);
    this.parts.push(part);

    if (multipart !== undefined) {
      if (boundary === undefined) {
        // Without a boundary no delimiter can be found: the body is read as one leaf.
        this.anomalies.add('mime_multipart_without_boundary');
      } else if (this.node.depth >= this.limits.maxDepth) {
        this.anomalies.add('mime_too_deep');
        return;
      } else {
        this.stack.push({
          boundary,
          path: this.node.path,
          depth: this.node.depth,
          subtype: multipart,
          children: 0,
        });
        this.longestBoundary = Math.max(this.longestBoundary, boundary.length);
        return;
      }
    }

    const encoding = part.transferEncoding ?? '';
    if (!isKnownTransferEncoding(encoding)) {
      this.anomalies.add('mime_unknown_transfer_encoding');
    }
    this.pendingBodies++;
    this.leaf = new LeafBody(part, encoding, (error) => {
      if (error !== undefined) {
        this.anomalies.add('mime_decode_error');
      }
      this.pendingBodies--;
      this.resolveIfDone();
    });
  }

  // ---- held partial lines -----------------------------------------------------------------

  private maxCandidateLength(): number {
    // "--" boundary "--" padding CR LF, and a CR LF of slack.
    return this.longestBoundary + MAX_DELIMITER_PADDING + 8;
  }

  /**
   * Bytes of a header line held before it is handled in part: enough for a whole kept field
   * and for any delimiter line.
   */
  private headerLineLimit(): number {
    return Math.max(this.limits.maxHeaderBytes, this.maxCandidateLength());
  }

  private appendHeld(bytes: Buffer): void {
    const needed = this.heldLength + bytes.length;
    if (needed > this.held.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.held.length * 2, 256));
      this.held.copy(grown, 0, 0, this.heldLength);
      this.held = grown;
    }
    bytes.copy(this.held, this.heldLength);
    this.heldLength = needed;
  }

  /** Returns a copy of the held bytes and empties the holder. */
  private takeHeld(): Buffer {
    const line = Buffer.from(this.held.subarray(0, this.heldLength));
    this.heldLength = 0;
    return line;
  }

  // ---- end of input -----------------------------------------------------------------------

  private finishInput(complete: boolean): void {
    if (this.mode === Mode.Ignore) {
      return;
    }
    if (this.heldLength > 0) {
      // The last line had no line ending.
      const line = this.takeHeld();
      if (this.mode === Mode.Header) {
        this.handleHeaderLine(line, true);
      } else {
        this.handleCandidateLine(line);
      }
    }
    if (this.mode === Mode.Header && (this.size > 0 || this.node.depth > 0)) {
      this.endHeaderBlock();
    }
    // At the end of the message a held line ending is content: no delimiter follows it.
    this.flushPendingEol();
    this.finishLeaf();
    if (complete && this.stack.length > 0) {
      this.anomalies.add('mime_multipart_unclosed');
    }
  }

  /** Stops all further analysis after a limit or an internal error; the result still resolves. */
  private stopAnalysis(anomaly: string): void {
    this.anomalies.add(anomaly);
    this.mode = Mode.Ignore;
    this.heldLength = 0;
    this.headerBlock = this.newHeaderBlock(false);
    this.stack.length = 0;
    this.finishLeaf();
  }

  private resolveIfDone(): void {
    if (!this.ended || this.pendingBodies > 0) {
      return;
    }
    const found = this.messageHeaders;
    this.resolveResult({
      headers: found?.headers ?? { received: 0 },
      from: found?.from ?? [],
      to: found?.to ?? [],
      cc: found?.cc ?? [],
      size: this.size,
      parts: this.parts,
      attachments: this.parts.filter((part) => part.isAttachment),
      anomalies: [...this.anomalies],
    });
  }
}

function isBlankLine(line: Buffer): boolean {
  return (line.length === 1 && line[0] === LF) || (line.length === 2 && line[0] === CR && line[1] === LF);
}

/**
 * Tells whether a line can belong to a header block. It can if it is a continuation (leading SP
 * or HTAB, not on the first line) or a field name of printable ASCII followed by ":" (RFC 5322
 * section 2.2). Whitespace before the colon is obsolete syntax (section 4.5) and allowed.
 */
function isHeaderLine(line: Buffer, first: boolean): boolean {
  const c0 = line[0];
  if (c0 === 0x20 || c0 === 0x09) {
    return !first;
  }
  let i = 0;
  while (i < line.length && line[i] > 0x20 && line[i] < 0x7f && line[i] !== 0x3a) {
    i++;
  }
  if (i === 0) {
    return false;
  }
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) {
    i++;
  }
  return line[i] === 0x3a;
}

/**
 * Matches "--boundary" or "--boundary--", then optional SP/HTAB padding, then CR* LF or the
 * end of the input. Returns true for a closing delimiter, false for a delimiter, undefined for
 * any other line.
 */
function compareDelimiter(line: Buffer, boundary: Buffer): boolean | undefined {
  const length = line.length;
  if (length < boundary.length + 2 || line[0] !== DASH || line[1] !== DASH) {
    return undefined;
  }
  if (line.compare(boundary, 0, boundary.length, 2, 2 + boundary.length) !== 0) {
    return undefined;
  }
  let i = boundary.length + 2;
  let close = false;
  if (line[i] === DASH && line[i + 1] === DASH) {
    close = true;
    i += 2;
  }
  while (i < length && (line[i] === 0x20 || line[i] === 0x09)) {
    i++;
  }
  if (i === length) {
    // Only a closing delimiter may end the message without a line ending.
    return close ? true : undefined;
  }
  while (i < length && line[i] === CR) {
    i++;
  }
  if (i < length && line[i] === LF) {
    i++;
  }
  return i === length ? close : undefined;
}
