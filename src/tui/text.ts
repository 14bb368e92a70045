import { sanitizeForTerminal } from '../events/sanitize.js';

/**
 * Text preparation for the dashboard. Every string that came from the wire (EHLO names,
 * addresses, subjects, file names, alert messages that quote them) goes through safeText before
 * it reaches blessed, because blessed passes escape bytes through to the terminal and interprets
 * `{tags}` in content.
 */

/** Unicode line and paragraph separators, which sanitizeForTerminal leaves in place. */
const SEPARATORS = /[\u2028\u2029]/g;

/** Returns the number of terminal columns a code point takes: 0, 1 or 2. */
export function codePointWidth(code: number): number {
  if (code < 0x300) return code < 0x20 || (code >= 0x7f && code < 0xa0) ? 0 : 1;
  // Combining marks, zero-width spaces and joiners, variation selectors.
  if (
    (code >= 0x300 && code <= 0x36f) ||
    (code >= 0x200b && code <= 0x200f) ||
    (code >= 0xfe00 && code <= 0xfe0f) ||
    (code >= 0x20d0 && code <= 0x20ff)
  ) {
    return 0;
  }
  // East Asian Wide and Fullwidth blocks and the emoji blocks.
  if (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf && code !== 0x303f) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1f64f) ||
    (code >= 0x1f900 && code <= 0x1f9ff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Returns the number of terminal columns text takes. */
export function displayWidth(text: string): number {
  let width = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i)!;
    if (code > 0xffff) i++;
    width += codePointWidth(code);
  }
  return width;
}

/** Returns text cut to at most width columns, ending in "…" when it was cut. */
export function truncateToWidth(text: string, width: number): string {
  if (width <= 0) return '';
  // Fast path: ASCII text whose length already fits.
  if (text.length <= width && /^[\x20-\x7e]*$/.test(text)) return text;
  if (displayWidth(text) <= width) return text;
  let used = 0;
  let end = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i)!;
    const step = code > 0xffff ? 2 : 1;
    const w = codePointWidth(code);
    if (used + w > width - 1) break;
    used += w;
    i += step - 1;
    end = i + 1;
  }
  return text.slice(0, end) + '\u2026';
}

/** Returns text padded with spaces (or cut) to exactly width columns. */
export function fitToWidth(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const cut = truncateToWidth(text, width);
  const pad = width - displayWidth(cut);
  if (pad <= 0) return cut;
  return align === 'left' ? cut + ' '.repeat(pad) : ' '.repeat(pad) + cut;
}

/** Returns text with blessed's tag braces written as the {open} and {close} tags. */
export function escapeTags(text: string): string {
  if (text.indexOf('{') < 0 && text.indexOf('}') < 0) return text;
  return text.replace(/[{}]/g, (ch) => (ch === '{' ? '{open}' : '{close}'));
}

/**
 * Returns untrusted text ready for a blessed element with tags on. Control characters, DEL, C1
 * controls, bidirectional overrides and U+2028/U+2029 are shown as visible escapes ("\x1b",
 * "\u2028"). The text is then cut to width columns with an ellipsis and padded to width when pad
 * is set. Tag braces are escaped last, so the cut never splits a tag.
 */
export function safeText(value: unknown, width = Infinity, pad = false): string {
  let text = value === undefined || value === null ? '' : String(value);
  text = sanitizeForTerminal(text).replace(SEPARATORS, (ch) => '\\u' + ch.charCodeAt(0).toString(16));
  if (width !== Infinity) text = pad ? fitToWidth(text, width) : truncateToWidth(text, width);
  return escapeTags(text);
}
