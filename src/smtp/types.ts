import type { Anomaly, Flow } from '../tcp/types.js';

/** A server reply: code, the enhanced status code if present, and the text of every line. */
export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status code such as "2.1.0", when the reply carries one. */
  enhanced?: string;
  /** Text lines without the code and separator, joined with "\n" for multi-line replies. */
  text: string;
  ts: number;
}

export interface SmtpRecipient {
  address: string; // without angle brackets, as sent
  params: Record<string, string>;
  /** Undefined when the reply was not seen (client-only capture, gap, connection closed). */
  reply?: SmtpReply;
  /** True for a 2xx reply, false for 4xx/5xx, undefined without a reply. */
  accepted?: boolean;
}

/** Receives the body of one transaction: DATA after dot-unstuffing, or the BDAT chunks in order. */
export interface BodySink {
  write(chunk: Buffer): void;
  /** complete is false when the body was cut by a gap, a reset or the end of the connection. */
  end(complete: boolean): void;
}

/** One mail transaction: MAIL FROM up to the end of data, RSET or the end of the session. */
export interface SmtpTransaction {
  flow: Flow;
  /** 1-based position of the transaction within its session (Zeek's trans_depth). */
  depth: number;
  startTs: number;
  endTs: number;
  helo?: string;
  /** HELO or EHLO, whichever the client used last. */
  heloCommand?: 'HELO' | 'EHLO' | 'LHLO';
  mailFrom?: string;
  mailParams: Record<string, string>;
  mailReply?: SmtpReply;
  recipients: SmtpRecipient[];
  /** RCPT commands past the session's maxRecipients: counted, not listed in recipients. */
  unlistedRecipients?: number;
  /** "data", "bdat" or undefined when the transaction ended before any body. */
  bodyKind?: 'data' | 'bdat';
  /** Reply to DATA (the 354) when seen. */
  dataReply?: SmtpReply;
  /** Body bytes after dot-unstuffing (DATA) or the sum of chunk sizes (BDAT). */
  bodyBytes: number;
  bdatChunks: number;
  /** True when the body ended properly: "." line, or BDAT LAST. */
  bodyComplete: boolean;
  /** Reply that ends the transaction: the one after the body, else the last one seen. */
  lastReply?: SmtpReply;
  /** Queue id parsed from the final reply text, when the server gave one ("queued as X", "id=X"). */
  queueId?: string;
  /** Outcome of the transaction. */
  status: 'completed' | 'rejected' | 'reset' | 'aborted' | 'incomplete';
  tls: boolean;
  authMechanism?: string;
  authUser?: string;
  /** Transaction-level anomalies; session-level ones are on SmtpSessionInfo. */
  anomalies: Anomaly[];
}

/** The session as a whole, reported when it closes. */
export interface SmtpSessionInfo {
  flow: Flow;
  startTs: number;
  endTs: number;
  banner?: SmtpReply;
  helo?: string;
  heloCommand?: 'HELO' | 'EHLO' | 'LHLO';
  /** Extension keywords from the last EHLO reply, upper-case, with parameters ("SIZE 10240000"). */
  extensions: string[];
  /** STARTTLS accepted (220) or port 465: content after that point is not parsed. */
  tls: boolean;
  /** "starttls" or "implicit" when tls is true. */
  tlsMode?: 'starttls' | 'implicit';
  authMechanism?: string;
  authUser?: string;
  /** Reply to AUTH: true on 235, false on 5xx, undefined when unseen. */
  authSuccess?: boolean;
  /** The last reply of the session, as Zeek's last_reply shows for a session that ends in TLS. */
  lastReply?: SmtpReply;
  transactions: number;
  commands: number;
  replies: number;
  /** True when only client bytes were seen. */
  clientOnly: boolean;
  closeReason: string;
  anomalies: Anomaly[];
}

/** Output of the SMTP stage; the stage never stores. */
export interface SmtpEvents {
  /** A new transaction starts: returns the sink for its body, or undefined to skip body parsing. */
  openBody(tx: SmtpTransaction): BodySink | undefined;
  transaction(tx: SmtpTransaction): void;
  session(session: SmtpSessionInfo): void;
}

/** Limits of the SMTP parser, with defaults in smtp/session.ts. */
export interface SmtpLimits {
  /** Maximum length of a command or reply line kept; longer lines are cut and flagged. */
  maxLineLength: number;
  /**
   * Entries in the queue of commands awaiting replies (pipelining). Commands whose replies are
   * handled alike share one entry. Past the limit, later commands are counted without being
   * paired with their replies, so pairing stays in order.
   */
  maxPendingCommands: number;
  /** Recipients kept per transaction; further ones are counted only. */
  maxRecipients: number;
  maxAnomaliesPerSession: number;
}
