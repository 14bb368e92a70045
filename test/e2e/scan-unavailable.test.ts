/**
 * A scanner that is down or slow never stops the sensor: the capture is read to its end, each
 * message is recorded as not scanned with the reason, and one error line is logged, not one
 * per message.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, REPO, runCli, type Fields } from './cli.js';
import { startClamd, writeScanConfig, type Clamd } from './scan-daemons.js';

const CAPTURE = join(REPO, 'captures', 'scan.pcap');

function transactions(records: Fields[]): Fields[] {
  return records.filter((r) => r.event.action === 'smtp-transaction');
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('mailtap: error:'));
}

describe('clamd stopped', () => {
  let clamd: Clamd;
  let dir: string;
  let config: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mt8-scan-down-'));
    clamd = await startClamd('Mailtap.Test.EICAR');
    config = writeScanConfig(dir, `  clamav: ${clamd.socket}\n`);
  });

  after(async () => {
    await clamd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('while clamd runs, the EICAR message is infected', () => {
    const result = runCli(['read', '--config', config, CAPTURE]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(transactions(result.records)[2]?.mailtap.scan.clamav.status, 'infected');
  });

  test('after clamd stops, reading succeeds and every message is not scanned, reason unavailable', async () => {
    await clamd.stop();
    // The capture twice: six messages, and still one error line.
    const result = runCli(['read', '--config', config, CAPTURE, CAPTURE]);
    assert.equal(result.status, 0, result.stderr);
    const records = transactions(result.records);
    assert.equal(records.length, 6);
    for (const record of records) {
      assert.deepEqual(record.mailtap.scan, {
        clamav: { status: 'not_scanned', reason: 'unavailable' },
        skipped_reason: 'unavailable',
      });
    }
    assert.equal(result.records.filter((r) => r.rule?.name === 'virus_found').length, 0);
    const errors = errorLines(result.stderr);
    assert.equal(errors.length, 1, result.stderr);
    assert.match(errors[0] as string, /cannot reach clamd at .*clamd\.sock/);
    assert.match(result.stderr, /scan: clamav 0 scanned, 0 infected, 6 not scanned \(unavailable 6\)\n/);
  });
});

describe('clamd that accepts connections and never answers', () => {
  let server: Server;
  let dir: string;
  const sockets = new Set<Socket>();
  let connections = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mt8-scan-slow-'));
    server = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.resume();
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(join(dir, 'slow.sock'), resolve));
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  // The first message times out, the others skip clamd for retry_after, and one error is logged.
  test('timeout marks clamd down', async () => {
    const config = writeScanConfig(dir, `  clamav: ${join(dir, 'slow.sock')}\n  timeout: 0.5\n  concurrency: 1\n`);
    // runCli would block this thread, and with it the fake server, so the CLI runs asynchronously.
    const child = spawn(process.execPath, [CLI, 'read', '--config', config, CAPTURE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(status, 0, stderr);
    const records = transactions(stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Fields));
    assert.deepEqual(
      records.map((r) => r.mailtap.scan.clamav),
      [
        { status: 'not_scanned', reason: 'timeout' },
        { status: 'not_scanned', reason: 'timeout' },
        { status: 'not_scanned', reason: 'timeout' },
      ],
    );
    // Only the first message waited for the silent clamd; the other two skipped it.
    assert.equal(connections, 1);
    assert.equal(errorLines(stderr).length, 1, stderr);
    assert.match(stderr, /did not answer within 500 ms/);
  });
});
