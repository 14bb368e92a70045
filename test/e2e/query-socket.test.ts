/**
 * The query commands while another process has the store open, as `mailtap live` does. They
 * query that process through its control socket. The expected output is what the same command
 * prints from the closed store with --db, so both ways must agree byte for byte.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { EcsEvent } from '../../src/events/ecs.js';
import { startControlServer, type ControlServer } from '../../src/sensor/control.js';
import { EventStore } from '../../src/store/index.js';
import { sampleStats } from '../unit/sensor-fixtures.js';
import { CLI, REPO, runCli, type Fields } from './cli.js';

const STORY = join(REPO, 'captures', 'story.pcap');
const CONFIG = join(REPO, 'captures', 'story.yaml');

interface Output {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process, which serves the control socket meanwhile. */
function run(args: string[]): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('query commands over the control socket', () => {
  let dir: string;
  let db: string;
  let socket: string;
  let records: Fields[];
  /** Commands and their output from the closed store. */
  const direct = new Map<string, Output>();
  let commands: string[][];

  before(async () => {
    const read = runCli(['read', '--quiet', '--config', CONFIG, STORY]);
    assert.equal(read.status, 0, read.stderr);
    records = read.records;
    dir = await mkdtemp(join(tmpdir(), 'mailtap-query-socket-'));
    db = join(dir, 'db');
    socket = join(dir, 'control.sock');
    const store = await EventStore.open(db);
    await store.append(records as EcsEvent[]);
    await store.close();
    const transaction = records.find((r) => r.event.action === 'smtp-transaction');
    const alert = records.find((r) => r.event.kind === 'alert');
    commands = [
      ['alerts'],
      ['alerts', '--json'],
      ['alerts', '--since', '1h'],
      ['alerts', '--device', 'printer-floor-2', '--json'],
      ['messages', '--device', 'printer-floor-2'],
      ['messages', '--device', '10.98.0.31', '--json'],
      ['messages', '--device', 'printer-floor-2', '--since', '2h', '--to', 'partner.example'],
      ['show', String(transaction?.event.id)],
      ['show', String(alert?.event.id)],
      ['show', 'no-such-id'],
      ['devices'],
      ['devices', '--json'],
    ];
    for (const args of commands) direct.set(args.join(' '), await run([...args, '--db', db]));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('reference output is not empty', () => {
    assert.equal(direct.get('alerts --json')?.stdout.trimEnd().split('\n').length, 8);
    assert.equal(direct.get('messages --device 10.98.0.31 --json')?.stdout.trimEnd().split('\n').length, 303);
    assert.equal(direct.get('show no-such-id')?.status, 1);
  });

  test('socket output matches closed store', async () => {
    const holder = await EventStore.open(db);
    let server: ControlServer | undefined;
    try {
      server = await startControlServer(socket, () => sampleStats(), holder);
      for (const args of commands) {
        const expected = direct.get(args.join(' '));
        const got = await run([...args, '--db', db, '--socket', socket]);
        assert.deepEqual(got, expected, args.join(' '));
      }
      // Without --socket, control.socket of the configuration; store.path from it too.
      const config = join(dir, 'sensor.yaml');
      writeFileSync(config, `store:\n  path: db\ncontrol:\n  socket: ${socket}\n`);
      assert.deepEqual(await run(['alerts', '--config', config]), direct.get('alerts'));
    } finally {
      await server?.close();
      await holder.close();
    }
  });

  test('locked store without sensor fails', async () => {
    const holder = await EventStore.open(db);
    try {
      const missing = join(dir, 'missing.sock');
      for (const args of [['alerts'], ['messages', '--device', '10.98.0.31'], ['show', 'x'], ['devices']]) {
        const result = await run([...args, '--db', db, '--socket', missing]);
        assert.equal(result.status, 1, args.join(' '));
        assert.equal(result.stdout, '');
        assert.equal(
          result.stderr,
          `mailtap: the event store ${db} is in use by another process (a running mailtap holds its LOCK file), ` +
            `and no sensor responds to store queries on ${missing} (ENOENT); stop that process, or pass --socket PATH of the sensor that holds the store\n`,
        );
      }
    } finally {
      await holder.close();
    }
  });
});
