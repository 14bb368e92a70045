import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED_CAPTURES = resolve(REPO, '..', 'shared', 'captures');
export const CLI = join(REPO, 'dist', 'cli', 'main.js');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fields = Record<string, any>;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  records: Fields[];
}

/** Runs the built CLI (npm test builds it first) and parses its JSON lines. */
export function runCli(args: string[], input?: Buffer): CliResult {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const result = spawnSync(process.execPath, [CLI, ...args], {
    input,
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  const records: Fields[] = [];
  for (const line of result.stdout.split('\n')) {
    if (line.startsWith('{')) records.push(JSON.parse(line) as Fields);
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, records };
}

/** Reads one capture with `mailtap read` and returns its records; fails on a non-zero exit. */
export function readRecords(file: string, extra: string[] = []): Fields[] {
  const result = runCli(['read', '--quiet', ...extra, file]);
  if (result.status !== 0) {
    throw new Error(`mailtap read ${file} exited with ${result.status}: ${result.stderr}`);
  }
  return result.records;
}
