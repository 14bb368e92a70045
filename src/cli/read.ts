import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { createCaptureStats, readCapture } from '../capture/index.js';
import { Analyzer } from '../analyze.js';
import type { EventStore } from '../store/index.js';
import { onStdoutClosed } from './closed-stdout.js';
import { StoreOpenError, openEventStore } from './open-store.js';
import { StoredOutput, analyzerStatePuts, restoreAnalyzer } from './stored-output.js';
import { CaptureError, type CaptureStats } from '../capture/types.js';
import { defaultConfig, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { EcsEvent } from '../events/ecs.js';
import { encodeJsonLinesForTerminal } from '../events/sanitize.js';
import { Pipeline } from '../pipeline.js';
import { Scanner } from '../scan/index.js';
import { scanSummary } from './scan-summary.js';
import { formatBytes, formatCount, tableHeader, tableRow } from './format.js';
import { UsageError, parsePortList } from './usage.js';
import { normalizeServeArgs, publishStats, serveAddress, startFeed, temporaryStoreDir } from './serve.js';
import type { FeedServer } from '../feed/index.js';
import { packageVersion } from './version.js';
import type { ReplayDashboard } from '../tui/index.js';

export const READ_HELP = `Usage: mailtap read [options] FILE...

Reads pcap, pcapng or gzip-compressed capture files ("-" for stdin) and prints one record per
SMTP transaction, one per session without a transaction (for example after STARTTLS), and the
alerts of the detection rules (configured with --config) in the same stream. With clamd or
rspamd named under scan: in the configuration, every clear-text message is scanned, and
reading pauses while the scan queue is full (see docs/scanning.md).

Options:
  --format json|table   json: one ECS document per line (default); table: a row per record
  --config FILE         YAML configuration (see appliance/mailtap.yaml); without it, the defaults
  --db DIR              also store every record in the LevelDB store at DIR (created if missing)
                        before printing it, with its sequence number, and continue from the
                        device inventory and detector state saved there. Without --db nothing
                        is stored; the query commands read store.path of the configuration
  --ports LIST          more SMTP ports to parse, comma-separated, besides smtp.ports of the
                        configuration (default 25, 587, 2525)
  --tls-ports LIST      ports whose sessions start with TLS, replacing smtp.implicit_tls_ports
                        (default 465)
  --no-mime             skip header and MIME parsing of message bodies
  --serve [HOST:PORT]   also serve every record to WebSocket clients at ws://HOST:PORT/v1/events
                        (docs/feed.md; default feed.listen of the config, 127.0.0.1:8025) and keep
                        serving after the input ends, so clients can replay with "since", until
                        SIGINT or SIGTERM; without --db the records go to a temporary store
  --no-progress         no progress bar, even on a terminal
  --tui                 show the events in the terminal dashboard instead of printing them; the
                        dashboard stays after the end of the input until q
  --speed N             with --tui, replay at N times the capture's own pace (default 1);
                        0 or max: as fast as possible
  -q, --quiet           no summary on stderr
  -h, --help            this help

Exit status: 0 when every file was read to its end, 1 when a file could not be read
(the records before the bad spot are still printed), 2 for a usage or configuration error.`;

/** Throughput and volume figures for the summary on stderr. */
interface RunTotals {
  files: number;
  failedFiles: number;
  capture: CaptureStats;
  startedAt: bigint;
}

function writeSummary(totals: RunTotals, pipeline: Pipeline): void {
  const seconds = Number(process.hrtime.bigint() - totals.startedAt) / 1e9;
  const { capture } = totals;
  const decode = pipeline.decoder.stats;
  const flows = pipeline.flows.stats;
  const counters = pipeline.counters;
  const rate = seconds > 0 ? capture.inputBytes / seconds : 0;
  const lines = [
    `mailtap: ${formatCount(totals.files)} file(s)` +
      (totals.failedFiles > 0 ? ` (${totals.failedFiles} failed)` : '') +
      `, ${formatCount(capture.packets)} packets, ${formatBytes(capture.inputBytes)}` +
      ` in ${seconds.toFixed(2)} s (${formatBytes(rate)}/s, ` +
      `${formatCount(Math.round(seconds > 0 ? capture.packets / seconds : 0))} packets/s)`,
    `  decode: ${formatCount(decode.tcp)} TCP segments, ${formatCount(decode.errors)} errors, ` +
      `${formatCount(decode.snapTruncated)} cut by snap length, ` +
      `${formatCount(decode.unsupportedLinkType)} unsupported link type, ` +
      `${formatCount(decode.fragmentsDropped)} IP fragments dropped`,
    `  tcp: ${formatCount(flows.flowsOpened)} flows, ${formatCount(flows.gaps)} gaps ` +
      `(${formatBytes(flows.gapBytes)}), ${formatCount(flows.retransmissions)} retransmissions, ` +
      `${formatCount(flows.droppedBytesPerFlowLimit + flows.droppedBytesTotalLimit)} bytes over memory bounds, ` +
      `${formatCount(flows.evictedFlows)} flows evicted at limits.max_flows`,
    `  smtp: ${formatCount(counters.sessions)} sessions, ${formatCount(counters.transactions)} transactions, ` +
      `${formatCount(counters.events)} records, ${formatCount(counters.anomalies)} anomalies, ` +
      `${formatCount(counters.alerts)} alert events`,
  ];
  const scan = scanSummary(pipeline.scanner);
  if (scan !== undefined) lines.push(scan);
  process.stderr.write(lines.join('\n') + '\n');
}

/**
 * Warns when frames were read but none could be decoded because of their link type, which
 * would otherwise end in an empty output and exit status 0. Printed even with --quiet.
 */
function warnIfNothingDecoded(pipeline: Pipeline): void {
  const stats = pipeline.decoder.stats;
  if (stats.frames > 0 && stats.unsupportedLinkType === stats.frames) {
    process.stderr.write(
      `mailtap: warning: none of the ${formatCount(stats.frames)} frames has a supported link type ` +
        '(Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback); nothing was analysed\n',
    );
  }
}

function totalSize(files: string[]): number | undefined {
  let total = 0;
  for (const file of files) {
    if (file === '-') return undefined;
    try {
      total += statSync(file).size;
    } catch {
      return undefined; // readCapture reports the missing file with its own error.
    }
  }
  return total;
}

/** Characters of output collected before a write, unless the event loop turns first. */
const OUTPUT_CHUNK_LENGTH = 64 * 1024;

/**
 * Collects output lines and writes them in chunks, because a write per record costs a system
 * call each (32,348 on the benchmark capture). The lines are written when they reach
 * OUTPUT_CHUNK_LENGTH characters, on the next turn of the event loop, or on flush(), so records
 * do not wait for more input.
 */
class LineWriter {
  private lines: string[] = [];
  private length = 0;
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    /** Turns the lines of a chunk into the bytes written; without it they are joined as they are. */
    private readonly encode: ((lines: readonly string[]) => Buffer) | undefined,
  ) {}

  add(line: string): void {
    if (this.closed) return;
    this.lines.push(line);
    this.length += line.length + 1;
    if (this.length >= OUTPUT_CHUNK_LENGTH) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushScheduledLines);
    }
  }

  /** Drops the collected lines and every later one: the reader of the output has gone. */
  close(): void {
    this.closed = true;
    this.lines = [];
    this.length = 0;
  }

  /** Writes the collected lines now. */
  flush(): void {
    const lines = this.lines;
    if (lines.length === 0) return;
    this.lines = [];
    this.length = 0;
    if (this.encode !== undefined) {
      this.out.write(this.encode(lines));
      return;
    }
    // The empty last line gives the final newline. Appending '\n' to the joined text instead made
    // a cons string, which the write then had to flatten into a further copy.
    lines.push('');
    this.out.write(lines.join('\n'));
  }

  private readonly flushScheduledLines = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
}

/** Runs `mailtap read`. Returns the exit status. */
export async function runRead(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: normalizeServeArgs(argv),
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'json' },
      config: { type: 'string' },
      db: { type: 'string' },
      serve: { type: 'string' },
      ports: { type: 'string' },
      'tls-ports': { type: 'string' },
      'no-mime': { type: 'boolean', default: false },
      'no-progress': { type: 'boolean', default: false },
      tui: { type: 'boolean', default: false },
      speed: { type: 'string' },
      quiet: { type: 'boolean', short: 'q', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(READ_HELP + '\n');
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('missing capture file: give one or more files, or "-" for stdin');
  const format = values.format;
  if (format !== 'json' && format !== 'table') {
    throw new UsageError(`invalid --format "${format}": expected json or table`);
  }
  const config: Config = values.config !== undefined ? loadConfig(values.config) : defaultConfig();
  const smtpPorts = [...config.smtp.ports, ...parsePortList(values.ports, '--ports')];
  const tlsPorts =
    values['tls-ports'] !== undefined ? parsePortList(values['tls-ports'], '--tls-ports') : config.smtp.implicit_tls_ports;
  const limits = config.limits;

  if (values.speed !== undefined && !values.tui) throw new UsageError('--speed is only valid with --tui');
  if (values.tui && positionals.includes('-')) {
    throw new UsageError('--tui reads its keys from the terminal on stdin, so the capture cannot come from "-": give a file');
  }
  if (values.tui && !process.stdout.isTTY) {
    throw new UsageError('--tui needs a terminal on stdout; without one, leave out --tui to print the records');
  }
  // Loaded only for --tui, so that blessed does not slow down the start of every run.
  const tui = values.tui ? await import('../tui/index.js') : undefined;
  const speed = tui ? tui.parseSpeed(values.speed) : 1;
  const out = process.stdout;
  if (format === 'table' && !values.tui) out.write(tableHeader() + '\n');
  // tableRow sanitizes its cells itself; JSON text gets the terminal escapes per written chunk.
  const records = new LineWriter(out, format === 'table' ? undefined : encodeJsonLinesForTerminal);
  // With --db, a reader that goes away (read --db DIR x.pcap | head) stops the printing only:
  // every record read is still stored, and the run ends as usual.
  let outputClosed = false;
  let wakeOutput: (() => void) | undefined;
  const releaseStdout =
    values.db !== undefined && !values.tui
      ? onStdoutClosed(() => {
          outputClosed = true;
          records.close();
          wakeOutput?.();
        })
      : undefined;
  // With --tui the records go to the dashboard instead of stdout. It opens just before reading,
  // so that the errors of the steps before it reach a normal terminal.
  let dashboard: ReplayDashboard | undefined;
  const print = values.tui
    ? (event: EcsEvent) => dashboard?.push(event)
    : format === 'table'
      ? (event: EcsEvent) => records.add(tableRow(event))
      : (event: EcsEvent) => records.add(JSON.stringify(event));
  // The store hands over the JSON it wrote, so a stored event is serialized once.
  // The store hands over the event only when keepEvents is set (table, dashboard, feed); JSON
  // output prints the text the store wrote.
  const printStored = values.tui
    ? (event: EcsEvent | undefined) => dashboard?.push(event as EcsEvent)
    : format === 'table'
      ? (event: EcsEvent | undefined) => records.add(tableRow(event as EcsEvent))
      : (_event: EcsEvent | undefined, text: string) => records.add(text);
  let store: EventStore | undefined;
  const serveListen = values.serve !== undefined ? serveAddress(values.serve) : undefined;
  // --serve needs a store for "since" replay: without --db, a temporary one.
  const temporaryStore = values.serve !== undefined && values.db === undefined ? temporaryStoreDir() : undefined;
  const dbPath = values.db ?? temporaryStore?.path;
  if (dbPath !== undefined) {
    try {
      store = await openEventStore(dbPath, false);
    } catch (error) {
      if (!(error instanceof StoreOpenError)) throw error;
      process.stderr.write(`mailtap: error: ${error.message}\n`);
      temporaryStore?.remove();
      return 1;
    }
  }
  const analyzer = new Analyzer(config);
  if (store) {
    const warning = await restoreAnalyzer(store, analyzer);
    if (warning !== undefined) process.stderr.write(`mailtap: warning: ${dbPath}: ${warning}\n`);
  }
  let feed: FeedServer | undefined;
  if (values.serve !== undefined && store !== undefined) {
    try {
      feed = await startFeed(config, store, serveListen, packageVersion());
    } catch (error) {
      if ((error as { code?: string }).code !== 'MAILTAP_ERR_FEED') throw error;
      process.stderr.write(`mailtap: error: ${(error as Error).message}\n`);
      await store.close();
      temporaryStore?.remove();
      // A configuration that forbids serving is a configuration error, as elsewhere.
      return (error as { reason?: string }).reason === 'config' ? 2 : 1;
    }
    process.stderr.write(`mailtap: serving the event feed at ${feed.url}\n`);
  }
  const served = feed;
  const emitStored =
    served === undefined
      ? printStored
      : (event: EcsEvent | undefined, text: string) => {
          printStored(event, text);
          served.event(event as EcsEvent);
        };
  const retention = config.store.retention;
  const stored = store
    ? new StoredOutput(store, emitStored, {
        state: () => analyzerStatePuts(analyzer),
        keepEvents: format === 'table' || values.tui === true || served !== undefined,
        retention: {
          ...(retention.max_age !== undefined ? { maxAgeSeconds: retention.max_age } : {}),
          ...(retention.max_size !== undefined ? { maxBytes: retention.max_size } : {}),
        },
      })
    : undefined;
  // Reading a file waits for the scanners (see waitForConsumer) rather than skip messages.
  const scanner =
    config.scan.clamav !== undefined || config.scan.rspamd !== undefined
      ? new Scanner({
          config: config.scan,
          wait: true,
          hostname: config.sensor.name,
          log: (line) => process.stderr.write(`mailtap: ${line}\n`),
        })
      : undefined;
  const pipeline = new Pipeline({
    smtpPorts,
    implicitTlsPorts: tlsPorts,
    parseMessages: !values['no-mime'],
    analyzer,
    ...(scanner ? { scanner } : {}),
    flowLimits: {
      ...(limits.max_flows !== undefined ? { maxFlows: limits.max_flows } : {}),
      ...(limits.flow_buffer !== undefined ? { maxBufferedPerDirection: limits.flow_buffer } : {}),
      ...(limits.total_buffer !== undefined ? { maxBufferedTotal: limits.total_buffer } : {}),
      ...(limits.idle_timeout !== undefined ? { idleTimeout: limits.idle_timeout } : {}),
    },
    onEvent: stored ? (event: EcsEvent) => stored.add(event) : print,
  });

  const totals: RunTotals = {
    files: positionals.length,
    failedFiles: 0,
    capture: createCaptureStats(),
    startedAt: process.hrtime.bigint(),
  };
  const size = totalSize(positionals);
  const showProgress =
    !values['no-progress'] &&
    !values.tui && process.stderr.isTTY === true && size !== undefined && size > 64 * 1024 * 1024;
  const bar = showProgress
    ? new SingleBar({
        stream: process.stderr,
        format: 'mailtap [{bar}] {percentage}% | {value}/{total} MiB | {eta}s left',
        hideCursor: true,
      })
    : undefined;
  bar?.start(Math.ceil((size ?? 0) / 1048576), 0);

  // SIGINT or SIGTERM (Ctrl-C at the end of "tcpdump -w - | mailtap read -") stops reading; the
  // open flows are still closed, their records printed and the summary written. A second
  // signal ends the process at once.
  let stopSignal: NodeJS.Signals | undefined;
  let wakeServe: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal !== undefined) process.exit(signal === 'SIGINT' ? 130 : 143);
    stopSignal = signal;
    wakeServe?.();
    dashboard?.quit();
    if (positionals.includes('-')) process.stdin.destroy();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Reading waits while stdout is full, so a slow reader of the output bounds memory.
  const waitForConsumer = (): Promise<boolean> | undefined => {
    if (stopSignal !== undefined || dashboard?.quitRequested) return Promise.resolve(false);
    const scanning = scanner?.busy();
    if (scanning) return scanning.then(() => stopSignal === undefined && !dashboard?.quitRequested);
    const pacing = dashboard?.pacer.waitForRoom();
    if (pacing) return pacing.then(() => stopSignal === undefined && !dashboard?.quitRequested);
    const storing = stored?.busy();
    if (storing) return storing.then(() => stopSignal === undefined && stored?.error === undefined);
    if (outputClosed || !out.writableNeedDrain) return undefined;
    return new Promise((resolve) => {
      wakeOutput = () => resolve(stopSignal === undefined);
      out.once('drain', wakeOutput);
    });
  };

  const stopStats =
    feed !== undefined && store !== undefined
      ? publishStats(feed, { config, version: packageVersion(), files: positionals, capture: totals.capture, pipeline, store })
      : undefined;
  let doneBytes = 0;
  const deferredErrors: string[] = [];
  try {
    if (tui) {
      dashboard = tui.startReplayDashboard({ files: positionals, speed, sensor: config.sensor.name });
      dashboard.watch(pipeline, () => ({ packets: totals.capture.packets, bytes: totals.capture.inputBytes }));
    }
    for (const file of positionals) {
      if (stopSignal !== undefined) break;
      const before = totals.capture.inputBytes;
      try {
        await readCapture(file, pipeline.handlePacket, {
          stats: totals.capture,
          waitForConsumer,
          onProgress: bar ? (read) => bar.update(Math.floor((doneBytes + read) / 1048576)) : undefined,
        });
      } catch (error) {
        if (!(error instanceof CaptureError)) throw error;
        // Destroying stdin on a signal can end its stream with an error; that is the stop itself.
        if (stopSignal !== undefined) break;
        totals.failedFiles++;
        bar?.stop();
        // Records from the packets before the bad spot must reach stdout before the error line.
        await pipeline.finish();
        await stored?.drain();
        records.flush();
        const message = `mailtap: error: ${error.message} (${error.code})\n`;
        // While the dashboard owns the terminal, the error waits until it is closed.
        if (dashboard) deferredErrors.push(message);
        else process.stderr.write(message);
      }
      doneBytes += file === '-' ? 0 : totals.capture.inputBytes - before;
    }
    await pipeline.finish();
    // Also saves the analyzer state and the device records, after the last events.
    await stored?.drain();
    await dashboard?.finish();
  } finally {
    // Give the terminal back before an internal error is reported.
    dashboard?.destroy();
    // Also before an internal error is reported, so that the records read so far come first.
    records.flush();
  }
  if (bar) {
    bar.update(bar.getTotal());
    bar.stop();
  }
  for (const message of deferredErrors) process.stderr.write(message);
  // Flush the records first, so that on a terminal the summary comes after the last one.
  if (!outputClosed) await new Promise<void>((resolve) => out.write('', () => resolve()));
  warnIfNothingDecoded(pipeline);
  if (!values.quiet) writeSummary(totals, pipeline);
  // The input ended on its own: the feed keeps serving, so clients can still replay.
  const inputComplete = stopSignal === undefined;
  if (feed !== undefined) {
    if (stopSignal === undefined) {
      process.stderr.write('mailtap: input done; still serving the feed until SIGINT or SIGTERM\n');
      await new Promise<void>((resolve) => (wakeServe = resolve));
    }
    stopStats?.();
    await feed.close();
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  scanner?.close();
  await store?.close();
  releaseStdout?.();
  temporaryStore?.remove();
  if (stored?.error) {
    process.stderr.write(`mailtap: error: writing to the store ${dbPath} failed: ${stored.error.message}\n`);
    return 1;
  }
  if (stopSignal !== undefined && !(feed !== undefined && inputComplete)) return stopSignal === 'SIGINT' ? 130 : 143;
  return totals.failedFiles > 0 ? 1 : 0;
}
