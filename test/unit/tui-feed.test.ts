import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { configSchema } from '../../src/config/schema.js';
import { FeedServer } from '../../src/feed/index.js';
import { EventStore } from '../../src/store/index.js';
import { FeedClient } from '../../src/tui/feed.js';
import type { EcsEvent } from '../../src/events/ecs.js';

/**
 * A small feed server that implements the sensor's protocol: hello with last_seq, then on subscribe
 * the stored events after `since`, `live`, and a stats message. Stored events are seq 1..N.
 */
class FakeFeed {
  readonly server: WebSocketServer;
  readonly subscriptions: Array<{ since?: number; authorization?: string }> = [];
  stored = 10;
  /** last_seq of the hello when it differs from `stored`. */
  helloLastSeq: number | undefined;
  sockets: WebSocket[] = [];

  constructor() {
    this.server = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/v1/events' });
    this.server.on('connection', (socket, request) => {
      this.sockets.push(socket);
      const authorization = request.headers.authorization;
      socket.send(JSON.stringify({ type: 'hello', version: '0.1.0', sensor: 'fake', last_seq: this.helloLastSeq ?? this.stored }));
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; since?: number };
        if (message.type !== 'subscribe') return;
        this.subscriptions.push({ since: message.since, authorization });
        if ((message.since ?? 0) > this.stored) {
          socket.send(JSON.stringify({ type: 'live', seq: this.stored, reset: true }));
          return;
        }
        for (let seq = (message.since ?? this.stored) + 1; seq <= this.stored; seq++) {
          socket.send(JSON.stringify({ type: 'event', seq, event: ecs(seq) }));
        }
        socket.send(JSON.stringify({ type: 'live', seq: this.stored }));
        socket.send(JSON.stringify({ type: 'stats', stats: { sensor: 'fake', packets: 42 } }));
      });
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/events`;
  }

  /** Stores one more event and sends it to every open connection. */
  publish(): void {
    this.stored++;
    for (const socket of this.sockets) {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'event', seq: this.stored, event: ecs(this.stored) }));
    }
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function ecs(seq: number, id = `E${seq}`): EcsEvent {
  return {
    '@timestamp': '2026-12-04T18:00:00.000Z',
    event: { kind: 'event', category: [], type: [], dataset: 'mailtap.smtp', action: 'smtp-transaction', id, sequence: seq },
  };
}

const TOKEN = 'tui-feed-token-0123456789';

/** Starts a real feed server on `port` (0: any) with a new store in a temp dir. */
async function sensorFeed(port = 0): Promise<{ feed: FeedServer; store: EventStore; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'mailtap-tui-feed-'));
  const store = await EventStore.open(dir);
  const config = configSchema.parse({ sensor: { name: 'tui-test' }, feed: { listen: `127.0.0.1:${port}`, tokens: [TOKEN] } });
  const feed = await FeedServer.start({ config, store });
  return { feed, store, dir };
}

/** Stores the events (the store numbers them), then publishes them, as the sensor does. */
async function store(sensor: { feed: FeedServer; store: EventStore }, ids: string[]): Promise<void> {
  const events = ids.map((id) => {
    const event = ecs(0, id);
    delete event.event.sequence;
    return event;
  });
  await sensor.store.append(events);
  for (const event of events) sensor.feed.event(event);
}

async function stopSensor(sensor: { feed: FeedServer; store: EventStore; dir: string }): Promise<void> {
  await sensor.feed.close();
  await sensor.store.close();
  await rm(sensor.dir, { recursive: true, force: true });
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('FeedClient', () => {
  const feeds: FakeFeed[] = [];
  after(async () => {
    for (const feed of feeds) await feed.close();
  });

  it('replays, goes live and resumes', async () => {
    const feed = new FakeFeed();
    feeds.push(feed);
    await new Promise((resolve) => feed.server.once('listening', resolve));
    const ids: string[] = [];
    let packets = 0;
    const client = new FeedClient({
      url: feed.url,
      token: 'secret-token',
      onEvent: (event) => ids.push(event.event.id),
      onStats: (stats) => (packets = stats.packets),
      minBackoffMs: 20,
      initialReplay: 3,
    });
    client.start();
    await until(() => client.state === 'live' && packets === 42);
    // First connection: since = last_seq 10 minus the initial replay of 3.
    assert.deepEqual(feed.subscriptions[0], { since: 7, authorization: 'Bearer secret-token' });
    assert.deepEqual(ids, ['E8', 'E9', 'E10']);
    feed.publish();
    await until(() => ids.length === 4);
    assert.equal(client.lastSeq, 11);

    // The server drops the connection; two events are stored while the client is away.
    feed.sockets[0].close(4000, 'slow consumer');
    await until(() => client.state.startsWith('disconnected') || client.connections === 2);
    feed.stored += 2;
    await until(() => client.connections === 2 && client.state === 'live');
    assert.equal(feed.subscriptions[1].since, 11);
    assert.deepEqual(ids, ['E8', 'E9', 'E10', 'E11', 'E12', 'E13']);
    client.stop();
  });

  it('skips events it already has', async () => {
    const feed = new FakeFeed();
    feeds.push(feed);
    await new Promise((resolve) => feed.server.once('listening', resolve));
    const ids: string[] = [];
    const client = new FeedClient({ url: feed.url, onEvent: (event) => ids.push(event.event.id), initialReplay: 2 });
    client.start();
    await until(() => client.state === 'live');
    // A server that resends an event the client already received (seq 10) is not counted twice.
    feed.sockets[0].send(JSON.stringify({ type: 'event', seq: 10, event: ecs(10) }));
    feed.sockets[0].send('not json');
    feed.publish();
    await until(() => ids.length === 3);
    assert.deepEqual(ids, ['E9', 'E10', 'E11']);
    assert.equal(client.invalidMessages, 1);
    client.stop();
  });

  it('follows a sensor restarted on a new store', async () => {
    const first = await sensorFeed();
    await store(first, ['old-1', 'old-2', 'old-3', 'old-4', 'old-5']);
    const ids: string[] = [];
    const client = new FeedClient({ url: first.feed.url, token: TOKEN, onEvent: (event) => ids.push(event.event.id), minBackoffMs: 20 });
    client.start();
    await until(() => client.state === 'live' && ids.length === 5);
    assert.equal(client.lastSeq, 5);

    // The sensor restarts on the same port with an empty store: its numbers start at 1 again.
    const port = first.feed.address.port;
    await stopSensor(first);
    const second = await sensorFeed(port);
    try {
      await store(second, ['new-1', 'new-2']);
      await until(() => client.connections === 2 && client.state === 'live');
      await store(second, ['new-3']);
      await until(() => ids.length === 8);
      assert.deepEqual(ids, ['old-1', 'old-2', 'old-3', 'old-4', 'old-5', 'new-1', 'new-2', 'new-3']);
      assert.equal(client.lastSeq, 3);
      assert.equal(client.resets, 1);
    } finally {
      client.stop();
      await stopSensor(second);
    }
  });

  it('accepts lower numbers after a live reset', async () => {
    const feed = new FakeFeed();
    feeds.push(feed);
    await new Promise((resolve) => feed.server.once('listening', resolve));
    const ids: string[] = [];
    const client = new FeedClient({ url: feed.url, onEvent: (event) => ids.push(event.event.id), minBackoffMs: 20, initialReplay: 2 });
    client.start();
    await until(() => client.state === 'live' && ids.length === 2);
    // The server's store now ends at 3, though its hello claims 20, so only the live reset shows the change.
    feed.stored = 3;
    feed.helloLastSeq = 20;
    feed.sockets[0].close(1001, 'sensor shutting down');
    await until(() => client.connections === 2 && client.state === 'live');
    assert.equal(feed.subscriptions[1]?.since, 10);
    feed.publish();
    await until(() => ids.length === 3);
    assert.deepEqual(ids, ['E9', 'E10', 'E4']);
    assert.equal(client.lastSeq, 4);
    client.stop();
  });

  it('reports a rejected or missing token', async () => {
    const sensor = await sensorFeed();
    const wrong = new FeedClient({ url: sensor.feed.url, token: `${TOKEN}-wrong`, onEvent: () => {}, minBackoffMs: 20, maxBackoffMs: 5000 });
    const missing = new FeedClient({ url: sensor.feed.url, onEvent: () => {}, minBackoffMs: 20, maxBackoffMs: 5000 });
    try {
      wrong.start();
      missing.start();
      await until(() => wrong.state === 'disconnected' && missing.state === 'disconnected');
      assert.equal(wrong.lastError, 'the sensor refused the token (HTTP 401)');
      assert.equal(wrong.tokenRejected, true);
      // A rejected token is retried at the slowest rate.
      assert.match(wrong.describe(), /^the sensor refused the token \(HTTP 401\), retrying in [45] s$/);
      assert.equal(missing.lastError, 'the sensor requires a token (HTTP 401): give --token');
    } finally {
      wrong.stop();
      missing.stop();
      await stopSensor(sensor);
    }
  });

  it('reports the countdown while away', async () => {
    const client = new FeedClient({ url: 'ws://127.0.0.1:9/v1/events', onEvent: () => {}, minBackoffMs: 3000 });
    client.start();
    await until(() => client.state === 'disconnected');
    assert.match(client.describe(), /^disconnected, retrying in [23] s/);
    client.stop();
  });
});
