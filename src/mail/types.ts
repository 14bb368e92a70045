export interface MailAddress {
  /** Display name decoded per RFC 2047, when present. */
  name?: string;
  address: string;
}

/** One leaf or multipart node of the MIME tree. */
export interface MimePart {
  /** Position in the tree: "1" is the root, "1.2" its second child. */
  path: string;
  contentType: string; // lower-case "type/subtype"
  charset?: string;
  /** "attachment", "inline" or undefined. */
  disposition?: string;
  /** From Content-Disposition filename (RFC 2231 and 2047 decoded) or Content-Type name. */
  filename?: string;
  transferEncoding?: string;
  /** Size after transfer decoding (base64, quoted-printable); 0 for multipart nodes. */
  size: number;
  /** SHA-256 of the decoded content, hex; absent for multipart nodes. */
  sha256?: string;
  /** SHA-1 and MD5 of the decoded content, hex, for matching Zeek and Suricata file logs. */
  sha1?: string;
  md5?: string;
  /** True when the part is an attachment: a filename or disposition "attachment". */
  isAttachment: boolean;
}

/** Headers and MIME structure that the MIME stage extracted from a message. */
export interface MessageInfo {
  /** Header values decoded per RFC 2047, unfolded; absent headers are undefined. */
  headers: {
    from?: string;
    to?: string;
    cc?: string;
    replyTo?: string;
    subject?: string;
    date?: string;
    messageId?: string;
    inReplyTo?: string;
    /** X-Mailer, else User-Agent. */
    userAgent?: string;
    received: number; // count of Received headers
  };
  from: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
  /** Message size in bytes as the parser received it. */
  size: number;
  parts: MimePart[];
  attachments: MimePart[];
  /**
   * Parse problems: "mime_header_too_long", "mime_too_many_header_fields",
   * "mime_too_many_parts", "message_truncated", ...
   */
  anomalies: string[];
}

export interface MailLimits {
  /**
   * Bytes kept of one logical (unfolded) header field, line endings included. A longer field is
   * cut and flagged "mime_header_too_long", and the fields after it are still read. Repeated
   * From, To and Cc fields are kept whole while together they fit this limit.
   */
  maxHeaderBytes: number;
  /**
   * Fields in one header block beyond this count are flagged "mime_too_many_header_fields".
   * They are still read, so a From field after padding is still found. Memory does not depend
   * on it: only the fields MessageInfo reports are kept.
   */
  maxHeaderFields?: number;
  /** MIME parts beyond this count are not analysed. */
  maxParts: number;
  /** MIME nesting depth beyond this is not analysed. */
  maxDepth: number;
}
