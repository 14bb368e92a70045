import type mailsplit from '@zone-eu/mailsplit';
import libmime from 'libmime';
import type { RawHeaderLine } from './headers.js';
import { decodeRawHeaderText, rawHeaderValue } from './headers.js';
import type { MimePart } from './types.js';

type MimeNode = InstanceType<typeof mailsplit.MimeNode>;

/**
 * Maximum file name length kept, in UTF-16 code units. Longer names are cut. Suricata cuts at
 * 255, but RFC 2231 continuations put no limit on a name, and a name cut short no longer
 * matches the one the recipient sees.
 */
export const MAX_FILENAME_LENGTH = 1024;

export interface PartDescription {
  part: MimePart;
  /** Boundary of a multipart node, when it declares a usable one. */
  boundary?: Buffer;
  /** Subtype ("mixed", "alternative", ...) when the part is a multipart. */
  multipart?: string;
}

/**
 * Builds the MimePart record of a node from the header fields mailsplit's MimeNode parsed
 * (Content-Type, Content-Disposition with RFC 2231 and RFC 2047 decoding, transfer encoding).
 */
export function describePart(
  node: MimeNode,
  headers: readonly RawHeaderLine[],
  position: { path: string; parentSubtype: string | undefined },
): PartDescription {
  let contentType = node.contentType || 'text/plain';
  if (position.parentSubtype === 'digest' && !headers.some((h) => h.key === 'content-type')) {
    // RFC 2046 section 5.1.5: the default type of a multipart/digest member.
    contentType = 'message/rfc822';
  }

  const part: MimePart = {
    path: position.path,
    contentType,
    size: 0,
    isAttachment: false,
  };
  if (node.charset) {
    part.charset = node.charset.trim().toLowerCase();
  }
  const disposition = normalizeDisposition(node.disposition);
  if (disposition !== undefined) {
    part.disposition = disposition;
  }
  const filename = readFilename(node, headers);
  if (filename !== undefined) {
    part.filename = filename;
  }
  if (node.encoding) {
    part.transferEncoding = node.encoding;
  }
  part.isAttachment = filename !== undefined || disposition === 'attachment';

  const description: PartDescription = { part };
  if (node.multipart) {
    description.multipart = node.multipart;
    if (node._boundary) {
      description.boundary = node._boundary;
    }
  }
  return description;
}

/** RFC 2183 section 2.8: an unknown disposition type is treated as "attachment". */
function normalizeDisposition(value: string | false): string | undefined {
  if (!value) {
    return undefined;
  }
  const type = value.trim().toLowerCase();
  return type === 'inline' ? 'inline' : 'attachment';
}

/** A `filename*N` or `name*N` section of an RFC 2231 continuation, with its value. */
const SECTION = /;\s*(filename|name)\*(\d+)\*?\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/gi;

/**
 * Returns the file name a mail client shows when the RFC 2231 sections of the name skip a
 * number (filename*0, *1, *3). Clients stop at the gap, but the header parser joins every
 * section, which would hide "invoice.js" behind "invoice.js.txt". Returns undefined without a gap.
 */
function nameBeforeGap(headers: readonly RawHeaderLine[]): string | undefined {
  for (const key of ['content-disposition', 'content-type'] as const) {
    const header = headers.find((h) => h.key === key);
    if (header === undefined) continue;
    const value = rawHeaderValue(header.line);
    const indexes = new Set<number>();
    for (const match of value.matchAll(SECTION)) {
      if ((match[1] as string).toLowerCase() === (key === 'content-type' ? 'name' : 'filename')) {
        indexes.add(Number(match[2]));
      }
    }
    if (indexes.size === 0) {
      // A plain filename= in Content-Disposition is the name, whatever name Content-Type gives.
      if (key === 'content-disposition' && /;\s*filename\*?\s*=/i.test(value)) return undefined;
      continue;
    }
    let gap = 0;
    while (indexes.has(gap)) gap++;
    if (gap === indexes.size) return undefined;
    // Drop the sections from the gap on, and let the header parser join and decode the rest.
    const sectionsBeforeGap = value.replace(SECTION, (section, _param: string, index: string) =>
      Number(index) >= gap ? '' : section,
    );
    const parsed = libmime.parseHeaderValue(sectionsBeforeGap) as { params: Record<string, string> };
    const name = parsed.params[key === 'content-type' ? 'name' : 'filename'];
    return name === undefined ? '' : libmime.decodeWords(name);
  }
  return undefined;
}

function readFilename(node: MimeNode, headers: readonly RawHeaderLine[]): string | undefined {
  if (!node.filename) {
    return undefined;
  }
  const beforeGap = nameBeforeGap(headers);
  let name = beforeGap ?? node.filename;
  // mailsplit reads header bytes one char per byte. Encoded words and RFC 2231 values are
  // decoded to Unicode by libmime, but a raw 8-bit name (RFC 6532) is left as latin1 chars.
  // nameBeforeGap() decodes the raw header text itself.
  const hasRaw8Bit = headers.some(
    (h) => (h.key === 'content-disposition' || h.key === 'content-type') && /[\x80-\xff]/.test(h.line),
  );
  if (beforeGap === undefined && hasRaw8Bit && !/[^\x00-\xff]/.test(name)) {
    name = decodeRawHeaderText(name);
  }
  name = name.trim();
  if (name === '') {
    return undefined;
  }
  if (name.length <= MAX_FILENAME_LENGTH) {
    return name;
  }
  // Do not leave half of a surrogate pair at the cut.
  const last = name.charCodeAt(MAX_FILENAME_LENGTH - 1);
  const cut = last >= 0xd800 && last <= 0xdbff ? MAX_FILENAME_LENGTH - 1 : MAX_FILENAME_LENGTH;
  return name.slice(0, cut);
}
