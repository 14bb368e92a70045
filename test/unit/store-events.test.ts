import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Level } from 'level';
import type { Device } from '../../src/devices/types.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { EventStore } from '../../src/store/index.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailtap-store-'));
  dirs.push(dir);
  return dir;
}

/** Builds a transaction event at `iso`, sent from `ip`/`mac` by the device with `key`. */
function smtpEvent(id: string, iso: string, ip = '10.0.0.5', mac = 'AA-BB-CC-00-00-05', key = 'mac:aa:bb:cc:00:00:05'): EcsEvent {
  return {
    '@timestamp': iso,
    event: {
      kind: 'event',
      category: ['email', 'network'],
      type: ['info', 'protocol'],
      dataset: 'mailtap.smtp',
      action: 'smtp-transaction',
      id,
    },
    source: { ip, port: 40000, mac },
    mailtap: { device: { key } },
  };
}

function alertEvent(id: string, iso: string, count: number): EcsEvent {
  return {
    '@timestamp': iso,
    event: {
      kind: 'alert',
      category: ['email', 'network'],
      type: ['info'],
      dataset: 'mailtap.alert',
      action: count === 1 ? 'alert-opened' : 'alert-updated',
      id,
    },
    source: { ip: '10.0.0.9' },
    mailtap: { alert: { count }, device: { key: 'ip:10.0.0.9' } },
  };
}

async function collect(iterable: AsyncIterable<EcsEvent>): Promise<string[]> {
  const ids: string[] = [];
  for await (const event of iterable) ids.push(event.event.id);
  return ids;
}

/** Lists every key of the LevelDB directory, read with a separate handle after the store is closed. */
async function rawKeys(path: string): Promise<string[]> {
  const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
  const keys = await db.keys().all();
  await db.close();
  return keys;
}

test('sequences increase and continue after reopen', async () => {
  const path = await tempDir();
  let store = await EventStore.open(path);
  const first = await store.append([
    smtpEvent('a', '2024-01-01T00:00:00.000000Z'),
    smtpEvent('b', '2024-01-01T00:00:01.000000Z'),
  ]);
  const second = await store.append([smtpEvent('c', '2024-01-01T00:00:02.000000Z')]);
  assert.deepEqual(first, [1, 2]);
  assert.deepEqual(second, [3]);
  await store.close();

  store = await EventStore.open(path);
  const third = await store.append([smtpEvent('d', '2024-01-01T00:00:03.000000Z')]);
  assert.deepEqual(third, [4]);
  assert.equal((await store.get('d'))?.event.sequence, 4);
  assert.equal((await store.get('a'))?.event.sequence, 1);
  await store.close();
});

test('same events appended twice are stored once', async () => {
  const path = await tempDir();
  const store = await EventStore.open(path);
  const batch = () => [smtpEvent('x-1', '2024-01-01T00:00:00.000000Z'), smtpEvent('x-2', '2024-01-01T00:00:01.000000Z')];
  const first = await store.append(batch());
  const again = await store.append(batch());
  assert.deepEqual(first, [1, 2]);
  assert.deepEqual(again, [1, 2]);
  // A repeat inside one batch is skipped too.
  const inBatch = await store.append([smtpEvent('x-3', '2024-01-01T00:00:02.000000Z'), smtpEvent('x-3', '2024-01-01T00:00:02.000000Z')]);
  assert.deepEqual(inBatch, [3, 3]);
  assert.deepEqual(await collect(store.range()), ['x-1', 'x-2', 'x-3']);
  assert.equal(store.nextSequence, 4);
  await store.close();
});

test('alert update replaces the earlier version', async () => {
  const path = await tempDir();
  const store = await EventStore.open(path);
  await store.append([alertEvent('alert-1', '2024-01-01T00:00:00.000000Z', 1)]);
  await store.append([smtpEvent('tx-1', '2024-01-01T00:00:05.000000Z')]);
  const [updatedSeq] = await store.append([alertEvent('alert-1', '2024-01-01T00:10:00.000000Z', 2)]);
  assert.equal(updatedSeq, 3);

  const stored = await store.get('alert-1');
  assert.deepEqual(stored?.mailtap, { alert: { count: 2 }, device: { key: 'ip:10.0.0.9' } });
  assert.equal(stored?.event.sequence, 3);
  assert.equal(await store.getBySequence(1), undefined);
  assert.deepEqual(await collect(store.range()), ['tx-1', 'alert-1']);
  assert.deepEqual(await collect(store.range({ dataset: 'mailtap.alert' })), ['alert-1']);
  assert.deepEqual(await collect(store.range({ device: '10.0.0.9' })), ['alert-1']);
  await store.close();

  // The old version's time and device index entries are gone with it.
  const keys = await rawKeys(path);
  assert.ok(!keys.includes('time!2024-01-01T00:00:00.000000Z!0000000000000001'));
  assert.ok(!keys.includes('dev!ip:10.0.0.9!0000000000000001'));
  assert.ok(keys.includes('dev!ip:10.0.0.9!0000000000000003'));
});

test('range by time, device and sequence', async () => {
  const path = await tempDir();
  const store = await EventStore.open(path);
  await store.append([
    smtpEvent('t0', '2024-01-01T00:00:00.000000Z'),
    smtpEvent('t1', '2024-01-01T00:01:00.000000Z', '10.0.0.6', 'AA-BB-CC-00-00-06', 'mac:aa:bb:cc:00:00:06'),
    smtpEvent('t2', '2024-01-01T00:02:00.000000Z', '10.0.0.50', '02-00-00-00-00-01', 'ip:10.0.0.50'),
    smtpEvent('t3', '2024-01-01T00:03:00.000000Z'),
  ]);

  // 1704067260 is 2024-01-01T00:01:00Z. The until bound is exclusive.
  assert.deepEqual(await collect(store.range({ sinceTime: 1704067260 })), ['t1', 't2', 't3']);
  assert.deepEqual(await collect(store.range({ sinceTime: 1704067260, untilTime: '2024-01-01T00:03:00.000000Z' })), ['t1', 't2']);
  assert.deepEqual(await collect(store.range({ untilTime: 1704067260 })), ['t0']);

  assert.deepEqual(await collect(store.range({ device: 'mac:aa:bb:cc:00:00:05' })), ['t0', 't3']);
  assert.deepEqual(await collect(store.range({ device: 'AA-BB-CC-00-00-05' })), ['t0', 't3']);
  assert.deepEqual(await collect(store.range({ device: 'aa:bb:cc:00:00:06' })), ['t1']);
  assert.deepEqual(await collect(store.range({ device: '10.0.0.6' })), ['t1']);
  // "ip:10.0.0.5" must not match the entries of 10.0.0.50.
  assert.deepEqual(await collect(store.range({ device: '10.0.0.5' })), ['t0', 't3']);
  assert.deepEqual(await collect(store.range({ device: 'ip:10.0.0.50' })), ['t2']);
  assert.deepEqual(await collect(store.range({ device: '10.0.0.99' })), []);

  assert.deepEqual(await collect(store.range({ sinceSequence: 2 })), ['t2', 't3']);
  assert.deepEqual(await collect(store.range({ sinceSequence: 1, device: '10.0.0.5' })), ['t3']);
  assert.deepEqual(await collect(store.range({ sinceSequence: 1, limit: 2 })), ['t1', 't2']);
  assert.deepEqual(await collect(store.range({ dataset: 'mailtap.alert' })), []);
  await store.close();
});

test('devices are stored and listed', async () => {
  const path = await tempDir();
  let store = await EventStore.open(path);
  const device: Device = {
    key: 'mac:aa:bb:cc:00:00:05',
    mac: 'aa:bb:cc:00:00:05',
    ips: [{ ip: '10.0.0.5', firstSeen: 1, lastSeen: 2 }],
    ehloNames: ['printer'],
    firstSeen: 1,
    lastSeen: 2,
    counters: { sessions: 1, messages: 1, transactions: 1, recipients: 1, rejectedRecipients: 0, bytes: 100 },
    isRouter: false,
  };
  await store.putDevice(device);
  await store.putDevice({ ...device, lastSeen: 9 });
  await store.close();
  store = await EventStore.open(path);
  assert.deepEqual(await store.devices(), [{ ...device, lastSeen: 9 }]);
  await store.close();
});

test('sweep removes old events and their index entries', async () => {
  const path = await tempDir();
  const store = await EventStore.open(path);
  await store.append([
    smtpEvent('old-1', '2024-01-01T00:00:00.000000Z'),
    alertEvent('old-alert', '2024-01-01T00:00:30.000000Z', 1),
    smtpEvent('new-1', '2024-01-01T01:00:00.000000Z'),
    smtpEvent('new-2', '2024-01-01T01:30:00.000000Z'),
  ]);
  // Now is 2024-01-01T02:00:00Z (1704074400), so one hour of age keeps 01:00 and 01:30.
  const result = await store.sweep({ maxAgeSeconds: 3600 }, 1704074400);
  assert.equal(result.deleted, 2);
  assert.equal(await store.get('old-1'), undefined);
  assert.equal(await store.get('old-alert'), undefined);
  assert.equal((await store.get('new-1'))?.event.sequence, 3);
  assert.deepEqual(await collect(store.range()), ['new-1', 'new-2']);
  assert.deepEqual(await collect(store.range({ device: '10.0.0.5' })), ['new-1', 'new-2']);

  // The maxBytes limit then deletes the oldest remaining event.
  const oneEventBytes = store.storedBytes / 2;
  assert.deepEqual(await store.sweep({ maxBytes: oneEventBytes + 1 }, 1704074400), { deleted: 1 });
  assert.deepEqual(await collect(store.range()), ['new-2']);
  await store.close();

  const keys = await rawKeys(path);
  const eventKeys = keys.filter((key) => !key.startsWith('meta!'));
  assert.deepEqual(eventKeys.sort(), [
    'dev!ip:10.0.0.5!0000000000000004',
    'dev!mac:aa:bb:cc:00:00:05!0000000000000004',
    'id!new-2',
    'seq!0000000000000004',
    'time!2024-01-01T01:30:00.000000Z!0000000000000004',
  ]);
});

/** Child process that appends batches of two events forever and reports each written batch. */
const WRITER = `
import { EventStore } from ${JSON.stringify(pathToFileURL(resolve('src/store/index.ts')).href)};
const store = await EventStore.open(process.argv[2]);
for (let batch = 0; ; batch++) {
  const events = [0, 1].map((n) => ({
    '@timestamp': new Date(Date.UTC(2024, 0, 1) + batch * 1000).toISOString().replace('Z', '000Z'),
    event: { kind: 'event', category: ['email'], type: ['info'], dataset: 'mailtap.smtp', action: 'smtp-transaction', id: 'b' + batch + '-' + n },
    source: { ip: '10.0.0.5' },
  }));
  const seqs = await store.append(events);
  process.stdout.write('written ' + batch + ' ' + seqs.join(',') + '\\n');
}
`;

test('store reopens after SIGKILL during appends', async () => {
  const path = await tempDir();
  const script = join(await tempDir(), 'writer.mts');
  await writeFile(script, WRITER);
  const child = spawn(process.execPath, ['--import', 'tsx', script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const written: { batch: number; seqs: number[] }[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolveKill, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const [, batch, seqs] = buffered.slice(0, newline).split(' ');
        buffered = buffered.slice(newline + 1);
        written.push({ batch: Number(batch), seqs: seqs.split(',').map(Number) });
      }
      if (written.length >= 200 && !child.killed) {
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL') resolveKill();
      else reject(new Error(`writer exited without SIGKILL: ${stderr}`));
    });
  });
  assert.ok(written.length >= 200);

  const store = await EventStore.open(path);
  for (const { batch, seqs } of written) {
    for (let n = 0; n < 2; n++) {
      const event = await store.get(`b${batch}-${n}`);
      assert.ok(event, `batch ${batch} event ${n} reported written but missing`);
      assert.equal(event.event.sequence, seqs[n]);
    }
  }
  let maxStored = 0;
  for await (const event of store.range()) maxStored = Math.max(maxStored, event.event.sequence ?? 0);
  const lastReported = written.at(-1)!.seqs[1];
  assert.ok(maxStored >= lastReported);
  const [next] = await store.append([smtpEvent('after-kill', '2024-01-02T00:00:00.000000Z')]);
  assert.equal(next, maxStored + 1);
  await store.close();
});

test('appendText returns the JSON of each event with its sequence', async () => {
  const store = await EventStore.open(await tempDir());
  // A subject that spells the placeholder key must not be taken for it.
  const tricky = smtpEvent('t1', '2024-01-01T00:00:00.000000Z');
  tricky.email = { subject: '"sequence":9007199254740991}' };
  const plain = smtpEvent('t2', '2024-01-01T00:00:01.000000Z');
  const first = await store.appendText([tricky, plain]);
  assert.deepEqual(first.sequences, [1, 2]);
  assert.deepEqual(first.texts.map((text) => JSON.parse(text) as EcsEvent), [tricky, plain]);
  assert.equal(first.texts[0], JSON.stringify(tricky));
  assert.equal(tricky.event.sequence, 1);
  // A duplicate gets the stored sequence in its text, and the store keeps the same JSON.
  const again = await store.appendText([smtpEvent('t2', '2024-01-01T00:00:01.000000Z')]);
  assert.equal(again.texts[0], first.texts[1]);
  assert.deepEqual(await store.get('t1'), tricky);
  await store.close();
});
