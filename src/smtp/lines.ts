const LF = 0x0a;
const CR = 0x0d;

/**
 * Line splitter over a stream delivered in chunks. A line ends at LF, and a CR right before
 * the LF is removed, so CRLF and bare LF both end a line. A line inside one chunk is returned
 * as a view of that chunk. A line that spans chunks is assembled in a scratch buffer of
 * maxLineLength + 1 bytes, so memory stays bounded whatever the input. Bytes past
 * maxLineLength are dropped and the line is flagged as truncated.
 *
 * The caller drives it with next() and may change how it reads the rest of the chunk after
 * every line, which is how DATA bodies and BDAT chunks take over mid-chunk.
 */
export class LineSplitter {
  /** The line completed by the last next() call, without its CRLF or LF; valid until the next call. */
  line: Buffer | undefined;
  /** The last line ended with LF alone. */
  bareLf = false;
  /** The last line was longer than maxLineLength and was cut to it. */
  truncated = false;
  /** Length of the last line before truncation, without its line ending. */
  rawLength = 0;
  /**
   * The last next() call made the unfinished line exceed maxLineLength. This is set once per
   * line, so that a line that never ends can be flagged too.
   */
  limitPassed = false;

  private scratch: Buffer | undefined;
  private held = 0;
  private dropped = 0;
  private lastByte = -1;
  private lineInScratch = false;

  constructor(readonly maxLineLength: number) {}

  /** True when bytes of an unfinished line are held from earlier chunks. */
  get hasPartial(): boolean {
    return this.held + this.dropped > 0;
  }

  /** Bytes of the unfinished line received so far, the dropped ones included. */
  get partialLength(): number {
    return this.held + this.dropped;
  }

  /**
   * Consume bytes of data from offset up to the end of the next line or the end of the chunk.
   * Returns the offset after the consumed bytes and sets line when a line was completed.
   */
  next(data: Buffer, offset: number): number {
    this.line = undefined;
    this.lineInScratch = false;
    this.limitPassed = false;
    const lf = data.indexOf(LF, offset);

    if (lf !== -1 && !this.hasPartial) {
      const hasCr = lf > offset && data[lf - 1] === CR;
      const contentEnd = hasCr ? lf - 1 : lf;
      this.finish(contentEnd - offset, !hasCr);
      const keep = Math.min(this.rawLength, this.maxLineLength);
      this.line = data.subarray(offset, offset + keep);
      return lf + 1;
    }

    const droppedBefore = this.dropped;
    this.append(data, offset, lf === -1 ? data.length : lf);
    if (lf === -1) {
      this.limitPassed = droppedBefore === 0 && this.dropped > 0;
      return data.length;
    }

    const hasCr = this.lastByte === CR;
    // The CR is in the scratch buffer unless it fell in the dropped part of a long line.
    const total = this.held + this.dropped;
    this.finish(hasCr ? total - 1 : total, !hasCr);
    const keep = Math.min(this.rawLength, this.maxLineLength);
    this.line = (this.scratch as Buffer).subarray(0, keep);
    this.lineInScratch = true;
    this.held = 0;
    this.dropped = 0;
    this.lastByte = -1;
    return lf + 1;
  }

  /** Drop the unfinished line, as after a gap. */
  reset(): void {
    this.held = 0;
    this.dropped = 0;
    this.lastByte = -1;
  }

  /** Overwrite the scratch copy of the last line, for lines that carry credentials. */
  wipeLine(): void {
    if (this.lineInScratch && this.scratch !== undefined) this.scratch.fill(0);
  }

  private finish(contentLength: number, bareLf: boolean): void {
    this.rawLength = contentLength;
    this.bareLf = bareLf;
    this.truncated = contentLength > this.maxLineLength;
  }

  private append(data: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.lastByte = data[end - 1] as number;
    const capacity = this.maxLineLength + 1;
    this.scratch ??= Buffer.allocUnsafe(capacity);
    const room = capacity - this.held;
    const copied = Math.min(room, end - start);
    if (copied > 0) {
      data.copy(this.scratch, this.held, start, start + copied);
      this.held += copied;
    }
    this.dropped += end - start - copied;
  }
}
