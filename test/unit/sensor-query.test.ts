/**
 * Store queries over the control socket. The expected rows are those of the same EventStore
 * read directly, so the socket must add and lose nothing. This includes long results that take
 * several replies of at most MAX_QUERY_EVENTS events.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isoTime, type EcsEvent } from '../../src/events/ecs.js';
import { startControlServer, type ControlServer } from '../../src/sensor/control.js';
import { MAX_QUERY_EVENTS, SocketStoreReader, serveQuery, type StoreQueries } from '../../src/sensor/query.js';
import { EventStore, type RangeQuery } from '../../src/store/index.js';
import { sampleStats } from './sensor-fixtures.js';

/** More than two replies' worth of events. */
const COUNT = 2 * MAX_QUERY_EVENTS + 1000;
const BASE = 1_767_225_600; // 2026-01-01T00:00:00Z

/**
 * Event i: 7 events share each @timestamp, so reply boundaries fall inside a timestamp, and the
 * timestamps are shuffled against the sequence (7919 is prime to COUNT), so time order is not
 * sequence order. Every fifth is an alert; three devices take turns.
 */
function event(i: number): EcsEvent {
  const alert = i % 5 === 0;
  return {
    '@timestamp': isoTime(BASE + Math.floor(((i * 7919) % COUNT) / 7)),
    event: { kind: alert ? 'alert' : 'event', dataset: alert ? 'mailtap.alert' : 'mailtap.smtp', id: `e-${i}` },
    source: { ip: `10.0.0.${(i % 3) + 1}` },
  } as unknown as EcsEvent;
}

async function collect(events: AsyncIterable<EcsEvent>): Promise<EcsEvent[]> {
  const out: EcsEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** Sends raw text and returns the whole reply. */
function exchange(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path, () => socket.write(text));
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('close', () => resolve(reply));
    socket.on('error', reject);
  });
}

describe('store queries on the control socket', () => {
  let dir: string;
  let store: EventStore;
  let server: ControlServer;
  let reader: SocketStoreReader;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailtap-query-'));
    store = await EventStore.open(join(dir, 'db'));
    for (let start = 0; start < COUNT; start += 1000) {
      await store.append(Array.from({ length: Math.min(1000, COUNT - start) }, (_, k) => event(start + k)));
    }
    await store.putDevice({ key: 'ip:10.0.0.1', label: 'one' } as never);
    server = await startControlServer(join(dir, 'control.sock'), () => sampleStats(), store);
    reader = new SocketStoreReader(server.path);
  });

  after(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const middle = isoTime(BASE + Math.floor(COUNT / 7 / 3));
  const late = isoTime(BASE + Math.floor((2 * COUNT) / 7 / 3));
  const queries: [string, RangeQuery][] = [
    ['everything, in sequence order', {}],
    ['since a time, from the time index', { sinceTime: middle }],
    ['between two times', { sinceTime: middle, untilTime: late }],
    ['alerts since a time', { dataset: 'mailtap.alert', sinceTime: middle }],
    ['one device', { device: '10.0.0.2' }],
    ['one device since a time', { device: 'ip:10.0.0.3', sinceTime: middle }],
    ['a limit just above one reply', { limit: MAX_QUERY_EVENTS + 1 }],
    ['after a sequence, with a limit', { sinceSequence: 3000, limit: 7000 }],
    ['a time-ordered query with a limit', { sinceTime: middle, limit: MAX_QUERY_EVENTS + 3 }],
  ];
  for (const [name, query] of queries) {
    it(`range matches store: ${name}`, async () => {
      const expected = await collect(store.range(query));
      const got = await collect(reader.range(query));
      assert.ok(expected.length > 0);
      assert.deepEqual(
        got.map((e) => e.event.sequence),
        expected.map((e) => e.event.sequence),
      );
      assert.deepEqual(got, expected);
    });
  }

  it('get, devices, newestTimestamp match store', async () => {
    assert.deepEqual(await reader.get('e-17'), await store.get('e-17'));
    assert.equal(await reader.get('no-such-id'), undefined);
    assert.deepEqual(await reader.devices(), [{ key: 'ip:10.0.0.1', label: 'one' }]);
    assert.equal(await reader.newestTimestamp(), isoTime(BASE + Math.floor((COUNT - 1) / 7)));
  });

  it('range reply capped, more set', async () => {
    const reply = await exchange(server.path, JSON.stringify({ query: 'range', limit: MAX_QUERY_EVENTS * 10 }) + '\n');
    const lines = reply.trimEnd().split('\n');
    assert.equal(lines.length, MAX_QUERY_EVENTS + 1);
    assert.deepEqual(JSON.parse(lines.at(-1) as string), { end: true, count: MAX_QUERY_EVENTS, more: true });
  });

  it('invalid request gets error line', async () => {
    for (const request of ['{"query":"delete","id":"e-1"}', '{"query":"range","limit":-1}', '{"query":"get"}', '{not json']) {
      const reply = await exchange(server.path, request + '\n');
      assert.match(reply, /^\{"error":"[^\n]+"\}\n$/, request);
    }
    // The store is unchanged: no request writes to it.
    assert.equal(store.nextSequence, COUNT + 1);
  });

  it('status works beside store queries', async () => {
    assert.equal(JSON.parse(await exchange(server.path, 'status\n')).packets, sampleStats().packets);
  });

  it('storeless server rejects queries', async () => {
    const bare = await startControlServer(join(dir, 'bare.sock'), () => sampleStats());
    try {
      const reply = await exchange(bare.path, '{"query":"devices"}\n');
      assert.equal(reply, '{"error":"this sensor has no event store to query"}\n');
    } finally {
      await bare.close();
    }
  });
});

describe('store query to non-reading client', () => {
  it('reads store at socket pace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailtap-query-slow-'));
    const padding = 'x'.repeat(2000);
    let pulled = 0;
    const store: StoreQueries = {
      async *range() {
        for (let i = 1; i <= MAX_QUERY_EVENTS; i++) {
          pulled++;
          yield { '@timestamp': isoTime(BASE), event: { sequence: i }, message: padding } as unknown as EcsEvent;
        }
      },
      get: async () => undefined,
      devices: async () => [],
      newestTimestamp: async () => undefined,
    };
    const server = createServer((socket) => {
      socket.once('data', (chunk) => void serveQuery(socket, chunk.toString('utf8').trim(), store));
    });
    const path = join(dir, 'slow.sock');
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const client = createConnection(path);
    try {
      client.pause();
      client.write('{"query":"range"}\n');
      await new Promise((resolve) => setTimeout(resolve, 500));
      // About 10 MB of events are waiting; the socket buffers take a few hundred KB of them.
      assert.ok(pulled < MAX_QUERY_EVENTS / 4, `pulled ${pulled} events`);
      let reply = '';
      client.setEncoding('utf8');
      client.on('data', (chunk: string) => (reply += chunk));
      client.resume();
      await new Promise((resolve) => client.on('close', resolve));
      const lines = reply.trimEnd().split('\n');
      assert.equal(lines.length, MAX_QUERY_EVENTS + 1);
      assert.deepEqual(JSON.parse(lines.at(-1) as string), { end: true, count: MAX_QUERY_EVENTS, more: false });
    } finally {
      client.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
