/**
 * Text from the wire made safe for a terminal: C0 and C1 control characters, DEL and the
 * Unicode bidirectional overrides become visible escapes ("\x1b", "\u202e"), so an EHLO name or
 * subject can never move the cursor, change colours or reorder what an admin reads.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code === 0x0a) return '\\n';
  if (code === 0x0d) return '\\r';
  if (code === 0x09) return '\\t';
  if (code <= 0xff) return '\\x' + code.toString(16).padStart(2, '0');
  return '\\u' + code.toString(16).padStart(4, '0');
}

/** Returns text with every control character shown as an escape, cut to maxLength with an ellipsis. */
export function sanitizeForTerminal(text: string, maxLength = Infinity): string {
  const safe = text.replace(UNSAFE, escapeChar);
  if (safe.length <= maxLength) return safe;
  return safe.slice(0, Math.max(0, maxLength - 1)) + '\u2026';
}

/**
 * Characters that JSON.stringify leaves as they are but a terminal acts on: DEL, the C1 controls
 * (0x9b starts a control sequence on some terminals), the line and paragraph separators and the
 * bidirectional controls. They can only occur inside JSON strings, so escaping them keeps the
 * document valid and JSON.parse returns the same value.
 */
const JSON_UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** JSON_UNSAFE without the global flag, for test(), which then keeps no lastIndex state. */
const HAS_JSON_UNSAFE = new RegExp(JSON_UNSAFE.source);

/** Returns JSON text with the characters above written as \u escapes; C0 controls are already escaped. */
export function escapeJsonForTerminal(json: string): string {
  // Almost no text has such a character. test() scans without building anything, whereas
  // replace() with a callback copies the whole text even when nothing matches.
  if (!HAS_JSON_UNSAFE.test(json)) return json;
  return json.replace(JSON_UNSAFE, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
}

const NEWLINE = 0x0a;

/**
 * Returns the UTF-8 bytes of escapeJsonForTerminal(lines.join('\n') + '\n'), for writing.
 * - Each line is encoded straight into the result, which saves the joined text: a copy of all
 *   lines, in two bytes per character as soon as one line needs them.
 * - The bytes are searched with Buffer.indexOf (memchr), which is faster than the regular
 *   expression on the text, and the lines are escaped only when they contain a character of
 *   JSON_UNSAFE.
 */
export function encodeJsonLinesForTerminal(lines: readonly string[]): Buffer {
  let length = lines.length;
  for (const line of lines) length += Buffer.byteLength(line, 'utf8');
  const bytes = Buffer.allocUnsafe(length);
  let at = 0;
  for (const line of lines) {
    at += bytes.write(line, at, 'utf8');
    bytes[at++] = NEWLINE;
  }
  if (!hasJsonUnsafeBytes(bytes)) return bytes;
  return Buffer.from(lines.map(escapeJsonForTerminal).join('\n') + '\n', 'utf8');
}

/**
 * Tells whether UTF-8 bytes encode a character of JSON_UNSAFE. DEL is 7F, U+0080-U+009F are
 * C2 80-9F, and the others lie in U+2000-U+207F, which is E2 80 xx and E2 81 xx. In UTF-8, C2
 * and E2 only start a character, so the check is exact.
 */
function hasJsonUnsafeBytes(bytes: Buffer): boolean {
  if (bytes.indexOf(0x7f) !== -1) return true;
  for (let at = bytes.indexOf(0xc2); at !== -1; at = bytes.indexOf(0xc2, at + 1)) {
    const next = bytes[at + 1] as number;
    if (next >= 0x80 && next <= 0x9f) return true;
  }
  for (let at = bytes.indexOf(0xe2); at !== -1; at = bytes.indexOf(0xe2, at + 1)) {
    const second = bytes[at + 1];
    const third = bytes[at + 2] as number;
    if (second === 0x80 && (third === 0x8e || third === 0x8f || (third >= 0xa8 && third <= 0xae))) return true;
    if (second === 0x81 && third >= 0xa6 && third <= 0xa9) return true;
  }
  return false;
}
