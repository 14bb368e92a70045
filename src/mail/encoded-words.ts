import libmime from 'libmime';

/**
 * Decodes RFC 2047 encoded words with libmime. Whitespace between two adjacent encoded words
 * is dropped (RFC 2047 section 6.2), other whitespace is kept. An encoded word libmime cannot
 * decode stays as it was.
 */
export function decodeEncodedWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}
