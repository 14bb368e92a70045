#!/usr/bin/env node
// Times mailtap, tshark, tcpflow and mailsnarf on the same generated capture, checks mailtap's
// transaction count against the generator's, and writes the results section of
// docs/benchmarks.md. Run with `npm run bench` (builds first) or `node bench/run.mjs`.
//
// Options: the capture options of make-capture.mjs (--sessions, --other-bytes, --seed, --force),
// --only NAME[,NAME] to time a subset, --no-docs to leave docs/benchmarks.md unchanged.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CAPTURE_OPTIONS, CAPTURE_PATH, OUT_DIR, captureParams, ensureCapture } from './make-capture.mjs';
import { TIME_BINARY, machineInfo, runTimed, warmPageCache } from './lib/measure.mjs';
import { definePeers } from './lib/peers.mjs';

const REPO_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DOCS_PATH = join(REPO_ROOT, 'docs', 'benchmarks.md');
const RESULTS_START = '<!-- results:start -->';
const RESULTS_END = '<!-- results:end -->';
/** Targets mailtap must meet on this benchmark. */
const TARGET_SPEEDUP_OVER_TSHARK = 5;
const TARGET_PEAK_RSS_MB = 200;
/** Time of `read --db` divided by the time of `read` without a store. */
const TARGET_STORE_RATIO = 1.3;

const { values } = parseArgs({
  options: {
    ...CAPTURE_OPTIONS,
    only: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
  },
});

const params = captureParams(values);
// Load from other processes slows every program; the docs record it next to the numbers.
const loadBefore = loadavg()[0];
const counts = ensureCapture(params, values.force);
const captureMb = counts.bytes / 1e6;

if (!existsSync(TIME_BINARY)) {
  console.log(`NOTE: ${TIME_BINARY} not found (Debian package "time"): timing wall clock only, no peak RSS.`);
}
console.log(`\nwarming the page cache: read ${(warmPageCache(CAPTURE_PATH) / 1e6).toFixed(1)} MB`);

const selected = values.only?.split(',');
const peers = definePeers({ capturePath: relative(REPO_ROOT, CAPTURE_PATH), outDir: OUT_DIR, repoRoot: REPO_ROOT }).filter(
  (peer) => !selected || selected.includes(peer.name),
);
const results = [];
for (const peer of peers) {
  if (peer.available !== true) {
    console.log(`skip ${peer.name}: ${peer.available}`);
    results.push({ name: peer.name, skipped: peer.available });
    continue;
  }
  const files = {
    stdoutPath: join(OUT_DIR, `${peer.name}.stdout`),
    stderrPath: join(OUT_DIR, `${peer.name}.stderr`),
    timePath: join(OUT_DIR, `${peer.name}.time`),
    cwd: REPO_ROOT,
  };
  const commandLine = peer.display ?? [peer.command, ...peer.args.map((a) => (/[\s"|()]/.test(a) ? `'${a}'` : a))].join(' ');
  console.log(`\nrun ${peer.name}: ${commandLine}`);
  peer.before?.();
  const run = runTimed(peer.command, peer.args, files);
  if (run.error) {
    console.log(`  failed to start: ${run.error}`);
    results.push({ name: peer.name, skipped: `failed to start: ${run.error}` });
    continue;
  }
  const found = peer.count(files);
  const status = run.ok ? '' : ` (exit code ${run.exitCode ?? run.signal}; stderr in ${relative(REPO_ROOT, files.stderrPath)})`;
  console.log(`  ${run.seconds.toFixed(2)} s, peak RSS ${run.peakRssMb?.toFixed(0) ?? '?'} MB, found ${found.found}${status}`);
  results.push({ name: peer.name, commandLine, ...run, ...found });
}

const mailtapRun = results.find((r) => r.name === 'mailtap' && !r.skipped);
// Ratios and targets are computed only against a run that read the whole file.
const mailtap = mailtapRun?.ok ? mailtapRun : undefined;
const checks = [];
if (mailtapRun && !mailtapRun.ok) {
  checks.push(`FAIL mailtap run: exit code ${mailtapRun.exitCode ?? mailtapRun.signal}, see bench/out/mailtap.stderr`);
} else if (mailtap) {
  checks.push(checkCount('transactions', mailtap.transactions, counts.transactions));
  if (mailtap.recipientsAccepted !== undefined) {
    checks.push(checkCount('accepted recipients', mailtap.recipientsAccepted, counts.recipientsAccepted));
    checks.push(checkCount('rejected recipients', mailtap.recipientsRejected, counts.recipientsRejected));
    checks.push(checkCount('queue ids', mailtap.queueIds, counts.transactionsCompleted));
  }
  const tshark = results.find((r) => r.name === 'tshark' && !r.skipped);
  if (tshark) {
    const speedup = tshark.seconds / mailtap.seconds;
    checks.push(`${speedup >= TARGET_SPEEDUP_OVER_TSHARK ? 'PASS' : 'FAIL'} speed: ${speedup.toFixed(1)} times tshark's speed (target at least ${TARGET_SPEEDUP_OVER_TSHARK})`);
  }
  const stored = results.find((r) => r.name === 'mailtap-db' && !r.skipped);
  if (stored?.ok) {
    const ratio = stored.seconds / mailtap.seconds;
    checks.push(`${ratio < TARGET_STORE_RATIO ? 'PASS' : 'FAIL'} store cost: read --db takes ${ratio.toFixed(2)} times as long (target under ${TARGET_STORE_RATIO})`);
  }
  if (mailtap.peakRssMb !== null) {
    checks.push(`${mailtap.peakRssMb < TARGET_PEAK_RSS_MB ? 'PASS' : 'FAIL'} memory: peak RSS ${mailtap.peakRssMb.toFixed(0)} MB (target under ${TARGET_PEAK_RSS_MB} MB)`);
  }
} else {
  checks.push('SKIP mailtap checks: mailtap did not run');
}

const table = formatTable(results, mailtap);
console.log(`\n${table}\n`);
for (const check of checks) console.log(check);

if (!values['no-docs']) {
  writeResults(table, checks);
  console.log(`\nwrote the results section of ${relative(REPO_ROOT, DOCS_PATH)}`);
}
// Exit 1 when mailtap failed or miscounted; missed speed or memory targets only print FAIL.
process.exitCode = checks.some((c) => /^FAIL (mailtap run|count)/.test(c)) ? 1 : 0;

function checkCount(what, found, expected) {
  return `${found === expected ? 'PASS' : 'FAIL'} count of ${what}: mailtap ${found ?? 'none'}, generator ${expected}`;
}

function formatTable(rows, reference) {
  const header = ['program', 'seconds', 'MB/s', 'packets/s', 'peak RSS (MB)', 'time / mailtap time', 'found in output'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${r.name} | not run: ${r.skipped} | | | | | |`);
      continue;
    }
    const ratio = reference ? (r.seconds / reference.seconds).toFixed(1) : 'n/a';
    if (!r.ok) {
      // Throughput over a file the program did not finish would be meaningless.
      lines.push(`| ${r.name} (exit ${r.exitCode ?? r.signal}) | ${r.seconds.toFixed(2)} | n/a | n/a | ${r.peakRssMb?.toFixed(0) ?? 'n/a'} | n/a | ${r.found} |`);
      continue;
    }
    lines.push(
      `| ${r.name} | ${r.seconds.toFixed(2)} | ${(captureMb / r.seconds).toFixed(1)} | ${Math.round(counts.packets / r.seconds)} | ${r.peakRssMb?.toFixed(0) ?? 'n/a'} | ${ratio} | ${r.found} |`,
    );
  }
  return lines.join('\n');
}

/** The command that started this run, as a reader would type it. */
function invocation() {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `node bench/run.mjs${args ? ` ${args}` : ''}`;
}

function writeResults(tableText, checkLines) {
  const machine = machineInfo();
  const commands = results.filter((r) => !r.skipped).map((r) => `    ${r.commandLine}`);
  const section = [
    RESULTS_START,
    '## Results',
    '',
    `Run on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${invocation()}\`.`,
    '',
    `- Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGb} GiB RAM; Node ${machine.node}; ` +
      `1-minute load average ${loadBefore.toFixed(2)} before the run`,
    `- Peers: ${machine.tshark ?? 'tshark not installed'}; ${machine.tcpflow ?? 'tcpflow not installed'}; mailsnarf ${machine.mailsnarf ?? 'not installed'}`,
    `- Input: \`bench/out/mixed.pcap\`, ${captureMb.toFixed(1)} MB, ${counts.packets} packets, ${counts.sessions} SMTP sessions, ` +
      `${counts.transactions} transactions, ${counts.recipientsAccepted} accepted and ${counts.recipientsRejected} rejected recipients, ` +
      `${((100 * counts.otherBytes) / counts.bytes).toFixed(0)} % of the bytes other traffic (seed ${params.seed})`,
    '',
    tableText,
    '',
    ...checkLines.map((c) => `- ${c}`),
    '',
    'Commands as run (from the repository root):',
    '',
    ...commands,
    RESULTS_END,
  ].join('\n');

  const current = existsSync(DOCS_PATH) ? readFileSync(DOCS_PATH, 'utf8') : `# Benchmarks\n\n${RESULTS_START}\n${RESULTS_END}\n`;
  const start = current.indexOf(RESULTS_START);
  const end = current.indexOf(RESULTS_END);
  const updated =
    start >= 0 && end > start
      ? current.slice(0, start) + section + current.slice(end + RESULTS_END.length)
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOCS_PATH, updated);
}
