import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { FeedClient } from '../../src/tui/feed.js';
import type { EcsEvent } from '../../src/events/ecs.js';

/**
 * A small feed server that speaks the sensor's protocol: hello with last_seq, then on subscribe
 * the stored events after `since`, `live`, and a stats message. Stored events are seq 1..N.
 */
class FakeFeed {
  readonly server: WebSocketServer;
  readonly subscriptions: Array<{ since?: number; authorization?: string }> = [];
  stored = 10;
  sockets: WebSocket[] = [];

  constructor() {
    this.server = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/v1/events' });
    this.server.on('connection', (socket, request) => {
      this.sockets.push(socket);
      const authorization = request.headers.authorization;
      socket.send(JSON.stringify({ type: 'hello', version: '0.1.0', sensor: 'fake', last_seq: this.stored }));
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; since?: number };
        if (message.type !== 'subscribe') return;
        this.subscriptions.push({ since: message.since, authorization });
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

function ecs(seq: number): EcsEvent {
  return {
    '@timestamp': '2026-12-04T18:00:00.000Z',
    event: { kind: 'event', category: [], type: [], dataset: 'mailtap.smtp', action: 'smtp-transaction', id: `E${seq}`, sequence: seq },
  };
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

  it('reports the countdown while away', async () => {
    const client = new FeedClient({ url: 'ws://127.0.0.1:9/v1/events', onEvent: () => {}, minBackoffMs: 3000 });
    client.start();
    await until(() => client.state === 'disconnected');
    assert.match(client.describe(), /^disconnected, retrying in [23] s/);
    client.stop();
  });
});
