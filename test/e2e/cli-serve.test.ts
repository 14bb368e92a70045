/**
 * `mailtap read --serve`: the built CLI serves the feed, keeps serving after the input ends, and
 * a client that reconnects to a restarted process with since=N gets exactly the events after N.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { CLI, REPO, readRecords, runCli } from './cli.js';

const OFFICE = join(REPO, 'captures', 'office.pcap');
const PRINTER = join(REPO, 'captures', 'printer.pcap');

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  url: string;
  /** Resolves when mailtap prints on stderr that the input is done. */
  done: Promise<void>;
  exited: Promise<number | null>;
  /** Everything mailtap has written to stderr so far. */
  stderr(): string;
}

/** Starts `mailtap read --serve 127.0.0.1:0` and waits for the feed's URL on stderr. */
async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'read', '--quiet', '--serve', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let markDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving the event feed at (\S+)/.exec(stderr);
      if (match) resolve(match[1] as string);
      if (stderr.includes('still serving the feed')) markDone();
    });
    child.once('exit', () => reject(new Error(`mailtap exited early: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  return { child, url, done, exited, stderr: () => stderr };
}

/** Subscribes with `since` and collects events until the live marker. */
async function replay(url: string, since: number): Promise<Array<{ seq: number; id: string }>> {
  const ws = new WebSocket(url);
  const events: Array<{ seq: number; id: string }> = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', since })));
    ws.on('error', reject);
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; seq: number; event: { event: { id: string } } };
      if (message.type === 'event') events.push({ seq: message.seq, id: message.event.event.id });
      if (message.type === 'live') resolve();
    });
  });
  ws.close();
  return events;
}

describe('read --serve', () => {
  test('since=N across a restart yields exactly the events after N', async () => {
    const db = await mkdtemp(join(tmpdir(), 'mailtap-serve-test-'));
    dirs.push(db);
    const officeIds = readRecords(OFFICE).map((r) => r.event.id as string);
    const printerIds = readRecords(PRINTER).map((r) => r.event.id as string);

    const first = await serve(['--db', db, OFFICE]);
    await first.done;
    const all = await replay(first.url, 0);
    assert.deepEqual(all.map((e) => e.id), officeIds);
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);

    const n = all.length;
    const second = await serve(['--db', db, PRINTER]);
    try {
      await second.done;
      const after = await replay(second.url, n);
      assert.deepEqual(after.map((e) => e.id), printerIds);
      assert.deepEqual(after.map((e) => e.seq), printerIds.map((_, i) => n + 1 + i));
      const middle = await replay(second.url, 2);
      assert.deepEqual(middle.map((e) => e.id), [...officeIds.slice(2), ...printerIds]);
    } finally {
      second.child.kill('SIGINT');
      assert.equal(await second.exited, 0);
    }
  });

  test('without --db serves from a temporary store', async () => {
    const served = await serve([OFFICE]);
    try {
      await served.done;
      const events = await replay(served.url, 0);
      assert.deepEqual(events.map((e) => e.id), readRecords(OFFICE).map((r) => r.event.id as string));
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
    }
  });

  test('stats count the packets read', async () => {
    const served = await serve([OFFICE]);
    try {
      await served.done;
      const ws = new WebSocket(served.url);
      const stats = await new Promise<{ packets: number; transactions: number; lastSequence: number }>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', types: ['stats'] })));
        ws.on('error', reject);
        ws.on('message', (data) => {
          const message = JSON.parse(data.toString()) as { type: string; stats: { packets: number; transactions: number; lastSequence: number } };
          if (message.type === 'stats') resolve(message.stats);
        });
      });
      ws.close();
      // captures/README.md: office.pcap has 111 frames.
      assert.equal(stats.packets, 111);
      assert.equal(stats.lastSequence, readRecords(OFFICE).length);
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
    }
  });

  test('rejected logins are logged on stderr', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailtap-serve-test-'));
    dirs.push(dir);
    const config = join(dir, 'mailtap.yaml');
    const token = 'serve-test-token-0123456789';
    await writeFile(config, `feed:\n  tokens: [${token}]\n`);
    const served = await serve(['--config', config, OFFICE]);
    try {
      await served.done;
      for (let i = 0; i < 5; i++) {
        const status = await new Promise<number>((resolve) => {
          const ws = new WebSocket(served.url, { headers: { authorization: `Bearer wrong-${token}` } });
          ws.once('unexpected-response', (_request, response) => {
            resolve(response.statusCode ?? 0);
            ws.terminate();
          });
          ws.once('error', () => undefined);
        });
        assert.equal(status, 401);
      }
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
    }
    const lines = served.stderr().split('\n');
    // Three logins one by one, the other two counted in one line at exit; never the token.
    const single = lines.filter((line) => line.startsWith('mailtap: feed client rejected: missing or wrong token (HTTP 401) (remote=127.0.0.1:'));
    assert.equal(single.length, 3);
    assert.equal(lines.filter((line) => line.includes('feed rejected 2 more clients')).length, 1);
    assert.equal(served.stderr().includes(token), false);
  });

  test('non-loopback address without tokens exits 2', () => {
    const result = runCli(['read', '--quiet', '--serve', '0.0.0.0:0', OFFICE]);
    // Exit status 2 is the one of every other configuration error.
    assert.equal(result.status, 2);
    assert.match(result.stderr, /not serving the feed on 0\.0\.0\.0: it is not a loopback address and feed\.tokens is empty/);
    assert.equal(result.records.length, 0);
  });
});
