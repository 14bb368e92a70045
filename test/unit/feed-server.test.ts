import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { FeedServer, FeedStartError } from '../../src/feed/index.js';
import { EventStore } from '../../src/store/index.js';

const TOKEN = 'test-token-0123456789abcdef';
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailtap-feed-'));
  dirs.push(dir);
  return dir;
}

function feedConfig(feed: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    sensor: { name: 'feed-test' },
    feed: { listen: '127.0.0.1:0', tokens: [TOKEN], ...feed },
    devices: [{ label: 'printer', mac: '30:05:5c:98:00:31', ip: ['10.98.0.31'] }],
  });
}

/** Returns a transaction-like event from `ip`, padded to about `padding` bytes of JSON. */
function smtpEvent(n: number, ip = '10.0.0.5', padding = 0): EcsEvent {
  return {
    '@timestamp': new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString().replace('Z', '000Z'),
    event: { kind: 'event', category: ['email'], type: ['info'], dataset: 'mailtap.smtp', action: 'smtp-transaction', id: `tx-${n}` },
    source: { ip, port: 40000 },
    ...(padding > 0 ? { pad: 'x'.repeat(padding) } : {}),
  };
}

function alertOf(n: number, severity: string): EcsEvent {
  return {
    '@timestamp': new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString().replace('Z', '000Z'),
    event: { kind: 'alert', category: ['email'], type: ['info'], dataset: 'mailtap.alert', action: 'alert-opened', id: `alert-${n}` },
    source: { ip: '10.98.0.31', mac: '30-05-5C-98-00-31' },
    mailtap: { alert: { severity }, device: { key: 'mac:30:05:5c:98:00:31', label: 'printer' } },
  };
}

/** Stores the events, then hands them to the feed, as the sensor does. */
async function publish(store: EventStore, feed: FeedServer, events: EcsEvent[]): Promise<void> {
  await store.append(events);
  for (const event of events) feed.event(event);
}

type Message = { type: string; seq?: number; event?: EcsEvent; error?: string; [key: string]: unknown };

/** A ws client that records every message and its close code. */
class TestClient {
  readonly messages: Message[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  private waiters: Array<() => void> = [];

  constructor(
    readonly ws: WebSocket,
    private readonly parse = true,
  ) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve();
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const text = data.toString();
      // Large tests read only the sequence number, which starts every event message.
      this.messages.push(this.parse ? (JSON.parse(text) as Message) : quickParse(text));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}, parse = true): Promise<TestClient> {
    const client = new TestClient(new WebSocket(url, { headers: { authorization: `Bearer ${TOKEN}` }, ...options }), parse);
    await client.opened;
    return client;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Waits until a message passes `test`, or fails after `ms`. */
  async waitFor(test: (messages: Message[]) => boolean, ms = 10000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test(this.messages)) {
      if (Date.now() > deadline) throw new Error(`timed out; last messages: ${JSON.stringify(this.messages.slice(-3)).slice(0, 400)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  eventSeqs(): number[] {
    return this.messages.filter((m) => m.type === 'event').map((m) => m.seq as number);
  }
}

function quickParse(text: string): Message {
  const match = /^\{"type":"(\w+)"(?:,"seq":(\d+))?/.exec(text);
  if (match === null) return JSON.parse(text) as Message;
  return { type: match[1] as string, ...(match[2] !== undefined ? { seq: Number(match[2]) } : {}) };
}

/** Resolves with the HTTP status of a rejected upgrade. */
function upgradeStatus(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}, protocols?: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.close();
      reject(new Error('the upgrade succeeded'));
    });
    ws.once('error', () => undefined);
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('feed authentication', () => {
  test('handshake without a token gets 401', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      assert.equal(await upgradeStatus(feed.url), 401);
    } finally {
      await feed.close();
    }
  });

  test('handshake with a wrong token gets 401', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      assert.equal(await upgradeStatus(feed.url, { headers: { authorization: `Bearer ${TOKEN}x` } }), 401);
      assert.equal(await upgradeStatus(feed.url, { headers: { authorization: `Basic ${TOKEN}` } }), 401);
      assert.equal(await upgradeStatus(feed.url, {}, ['mailtap.v1', 'mailtap.token.wrong-token-0123456789']), 401);
      assert.equal(feed.counters.rejectedUnauthorized, 3);
    } finally {
      await feed.close();
    }
  });

  test('rejected logins logged, rate limited', async () => {
    const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      info() {},
      warn: (fields: object, message: string) => lines.push({ fields: fields as Record<string, unknown>, message }),
      error() {},
    };
    const feed = await FeedServer.start({ config: feedConfig(), logger });
    try {
      for (let i = 0; i < 10; i++) {
        assert.equal(await upgradeStatus(feed.url, { headers: { authorization: `Bearer wrong-${TOKEN}` } }), 401);
      }
    } finally {
      await feed.close();
    }
    const rejected = lines.filter((line) => line.message.includes('401'));
    // Three lines one by one, then one line with the count of the other seven.
    assert.equal(rejected.length, 4);
    for (const line of rejected.slice(0, 3)) assert.match(String(line.fields.remote), /^127\.0\.0\.1:\d+$/);
    assert.equal(rejected[3]?.fields.count, 7);
    assert.equal(JSON.stringify(lines).includes(TOKEN), false);
  });

  test('bearer token opens and greets', async () => {
    const feed = await FeedServer.start({ config: feedConfig(), version: '9.9.9' });
    try {
      const client = await TestClient.open(feed.url);
      await client.waitFor((m) => m.length >= 1);
      assert.deepEqual(client.messages[0], { type: 'hello', version: '9.9.9', sensor: 'feed-test', last_seq: 0 });
      client.ws.close();
    } finally {
      await feed.close();
    }
  });

  test('token subprotocol selects mailtap.v1', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const ws = new WebSocket(feed.url, ['mailtap.v1', `mailtap.token.${TOKEN}`]);
      const client = new TestClient(ws);
      await client.opened;
      assert.equal(ws.protocol, 'mailtap.v1');
      ws.close();
    } finally {
      await feed.close();
    }
  });

  test('other path gets 404', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const url = feed.url.replace('/v1/events', '/v2/events');
      assert.equal(await upgradeStatus(url, { headers: { authorization: `Bearer ${TOKEN}` } }), 404);
    } finally {
      await feed.close();
    }
  });

  test('non-loopback without tokens rejected', async () => {
    const config = feedConfig({ tokens: [] });
    await assert.rejects(FeedServer.start({ config, listen: { host: '0.0.0.0', port: 0 } }), FeedStartError);
    await assert.rejects(FeedServer.start({ config, listen: { host: '::', port: 0 } }), /not a loopback address/);
  });

  test('loopback without tokens is open', async () => {
    const feed = await FeedServer.start({ config: feedConfig({ tokens: [] }) });
    try {
      const client = new TestClient(new WebSocket(feed.url));
      await client.opened;
      client.ws.close();
    } finally {
      await feed.close();
    }
  });
});

describe('feed delivery', () => {
  test('100 clients in order, stalled one closed', async () => {
    const store = await EventStore.open(await tempDir());
    const feed = await FeedServer.start({ config: feedConfig({ max_buffered: '64KiB' }), store });
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 100; i++) clients.push(await TestClient.open(feed.url, {}, false));
      const stalled = await TestClient.open(feed.url, {}, false);
      for (const client of [...clients, stalled]) client.send({ type: 'subscribe' });
      await Promise.all([...clients, stalled].map((c) => c.waitFor((m) => m.some((x) => x.type === 'live'))));
      stalled.ws.pause();

      // About 4 MB per client, enough to fill the loopback socket buffers of the stalled client.
      const total = 2000;
      for (let n = 1; n <= total; n += 50) {
        await publish(store, feed, range(n, Math.min(total, n + 49)).map((i) => smtpEvent(i, '10.0.0.5', 2000)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(clients.map((c) => c.waitFor((m) => m.filter((x) => x.type === 'event').length >= total, 30000)));
      for (const client of clients) {
        assert.deepEqual(client.eventSeqs(), range(1, total));
        assert.equal(client.closeCode, undefined);
      }
      assert.equal(feed.counters.slowConsumerCloses, 1);

      stalled.ws.resume();
      await stalled.closed;
      assert.equal(stalled.closeCode, 4000);
      const seqs = stalled.eventSeqs();
      const last = seqs.at(-1) as number;
      assert.ok(last < total, `the stalled client got ${last} of ${total} events`);
      assert.deepEqual(seqs, range(1, last));
      assert.equal(stalled.closeReason, `queue full; resume with since=${last}`);
    } finally {
      for (const client of clients) client.ws.terminate();
      await feed.close();
      await store.close();
    }
  });

  test('filters by type, severity and device', async () => {
    const store = await EventStore.open(await tempDir());
    const feed = await FeedServer.start({ config: feedConfig(), store });
    try {
      const alerts = await TestClient.open(feed.url);
      alerts.send({ type: 'subscribe', types: ['alert'], min_severity: 'high' });
      const printer = await TestClient.open(feed.url);
      printer.send({ type: 'subscribe', device: 'printer' });
      const byIp = await TestClient.open(feed.url);
      byIp.send({ type: 'subscribe', device: '10.0.0.6', types: ['smtp-transaction'] });
      await Promise.all([alerts, printer, byIp].map((c) => c.waitFor((m) => m.some((x) => x.type === 'live'))));

      await publish(store, feed, [smtpEvent(1), alertOf(2, 'medium'), smtpEvent(3, '10.98.0.31'), alertOf(4, 'critical'), smtpEvent(5, '10.0.0.6')]);
      await alerts.waitFor((m) => m.some((x) => x.seq === 4));
      await printer.waitFor((m) => m.some((x) => x.seq === 4));
      await byIp.waitFor((m) => m.some((x) => x.seq === 5));
      assert.deepEqual(alerts.eventSeqs(), [4]);
      assert.deepEqual(printer.eventSeqs(), [2, 3, 4]);
      assert.deepEqual(byIp.eventSeqs(), [5]);
      for (const client of [alerts, printer, byIp]) client.ws.close();
    } finally {
      await feed.close();
      await store.close();
    }
  });
});

describe('feed subscriptions', () => {
  test('second subscribe replaces the first', async () => {
    const store = await EventStore.open(await tempDir());
    const feed = await FeedServer.start({ config: feedConfig(), store });
    try {
      await publish(store, feed, [smtpEvent(1), alertOf(2, 'high')]);
      const client = await TestClient.open(feed.url);
      client.send({ type: 'subscribe', types: ['alert'], since: 0 });
      await client.waitFor((m) => m.some((x) => x.type === 'live'));
      client.send({ type: 'subscribe', types: ['smtp-transaction'], since: 0 });
      await client.waitFor((m) => m.filter((x) => x.type === 'live').length === 2);
      await publish(store, feed, [alertOf(3, 'critical'), smtpEvent(4)]);
      await client.waitFor((m) => m.some((x) => x.seq === 4));
      const types = client.messages.map((m) => (m.type === 'event' ? `event ${m.seq}` : m.type));
      assert.deepEqual(types, ['hello', 'event 2', 'live', 'event 1', 'live', 'event 4']);
      client.ws.close();
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('client over max_clients gets 503', async () => {
    const feed = await FeedServer.start({ config: feedConfig({ max_clients: 2 }) });
    try {
      const first = await TestClient.open(feed.url);
      const second = await TestClient.open(feed.url);
      assert.equal(await upgradeStatus(feed.url, { headers: { authorization: `Bearer ${TOKEN}` } }), 503);
      assert.equal(feed.counters.rejectedFull, 1);
      first.ws.close();
      second.ws.close();
    } finally {
      await feed.close();
    }
  });

  test('port in use fails to start', async () => {
    const first = await FeedServer.start({ config: feedConfig() });
    try {
      const config = feedConfig();
      await assert.rejects(FeedServer.start({ config, listen: first.address }), /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

describe('feed replay', () => {
  test('since=N across restart', async () => {
    const dir = await tempDir();
    let store = await EventStore.open(dir);
    let feed = await FeedServer.start({ config: feedConfig(), store });
    await publish(store, feed, range(1, 50).map((n) => smtpEvent(n)));
    await feed.close();
    await store.close();

    store = await EventStore.open(dir);
    feed = await FeedServer.start({ config: feedConfig(), store });
    try {
      const client = await TestClient.open(feed.url);
      await client.waitFor((m) => m.length >= 1);
      assert.equal(client.messages[0]?.last_seq, 50);
      client.send({ type: 'subscribe', since: 20 });
      await client.waitFor((m) => m.some((x) => x.type === 'live'));
      await publish(store, feed, range(51, 60).map((n) => smtpEvent(n)));
      await client.waitFor((m) => m.some((x) => x.seq === 60));

      assert.deepEqual(client.eventSeqs(), range(21, 60));
      const live = client.messages.findIndex((m) => m.type === 'live');
      assert.deepEqual(client.messages[live], { type: 'live', seq: 50 });
      assert.equal(client.messages[live - 1]?.seq, 50);
      assert.equal(client.messages[live + 1]?.seq, 51);
      assert.equal(client.messages.find((m) => m.seq === 21)?.event?.event.id, 'tx-21');
      client.ws.close();
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('replay hands over to live without gap or duplicate', async () => {
    const store = await EventStore.open(await tempDir());
    const feed = await FeedServer.start({ config: feedConfig({ max_buffered: '8MiB' }), store });
    try {
      await publish(store, feed, range(1, 2000).map((n) => smtpEvent(n)));
      const client = await TestClient.open(feed.url, {}, false);
      let n = 2000;
      let producing = true;
      // Events keep arriving while the replay reads the store.
      const producer = (async () => {
        while (producing) {
          const batch = range(n + 1, n + 20);
          n += 20;
          await publish(store, feed, batch.map((i) => smtpEvent(i)));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      client.send({ type: 'subscribe', since: 0 });
      await client.waitFor((m) => m.some((x) => x.type === 'live'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      producing = false;
      await producer;
      await client.waitFor((m) => m.some((x) => x.seq === n));
      assert.ok(n > 2000, 'events were produced during the replay');
      assert.deepEqual(client.eventSeqs(), range(1, n));
      client.ws.close();
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('since above last sequence resets', async () => {
    const store = await EventStore.open(await tempDir());
    const feed = await FeedServer.start({ config: feedConfig(), store });
    try {
      await publish(store, feed, range(1, 5).map((n) => smtpEvent(n)));
      const client = await TestClient.open(feed.url);
      // A client of a sensor that started over on a new store still remembers sequence 999999.
      client.send({ type: 'subscribe', since: 999999 });
      await client.waitFor((m) => m.some((x) => x.type === 'live'));
      assert.deepEqual(client.messages.find((m) => m.type === 'live'), { type: 'live', seq: 5, reset: true });
      await publish(store, feed, [smtpEvent(6), smtpEvent(7)]);
      await client.waitFor((m) => m.some((x) => x.seq === 7));
      assert.deepEqual(client.eventSeqs(), [6, 7]);
      client.ws.close();
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('replay under fast stream catches up', async () => {
    const store = await EventStore.open(await tempDir());
    // 64 KiB: the live events that arrive during the replay pass the limit many times over.
    const feed = await FeedServer.start({ config: feedConfig({ max_buffered: '64KiB' }), store });
    try {
      await publish(store, feed, range(1, 1000).map((n) => smtpEvent(n, '10.0.0.5', 500)));
      const client = await TestClient.open(feed.url, {}, false);
      let n = 1000;
      let producing = true;
      const producer = (async () => {
        while (producing && n < 8000) {
          const batch = range(n + 1, n + 50);
          n += 50;
          await publish(store, feed, batch.map((i) => smtpEvent(i, '10.0.0.5', 500)));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      client.send({ type: 'subscribe', since: 0 });
      await client.waitFor((m) => m.some((x) => x.type === 'live') || client.closeCode !== undefined, 30000);
      producing = false;
      await producer;
      await client.waitFor((m) => m.some((x) => x.seq === n) || client.closeCode !== undefined, 30000);
      assert.equal(client.closeCode, undefined, `closed: ${client.closeReason}`);
      assert.deepEqual(client.eventSeqs(), range(1, n));
      assert.ok(feed.counters.replayOverflows > 0, 'the collected live events overflowed at least once');
      client.ws.close();
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('stalled replaying client closed with 4000', async () => {
    const store = await EventStore.open(await tempDir());
    // Half a heartbeat (0.5 s) without progress closes the replay, before the heartbeat drops the client.
    const feed = await FeedServer.start({ config: feedConfig({ max_buffered: '64KiB', heartbeat: 1 }), store });
    try {
      await publish(store, feed, range(1, 3000).map((n) => smtpEvent(n, '10.0.0.5', 2000)));
      const client = await TestClient.open(feed.url, {}, false);
      client.ws.pause();
      client.send({ type: 'subscribe', since: 0 });
      const deadline = Date.now() + 10000;
      while (feed.counters.slowConsumerCloses === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(feed.counters.slowConsumerCloses, 1);
      client.ws.resume();
      await client.closed;
      assert.equal(client.closeCode, 4000);
      const seqs = client.eventSeqs();
      const last = seqs.at(-1) as number;
      assert.ok(last < 3000, `the stalled client got ${last} of 3000 events`);
      assert.deepEqual(seqs, range(1, last));
      assert.equal(client.closeReason, `queue full; resume with since=${last}`);
      assert.equal(feed.counters.deadClients, 0);
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('since without a store gets no_store and live events', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const client = await TestClient.open(feed.url);
      client.send({ type: 'subscribe', since: 5 });
      await client.waitFor((m) => m.some((x) => x.type === 'live'));
      assert.equal(client.messages[1]?.error, 'no_store');
      feed.event(smtpEvent(1));
      await client.waitFor((m) => m.some((x) => x.type === 'event'));
      assert.deepEqual(client.eventSeqs(), [1]);
      client.ws.close();
    } finally {
      await feed.close();
    }
  });
});

describe('feed malformed messages', () => {
  const replies: Array<[string, string, string]> = [
    ['invalid JSON', '{"type":', 'invalid_json'],
    ['array', '[1,2]', 'invalid_message'],
    ['missing type', '{"since":1}', 'invalid_message'],
    ['unknown type', '{"type":"unsubscribe"}', 'unknown_type'],
    ['negative since', '{"type":"subscribe","since":-1}', 'invalid_subscribe'],
    ['fractional since', '{"type":"subscribe","since":1.5}', 'invalid_subscribe'],
    ['unknown event type', '{"type":"subscribe","types":["smtp-everything"]}', 'invalid_subscribe'],
    ['types not an array', '{"type":"subscribe","types":"alert"}', 'invalid_subscribe'],
    ['bad severity', '{"type":"subscribe","min_severity":"urgent"}', 'invalid_subscribe'],
    ['empty device', '{"type":"subscribe","device":""}', 'invalid_subscribe'],
  ];

  for (const [name, text, code] of replies) {
    test(`${name} gets error ${code}`, async () => {
      const feed = await FeedServer.start({ config: feedConfig() });
      try {
        const client = await TestClient.open(feed.url);
        client.send(text);
        await client.waitFor((m) => m.some((x) => x.type === 'error'));
        assert.equal(client.messages[1]?.error, code);
        assert.equal(typeof client.messages[1]?.message, 'string');
        // The connection still works: a valid subscribe gets the live marker.
        client.send({ type: 'subscribe' });
        await client.waitFor((m) => m.some((x) => x.type === 'live'));
        client.ws.close();
      } finally {
        await feed.close();
      }
    });
  }

  test('binary frame closes with 1008', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const client = await TestClient.open(feed.url);
      client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      await client.closed;
      assert.equal(client.closeCode, 1008);
    } finally {
      await feed.close();
    }
  });

  test('message over max_payload closes with 1009', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const client = await TestClient.open(feed.url);
      client.send({ type: 'subscribe', device: 'x'.repeat(5000) });
      await client.closed;
      assert.equal(client.closeCode, 1009);
    } finally {
      await feed.close();
    }
  });

  test('subscribe flood closes with 1008', async () => {
    const store = await EventStore.open(await tempDir());
    const feed = await FeedServer.start({ config: feedConfig(), store });
    try {
      await publish(store, feed, range(1, 100).map((n) => smtpEvent(n)));
      const client = await TestClient.open(feed.url, {}, false);
      for (let i = 0; i < 31; i++) client.send({ type: 'subscribe', since: 0 });
      await client.closed;
      assert.equal(client.closeCode, 1008);
      assert.equal(client.closeReason, 'too many subscribe messages');
    } finally {
      await feed.close();
      await store.close();
    }
  });

  test('eleven invalid messages close with 1008', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const client = await TestClient.open(feed.url);
      for (let i = 0; i < 11; i++) client.send('nonsense');
      await client.closed;
      assert.equal(client.closeCode, 1008);
      assert.equal(client.messages.filter((m) => m.type === 'error').length, 10);
      // The server goes on: a new client is greeted.
      const next = await TestClient.open(feed.url);
      await next.waitFor((m) => m.length >= 1);
      assert.equal(next.messages[0]?.type, 'hello');
      next.ws.close();
    } finally {
      await feed.close();
    }
  });
});

describe('feed lifecycle', () => {
  test('wss with cert and key from the config', async () => {
    const dir = await tempDir();
    const cert = join(dir, 'feed.crt');
    const key = join(dir, 'feed.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const feed = await FeedServer.start({ config: feedConfig({ tls: { cert, key } }) });
    try {
      assert.match(feed.url, /^wss:\/\/127\.0\.0\.1:\d+\/v1\/events$/);
      const client = await TestClient.open(feed.url, { ca: await readFile(cert) });
      await client.waitFor((m) => m.length >= 1);
      assert.equal(client.messages[0]?.type, 'hello');
      client.ws.close();
      // The certificate is checked: a client that does not trust it fails.
      await assert.rejects(TestClient.open(feed.url), /self-signed|certificate/);
    } finally {
      await feed.close();
    }
  });


  test('client without pongs is dropped', async () => {
    const feed = await FeedServer.start({ config: feedConfig({ heartbeat: 0.2 }) });
    try {
      const client = await TestClient.open(feed.url);
      client.ws.pause();
      const deadline = Date.now() + 5000;
      while (feed.counters.deadClients === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(feed.counters.deadClients, 1);
      assert.equal(feed.clientCount, 0);
    } finally {
      await feed.close();
    }
  });

  test('close sends 1001 to clients', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    const client = await TestClient.open(feed.url);
    await feed.close();
    await client.closed;
    assert.equal(client.closeCode, 1001);
  });

  test('stats go to subscribers of stats only', async () => {
    const feed = await FeedServer.start({ config: feedConfig() });
    try {
      const withStats = await TestClient.open(feed.url);
      withStats.send({ type: 'subscribe', types: ['stats'] });
      const without = await TestClient.open(feed.url);
      without.send({ type: 'subscribe', types: ['alert'] });
      await Promise.all([withStats, without].map((c) => c.waitFor((m) => m.some((x) => x.type === 'live'))));
      feed.stats({ sensor: 'feed-test', packets: 7 } as never);
      await withStats.waitFor((m) => m.some((x) => x.type === 'stats'));
      assert.equal((withStats.messages.at(-1)?.stats as { packets: number }).packets, 7);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(without.messages.some((m) => m.type === 'stats'), false);
      withStats.ws.close();
      without.ws.close();
    } finally {
      await feed.close();
    }
  });
});
