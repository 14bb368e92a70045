import type { ScanResult, SkipReason } from './types.js';

/**
 * The `mailtap.scan` object of a transaction event: one object per configured scanner, and
 * skipped_reason when no scanner gave a verdict. docs/events.md describes the fields.
 */
export function scanFields(result: ScanResult): Record<string, unknown> {
  const scan: Record<string, unknown> = {};
  let skipped: SkipReason | undefined;
  let verdicts = 0;
  if (result.clamav) {
    const c = result.clamav;
    if (c.status === 'scanned') {
      verdicts++;
      const infected = c.verdict.signatures.length > 0;
      scan.clamav = infected ? { status: 'infected', signatures: c.verdict.signatures } : { status: 'clean' };
    } else {
      skipped ??= c.reason;
      scan.clamav = { status: 'not_scanned', reason: c.reason };
    }
  }
  if (result.rspamd) {
    const r = result.rspamd;
    if (r.status === 'scanned') {
      verdicts++;
      const v = r.verdict;
      scan.rspamd = {
        status: 'scanned',
        score: v.score,
        ...(Number.isFinite(v.requiredScore) ? { required_score: v.requiredScore } : {}),
        action: v.action,
        symbols: v.symbols,
      };
    } else {
      skipped ??= r.reason;
      scan.rspamd = { status: 'not_scanned', reason: r.reason };
    }
  }
  if (verdicts === 0 && skipped !== undefined) scan.skipped_reason = skipped;
  return scan;
}
