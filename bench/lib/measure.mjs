// Runs one command under /usr/bin/time and collects wall-clock seconds, peak RSS and exit status.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export const TIME_BINARY = '/usr/bin/time';

/** Reads the file once so every timed run starts with it in the page cache. */
export function warmPageCache(path) {
  const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
  const fd = openSync(path, 'r');
  let total = 0;
  for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) total += n;
  closeSync(fd);
  return total;
}

/**
 * Runs command with args, stdout and stderr going to the given files. Uses GNU time
 * (`-f '%e %M'`: elapsed seconds, maximum resident set size in KiB) when it is installed,
 * else measures wall-clock time only and reports the peak RSS as null.
 */
export function runTimed(command, args, { stdoutPath, stderrPath, timePath, cwd }) {
  const stdout = openSync(stdoutPath, 'w');
  const stderr = openSync(stderrPath, 'w');
  const useTime = existsSync(TIME_BINARY);
  const started = process.hrtime.bigint();
  const result = useTime
    ? spawnSync(TIME_BINARY, ['-f', '%e %M', '-o', timePath, command, ...args], { stdio: ['ignore', stdout, stderr], cwd })
    : spawnSync(command, args, { stdio: ['ignore', stdout, stderr], cwd });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  closeSync(stdout);
  closeSync(stderr);

  if (result.error) return { ok: false, error: result.error.message, seconds: wallSeconds, peakRssMb: null };
  let seconds = wallSeconds;
  let peakRssMb = null;
  if (useTime && existsSync(timePath)) {
    // GNU time writes "Command exited with non-zero status N" before the format line on failure.
    const lines = readFileSync(timePath, 'utf8').trim().split('\n');
    const match = /^([\d.]+) (\d+)$/.exec(lines[lines.length - 1] ?? '');
    if (match) {
      seconds = Number(match[1]);
      peakRssMb = Number(match[2]) / 1024;
    }
    rmSync(timePath, { force: true });
  }
  return { ok: result.status === 0, exitCode: result.status, signal: result.signal, seconds, peakRssMb };
}

/** First line of a command's output (version strings), or undefined when it cannot run. */
export function commandOutput(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) return undefined;
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  return text
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line && !line.startsWith('Running as user'));
}

export function machineInfo() {
  let cpuModel = cpus()[0]?.model;
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) cpuModel = match[1];
  } catch {
    // /proc/cpuinfo exists only on Linux; os.cpus() gives the model elsewhere.
  }
  return {
    cpus: cpus().length,
    cpuModel,
    memoryGb: (totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
    tshark: commandOutput('tshark', ['--version']),
    tcpflow: commandOutput('tcpflow', ['--version']),
    // mailsnarf has no version flag; its usage text starts with "Version: 2.4".
    mailsnarf: commandOutput('mailsnarf', ['-h'])?.replace(/^Version:\s*/, ''),
  };
}
