/**
 * Why a message was not scanned:
 * - too_large: the message is over scan.max_size;
 * - tls: the transaction ran inside TLS, so the sensor has no clear text;
 * - queue_full: scan.queue messages were already waiting (live capture never waits), or the
 *   copies of messages held for the scanners had reached scan.max_buffer;
 * - timeout: the scanner did not answer within scan.timeout;
 * - unavailable: the scanner refused the connection or failed recently (see scan.retry_after);
 * - error: the scanner answered with an error (for example clamd's StreamMaxLength).
 */
export type SkipReason = 'too_large' | 'tls' | 'queue_full' | 'timeout' | 'unavailable' | 'error';

export const SKIP_REASONS: readonly SkipReason[] = ['too_large', 'tls', 'queue_full', 'timeout', 'unavailable', 'error'];

/** clamd's verdict on one message. */
export interface ClamavVerdict {
  /** Signature names, empty when the message is clean. */
  signatures: string[];
}

/** rspamd's verdict on one message (the fields of /checkv2 that are kept). */
export interface RspamdVerdict {
  score: number;
  requiredScore: number;
  /** "no action", "greylist", "add header", "rewrite subject", "soft reject" or "reject". */
  action: string;
  /** Names of the symbols with a non-zero score, highest score first. */
  symbols: string[];
}

export type ScannerResult<T> = { status: 'scanned'; verdict: T } | { status: 'not_scanned'; reason: SkipReason };

/** Verdicts of the scanners on one message; a scanner that is not configured is absent. */
export interface ScanResult {
  clamav?: ScannerResult<ClamavVerdict>;
  rspamd?: ScannerResult<RspamdVerdict>;
}

/** The SMTP envelope passed to rspamd with the message. */
export interface ScanEnvelope {
  mailFrom?: string;
  recipients: readonly string[];
  clientIp: string;
  helo?: string;
}

/** A scanner's failure, with the reason recorded for the message. */
export class ScanFailure extends Error {
  constructor(
    readonly reason: 'timeout' | 'unavailable' | 'error',
    message: string,
  ) {
    super(message);
    this.name = 'ScanFailure';
  }
}
