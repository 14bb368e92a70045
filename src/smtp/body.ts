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
 * accumulated. A line may end with CRLF or bare LF, as in Postfix and Zeek, so ".\n" also
 * ends the body. Bare LF lines are counted for the caller because SMTP smuggling uses them.
 */
export class DataBodyDecoder {
  /** Lines of the current body that ended with LF alone. */
  bareLfCount = 0;
  private state = LINE_START;
  private lastWasCr = false;

  constructor(private readonly write: (chunk: Buffer) => void) {}

  /** Prepare for a new body, which starts at the beginning of a line. */
  start(): void {
    this.state = LINE_START;
    this.lastWasCr = false;
    this.bareLfCount = 0;
  }

  /** After lost bytes the position within the line is unknown: assume a line start. */
  resumeAfterGap(): void {
    this.state = LINE_START;
    this.lastWasCr = false;
  }

  /**
   * Decode data from offset. Returns the offset just after the terminating line, or -1 when
   * the whole chunk belonged to the body.
   */
  feed(data: Buffer, offset: number): number {
    const end = data.length;
    let pos = offset;
    let runStart = offset;

    while (pos < end) {
      if (this.state === MID_LINE) {
        const lf = data.indexOf(LF, pos);
        if (lf === -1) {
          this.lastWasCr = data[end - 1] === CR;
          pos = end;
          break;
        }
        const crBefore = lf > pos ? data[lf - 1] === CR : this.lastWasCr;
        if (!crBefore) this.bareLfCount++;
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
          this.state = LINE_START;
          return pos + 1;
        } else {
          // Stuffed line: the dot is dropped and the rest of the line is body.
          this.state = MID_LINE;
          this.lastWasCr = false;
        }
      } else {
        if (data[pos] === LF) {
          this.state = LINE_START;
          return pos + 1;
        }
        // ".\r" followed by something else: the CR held back is body after all.
        this.write(CR_BYTE);
        this.state = MID_LINE;
        this.lastWasCr = true;
      }
    }

    if (end > runStart) this.write(data.subarray(runStart, end));
    return -1;
  }
}
