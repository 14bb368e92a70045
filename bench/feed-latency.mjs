#!/usr/bin/env node
// Measures the feed's alert latency: the time from handing the packet that carries QUIT to the
// pipeline until each of 100 WebSocket clients (in a child process) has received the alert that
// the session raises. Packets are built here and paced in real time: each session is a device
// that sends SMTP straight to an external server, which the relay_bypass rule reports when the
// session ends. The path is the one of the sensor: pipeline, analyzer, store, feed.
// Writes its section of docs/benchmarks.md between the feed-latency markers.
//
// Usage (after npm run build): node bench/feed-latency.mjs [--clients 100] [--sessions 300]
//   [--rate 30] [--no-store] [--no-docs]
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DOCS_PATH = join(REPO_ROOT, 'docs', 'benchmarks.md');
const BEGIN = '<!-- feed-latency:begin -->';
const END = '<!-- feed-latency:end -->';
/** Target of the p99 latency at 100 clients, in milliseconds. */
const TARGET_P99_MS = 100;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes. */
const nowMs = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- the clients (child process)

async function runClients(url, count) {
  const { WebSocket } = await import('ws');
  /** Per client: alert id -> receipt time. */
  const receipts = [];
  const sockets = [];
  await Promise.all(
    Array.from({ length: count }, (_, index) => {
      const received = new Map();
      receipts.push(received);
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        sockets.push(ws);
        ws.on('error', reject);
        ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe' })));
        ws.on('message', (data) => {
          const text = data.toString();
          if (text.startsWith('{"type":"live"')) resolve();
          // Only alerts are parsed; transaction and session events pass by.
          if (text.includes('"dataset":"mailtap.alert"')) {
            const at = nowMs();
            const message = JSON.parse(text);
            if (message.event.event.action === 'alert-opened') received.set(message.event.event.id, at);
          }
        });
        void index;
      });
    }),
  );
  process.send({ type: 'ready' });
  process.on('message', (message) => {
    if (message.type !== 'done') return;
    process.send({ type: 'results', receipts: receipts.map((map) => [...map.entries()]) }, () => {
      for (const ws of sockets) ws.terminate();
      process.exit(0);
    });
  });
}

// ---------------------------------------------------------------- packets

const SERVER_MAC = Buffer.from([0x74, 0xac, 0xb9, 0x00, 0x00, 0x01]);
const SERVER_IP = [198, 51, 100, 25];

function ipv4Checksum(header) {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet + IPv4 + TCP frame; the TCP checksum is left 0, which the decoder does not check. */
function frame(src, dst, seq, ack, flags, payload) {
  const data = Buffer.alloc(54 + payload.length);
  dst.mac.copy(data, 0);
  src.mac.copy(data, 6);
  data.writeUInt16BE(0x0800, 12);
  const ip = data.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 20 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from(src.ip).copy(ip, 12);
  Buffer.from(dst.ip).copy(ip, 16);
  ip.writeUInt16BE(ipv4Checksum(ip), 10);
  const tcp = data.subarray(34, 54);
  tcp.writeUInt16BE(src.port, 0);
  tcp.writeUInt16BE(dst.port, 2);
  tcp.writeUInt32BE(seq >>> 0, 4);
  tcp.writeUInt32BE(ack >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(65535, 14);
  payload.copy(data, 54);
  return data;
}

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

/**
 * One SMTP session of device `n` (10.1.x.y) to the external server: steps of [delay ms, frames].
 * The QUIT step is marked, and its 221 reply and the FINs come with it, as on a LAN.
 */
function session(n) {
  const client = {
    mac: Buffer.from([0x02, 0x00, 0x00, 0x00, (n >> 8) & 0xff, n & 0xff]),
    ip: [10, 1, (n >> 8) & 0xff, n & 0xff],
    port: 40000 + (n % 20000),
  };
  const server = { mac: SERVER_MAC, ip: SERVER_IP, port: 25 };
  let c = 1000;
  let s = 5000;
  const steps = [];
  const fromClient = (text, flags = ACK | PSH) => {
    const payload = Buffer.from(text);
    const data = frame(client, server, c, s, flags, payload);
    c += payload.length;
    return data;
  };
  const fromServer = (text, flags = ACK | PSH) => {
    const payload = Buffer.from(text);
    const data = frame(server, client, s, c, flags, payload);
    s += payload.length;
    return data;
  };
  steps.push([0, [frame(client, server, c - 1, 0, SYN, Buffer.alloc(0))]]);
  steps.push([1, [frame(server, client, s - 1, c, SYN | ACK, Buffer.alloc(0)), frame(client, server, c, s, ACK, Buffer.alloc(0))]]);
  steps.push([2, [fromServer('220 mx.example ESMTP\r\n')]]);
  steps.push([2, [fromClient(`EHLO device-${n}.corp.example\r\n`)]]);
  steps.push([2, [fromServer('250-mx.example\r\n250 PIPELINING\r\n')]]);
  steps.push([2, [fromClient(`MAIL FROM:<device-${n}@corp.example>\r\n`)]]);
  steps.push([2, [fromServer('250 2.1.0 Ok\r\n')]]);
  steps.push([2, [fromClient('RCPT TO:<someone@partner.example>\r\n')]]);
  steps.push([2, [fromServer('250 2.1.5 Ok\r\n')]]);
  const quit = fromClient('QUIT\r\n');
  const bye = fromServer('221 2.0.0 Bye\r\n');
  const serverFin = frame(server, client, s, c, FIN | ACK, Buffer.alloc(0));
  const clientFin = frame(client, server, c, s + 1, FIN | ACK, Buffer.alloc(0));
  const lastAck = frame(server, client, s + 1, c + 1, ACK, Buffer.alloc(0));
  steps.push([5, [quit, bye, serverFin, clientFin, lastAck], 'quit']);
  return { alertId: `relay_bypass-mac:02:00:00:00:${hex(n >> 8)}:${hex(n)}`, steps };
}

function hex(byte) {
  return (byte & 0xff).toString(16).padStart(2, '0');
}

// ---------------------------------------------------------------- the sensor (parent process)

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '100' },
      sessions: { type: 'string', default: '300' },
      rate: { type: 'string', default: '30' },
      'no-docs': { type: 'boolean', default: false },
      'no-store': { type: 'boolean', default: false },
    },
  });
  const clientCount = Number(values.clients);
  const sessionCount = Number(values.sessions);
  const rate = Number(values.rate);
  const dist = (path) => import(join(REPO_ROOT, 'dist', path));
  const [{ configSchema }, { Analyzer }, { Pipeline }, { EventStore }, { FeedServer }, { StoredOutput }] = await Promise.all([
    dist('config/schema.js'),
    dist('analyze.js'),
    dist('pipeline.js'),
    dist('store/index.js'),
    dist('feed/index.js'),
    dist('cli/stored-output.js'),
  ]);

  const config = configSchema.parse({
    networks: { internal: ['10.0.0.0/8'], relays: ['10.0.0.10'] },
    feed: { listen: '127.0.0.1:0', max_buffered: '4MiB' },
  });
  const storeDir = mkdtempSync(join(tmpdir(), 'mailtap-feed-bench-'));
  const store = await EventStore.open(storeDir);
  const feed = await FeedServer.start({ config, store, version: 'bench' });
  /** Time each alert reached the feed, to tell the sensor's share of the latency from delivery's. */
  const handedAt = new Map();
  const toFeed = (event) => {
    if (event.event.action === 'alert-opened') handedAt.set(event.event.id, nowMs());
    feed.event(event);
  };
  // The feed needs the event objects, not only the JSON text the store wrote.
  const stored = new StoredOutput(store, (event) => toFeed(event), { keepEvents: true });
  const pipeline = new Pipeline({
    smtpPorts: config.smtp.ports,
    analyzer: new Analyzer(config),
    // --no-store hands events straight to the feed, to show the store's share of the latency.
    onEvent: values['no-store'] ? (event) => toFeed(event) : (event) => stored.add(event),
  });

  const child = fork(fileURLToPath(import.meta.url), ['--clients-child', feed.url, String(clientCount)]);
  const fromChild = (type) => new Promise((resolve) => child.on('message', (m) => m.type === type && resolve(m)));
  const ready = fromChild('ready');
  await ready;
  console.log(`${clientCount} clients connected to ${feed.url}`);

  // Timeline: session n starts at n / rate seconds; its steps follow with their delays.
  const timeline = [];
  const sessions = [];
  for (let n = 0; n < sessionCount; n++) {
    const built = session(n + 1);
    sessions.push(built);
    let at = (n / rate) * 1000;
    for (const [delay, frames, mark] of built.steps) {
      at += delay;
      timeline.push({ at, frames, quitOf: mark === 'quit' ? built.alertId : undefined });
    }
  }
  timeline.sort((a, b) => a.at - b.at);
  const quitAt = new Map();
  const start = nowMs();
  for (const step of timeline) {
    const wait = start + step.at - nowMs();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const wall = Date.now();
    if (step.quitOf !== undefined) quitAt.set(step.quitOf, nowMs());
    for (const data of step.frames) {
      pipeline.handlePacket({
        seconds: Math.floor(wall / 1000),
        nanos: (wall % 1000) * 1e6,
        linkType: 1,
        interfaceId: 0,
        data,
        originalLength: data.length,
        offset: 0,
      });
    }
  }
  const paced = (nowMs() - start) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const results = fromChild('results');
  child.send({ type: 'done' });
  const { receipts } = await results;

  const latencies = [];
  let missing = 0;
  for (const entries of receipts) {
    const received = new Map(entries);
    for (const { alertId } of sessions) {
      const at = received.get(alertId);
      if (at === undefined) missing++;
      else latencies.push(at - quitAt.get(alertId));
    }
  }
  latencies.sort((a, b) => a - b);
  const sensorShare = sessions.map(({ alertId }) => handedAt.get(alertId) - quitAt.get(alertId)).filter(Number.isFinite);
  sensorShare.sort((a, b) => a - b);
  if (process.env.FEED_BENCH_DEBUG) {
    const worst = sessions.map(({ alertId }, n) => [n, Math.max(...receipts.map((e) => new Map(e).get(alertId) - quitAt.get(alertId)))]);
    worst.sort((a, b) => b[1] - a[1]);
    console.log('worst sessions', JSON.stringify(worst.slice(0, 15).map(([n, v]) => [n, Math.round(v)])));
    const first = sessions.map(({ alertId }) => Math.min(...receipts.map((e) => new Map(e).get(alertId) - quitAt.get(alertId))));
    first.sort((a, b) => a - b);
    console.log('first-client p50/p99', percentile(first, 50).toFixed(1), percentile(first, 99).toFixed(1));
  }
  const figures = {
    clients: clientCount,
    sessions: sessionCount,
    rate,
    paced,
    samples: latencies.length,
    missing,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
    slowCloses: feed.counters.slowConsumerCloses,
    sensorP50: percentile(sensorShare, 50),
    sensorP99: percentile(sensorShare, 99),
  };
  await pipeline.finish();
  await stored.drain();
  await feed.close();
  await store.close();
  rmSync(storeDir, { recursive: true, force: true });

  const ms = (value) => value.toFixed(1);
  console.log(
    `alert latency over ${figures.samples} receipts (${missing} missing): ` +
      `p50 ${ms(figures.p50)} ms, p99 ${ms(figures.p99)} ms, max ${ms(figures.max)} ms ` +
      `(target p99 < ${TARGET_P99_MS} ms: ${figures.p99 < TARGET_P99_MS && missing === 0 ? 'met' : 'NOT met'})`,
  );
  console.log(`of which QUIT to the alert reaching the feed (pipeline, analyzer, store): p50 ${ms(figures.sensorP50)} ms, p99 ${ms(figures.sensorP99)} ms`);
  if (!values['no-docs']) writeDocs(figures);
  process.exitCode = figures.p99 < TARGET_P99_MS && missing === 0 ? 0 : 1;
}

function writeDocs(f) {
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  const section = [
    BEGIN,
    '## Feed latency',
    '',
    `\`node bench/feed-latency.mjs\` (after \`npm run build\`): ${f.sessions} SMTP sessions at ${f.rate} per second,`,
    `paced in real time (${f.paced.toFixed(1)} s) into the pipeline, analyzer, store and feed of one process; each`,
    'session is a new device that sends straight to an external server, so relay_bypass raises an alert',
    `when the session ends. ${f.clients} WebSocket clients in a child process subscribe to everything. Latency is`,
    'from handing the packet with QUIT to the pipeline to a client receiving the alert.',
    '',
    '| clients | receipts | missing | p50 | p99 | max | QUIT to feed p50 / p99 | slow-consumer closes |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    `| ${f.clients} | ${f.samples} | ${f.missing} | ${f.p50.toFixed(1)} ms | ${f.p99.toFixed(1)} ms | ${f.max.toFixed(1)} ms | ` +
      `${f.sensorP50.toFixed(1)} / ${f.sensorP99.toFixed(1)} ms | ${f.slowCloses} |`,
    '',
    '"QUIT to feed" is the part before the feed: pipeline, analyzer and store, until `feed.event()` is called.',
    '',
    `Target: p99 under ${TARGET_P99_MS} ms. Machine: ${cpus().length} × ${cpuModel}, ${(totalmem() / 1024 ** 3).toFixed(1)} GB,`,
    `Node ${process.version}, load average ${loadavg()[0].toFixed(2)} at the end (the machine is shared, so`,
    'figures vary between runs). The store batches writes on the next turn of the event loop, which is part of',
    'the latency.',
    END,
  ].join('\n');
  let text = readFileSync(DOCS_PATH, 'utf8');
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  text = begin >= 0 && end > begin ? text.slice(0, begin) + section + text.slice(end + END.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOCS_PATH, text);
}

// Last, because the constants above must be initialized first.
if (process.argv[2] === '--clients-child') {
  await runClients(process.argv[3], Number(process.argv[4]));
} else {
  await main();
}
