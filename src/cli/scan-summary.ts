import type { Scanner, ScannerCounters } from '../scan/index.js';
import { formatCount } from './format.js';

function part(name: string, counters: ScannerCounters | undefined, flagged: string): string | undefined {
  if (counters === undefined) return undefined;
  const skipped = Object.entries(counters.notScanned).filter(([, n]) => n > 0);
  const total = skipped.reduce((sum, [, n]) => sum + n, 0);
  const reasons = skipped.length > 0 ? ` (${skipped.map(([reason, n]) => `${reason} ${formatCount(n)}`).join(', ')})` : '';
  return (
    `${name} ${formatCount(counters.scanned)} scanned, ${formatCount(counters.flagged)} ${flagged}, ` +
    `${formatCount(total)} not scanned${reasons}`
  );
}

/** The "scan:" line of the run summary, or undefined when scanning is off. */
export function scanSummary(scanner: Scanner | undefined): string | undefined {
  if (scanner === undefined) return undefined;
  const parts = [
    part('clamav', scanner.counters.clamav, 'infected'),
    part('rspamd', scanner.counters.rspamd, 'spam'),
  ].filter((p): p is string => p !== undefined);
  return `  scan: ${parts.join('; ')}`;
}
