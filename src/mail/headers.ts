import { decode as decodeCharset } from 'libmime/lib/charset.js';
import type { MailAddress, MessageInfo } from './types.js';
import { parseAddressList } from './addresses.js';
import { decodeEncodedWords } from './encoded-words.js';

/** One raw header field as mailsplit's Headers.getList() lists it: lower-case key and line. */
export interface RawHeaderLine {
  key: string;
  /** The whole field, name included, folding line breaks kept, one char per byte (latin1). */
  line: string;
}

export interface MessageHeaders {
  headers: MessageInfo['headers'];
  from: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// Any char from U+0080 to U+00FF in a latin1 string is a raw 8-bit byte of the header.
const HIGH_BYTE = /[\x80-\xff]/;

/**
 * Converts header text read one char per byte into Unicode. Raw 8-bit bytes are read as UTF-8
 * (RFC 6532) when they form valid UTF-8, else as windows-1252, the superset of latin1 that
 * Arkime also assumes. Pure ASCII is returned unchanged.
 */
export function decodeRawHeaderText(latin1: string): string {
  if (!HIGH_BYTE.test(latin1)) {
    return latin1;
  }
  const bytes = Buffer.from(latin1, 'latin1');
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    // libmime's iconv-lite tables: Node 20's TextDecoder reads windows-1252 as latin1.
    return decodeCharset(bytes, 'windows-1252');
  }
}

/** Removes folding (RFC 5322 section 2.2.3): a line break followed by whitespace. */
export function unfoldHeaderValue(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '').replace(/[\r\n]/g, '');
}

/** Returns the value part of a raw header line: Unicode, unfolded and trimmed, not yet 2047-decoded. */
export function rawHeaderValue(line: string): string {
  const colon = line.indexOf(':');
  const value = colon < 0 ? '' : line.slice(colon + 1);
  return unfoldHeaderValue(decodeRawHeaderText(value)).trim();
}

/** Returns an unstructured header value (Subject, X-Mailer) decoded for display. */
export function decodeHeaderValue(line: string): string {
  return decodeEncodedWords(rawHeaderValue(line));
}

/**
 * Extracts the message-level fields from the root header block. Single-instance fields take
 * their first occurrence. Repeated From, To and Cc fields are joined with ", " so that no
 * address is lost when a sender repeats a field. Received fields are counted, unless the
 * caller counted them already and passes receivedCount.
 */
export function readMessageHeaders(
  lines: readonly RawHeaderLine[],
  receivedCount?: number,
): MessageHeaders {
  const first = new Map<string, string>();
  const repeated: Record<'from' | 'to' | 'cc', string[]> = { from: [], to: [], cc: [] };
  let received = receivedCount ?? 0;

  for (const { key, line } of lines) {
    if (key === 'received') {
      if (receivedCount === undefined) {
        received++;
      }
      continue;
    }
    if (key === 'from' || key === 'to' || key === 'cc') {
      repeated[key].push(rawHeaderValue(line));
    }
    if (!first.has(key)) {
      first.set(key, line);
    }
  }

  const decoded = (key: string): string | undefined => {
    const line = first.get(key);
    return line === undefined ? undefined : decodeHeaderValue(line);
  };
  // Identifiers and dates carry no encoded words, so they are reported as sent.
  const asGiven = (key: string): string | undefined => {
    const line = first.get(key);
    return line === undefined ? undefined : rawHeaderValue(line);
  };
  const addressField = (values: string[]): string | undefined =>
    values.length === 0 ? undefined : decodeEncodedWords(values.join(', '));

  const headers: MessageInfo['headers'] = { received };
  setIfDefined(headers, 'from', addressField(repeated.from));
  setIfDefined(headers, 'to', addressField(repeated.to));
  setIfDefined(headers, 'cc', addressField(repeated.cc));
  setIfDefined(headers, 'replyTo', decoded('reply-to'));
  setIfDefined(headers, 'subject', decoded('subject'));
  setIfDefined(headers, 'date', asGiven('date'));
  setIfDefined(headers, 'messageId', asGiven('message-id'));
  setIfDefined(headers, 'inReplyTo', asGiven('in-reply-to'));
  setIfDefined(headers, 'userAgent', decoded('x-mailer') ?? decoded('user-agent'));

  return {
    headers,
    from: repeated.from.flatMap(parseAddressList),
    to: repeated.to.flatMap(parseAddressList),
    cc: repeated.cc.flatMap(parseAddressList),
  };
}

// Keeps absent headers absent rather than present with the value undefined.
function setIfDefined<K extends keyof MessageInfo['headers']>(
  target: MessageInfo['headers'],
  key: K,
  value: MessageInfo['headers'][K] | undefined,
): void {
  if (value !== undefined) {
    target[key] = value;
  }
}
