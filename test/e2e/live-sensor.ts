/**
 * Runs `mailtap live` in a network namespace for the end-to-end tests and follows its JSON log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, type Fields } from './cli.js';

export interface SensorExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running sensor, with its JSON log lines as they arrive and its exit. */
export interface LiveSensor {
  child: ChildProcess;
  logs: Fields[];
  stderr(): string;
  exit: Promise<SensorExit>;
  /**
   * Resolves with the first log line whose message equals `match` (or for which the function
   * returns true), or rejects after timeoutMs.
   */
  waitForLog(match: string | ((entry: Fields) => boolean), timeoutMs: number): Promise<Fields>;
  /** Sends SIGTERM and resolves with the exit. */
  stop(): Promise<SensorExit>;
}

/**
 * Starts `mailtap live ARGS` in namespace ns with a configuration in dir: the feed on a free
 * loopback port, the control socket dir/mailtap.sock, then configText. The store is dir/db.
 */
export function spawnLiveSensor(ns: string, dir: string, args: string[], configText = ''): LiveSensor {
  const config = join(dir, 'site.yaml');
  writeFileSync(config, `feed:\n  listen: 127.0.0.1:0\ncontrol:\n  socket: ${join(dir, 'mailtap.sock')}\n${configText}`);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'live', ...args, '--config', config, '--db', join(dir, 'db')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: Fields[] = [];
  let text = '';
  const waiters: { match: (entry: Fields) => boolean; resolve: (entry: Fields) => void }[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    text += line + '\n';
    if (!line.startsWith('{')) return;
    const entry = JSON.parse(line) as Fields;
    logs.push(entry);
    for (const waiter of waiters) if (waiter.match(entry)) waiter.resolve(entry);
  });
  const exit = new Promise<SensorExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    logs,
    stderr: () => text,
    exit,
    waitForLog(match, timeoutMs) {
      const test = typeof match === 'string' ? (entry: Fields) => entry.msg === match : match;
      const seen = logs.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`log line not seen within ${timeoutMs} ms:\n${text}`)), timeoutMs);
        waiters.push({
          match: test,
          resolve: (entry) => {
            clearTimeout(timer);
            resolve(entry);
          },
        });
      });
    },
    stop() {
      child.kill('SIGTERM');
      return exit;
    },
  };
}
