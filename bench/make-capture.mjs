#!/usr/bin/env node
// Writes bench/out/mixed.pcap: SMTP sessions interleaved with HTTP, HTTPS, DNS and ARP traffic,
// generated from a seeded PRNG, plus bench/out/mixed.json with the counts a correct mail parser
// must report and bench/out/mixed-transactions.jsonl with one expected record per transaction.
// The files are rebuilt only when they are missing or the parameters or generator code changed.
//
// Usage: node bench/make-capture.mjs [--sessions N] [--other-bytes N] [--seed N] [--name NAME] [--force]
// --name writes bench/out/NAME.pcap, NAME.json and NAME-transactions.jsonl instead (default mixed).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createNetwork } from './lib/network.mjs';
import { buildOtherFlow } from './lib/other-traffic.mjs';
import { PcapWriter } from './lib/pcap-writer.mjs';
import { createRandomPool, createRng } from './lib/prng.mjs';
import { buildSmtpSession } from './lib/smtp-session.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const OUT_DIR = join(BENCH_DIR, 'out');
export const CAPTURE_PATH = join(OUT_DIR, 'mixed.pcap');
export const COUNTS_PATH = join(OUT_DIR, 'mixed.json');
export const TRANSACTIONS_PATH = join(OUT_DIR, 'mixed-transactions.jsonl');

/** Returns the paths of the files written for a capture named `name` (the default is mixed). */
export function captureFiles(name = 'mixed') {
  if (!/^[\w-]+$/.test(name)) throw new Error(`invalid capture name ${JSON.stringify(name)}: letters, digits, _ and - only`);
  return {
    capture: join(OUT_DIR, `${name}.pcap`),
    counts: join(OUT_DIR, `${name}.json`),
    transactions: join(OUT_DIR, `${name}-transactions.jsonl`),
  };
}

const GENERATOR_FILES = [
  'make-capture.mjs',
  'lib/network.mjs',
  'lib/other-traffic.mjs',
  'lib/pcap-writer.mjs',
  'lib/prng.mjs',
  'lib/smtp-session.mjs',
  'lib/tcp-conversation.mjs',
];
/** New SMTP sessions per second of capture time (Poisson arrivals). */
const SESSION_RATE = 100;
const HOST_COUNT = 400;
const RANDOM_POOL_BYTES = 8 * 1024 * 1024;
/** Other-traffic bytes per SMTP session when --other-bytes is not given; keeps other traffic above half the file. */
const DEFAULT_OTHER_BYTES_PER_SESSION = 7500;
const START_MICROS = 1_700_000_000 * 1e6;

export const CAPTURE_OPTIONS = {
  sessions: { type: 'string', default: '30000' },
  'other-bytes': { type: 'string' },
  seed: { type: 'string', default: '1' },
  force: { type: 'boolean', default: false },
};

/** Turns parsed command-line values into generator parameters, or throws on invalid numbers. */
export function captureParams(values) {
  const sessions = Number(values.sessions);
  const otherBytes = values['other-bytes'] === undefined ? sessions * DEFAULT_OTHER_BYTES_PER_SESSION : Number(values['other-bytes']);
  const seed = Number(values.seed);
  for (const [name, value] of Object.entries({ sessions, 'other-bytes': otherBytes, seed })) {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`invalid --${name}: expected a non-negative integer`);
  }
  const hash = createHash('sha256');
  for (const file of GENERATOR_FILES) hash.update(readFileSync(join(BENCH_DIR, file)));
  return { sessions, otherBytes, seed, generator: hash.digest('hex').slice(0, 16) };
}

/** Binary min-heap of flows ordered by the capture time of each flow's next packet. */
class FlowHeap {
  constructor() {
    this.items = [];
  }
  get size() {
    return this.items.length;
  }
  key(i) {
    const flow = this.items[i];
    return flow.packets[flow.index].t;
  }
  peekTime() {
    return this.items.length ? this.key(0) : Infinity;
  }
  push(flow) {
    const items = this.items;
    items.push(flow);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.key(parent) <= this.key(i)) break;
      [items[parent], items[i]] = [items[i], items[parent]];
      i = parent;
    }
  }
  /** Restores heap order after the top flow's key grew, or removes the top flow. */
  updateTop(remove) {
    const items = this.items;
    const last = items.pop();
    if (remove) {
      if (items.length === 0) return;
      items[0] = last;
    } else if (items.length === 0) {
      items.push(last);
      return;
    } else {
      items.push(last);
    }
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && this.key(left) < this.key(smallest)) smallest = left;
      if (right < items.length && this.key(right) < this.key(smallest)) smallest = right;
      if (smallest === i) break;
      [items[smallest], items[i]] = [items[i], items[smallest]];
      i = smallest;
    }
  }
  top() {
    return this.items[0];
  }
}

function newStats() {
  return {
    sessions: 0,
    starttlsSessions: 0,
    pipelinedSessions: 0,
    vlanSessions: 0,
    ipv6Sessions: 0,
    sessionsByPort: { 25: 0, 587: 0, 2525: 0 },
    transactions: 0,
    transactionsCompleted: 0,
    transactionsRejected: 0,
    recipientsAccepted: 0,
    recipientsRejected: 0,
    messagesWithAttachment: 0,
    encodedSubjects: 0,
    retransmittedSegments: 0,
    outOfOrderSwaps: 0,
    maxConcurrentSessions: 0,
    otherFlows: { dns: 0, arp: 0, http: 0, https: 0 },
    packets: 0,
    smtpPackets: 0,
    otherPackets: 0,
    bytes: 0,
    smtpBytes: 0,
    otherBytes: 0,
    captureSeconds: 0,
  };
}

/** Generates the capture; returns the counts written to its .json file. */
export function generateCapture(params, files = captureFiles()) {
  mkdirSync(OUT_DIR, { recursive: true });
  const rng = createRng(params.seed);
  const pool = createRandomPool(rng, RANDOM_POOL_BYTES);
  const network = createNetwork(rng, HOST_COUNT);
  const stats = newStats();
  const writer = new PcapWriter(files.capture);
  const transactionsFd = openSync(files.transactions, 'w');
  let transactionLines = [];
  const heap = new FlowHeap();
  const durationMicros = (params.sessions / SESSION_RATE) * 1e6;
  let activeSessions = 0;
  let lastTime = START_MICROS;

  const drainUntil = (limit) => {
    while (heap.size && heap.peekTime() < limit) {
      const flow = heap.top();
      const packet = flow.packets[flow.index++];
      flow.emit(writer, packet);
      lastTime = packet.t;
      if (flow.smtp) stats.smtpPackets++;
      else stats.otherPackets++;
      const done = flow.index === flow.packets.length;
      if (done && flow.smtp) activeSessions--;
      heap.updateTop(done);
    }
  };

  let nextSessionTime = START_MICROS;
  let otherScheduled = 0;
  for (;;) {
    const sessionTime = stats.sessions < params.sessions ? nextSessionTime : Infinity;
    // Other flows start at times spread evenly over the capture by their byte count.
    const otherTime = otherScheduled < params.otherBytes ? START_MICROS + (durationMicros * otherScheduled) / params.otherBytes : Infinity;
    if (sessionTime === Infinity && otherTime === Infinity) break;
    const launchTime = Math.round(Math.min(sessionTime, otherTime));
    drainUntil(launchTime);

    if (sessionTime <= otherTime) {
      const { conv, transactions } = buildSmtpSession(rng, pool, network, stats, stats.sessions, launchTime);
      const emit = (w, p) => w.tcp(p.t, conv.endpoint, p.dir, p.flags, p.seq, p.ack, p.payload);
      heap.push({ packets: conv.finish(), index: 0, emit, smtp: true });
      stats.smtpBytes += conv.recordBytes;
      activeSessions++;
      stats.maxConcurrentSessions = Math.max(stats.maxConcurrentSessions, activeSessions);
      for (const tx of transactions) transactionLines.push(JSON.stringify(tx));
      if (transactionLines.length >= 1000) {
        writeSync(transactionsFd, transactionLines.join('\n') + '\n');
        transactionLines = [];
      }
      nextSessionTime += rng.exp(1e6 / SESSION_RATE);
    } else {
      const flow = buildOtherFlow(rng, pool, network, stats, launchTime);
      otherScheduled += flow.recordBytes;
      stats.otherBytes += flow.recordBytes;
      heap.push({ ...flow, index: 0, smtp: false });
    }
  }
  drainUntil(Infinity);
  writer.close();
  if (transactionLines.length) writeSync(transactionsFd, transactionLines.join('\n') + '\n');
  closeSync(transactionsFd);

  stats.packets = writer.packets;
  stats.bytes = writer.bytes;
  stats.captureSeconds = Math.round(lastTime - START_MICROS) / 1e6;
  return stats;
}

function printCounts(counts) {
  const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
  const lines = [
    `sessions              ${counts.sessions} (STARTTLS ${counts.starttlsSessions}, pipelined ${counts.pipelinedSessions}, VLAN ${counts.vlanSessions}, IPv6 ${counts.ipv6Sessions}; ports ${JSON.stringify(counts.sessionsByPort)})`,
    `max concurrent        ${counts.maxConcurrentSessions}`,
    `transactions          ${counts.transactions} (completed ${counts.transactionsCompleted}, all recipients rejected ${counts.transactionsRejected})`,
    `recipients            accepted ${counts.recipientsAccepted}, rejected ${counts.recipientsRejected}`,
    `messages              with attachment ${counts.messagesWithAttachment}, RFC 2047 subject ${counts.encodedSubjects}`,
    `TCP irregularities    retransmitted segments ${counts.retransmittedSegments}, out-of-order pairs ${counts.outOfOrderSwaps}`,
    `other flows           ${JSON.stringify(counts.otherFlows)}`,
    `packets               ${counts.packets} (SMTP ${counts.smtpPackets}, other ${counts.otherPackets})`,
    `bytes                 ${mb(counts.bytes)} (SMTP ${mb(counts.smtpBytes)}, other ${mb(counts.otherBytes)} = ${((100 * counts.otherBytes) / counts.bytes).toFixed(1)} %)`,
    `capture time span     ${counts.captureSeconds.toFixed(1)} s`,
  ];
  for (const line of lines) console.log(line);
}

/** Returns the stored counts if the capture matches params, else regenerates it. */
export function ensureCapture(params, force = false, files = captureFiles()) {
  if (!force && existsSync(files.counts) && existsSync(files.capture)) {
    const stored = JSON.parse(readFileSync(files.counts, 'utf8'));
    const same = JSON.stringify(stored.params) === JSON.stringify(params);
    if (same && statSync(files.capture).size === stored.counts.bytes) {
      console.log(`${files.capture} is up to date`);
      printCounts(stored.counts);
      return stored.counts;
    }
  }
  console.log(`writing ${files.capture} (${params.sessions} sessions, ${params.otherBytes} bytes of other traffic, seed ${params.seed})`);
  const started = process.hrtime.bigint();
  const counts = generateCapture(params, files);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  writeFileSync(files.counts, JSON.stringify({ params, counts }, null, 2) + '\n');
  console.log(`generated in ${seconds.toFixed(1)} s`);
  printCounts(counts);
  return counts;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { ...CAPTURE_OPTIONS, name: { type: 'string', default: 'mixed' } } });
  ensureCapture(captureParams(values), values.force, captureFiles(values.name));
}
