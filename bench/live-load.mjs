#!/usr/bin/env node
// Load test of `mailtap live`. It replays bench/out/mixed.pcap with tcpreplay at rising rates
// into one end of a veth pair between two network namespaces, and runs `mailtap live` on the
// other end with the default filter and an event store, as the service runs. After each rate it
// compares what the sensor saw with what was sent. Reports the highest rate without loss in
// the live-load section of docs/benchmarks.md. Needs root, iproute2, ethtool, tcpreplay and
// tcpdump, and a build (`npm run build`).
//
// Options: --rates LIST (Mbit/s, comma-separated, "top" for --topspeed; default
// 50,75,100,150,200,300,400,600,800,1000,top), --keep-going (also try the rates after two lossy ones),
// --no-docs (leave docs/benchmarks.md unchanged), and the capture options of make-capture.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CAPTURE_OPTIONS, CAPTURE_PATH, OUT_DIR, captureParams, ensureCapture } from './make-capture.mjs';
import { commandOutput, machineInfo, warmPageCache } from './lib/measure.mjs';

const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');
const DOCS_PATH = join(REPO_ROOT, 'docs', 'benchmarks.md');
const BEGIN = '<!-- live-load:begin -->';
const END = '<!-- live-load:end -->';
const EXPECTED_CACHE = join(OUT_DIR, 'live-load-expected.json');

const SENDER_NS = 'mt9ls';
const SENSOR_NS = 'mt9lc';
const SENDER_IF = 'mt9ls0';
const SENSOR_IF = 'mt9lc0';
/** Rate the test is meant to reach: 1 Gbit/s of mixed traffic with the default filter. */
const TARGET_MBPS = 1000;
/** The sensor is drained when its packet count has not changed for this long. */
const QUIET_MS = 2000;
const DRAIN_TIMEOUT_MS = 120000;

const { values } = parseArgs({
  options: {
    ...CAPTURE_OPTIONS,
    rates: { type: 'string', default: '50,75,100,150,200,300,400,600,800,1000,top' },
    'keep-going': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
  },
});

if (process.getuid?.() !== 0) {
  console.error('live-load: needs root for network namespaces and capture');
  process.exit(2);
}
for (const tool of ['ip', 'ethtool', 'tcpreplay', 'tcpdump']) {
  if (spawnSync('which', [tool]).status !== 0) {
    console.error(`live-load: ${tool} not found`);
    process.exit(2);
  }
}
if (!existsSync(CLI)) {
  console.error(`live-load: ${CLI} is missing: run npm run build first`);
  process.exit(2);
}

const rates = values.rates.split(',').map((rate) => (rate.trim() === 'top' ? 'top' : Number(rate)));
if (rates.some((rate) => rate !== 'top' && !(rate > 0))) {
  console.error('live-load: --rates expects Mbit/s values or "top", comma-separated');
  process.exit(2);
}

const loadBefore = loadavg()[0];
const counts = ensureCapture(captureParams(values), values.force);
const { defaultCaptureFilter } = await import(join(REPO_ROOT, 'dist', 'capture', 'live.js'));
const filter = defaultCaptureFilter([25, 587, 2525, 465]);
const expectedPackets = filteredPacketCount(filter);
console.log(`default filter passes ${expectedPackets} of ${counts.packets} packets; ${counts.transactions} transactions`);
warmPageCache(CAPTURE_PATH);

function sh(command, args) {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${run.stderr}`);
  return run.stdout;
}

/** Counts the packets of the capture that the filter passes, with tcpdump; cached per file and filter. */
function filteredPacketCount(bpf) {
  const key = { size: statSync(CAPTURE_PATH).size, mtime: statSync(CAPTURE_PATH).mtimeMs, filter: bpf };
  if (existsSync(EXPECTED_CACHE)) {
    const cached = JSON.parse(readFileSync(EXPECTED_CACHE, 'utf8'));
    if (JSON.stringify(cached.key) === JSON.stringify(key)) return cached.packets;
  }
  const run = spawnSync('sh', ['-c', `tcpdump -nn -q -r '${CAPTURE_PATH}' '${bpf}' 2>/dev/null | wc -l`], { encoding: 'utf8' });
  const packets = Number(run.stdout.trim());
  writeFileSync(EXPECTED_CACHE, JSON.stringify({ key, packets }) + '\n');
  return packets;
}

/**
 * Times `mailtap read --db` on the packets the default filter passes, written to a file with
 * tcpdump: the rate of the processing stages alone, without capture, as a ceiling for live.
 * Returns it as packets/s and as the Mbit/s of the mixed traffic that carries that many
 * filtered packets.
 */
function measureReadCeiling() {
  const filtered = join(OUT_DIR, 'live-load-filtered.pcap');
  if (!existsSync(filtered) || statSync(filtered).mtimeMs < statSync(CAPTURE_PATH).mtimeMs) {
    sh('tcpdump', ['-r', CAPTURE_PATH, '-w', filtered, filter]);
  }
  const db = mkdtempSync(join(tmpdir(), 'mailtap-live-load-read-'));
  const load = loadavg()[0];
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, [CLI, 'read', '--quiet', '--db', join(db, 'db'), filtered], { stdio: 'ignore' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rmSync(db, { recursive: true, force: true });
  if (run.status !== 0) throw new Error(`mailtap read --db ${filtered} exited with ${run.status}`);
  const pps = expectedPackets / seconds;
  const mixedMbps = ((pps * counts.packets) / expectedPackets) * ((counts.bytes * 8) / counts.packets) / 1e6;
  return { seconds, pps, mixedMbps, load };
}

function setUp() {
  tearDown();
  sh('ip', ['netns', 'add', SENDER_NS]);
  sh('ip', ['netns', 'add', SENSOR_NS]);
  // Without IPv6 the veth ends send no neighbour discovery of their own, which the default
  // filter would pass and count on top of the replayed packets.
  for (const ns of [SENDER_NS, SENSOR_NS]) {
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  sh('ip', ['link', 'add', SENDER_IF, 'netns', SENDER_NS, 'type', 'veth', 'peer', 'name', SENSOR_IF, 'netns', SENSOR_NS]);
  for (const [ns, link] of [[SENDER_NS, SENDER_IF], [SENSOR_NS, SENSOR_IF]]) {
    // Jumbo MTU so that no frame of the capture (1518 bytes with a VLAN tag) is too long to send.
    sh('ip', ['-n', ns, 'link', 'set', link, 'mtu', '9000', 'up']);
    // As on a mirror port: no offload merges or splits frames (see README, Mirror-port set-up).
    spawnSync('ip', ['netns', 'exec', ns, 'ethtool', '-K', link, 'gro', 'off', 'lro', 'off', 'gso', 'off', 'tso', 'off'], { stdio: 'ignore' });
  }
}

function tearDown() {
  spawnSync('ip', ['netns', 'del', SENDER_NS], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', SENSOR_NS], { stdio: 'ignore' });
}

function linkCounter(ns, link, name) {
  return Number(sh('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${link}/statistics/${name}`]).trim());
}

async function status(socket) {
  const run = spawnSync(process.execPath, [CLI, 'status', '--json', '--socket', socket], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`mailtap status failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a sensor, replays the capture at rate, waits until the sensor is drained, and stops it. */
async function runRate(rate, workDir) {
  const socket = join(workDir, 'mailtap.sock');
  const config = join(workDir, 'mailtap.yaml');
  writeFileSync(config, `sensor:\n  name: live-load\ncontrol:\n  socket: ${socket}\n`);
  const db = join(workDir, `db-${rate}`);
  const sensorLog = join(OUT_DIR, `live-load-sensor-${rate}.log`);
  const sensor = spawn('ip', ['netns', 'exec', SENSOR_NS, process.execPath, CLI, 'live', '-i', SENSOR_IF, '--config', config, '--db', db], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  sensor.stderr.setEncoding('utf8');
  sensor.stderr.on('data', (chunk) => (stderr += chunk));
  const startDeadline = Date.now() + 20000;
  while (!stderr.includes('capture started') || !existsSync(socket)) {
    if (sensor.exitCode !== null || Date.now() > startDeadline) throw new Error(`the sensor did not start: ${stderr}`);
    await sleep(100);
  }

  const loadAtStart = loadavg()[0];
  const sentBefore = linkCounter(SENDER_NS, SENDER_IF, 'tx_packets');
  const txDroppedBefore = linkCounter(SENDER_NS, SENDER_IF, 'tx_dropped');
  const rateArgs = rate === 'top' ? ['--topspeed'] : [`--mbps=${rate}`];
  const replayCommand = ['tcpreplay', `--intf1=${SENDER_IF}`, ...rateArgs, relative(REPO_ROOT, CAPTURE_PATH)];
  console.log(`\nrate ${rate === 'top' ? 'top speed' : `${rate} Mbit/s`}: ${replayCommand.join(' ')}`);
  const replay = spawnSync('ip', ['netns', 'exec', SENDER_NS, ...replayCommand], { encoding: 'utf8', cwd: REPO_ROOT });
  if (replay.status !== 0) throw new Error(`tcpreplay failed: ${replay.stderr}`);
  const replayOut = replay.stdout;
  const sent = linkCounter(SENDER_NS, SENDER_IF, 'tx_packets') - sentBefore;
  const txDropped = linkCounter(SENDER_NS, SENDER_IF, 'tx_dropped') - txDroppedBefore;

  // tcpreplay reports "Actual: N packets (B bytes) sent in S seconds" and "Rated: X Bps, Y Mbps, Z pps".
  const actual = /Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds/.exec(replayOut);
  const rated = /Rated: [\d.]+ Bps, ([\d.]+) Mbps, ([\d.]+) pps/.exec(replayOut);
  const failed = /Failed packets:\s+(\d+)/.exec(replayOut);

  let last = await status(socket);
  let quietSince = Date.now();
  const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (Date.now() - quietSince < QUIET_MS && Date.now() < drainDeadline) {
    await sleep(250);
    const now = await status(socket);
    if (now.packets !== last.packets || now.transactions !== last.transactions) quietSince = Date.now();
    last = now;
  }
  sensor.kill('SIGTERM');
  await once(sensor, 'exit');
  writeFileSync(sensorLog, stderr);
  rmSync(db, { recursive: true, force: true });

  const result = {
    rate,
    command: replayCommand.join(' '),
    sentPackets: actual ? Number(actual[1]) : sent,
    sentBytes: actual ? Number(actual[2]) : undefined,
    seconds: actual ? Number(actual[3]) : undefined,
    mbps: rated ? Number(rated[1]) : undefined,
    pps: rated ? Number(rated[2]) : undefined,
    failedPackets: failed ? Number(failed[1]) : 0,
    vethSent: sent,
    vethTxDropped: txDropped,
    captured: last.packets,
    transactions: last.transactions,
    estimatedLoss: last.loss.estimatedRatio,
    interfaceDrops: last.loss.interfaceDrops,
    loadAtStart,
    loadAtEnd: loadavg()[0],
  };
  result.missedPackets = expectedPackets - result.captured;
  result.lossless =
    result.failedPackets === 0 &&
    result.vethTxDropped === 0 &&
    result.missedPackets <= 0 &&
    result.transactions === counts.transactions &&
    result.interfaceDrops === 0 &&
    result.estimatedLoss === 0;
  console.log(
    `  sent ${result.sentPackets} packets in ${result.seconds ?? '?'} s (${result.mbps ?? '?'} Mbit/s, ${result.pps ?? '?'} packets/s); ` +
      `sensor captured ${result.captured} of ${expectedPackets}, ${result.transactions} of ${counts.transactions} transactions, ` +
      `estimated loss ${(result.estimatedLoss * 100).toFixed(3)} %, interface drops ${result.interfaceDrops}, ` +
      `load average ${result.loadAtStart.toFixed(1)} to ${result.loadAtEnd.toFixed(1)}: ${result.lossless ? 'no loss' : 'LOSS'}`,
  );
  return result;
}

const workDir = mkdtempSync(join(tmpdir(), 'mailtap-live-load-'));
const results = [];
let consecutiveLossy = 0;
try {
  setUp();
  for (const rate of rates) {
    const result = await runRate(rate, workDir);
    results.push(result);
    consecutiveLossy = result.lossless ? 0 : consecutiveLossy + 1;
    if (consecutiveLossy >= 2 && !values['keep-going']) {
      console.log('\ntwo rates in a row lost packets: stopping (--keep-going tries the rest)');
      break;
    }
  }
} finally {
  tearDown();
  rmSync(workDir, { recursive: true, force: true });
}

const reference = measureReadCeiling();
console.log(
  `\nreference: mailtap read --db on the ${expectedPackets} filtered packets took ${reference.seconds.toFixed(1)} s: ` +
    `${Math.round(reference.pps)} packets/s, as much as ${reference.mixedMbps.toFixed(0)} Mbit/s of the mixed traffic (load average ${reference.load.toFixed(1)})`,
);

const best = results.filter((r) => r.lossless).sort((a, b) => (b.mbps ?? 0) - (a.mbps ?? 0))[0];
const verdict = best
  ? `${(best.mbps ?? 0) >= TARGET_MBPS * 0.98 ? 'PASS' : 'FAIL'} highest rate without loss: ${best.mbps} Mbit/s, ${Math.round(best.pps ?? 0)} packets/s (target ${TARGET_MBPS} Mbit/s)`
  : `FAIL no rate was free of loss (target ${TARGET_MBPS} Mbit/s)`;
console.log(`\n${verdict}`);

if (!values['no-docs']) {
  writeDocs(results, best, verdict, reference);
  console.log(`wrote the live-load section of ${relative(REPO_ROOT, DOCS_PATH)}`);
}

/** Returns a note for the lossy rates below the best lossless one. */
function lowerLossNote(rows, bestRow) {
  if (!bestRow) return [];
  const lower = rows.filter((r) => !r.lossless && (r.mbps ?? 0) < (bestRow.mbps ?? 0));
  if (lower.length === 0) return [];
  const names = lower.map((r) => `${r.rate} Mbit/s`).join(', ');
  return [`- ${names} lost packets although a higher rate did not, most likely because the load of the shared machine changed during the run (see the load average column), so repeat the run before trusting one figure.`];
}

function writeDocs(rows, bestRow, verdictLine, ceiling) {
  const info = machineInfo();
  const lines = [
    BEGIN,
    '## Live capture load test',
    '',
    `Run on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`node bench/live-load.mjs\` (as root, after \`npm run build\`).`,
    '',
    `- Machine: ${info.cpus} CPUs (${info.cpuModel}), ${info.memoryGb} GiB RAM, shared with other jobs; Node ${info.node}; 1-minute load average ${loadBefore.toFixed(2)} before the run`,
    `- ${commandOutput('tcpreplay', ['--version'])}; the capture goes from one end of a veth pair (MTU 9000, offloads off) to the other, each end in its own network namespace`,
    `- Input: \`bench/out/mixed.pcap\`, ${(counts.bytes / 1e6).toFixed(1)} MB, ${counts.packets} packets, ${counts.transactions} transactions; the default filter passes ${expectedPackets} packets (counted with tcpdump)`,
    '- Sensor: `mailtap live -i mt9lc0 --config FILE --db DIR` with the default filter and capture buffer (64 MiB), storing every record, started fresh for each rate',
    '- A rate is without loss when tcpreplay and the sending veth report no failed or dropped packet, the sensor counted every packet the filter passes and every transaction of the generator, its loss estimate is 0 and the interface reported no drops',
    '',
    '| requested | sent Mbit/s | sent packets/s | seconds | packets captured / expected | transactions | estimated loss | interface drops | load average | result |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.rate === 'top' ? 'top speed' : `${r.rate} Mbit/s`} | ${r.mbps ?? '?'} | ${r.pps !== undefined ? Math.round(r.pps) : '?'} | ${r.seconds ?? '?'} | ` +
        `${r.captured} / ${expectedPackets} (${((Math.max(0, r.missedPackets) / expectedPackets) * 100).toFixed(2)} % missed) | ${r.transactions} / ${counts.transactions} | ${(r.estimatedLoss * 100).toFixed(3)} % | ${r.interfaceDrops} | ${r.loadAtStart.toFixed(1)} to ${r.loadAtEnd.toFixed(1)} | ${r.lossless ? 'no loss' : 'loss'} |`,
    ),
    '',
    `- ${verdictLine}`,
    ...lowerLossNote(rows, bestRow),
    '- Interface drops (rx_dropped and rx_missed_errors of the sensor\'s veth) stay 0 even where packets were lost: ' +
      'the kernel drops them when the capture socket\'s ring buffer is full, which the interface statistics do not count, ' +
      'and cap 0.2.1 does not expose pcap_stats. The packet count and the loss estimate show that loss.',
    '- The loss estimate counts bytes acknowledged within the flows the sensor saw; flows whose packets were all dropped ' +
      'do not count, so the estimate can be lower than the share of missed packets.',
    `- Reference: \`mailtap read --db\` on the ${expectedPackets} packets the filter passes (a file written by tcpdump) ` +
      `took ${ceiling.seconds.toFixed(1)} s right after the rates above, ${Math.round(ceiling.pps)} packets/s, ` +
      `which is the filtered share of ${ceiling.mixedMbps.toFixed(0)} Mbit/s of the mixed traffic (load average ${ceiling.load.toFixed(1)}). ` +
      'Live capture cannot sustain a higher rate than the stages that process the packets.',
    '- Packet decoding, TCP reassembly, SMTP parsing and the store run on the main thread (MIME parsing in a worker), ' +
      'and cap 0.2.1 calls into JavaScript once per packet, so the capture keeps up only as long as that thread does. ' +
      'tcpreplay runs on the same 2 CPUs.',
    '',
    bestRow ? `Command of the highest rate without loss (in the sender's namespace):` : 'Commands as run:',
    '',
    ...(bestRow ? [bestRow] : rows).map((r) => `    ${r.command}`),
    END,
  ];
  const text = existsSync(DOCS_PATH) ? readFileSync(DOCS_PATH, 'utf8') : '';
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const section = lines.join('\n');
  const next = begin >= 0 && end > begin ? text.slice(0, begin) + section + text.slice(end + END.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOCS_PATH, next);
}
