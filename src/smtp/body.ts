const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CR_BYTE = Buffer.from([CR]);

const MID_LINE = 0;
const LINE_START = 1;
/** A "." at the start of a line, held back: it is either stuffing or the terminator. */
const AFTER_DOT = 2;
/** ".\r" at the start of a line, both held back. */
const AFTER_DOT_CR = 3;

/**
 * Decoder of a DATA body (RFC 5321 section 4.5.2): removes the leading dot of stuffed lines
 * and finds the terminating "." line, whatever chunk boundaries fall inside it. Body bytes go
 * to the writer as views of the input, in runs as long as possible, so nothing is
 * accumulated.
 *
 * Line endings other than CRLF are against RFC 5321 section 2.3.8, and SMTP smuggling uses
 * them: a message that one server passes on can hold an end of data that the next server
 * sees. Lines end at LF, and a CR right before the LF is removed, so "<LF>.<LF>",
 * "<LF>.<CR><LF>" and "<CR><LF>.<LF>" end the body, as in Postfix (which splits lines at LF
 * only) and Zeek. A CR that no LF follows (bare CR) never ends a line. It is body data, as in
 * Postfix, so "<CR>.<CR>", "<CR><LF>.<CR>" and "<CR>.<CR><LF>" do not end the body. (Sendmail,
 * since its fix for CVE-2023-51765, can instead drop the session at a bare CR or LF.) Bare LF
 * lines, bare CRs and "." lines next to a bare CR are counted for the caller to report.
 *
 * NOTE: a "." line next to a bare CR is counted only when the CR, the dot and the byte after
 * it arrive in one chunk, but every bare CR is counted.
 */
export class DataBodyDecoder {
  /** Lines of the current body that ended with LF alone, the terminating line included. */
  bareLfCount = 0;
  /** CR bytes of the current body that no LF follows. */
  bareCrCount = 0;
  /**
   * "." lines with a bare CR before or after the dot: an end of data for a receiver that
   * takes a bare CR for a line ending.
   */
  bareCrDotLines = 0;
  /** The terminator, such as "<LF>.<LF>", when the body ended at one with a bare LF. */
  bareLfEnd: string | undefined;
  private state = LINE_START;
  private lastWasCr = false;
  /** The line ending before the current line was a bare LF. */
  private afterBareLf = false;

  constructor(private readonly write: (chunk: Buffer) => void) {}

  /** Prepare for a new body, which starts at the beginning of a line. */
  start(): void {
    this.state = LINE_START;
    this.lastWasCr = false;
    this.afterBareLf = false;
    this.bareLfCount = 0;
    this.bareCrCount = 0;
    this.bareCrDotLines = 0;
    this.bareLfEnd = undefined;
  }

  /** After lost bytes the position within the line is unknown: assume a line start. */
  resumeAfterGap(): void {
    this.state = LINE_START;
    this.lastWasCr = false;
    this.afterBareLf = false;
  }

  /**
   * Decode data from offset. Returns the offset just after the terminating line, or -1 when
   * the whole chunk belonged to the body.
   */
  feed(data: Buffer, offset: number): number {
    const end = data.length;
    let pos = offset;
    let runStart = offset;
    // Position of the next CR at or after pos, or end when there is none; -1 until searched.
    let nextCr = -1;

    // A CR that ended the previous chunk mid-line is bare unless this chunk starts with LF.
    if (this.state === MID_LINE && this.lastWasCr && pos < end && data[pos] !== LF) this.bareCrCount++;

    while (pos < end) {
      if (this.state === MID_LINE) {
        const lf = data.indexOf(LF, pos);
        const lineEnd = lf === -1 ? end : lf;
        if (nextCr < pos) nextCr = indexOfCr(data, pos);
        // A CR before lineEnd - 1 is followed by a byte that is no LF. A CR at lineEnd - 1
        // precedes the LF, or ends the chunk and is decided by the next one.
        while (nextCr < lineEnd - 1) {
          this.bareCrCount++;
          if (data[nextCr + 1] === DOT && isLineEndByte(data[nextCr + 2])) this.bareCrDotLines++;
          nextCr = indexOfCr(data, nextCr + 1);
        }
        if (lf === -1) {
          this.lastWasCr = data[end - 1] === CR;
          pos = end;
          break;
        }
        const crBefore = lf > pos ? data[lf - 1] === CR : this.lastWasCr;
        if (!crBefore) this.bareLfCount++;
        this.afterBareLf = !crBefore;
        pos = lf + 1;
        this.state = LINE_START;
      } else if (this.state === LINE_START) {
        if (data[pos] === DOT) {
          if (pos > runStart) this.write(data.subarray(runStart, pos));
          pos++;
          runStart = pos;
          this.state = AFTER_DOT;
        } else {
          this.state = MID_LINE;
          this.lastWasCr = false;
        }
      } else if (this.state === AFTER_DOT) {
        const byte = data[pos];
        if (byte === CR) {
          pos++;
          runStart = pos;
          this.state = AFTER_DOT_CR;
        } else if (byte === LF) {
          this.bareLfCount++;
          this.bareLfEnd = (this.afterBareLf ? '<LF>' : '<CR><LF>') + '.<LF>';
          this.state = LINE_START;
          return pos + 1;
        } else {
          // Stuffed line: the dot is dropped and the rest of the line is body.
          this.state = MID_LINE;
          this.lastWasCr = false;
        }
      } else {
        if (data[pos] === LF) {
          if (this.afterBareLf) this.bareLfEnd = '<LF>.<CR><LF>';
          this.state = LINE_START;
          return pos + 1;
        }
        // ".\r" followed by something else: the CR held back is a bare CR of the body.
        this.bareCrCount++;
        this.bareCrDotLines++;
        this.write(CR_BYTE);
        this.state = MID_LINE;
        this.lastWasCr = true;
      }
    }

    if (end > runStart) this.write(data.subarray(runStart, end));
    return -1;
  }
}

/** Return the index of the next CR from offset, or data.length when there is none. */
function indexOfCr(data: Buffer, offset: number): number {
  const index = data.indexOf(CR, offset);
  return index === -1 ? data.length : index;
}

function isLineEndByte(byte: number | undefined): boolean {
  return byte === CR || byte === LF;
}
