import type { SensorStats } from '../events/consumer.js';
import { severityRankName, type Severity } from './model.js';

/** Text helpers of the dashboard that involve no wire data. */

/** blessed colour tags per severity. */
export const SEVERITY_COLOR: Record<Severity, string> = {
  low: 'cyan-fg',
  medium: 'yellow-fg',
  high: 'red-fg',
  critical: 'white-fg}{red-bg',
};

/** Returns "HH:MM:SS" in UTC for a time in seconds since the epoch, "-" when unset. */
export function clockTime(time: number): string {
  if (!Number.isFinite(time) || time <= 0) return '-';
  return new Date(time * 1000).toISOString().slice(11, 19);
}

/** Returns "YYYY-MM-DD HH:MM:SS" in UTC. */
export function dateTime(time: number): string {
  if (!Number.isFinite(time) || time <= 0) return '-';
  return new Date(time * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** Returns a duration as "3d04h", "2h05m", "4m07s" or "12s". */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d${two(hours)}h`;
  if (hours > 0) return `${hours}h${two(minutes)}m`;
  if (minutes > 0) return `${minutes}m${two(rest)}s`;
  return `${rest}s`;
}

/** Returns n with a k or M suffix past 10,000, so that it fits a narrow column. */
export function compactCount(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 10_000_000) return `${Math.round(n / 1000)}k`;
  return `${Math.round(n / 1_000_000)}M`;
}

/** Returns the status cell of a device: its worst alert severity, coloured, or "ok". */
export function statusCell(rank: number, alerts: number, width: number): string {
  const severity = severityRankName(rank);
  if (severity === undefined) return '{green-fg}' + 'ok'.padEnd(width) + '{/}';
  const text = `${severity.toUpperCase()} ${alerts}`.slice(0, width).padEnd(width);
  return `{${SEVERITY_COLOR[severity]}}{bold}${text}{/}`;
}

const BLOCKS = ' ▁▂▃▄▅▆▇█';

/**
 * Returns a bar chart of series as `rows` lines of `width` columns, newest value at the right,
 * each value `barWidth` columns wide, scaled to the series' maximum in eighths of a row.
 */
export function barChart(series: number[], rows: number, width: number): string[] {
  const barWidth = Math.max(1, Math.floor(width / Math.max(1, series.length)));
  const shown = series.slice(-Math.max(1, Math.floor(width / barWidth)));
  const max = Math.max(1, ...shown);
  const lines: string[] = [];
  for (let row = rows - 1; row >= 0; row--) {
    let line = '';
    for (const value of shown) {
      const eighths = Math.round((value / max) * rows * 8);
      const filled = Math.min(8, Math.max(0, eighths - row * 8));
      // A non-zero value shows at least a sliver on the bottom row.
      const cell = filled === 0 && row === 0 && value > 0 ? BLOCKS[1] : BLOCKS[filled];
      line += cell.repeat(barWidth);
    }
    lines.push(line.padStart(width));
  }
  return lines;
}

/** Returns the two header lines' figures from the sensor's stats. */
export function statsSummary(stats: SensorStats | undefined): string {
  if (stats === undefined) return 'no sensor figures yet';
  const loss = (stats.loss.estimatedRatio * 100).toFixed(stats.loss.estimatedRatio < 0.01 ? 2 : 1);
  return (
    `packets/s ${compactCount(Math.round(stats.packetsPerSecond))}  loss ${loss}%` +
    (stats.loss.interfaceDrops + (stats.loss.kernelDrops ?? 0) > 0
      ? ` (${compactCount(stats.loss.interfaceDrops + (stats.loss.kernelDrops ?? 0))} drops)`
      : '') +
    `  flows ${compactCount(stats.flows)}  packets ${compactCount(stats.packets)}`
  );
}
