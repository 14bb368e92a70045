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
const JSON_UNSAFE_ONE = new RegExp(JSON_UNSAFE.source);

/** Returns JSON text with the characters above written as \u escapes; C0 controls are already escaped. */
export function escapeJsonForTerminal(json: string): string {
  // Almost no text has such a character. test() scans without building anything, whereas
  // replace() with a callback copies the whole text even when nothing matches (the output of
  // read is escaped in chunks of 64 KiB, so that copy was about 150 MB on the benchmark capture).
  if (!JSON_UNSAFE_ONE.test(json)) return json;
  return json.replace(JSON_UNSAFE, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
}
