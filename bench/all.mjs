// `npm run bench`: the throughput comparison (bench/run.mjs, which takes the options given after
// `npm run bench --`), then the feed latency and the dashboard redraw benchmarks. Each one
// rewrites its own section of docs/benchmarks.md. The exit status is 1 when any of them failed
// or missed its target, after all have run.
import { spawnSync } from 'node:child_process';

const runs = [
  ['bench/run.mjs', ...process.argv.slice(2)],
  ['bench/feed-latency.mjs'],
  ['bench/tui-redraw.mjs'],
];
let failed = 0;
for (const args of runs) {
  process.stderr.write(`\n== node ${args.join(' ')}\n`);
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
