/**
 * SASL handling for SMTP AUTH (RFC 4954): which client response carries the user name, how to
 * read it per mechanism, and how many responses a client sends when the server side of the
 * capture is missing. Credentials other than the user name are never decoded into strings,
 * and callers overwrite the decoded bytes right after use.
 */

/** Client responses each mechanism needs, for captures without the server's challenges. */
const RESPONSE_COUNTS: Record<string, number> = {
  PLAIN: 1,
  LOGIN: 2,
  'CRAM-MD5': 1,
  XOAUTH2: 1,
  OAUTHBEARER: 1,
  EXTERNAL: 1,
  ANONYMOUS: 1,
  'DIGEST-MD5': 2,
  NTLM: 2,
};

/** Responses at most for mechanisms without a known count (GSSAPI and others). */
export const MAX_UNKNOWN_SASL_RESPONSES = 8;

/** Return the number of client responses the mechanism needs, undefined when it varies. */
export function saslResponseCount(mechanism: string): number | undefined {
  if (mechanism.startsWith('SCRAM-')) return 2;
  return RESPONSE_COUNTS[mechanism];
}

/** True when the mechanism's first client response names the user and this module reads it. */
export function firstResponseHasUser(mechanism: string): boolean {
  return (
    mechanism === 'PLAIN' ||
    mechanism === 'LOGIN' ||
    mechanism === 'CRAM-MD5' ||
    mechanism === 'XOAUTH2' ||
    mechanism === 'OAUTHBEARER' ||
    mechanism === 'DIGEST-MD5' ||
    mechanism.startsWith('SCRAM-')
  );
}

/** The value that a 334 challenge of AUTH LOGIN requests. */
export type LoginPrompt = 'user' | 'password' | 'other';

/**
 * Classify the text of a 334 reply during AUTH LOGIN. Servers send base64 "Username:" (some
 * "User Name") and "Password:", usually in that order but not always. Letters are compared
 * without case, spaces and punctuation. Anything else is 'other'.
 */
export function loginPrompt(text: string): LoginPrompt {
  const encoded = Buffer.from(text.trim(), 'latin1');
  if (encoded.length === 0 || encoded.length > 64 || !isBase64Line(encoded)) return 'other';
  const decoded = decodeBase64(encoded);
  if (decoded === undefined) return 'other';
  const letters = decoded.toString('latin1').toLowerCase().replace(/[^a-z]/g, '');
  if (letters === 'username') return 'user';
  if (letters === 'password') return 'password';
  return 'other';
}

const BASE64_VALUES = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  BASE64_VALUES['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
}
const EQUALS = 0x3d;

/** True when every byte of the line is a base64 character or padding. */
export function isBase64Line(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const byte = line[i] as number;
    if (BASE64_VALUES[byte] === -1 && byte !== EQUALS) return false;
  }
  return true;
}

/**
 * Decode base64 bytes straight into a new Buffer, without an intermediate string, so the
 * caller can overwrite the result. Padding is optional. Returns undefined for invalid input.
 */
export function decodeBase64(line: Buffer): Buffer | undefined {
  let end = line.length;
  while (end > 0 && line[end - 1] === EQUALS) end--;
  if (line.length - end > 2 || end % 4 === 1) return undefined;
  const out = Buffer.alloc(Math.floor((end * 3) / 4));
  let bits = 0;
  let bitCount = 0;
  let written = 0;
  for (let i = 0; i < end; i++) {
    const value = BASE64_VALUES[line[i] as number] as number;
    if (value === -1) {
      out.fill(0);
      return undefined;
    }
    bits = ((bits << 6) | value) & 0xffffff;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      out[written++] = (bits >> bitCount) & 0xff;
    }
  }
  return out;
}

/**
 * Return the user name from the decoded first client response of a mechanism, or undefined.
 * PLAIN: authzid NUL authcid NUL password gives authcid. LOGIN: the whole response.
 * CRAM-MD5: the part before the last space. XOAUTH2: "user=" up to 0x01. OAUTHBEARER and
 * SCRAM: the "a=" and "n=" attributes. DIGEST-MD5: username="...".
 */
export function extractUser(mechanism: string, response: Buffer): string | undefined {
  switch (mechanism) {
    case 'PLAIN': {
      const first = response.indexOf(0);
      const second = first === -1 ? -1 : response.indexOf(0, first + 1);
      if (second === -1) return undefined;
      return response.toString('utf8', first + 1, second);
    }
    case 'LOGIN':
      return response.toString('utf8');
    case 'CRAM-MD5': {
      const space = response.lastIndexOf(0x20);
      return space === -1 ? undefined : response.toString('utf8', 0, space);
    }
    case 'XOAUTH2': {
      const prefix = Buffer.from('user=');
      if (!response.subarray(0, prefix.length).equals(prefix)) return undefined;
      let end = response.indexOf(1, prefix.length);
      if (end === -1) end = response.length;
      return response.toString('utf8', prefix.length, end);
    }
    case 'OAUTHBEARER':
      return gs2Attribute(response, 'a');
    case 'DIGEST-MD5': {
      const match = /(?:^|,)\s*username="((?:[^"\\]|\\.)*)"/.exec(response.toString('utf8'));
      return match?.[1]?.replace(/\\(.)/g, '$1');
    }
    default:
      if (mechanism.startsWith('SCRAM-')) return gs2Attribute(response, 'n', true);
      return undefined;
  }
}

/**
 * Read an attribute from a GS2 header (RFC 5801) or a SCRAM client-first message (RFC 5802),
 * decoding "=2C" and "=3D". With afterHeader, the attribute is searched after the two
 * header fields ("n,," or "n,a=authzid,").
 */
function gs2Attribute(response: Buffer, name: string, afterHeader = false): string | undefined {
  // The bearer token of OAUTHBEARER follows the first 0x01: it is never decoded.
  let end = response.indexOf(1);
  if (end === -1) end = response.length;
  const fields = response.toString('utf8', 0, Math.min(end, 1024)).split(',');
  const start = afterHeader ? 2 : 1;
  for (let i = start; i < fields.length; i++) {
    const field = fields[i] as string;
    if (field.startsWith(name + '=')) {
      return field.substring(name.length + 1).replace(/=2C/gi, ',').replace(/=3D/gi, '=');
    }
  }
  return undefined;
}
