import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../cli/usage.js';
import { ReplayDashboard } from './replay.js';

export { DashboardModel, DEFAULT_MODEL_LIMITS, type ModelLimits, type DeviceState, type AlertState } from './model.js';
export { Dashboard, type DashboardOptions } from './view.js';
export { EventPacer, ReplayDashboard } from './replay.js';
export { safeText } from './text.js';

/** Returns the version from package.json, found next to the dist/ or src/ folder. */
export function packageVersion(): string {
  try {
    const file = fileURLToPath(new URL('../../package.json', import.meta.url));
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Parses --speed: a positive number of times real time, or 0 or "max" for as fast as possible. */
export function parseSpeed(text: string | undefined): number {
  if (text === undefined) return 1;
  if (text === 'max') return 0;
  const speed = Number(text);
  if (text.trim() === '' || !Number.isFinite(speed) || speed < 0) {
    throw new UsageError(`invalid --speed "${text}": expected a number of times real time (0.5, 1, 10), or 0 or max for as fast as possible`);
  }
  return speed;
}

/** Opens the dashboard of `read --tui` on the process's terminal. */
export function startReplayDashboard(options: { files: string[]; speed: number; sensor: string }): ReplayDashboard {
  return new ReplayDashboard({ ...options, version: packageVersion() });
}
