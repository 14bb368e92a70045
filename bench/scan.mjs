// Times `mailtap read` of captures/story.pcap (333 transactions with a message) without scanning
// and with clamd, rspamd and both, started by the test helpers in temporary folders as the
// scanning tests start them. Prints the figures and rewrites the section between
// <!-- scan:begin --> and <!-- scan:end --> of docs/benchmarks.md.
//
// Usage: npm run build && node bench/scan.mjs [--runs N] [--no-docs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { register } from 'tsx/esm/api';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(REPO, 'dist', 'cli', 'main.js');
const CAPTURE = join(REPO, 'captures', 'story.pcap');
const DOCS = join(REPO, 'docs', 'benchmarks.md');
const BEGIN = '<!-- scan:begin -->';
const END = '<!-- scan:end -->';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'no-docs': { type: 'boolean', default: false } } });
const runs = Number(values.runs);

// The daemon helpers are TypeScript; tsx loads them.
register();
const { startClamd, startRspamd } = await import('../test/e2e/scan-daemons.ts');

const load = loadavg()[0].toFixed(2);
const version = (command) => spawnSync(command, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim();
const clamdVersion = version('clamd');
const rspamdVersion = version('rspamd');
const clamd = await startClamd('Mailtap.Test.EICAR');
const rspamd = await startRspamd();
const dir = mkdtempSync(join(tmpdir(), 'mt8-bench-scan-'));
const story = readFileSync(join(REPO, 'captures', 'story.yaml'), 'utf8');
const variants = [
  ['no scanning', ''],
  ['clamd', `scan:\n  clamav: ${clamd.socket}\n`],
  ['rspamd', `scan:\n  rspamd: ${rspamd.url}\n`],
  ['clamd + rspamd', `scan:\n  clamav: ${clamd.socket}\n  rspamd: ${rspamd.url}\n`],
];

const rows = [];
try {
  for (const [name, scan] of variants) {
    const config = join(dir, `${rows.length}.yaml`);
    writeFileSync(config, `${story}\n${scan}`);
    const times = [];
    let summary = '';
    for (let i = 0; i < runs; i++) {
      const started = process.hrtime.bigint();
      const result = spawnSync(process.execPath, [CLI, 'read', '--config', config, CAPTURE], {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      });
      times.push(Number(process.hrtime.bigint() - started) / 1e9);
      if (result.status !== 0) throw new Error(`mailtap read failed: ${result.stderr}`);
      summary = result.stderr.split('\n').find((line) => line.includes('scan:'))?.trim() ?? '';
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    rows.push({ name, median, summary });
    console.log(`${name}: ${median.toFixed(2)} s (median of ${runs}) ${summary}`);
  }
} finally {
  await clamd.stop();
  await rspamd.stop();
  rmSync(dir, { recursive: true, force: true });
}

const base = rows[0].median;
const lines = [
  BEGIN,
  '### Scanning (bench/scan.mjs)',
  '',
  `- Machine: ${cpus().length} CPUs (${cpus()[0]?.model.trim()}); Node ${process.version}; 1-minute load average ${load} before the run`,
  '- Input: `captures/story.pcap`, 333 transactions with a message and 22 TLS sessions, read with `captures/story.yaml` plus a `scan:` section that names the scanners (defaults otherwise: `concurrency` 8)',
  `- Scanners: clamd (${clamdVersion}) with a database of one signature, and rspamd (${rspamdVersion}) with its stock rules, offline so that its DNS look-ups fail, both started as \`test/e2e/scan-daemons.ts\` starts them. clamd with a full signature database was not measured.`,
  '',
  '| scanning | seconds (median) | messages per added second: 333 / (seconds - seconds without scanning) | summary on stderr |',
  '|---|---|---|---|',
  ...rows.map((row) => {
    const extra = row.median - base;
    let rate = '';
    if (row.summary !== '') rate = extra > 0 ? String(Math.round(333 / extra)) : 'n/a';
    return `| ${row.name} | ${row.median.toFixed(2)} | ${rate} | ${row.summary} |`;
  }),
  '',
  `Command: \`node bench/scan.mjs --runs ${runs}\``,
  END,
];
const section = lines.join('\n');
console.log(section);
if (!values['no-docs']) {
  const docs = readFileSync(DOCS, 'utf8');
  const start = docs.indexOf(BEGIN);
  const end = docs.indexOf(END);
  const next = start >= 0 && end > start ? docs.slice(0, start) + section + docs.slice(end + END.length) : `${docs.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOCS, next);
}
