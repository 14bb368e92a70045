import type { SmtpReply } from './types.js';

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const SPACE = 0x20;
const HYPHEN = 0x2d;

/** Lines kept per multi-line reply; further lines are counted only. */
export const MAX_REPLY_LINES = 128;
/** Text bytes kept per reply across its lines. */
export const MAX_REPLY_TEXT = 16384;

export interface ReplyLine {
  code: number;
  /** True for "ddd-text": more lines of the same reply follow. */
  continued: boolean;
  /** Offset in the line where the text starts. */
  textStart: number;
}

/**
 * Parse a reply line: three digits, then a space, a hyphen or the end of the line
 * (RFC 5321 section 4.2). Returns undefined for anything else. The first digit must be 1-5.
 */
export function parseReplyLine(line: Buffer): ReplyLine | undefined {
  if (line.length < 3) return undefined;
  const d0 = line[0] as number;
  const d1 = line[1] as number;
  const d2 = line[2] as number;
  if (d0 < 0x31 || d0 > 0x35) return undefined;
  if (d1 < DIGIT_0 || d1 > DIGIT_9 || d2 < DIGIT_0 || d2 > DIGIT_9) return undefined;
  const code = (d0 - DIGIT_0) * 100 + (d1 - DIGIT_0) * 10 + (d2 - DIGIT_0);
  if (line.length === 3) return { code, continued: false, textStart: 3 };
  const separator = line[3];
  if (separator === SPACE) return { code, continued: false, textStart: 4 };
  if (separator === HYPHEN) return { code, continued: true, textStart: 4 };
  return undefined;
}

/** A complete reply plus its separate lines, which EHLO needs for the extension list. */
export interface AssembledReply {
  reply: SmtpReply;
  lines: string[];
}

/**
 * Collects the lines of one reply until the last line ("ddd text" after "ddd-text" lines).
 * Memory is bounded by MAX_REPLY_LINES and MAX_REPLY_TEXT.
 */
export class ReplyAssembler {
  private code = 0;
  private lines: string[] = [];
  private textBytes = 0;
  /** A continuation line carried another code than the first line of the reply. */
  codeMismatch = false;
  /** Lines or text past the bounds were dropped from the current reply. */
  cut = false;

  get inProgress(): boolean {
    return this.lines.length > 0;
  }

  /** Add a parsed line; returns the reply when this line completes it. */
  add(line: Buffer, parsed: ReplyLine, ts: number): AssembledReply | undefined {
    if (this.lines.length === 0) {
      this.code = parsed.code;
      this.codeMismatch = false;
      this.cut = false;
      this.textBytes = 0;
    } else if (parsed.code !== this.code) {
      this.codeMismatch = true;
    }

    const room = MAX_REPLY_TEXT - this.textBytes;
    if (this.lines.length < MAX_REPLY_LINES && room > 0) {
      const end = Math.min(line.length, parsed.textStart + room);
      this.lines.push(line.toString('utf8', parsed.textStart, end));
      this.textBytes += end - parsed.textStart;
      if (end < line.length) this.cut = true;
    } else {
      this.cut = true;
    }

    if (parsed.continued) return undefined;
    const lines = this.lines;
    this.lines = [];
    const text = lines.join('\n');
    const reply: SmtpReply = { code: this.code, text, ts };
    const enhanced = parseEnhancedCode(text, this.code);
    if (enhanced !== undefined) reply.enhanced = enhanced;
    return { reply, lines };
  }

  /** Drop a reply in progress, as after a gap. */
  reset(): void {
    this.lines = [];
  }
}

const DOT = 0x2e;

/**
 * Return the RFC 3463 enhanced status code at the start of the reply text, when its class
 * digit matches the class of the reply code. A text such as "2.5 hours" is no status code.
 * The form /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/ is checked by character codes, because
 * every reply goes through here. The code returned is the matched text.
 */
export function parseEnhancedCode(text: string, code: number): string | undefined {
  const classDigit = text.charCodeAt(0) - DIGIT_0;
  if (classDigit !== 2 && classDigit !== 4 && classDigit !== 5) return undefined;
  if (classDigit !== Math.floor(code / 100)) return undefined;
  if (text.charCodeAt(1) !== DOT) return undefined;
  const subjectEnd = digitsEnd(text, 2);
  if (subjectEnd === -1 || text.charCodeAt(subjectEnd) !== DOT) return undefined;
  const detailEnd = digitsEnd(text, subjectEnd + 1);
  if (detailEnd === -1) return undefined;
  if (detailEnd < text.length && text.charCodeAt(detailEnd) !== SPACE) return undefined;
  return text.slice(0, detailEnd);
}

/** Returns the end of the 1 to 3 ASCII digits at `start`, or -1 for no digit or more than 3. */
function digitsEnd(text: string, start: number): number {
  let end = start;
  while (end < text.length && end - start <= 3 && isDigit(text.charCodeAt(end))) end++;
  const count = end - start;
  return count >= 1 && count <= 3 ? end : -1;
}

function isDigit(charCode: number): boolean {
  return charCode >= DIGIT_0 && charCode <= DIGIT_9;
}

/**
 * Patterns of queue ids in the reply to the end of data, most specific first. Each one is a
 * format a widely deployed server writes; anything else gives no queue id.
 */
const QUEUE_ID_PATTERNS: readonly RegExp[] = [
  // Postfix: "250 2.0.0 Ok: queued as 4Q3xyz1ABC"
  /\bqueued as ([0-9A-Za-z]{5,})\b/i,
  // Exim: "250 OK id=1Mugho-0003Dg-Un"
  /\bid=([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\b/,
  // Sendmail: "250 2.0.0 x9AFN7Jk012345 Message accepted for delivery"
  /^(?:\d\.\d{1,3}\.\d{1,3} +)?([0-9A-Za-z]{8,20}) +Message accepted for delivery/i,
  // Gmail: "250 2.0.0 OK  1617282828 a1si12345678abc.12 - gsmtp"
  /^(?:\d\.\d{1,3}\.\d{1,3} +)?OK +\d+ +([0-9A-Za-z.]{6,40}) +- gsmtp$/,
  // Microsoft Exchange: "... [InternalId=12345678901234, Hostname=...] Queued mail for delivery"
  /\[InternalId=(\d+)[,\]]/,
  // Generic "queue id X" and "queue-id: X".
  /\bqueue[ -]id:? +([0-9A-Za-z]{5,40})\b/i,
];

/** Return the queue id that a 2xx end-of-data reply names, or undefined. */
export function parseQueueId(reply: SmtpReply): string | undefined {
  if (reply.code < 200 || reply.code > 299) return undefined;
  for (const pattern of QUEUE_ID_PATTERNS) {
    const match = pattern.exec(reply.text);
    if (match !== null) return match[1];
  }
  return undefined;
}
