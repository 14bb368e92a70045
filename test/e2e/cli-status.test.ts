import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startControlServer, type ControlServer } from '../../src/sensor/control.js';
import { sampleStats } from '../unit/sensor-fixtures.js';
import { CLI } from './cli.js';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI without blocking this process, which serves the control socket. */
function runCliAsync(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const status = error ? Number((error as { code?: number }).code ?? 1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

describe('mailtap status', () => {
  let dir: string;
  let server: ControlServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailtap-status-'));
    server = await startControlServer(join(dir, 'mailtap.sock'), () => sampleStats());
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('json output equals the sensor stats', async () => {
    const run = await runCliAsync(['status', '--socket', server.path, '--json']);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), sampleStats());
  });

  it('table shows each figure', async () => {
    const run = await runCliAsync(['status', '--socket', server.path]);
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    // Values from sampleStats: 3725 s is 1 h 2 min 5 s; 98765432 B is 94.2 MiB; 16e6 bit/s.
    assert.deepEqual(lines, [
      'sensor           office-1 0.1.0',
      'sources          mt9a',
      'started          2026-12-04T19:00:00.000Z (up 01:02:05)',
      'packets          123,456 (2,000/s)',
      'bytes            94.2 MiB (16.0 Mbit/s)',
      'estimated loss   0.020 % (1.5 KiB acknowledged but not seen)',
      'interface drops  4',
      'kernel drops     7 of 812,000 packets the filter passed',
      'flows            17',
      'sessions         420',
      'transactions     398',
      'alerts           3',
      'last sequence    401',
    ]);
  });

  it('no sensor gives exit status 1', async () => {
    const missing = join(dir, 'none.sock');
    const run = await runCliAsync(['status', '--socket', missing]);
    assert.equal(run.status, 1);
    assert.equal(run.stdout, '');
    assert.equal(
      run.stderr,
      `mailtap: no sensor is running at ${missing} (ENOENT); start it with "mailtap live" or pass --socket PATH\n`,
    );
  });

  it('unknown option is a usage error', async () => {
    const run = await runCliAsync(['status', '--sockets', 'x']);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /Run "mailtap status --help" for usage/);
  });
});
