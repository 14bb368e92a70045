import { parseArgs } from 'node:util';
import type { SensorStats } from '../events/consumer.js';
import { escapeJsonForTerminal, sanitizeForTerminal } from '../events/sanitize.js';
import { SensorNotRunningError, defaultSocketPath, requestStatus } from '../sensor/control.js';
import { formatBytes, formatCount } from './format.js';

export const STATUS_HELP = `Usage: mailtap status [options]

Prints the figures of the running sensor (mailtap live), read from its control socket.

Options:
  --socket PATH   the sensor's control socket (default: $MAILTAP_SOCKET, else
                  /run/mailtap/mailtap.sock for root or when /run/mailtap exists, else
                  $XDG_RUNTIME_DIR/mailtap.sock, else mailtap-UID.sock in the temporary directory)
  --json          print the figures as one JSON document
  -h, --help      this help

Exit status: 0 when the sensor replied, 1 when no sensor is running at the socket or it did
not reply, 2 for a usage error.`;

/** Formats seconds as "3d 04:05:06" or "04:05:06". */
export function formatUptime(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const days = Math.floor(seconds / 86400);
  const clock = [Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  return days > 0 ? `${days}d ${clock}` : clock;
}

function formatRate(bitsPerSecond: number): string {
  if (bitsPerSecond >= 1e9) return `${(bitsPerSecond / 1e9).toFixed(2)} Gbit/s`;
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(1)} Mbit/s`;
  return `${(bitsPerSecond / 1e3).toFixed(1)} kbit/s`;
}

/** Formats the kernel's drop counts, or "unavailable" (a sensor of an older version sends none). */
function formatKernelDrops(stats: SensorStats): string {
  const drops = stats.loss.kernelDrops ?? null;
  const packets = stats.loss.kernelPackets ?? null;
  if (drops === null || packets === null) return 'unavailable';
  return `${formatCount(drops)} of ${formatCount(packets)} packets the filter passed`;
}

/** Formats the sensor's figures as a two-column table for people. */
export function formatStatus(stats: SensorStats): string {
  const text = (value: string): string => sanitizeForTerminal(value, 200);
  const rows: [string, string][] = [
    ['sensor', `${text(stats.sensor)} ${text(stats.version)}`],
    ['sources', text(stats.sources.join(', '))],
    ['started', `${text(stats.started)} (up ${formatUptime(stats.uptimeSeconds)})`],
    ['packets', `${formatCount(stats.packets)} (${formatCount(Math.round(stats.packetsPerSecond))}/s)`],
    ['bytes', `${formatBytes(stats.bytes)} (${formatRate(stats.bitsPerSecond)})`],
    ['estimated loss', `${(stats.loss.estimatedRatio * 100).toFixed(3)} % (${formatBytes(stats.loss.ackedUnseenBytes)} acknowledged but not seen)`],
    ['interface drops', formatCount(stats.loss.interfaceDrops)],
    ['kernel drops', formatKernelDrops(stats)],
    ['flows', formatCount(stats.flows)],
    ['sessions', formatCount(stats.sessions)],
    ['transactions', formatCount(stats.transactions)],
    ['alerts', formatCount(stats.alerts)],
    ['last sequence', formatCount(stats.lastSequence)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

/** Runs `mailtap status`. Returns the exit status. */
export async function runStatus(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      socket: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(STATUS_HELP + '\n');
    return 0;
  }
  const path = values.socket ?? defaultSocketPath();
  let stats: SensorStats;
  try {
    stats = await requestStatus(path);
  } catch (error) {
    if (error instanceof SensorNotRunningError) {
      process.stderr.write(`mailtap: ${error.message}; start it with "mailtap live" or pass --socket PATH\n`);
    } else {
      process.stderr.write(`mailtap: ${(error as Error).message}\n`);
    }
    return 1;
  }
  process.stdout.write((values.json ? escapeJsonForTerminal(JSON.stringify(stats)) : formatStatus(stats)) + '\n');
  return 0;
}
