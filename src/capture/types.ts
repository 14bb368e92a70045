/** One captured frame as a packet source yields it. */
export interface Packet {
  /** Capture time, whole Unix seconds. */
  seconds: number;
  /** Sub-second part of the capture time in nanoseconds (0..999999999). */
  nanos: number;
  /** LINKTYPE_* value of the interface the frame came from (1 = Ethernet). */
  linkType: number;
  /** Interface index in a pcapng section, 0 for classic pcap. */
  interfaceId: number;
  /**
   * Captured bytes. This may be a view into the reader's chunk: a consumer that keeps
   * bytes after its callback returns must copy them.
   */
  data: Buffer;
  /** Length of the frame on the wire; larger than data.length when the snap length cut it. */
  originalLength: number;
  /** Byte offset of the packet record in the (decompressed) input, for error messages. */
  fileOffset: number;
}

/** Counters that every packet source keeps. */
export interface CaptureStats {
  packets: number;
  /** Captured bytes of all packets (sum of data.length). */
  bytes: number;
  /** Bytes of input consumed, after decompression. */
  inputBytes: number;
  /** Frames whose originalLength is larger than the captured length. */
  snapTruncated: number;
  /** pcapng blocks of unknown or unhandled type that were skipped. */
  skippedBlocks: number;
  /** Packets the source could not deliver (live capture drops); 0 for files. */
  dropped: number;
}

export type CaptureErrorCode =
  | 'MAILTAP_ERR_OPEN'
  | 'MAILTAP_ERR_FORMAT'
  | 'MAILTAP_ERR_TRUNCATED'
  | 'MAILTAP_ERR_CORRUPT'
  | 'MAILTAP_ERR_GZIP';

/** An input that cannot be read further. Names the file and the byte offset where reading stopped. */
export class CaptureError extends Error {
  readonly code: CaptureErrorCode;
  readonly file: string;
  readonly offset: number;

  constructor(code: CaptureErrorCode, file: string, offset: number, reason: string) {
    // Opening fails before any byte is read, so no offset is given.
    super(code === 'MAILTAP_ERR_OPEN' ? `${file}: ${reason}` : `${file}: ${reason} at byte offset ${offset}`);
    this.name = 'CaptureError';
    this.code = code;
    this.file = file;
    this.offset = offset;
  }
}

/** Progress of a file source, for a progress bar. totalBytes is undefined for stdin. */
export type ProgressCallback = (inputBytesRead: number, totalBytes: number | undefined) => void;
