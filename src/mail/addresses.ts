import type { MailAddress } from './types.js';
import { decodeEncodedWords } from './encoded-words.js';

// NOTE: no address-list library is installed; nodemailer's addressparser would be the usual
// choice. This small parser covers the RFC 5322 section 3.4 forms: name-addr, addr-spec,
// groups, quoted strings and comments, plus the malformed "Name addr@x" without angle
// brackets. It does not throw and returns what it could read.

type TokenKind = 'text' | 'quoted' | 'comment' | 'angle';

interface Token {
  kind: TokenKind;
  value: string;
}

/**
 * Parses an address-list header value (unfolded, Unicode, not yet RFC 2047 decoded). Group
 * names are dropped and group members are returned in order; display names are decoded.
 */
export function parseAddressList(value: string): MailAddress[] {
  const result: MailAddress[] = [];
  for (const segment of tokenize(value)) {
    const address = toAddress(segment);
    if (address !== undefined) {
      result.push(address);
    }
  }
  return result;
}

/** Splits the value into one token list per mailbox: at ",", at ";" and after a group's ":". */
function tokenize(value: string): Token[][] {
  const segments: Token[][] = [];
  let tokens: Token[] = [];
  let text = '';
  let i = 0;

  const flushText = (): void => {
    if (text !== '') {
      tokens.push({ kind: 'text', value: text });
      text = '';
    }
  };
  const endSegment = (): void => {
    flushText();
    if (tokens.length > 0) {
      segments.push(tokens);
    }
    tokens = [];
  };

  while (i < value.length) {
    const ch = value[i];
    if (ch === '"') {
      flushText();
      const [quoted, next] = readQuoted(value, i + 1);
      tokens.push({ kind: 'quoted', value: quoted });
      i = next;
    } else if (ch === '(') {
      // A comment does not end the text around it: "pete(his account)@silly.test" is one word.
      const [comment, next] = readComment(value, i + 1);
      tokens.push({ kind: 'comment', value: comment });
      i = next;
    } else if (ch === '<') {
      flushText();
      const [angle, next] = readAngle(value, i + 1);
      tokens.push({ kind: 'angle', value: angle });
      i = next;
    } else if (ch === ',' || ch === ';') {
      endSegment();
      i++;
    } else if (ch === ':' && !tokens.some((token) => token.kind === 'angle')) {
      // Group syntax "name: member, member;": the text so far is the group name.
      text = '';
      tokens = [];
      i++;
    } else if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      flushText();
      i++;
    } else {
      text += ch;
      i++;
    }
  }
  endSegment();
  return segments;
}

function readQuoted(value: string, start: number): [string, number] {
  let out = '';
  let i = start;
  while (i < value.length && value[i] !== '"') {
    if (value[i] === '\\' && i + 1 < value.length) {
      i++;
    }
    out += value[i];
    i++;
  }
  return [out, i + 1];
}

function readComment(value: string, start: number): [string, number] {
  let out = '';
  let depth = 1;
  let i = start;
  while (i < value.length) {
    const ch = value[i];
    if (ch === '\\' && i + 1 < value.length) {
      out += value[i + 1];
      i += 2;
      continue;
    }
    if (ch === '(') {
      depth++;
    } else if (ch === ')') {
      depth--;
      if (depth === 0) {
        return [out.trim(), i + 1];
      }
    }
    out += ch;
    i++;
  }
  return [out.trim(), i];
}

/** Reads an angle-addr up to ">", dropping comments and whitespace and any obsolete route. */
function readAngle(value: string, start: number): [string, number] {
  let out = '';
  let i = start;
  while (i < value.length && value[i] !== '>') {
    const ch = value[i];
    if (ch === '(') {
      i = readComment(value, i + 1)[1];
      continue;
    }
    if (ch === '"') {
      // A quoted local part keeps its quotes: they are part of the address.
      const [quoted, next] = readQuoted(value, i + 1);
      out += '"' + quoted + '"';
      i = next;
      continue;
    }
    if (ch !== ' ' && ch !== '\t' && ch !== '\r' && ch !== '\n') {
      out += ch;
    }
    i++;
  }
  // obs-route (RFC 5322 section 4.4): "<@relay1,@relay2:user@host>".
  const routeEnd = out.startsWith('@') ? out.lastIndexOf(':') : -1;
  return [routeEnd >= 0 ? out.slice(routeEnd + 1) : out, i + 1];
}

function toAddress(tokens: Token[]): MailAddress | undefined {
  const words = tokens.filter((token) => token.kind === 'text' || token.kind === 'quoted');
  const comments = tokens.filter((token) => token.kind === 'comment').map((token) => token.value);
  const angle = tokens.find((token) => token.kind === 'angle');

  let address: string;
  let name: string;
  if (angle !== undefined) {
    address = angle.value;
    name = words.map((token) => token.value).join(' ');
  } else {
    // Without angle brackets the last word with an "@" is the address, the rest a name:
    // "jdoe@example.org", or the malformed "John Doe jdoe@example.org".
    let index = -1;
    for (let k = words.length - 1; k >= 0; k--) {
      if (words[k].kind === 'text' && words[k].value.includes('@')) {
        index = k;
        break;
      }
    }
    if (index < 0 && words.length === 1 && words[0].kind === 'text') {
      index = 0;
    }
    address = index < 0 ? '' : words[index].value;
    name = words
      .filter((_, k) => k !== index)
      .map((token) => token.value)
      .join(' ');
  }

  if (address === '' && words.length === 0) {
    // Only a comment, such as the one after a group's ";".
    return undefined;
  }
  if (name === '' && comments.length > 0) {
    // The old "addr@host (Full Name)" form.
    name = comments.join(' ');
  }
  name = decodeEncodedWords(name).trim();

  if (address === '' && name === '') {
    return undefined;
  }
  return name === '' ? { address } : { name, address };
}
