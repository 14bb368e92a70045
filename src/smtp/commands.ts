/** Command verbs the session handles by name; any other verb is an unknown command. */
const KNOWN_VERBS = new Set([
  'HELO', 'EHLO', 'LHLO', 'MAIL', 'RCPT', 'DATA', 'BDAT', 'RSET', 'NOOP', 'VRFY', 'EXPN',
  'HELP', 'QUIT', 'STARTTLS', 'AUTH', 'ETRN', 'TURN', 'ATRN', 'XCLIENT', 'XFORWARD', 'SEND',
  'SOML', 'SAML', 'VERB', 'ONEX', 'XEXCH50', 'X-EXPS', 'X-LINK2STATE',
]);

/** Maximum verb length looked up; a longer first word is an unknown command. */
const MAX_VERB_LENGTH = 16;
const SPACE = 0x20;

export interface CommandLine {
  /** Upper-case verb, or "" when the first word is not a known command. */
  verb: string;
  /** Offset in the line where the argument starts (after the verb and one space). */
  argStart: number;
}

/** Split a command line into its verb and the offset of its argument. */
export function parseCommandLine(line: Buffer): CommandLine {
  let end = line.indexOf(SPACE);
  if (end === -1) end = line.length;
  const argStart = end < line.length ? end + 1 : end;
  if (end === 0 || end > MAX_VERB_LENGTH) return { verb: '', argStart };
  const word = line.toString('latin1', 0, end).toUpperCase();
  return { verb: KNOWN_VERBS.has(word) ? word : '', argStart };
}

/**
 * True when a line starts with an upper-case known verb in a form a client sends. Used to
 * find the next command after a gap, where body text such as "Data follows" must not count.
 */
export function looksLikeCommand(line: Buffer): boolean {
  const { verb, argStart } = parseCommandLine(line);
  if (verb === '') return false;
  for (let i = 0; i < verb.length; i++) {
    const byte = line[i] as number;
    if (byte >= 0x61 && byte <= 0x7a) return false;
  }
  if (verb === 'MAIL' || verb === 'RCPT') {
    const keyword = verb === 'MAIL' ? 'FROM:' : 'TO:';
    return line.toString('latin1', argStart, argStart + keyword.length).toUpperCase() === keyword;
  }
  return true;
}

export interface PathArgument {
  /** Address without angle brackets; "" for the null path "<>". */
  address: string;
  /** ESMTP parameters, keyword upper-case, value "" for a keyword without value. */
  params: Record<string, string>;
}

/** Parameters kept per MAIL or RCPT command; more are dropped. */
const MAX_PARAMS = 32;

/**
 * Parse the argument of MAIL ("FROM:<a@b> SIZE=10") or RCPT ("TO:<a@b>"). Accepts spaces after
 * the colon, a missing colon, and an address without angle brackets, as servers do. A source
 * route ("<@relay:user@host>") is removed, because RFC 5321 section 3.3 says servers SHOULD
 * ignore source routes.
 * Returns undefined when the keyword is missing.
 */
export function parsePathArgument(arg: string, keyword: 'FROM' | 'TO'): PathArgument | undefined {
  let pos = skipSpaces(arg, 0);
  if (arg.substring(pos, pos + keyword.length).toUpperCase() !== keyword) return undefined;
  pos = skipSpaces(arg, pos + keyword.length);
  if (arg[pos] === ':') pos = skipSpaces(arg, pos + 1);

  let address: string;
  let rest: number;
  if (arg[pos] === '<') {
    const close = findClosingBracket(arg, pos + 1);
    address = arg.substring(pos + 1, close);
    rest = close < arg.length ? close + 1 : close;
    if (address.startsWith('@')) {
      const colon = address.indexOf(':');
      if (colon !== -1) address = address.substring(colon + 1);
    }
  } else {
    let end = arg.indexOf(' ', pos);
    if (end === -1) end = arg.length;
    address = arg.substring(pos, end);
    rest = end;
  }

  return { address, params: parseParams(arg, rest) };
}

function skipSpaces(text: string, pos: number): number {
  while (pos < text.length && (text[pos] === ' ' || text[pos] === '\t')) pos++;
  return pos;
}

/** Index of the ">" that closes a path, skipping quoted strings; text.length when missing. */
function findClosingBracket(text: string, pos: number): number {
  let quoted = false;
  for (let i = pos; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '"') quoted = !quoted;
    else if (ch === '>' && !quoted) return i;
  }
  return text.length;
}

function parseParams(text: string, pos: number): Record<string, string> {
  const params: Record<string, string> = {};
  let count = 0;
  for (const word of text.substring(pos).split(' ')) {
    if (word === '') continue;
    if (++count > MAX_PARAMS) break;
    const eq = word.indexOf('=');
    // Upper-casing the keyword also keeps "__proto__" from reaching the object prototype.
    const key = (eq === -1 ? word : word.substring(0, eq)).toUpperCase();
    params[key] = eq === -1 ? '' : word.substring(eq + 1);
  }
  return params;
}

export type BdatArgument =
  | { ok: true; size: number; last: boolean }
  | { ok: false; anomaly: 'smtp_invalid_bdat_command' | 'smtp_huge_bdat_chunk'; detail: string };

/** More digits than this cannot be a chunk size at all (2^64 has 20 digits). */
const MAX_BDAT_DIGITS = 20;

/**
 * Parse the argument of BDAT (RFC 3030): "<size>" or "<size> LAST". A size with a sign, other
 * characters, or trailing words is invalid, as is a size beyond 2^53 - 1, which no JavaScript
 * number counts exactly: the server rejects those and reads no chunk, so neither do we.
 */
export function parseBdatArgument(arg: string): BdatArgument {
  const words = arg.split(' ').filter((word) => word !== '');
  const sizeText = words[0] ?? '';
  if (!/^[0-9]+$/.test(sizeText)) {
    return { ok: false, anomaly: 'smtp_invalid_bdat_command', detail: 'BDAT not followed by a valid chunk size' };
  }
  if (sizeText.length > MAX_BDAT_DIGITS) {
    return { ok: false, anomaly: 'smtp_invalid_bdat_command', detail: 'BDAT chunk size of ' + sizeText.length + ' digits' };
  }
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) {
    return { ok: false, anomaly: 'smtp_huge_bdat_chunk', detail: sizeText };
  }
  if (words.length > 2 || (words.length === 2 && (words[1] as string).toUpperCase() !== 'LAST')) {
    return { ok: false, anomaly: 'smtp_invalid_bdat_command', detail: 'BDAT followed by words other than LAST' };
  }
  return { ok: true, size, last: words.length === 2 };
}
