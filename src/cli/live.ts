import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { Analyzer } from '../analyze.js';
import { InterfaceDropCounter, interfaceIsUp } from '../capture/interface-drops.js';
import { KernelDropCounter } from '../capture/kernel-drops.js';
import { readRingSizes } from '../capture/ring.js';
import { LiveCapture, captureClock, defaultCaptureFilter } from '../capture/live.js';
import { ConfigError, defaultConfig, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { EventConsumer, SensorStats } from '../events/consumer.js';
import type { EcsEvent } from '../events/ecs.js';
import { escapeJsonForTerminal } from '../events/sanitize.js';
import { Pipeline } from '../pipeline.js';
import { startSensorServices } from '../sensor/services.js';
import { Notifier } from '../notify/index.js';
import { Scanner } from '../scan/index.js';
import type { EventStore } from '../store/index.js';
import { StoreOpenError, openEventStore } from './open-store.js';
import { capabilityMessage, missingCaptureCapabilities } from './capabilities.js';
import { tableHeader, tableRow } from './format.js';
import { StoredOutput, analyzerStatePuts, restoreAnalyzer } from './stored-output.js';
import { UsageError } from './usage.js';

export const LIVE_HELP = `Usage: mailtap live -i IFACE [-i IFACE2] [options]

Captures from one or more interfaces (a switch mirror port), and stores every SMTP transaction,
session and alert as "read --db" does. Logs JSON lines (pino) on stderr: start, stop, errors,
and statistics every capture.stats_interval, with the estimated capture loss.

Options:
  -i, --interface IFACE  capture on IFACE (repeat for several); default capture.interfaces
  --config FILE          YAML configuration (see appliance/mailtap.yaml); SIGHUP reloads it
  --db DIR               LevelDB store for the events (default store.path of the configuration)
  --filter BPF           capture filter, replacing capture.filter and the default filter
  --format json|table    also print each stored event on stdout, as "read" does
  -h, --help             this help

Signals: SIGINT and SIGTERM stop the capture, store what is pending and exit 0; SIGHUP reloads
the configuration (detection and filter) and keeps the old one when the new one is invalid.

Needs CAP_NET_RAW (root, or AmbientCapabilities=CAP_NET_RAW in a systemd unit).
Exit status: 0 after SIGINT or SIGTERM, 1 when capturing or storing fails, 2 for a usage or
configuration error, 77 when a capability is missing.`;

/** Seconds between two ticks: idle flows time out and consumers get the stats. */
const TICK_SECONDS = 1;

/** Errors of one kind logged per minute; the rest are counted and logged as one line. */
const ERRORS_PER_MINUTE = 5;

/** sysexits.h EX_NOPERM: a capability is missing. */
const EXIT_NO_PERMISSION = 77;

/** The running sensor as its consumers see it. */
export interface LiveSensor {
  readonly interfaces: readonly string[];
  /** The configuration in force; replaced on SIGHUP. */
  config(): Config;
  /** The current figures, computed on each call. */
  stats(): SensorStats;
}

/**
 * Creates the consumers that receive every stored event and, every second, the stats: the
 * control socket (`mailtap status` and the store queries), the Prometheus endpoint, the WebSocket
 * feed and, when `notify:` names a target, the notifier.
 */
export async function liveConsumers(sensor: LiveSensor, store: EventStore, log: Logger): Promise<EventConsumer[]> {
  const config = sensor.config();
  const consumers: EventConsumer[] = [startSensorServices(config, () => sensor.stats(), log, store)];
  // The feed is loaded here only, so that the other commands do not load ws.
  const { FeedServer } = await import('../feed/index.js');
  let feed: import('../feed/index.js').FeedServer;
  try {
    feed = await FeedServer.start({ config, store, logger: log, version: sensor.stats().version });
  } catch (error) {
    await consumers[0]?.close?.();
    throw error;
  }
  log.info({ url: feed.url }, 'serving the event feed');
  consumers.push(feed);

  const notifier = new Notifier({ config, logger: log, version: sensor.stats().version });
  if (notifier.enabled) consumers.push(notifier);
  return consumers;
}

/**
 * Logs at most ERRORS_PER_MINUTE lines per key and minute. The lines left out are counted, and
 * one line reports the count once the minute is over, at the next call for the key or flush().
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; count: number; level: 'warn' | 'error' }>();

  constructor(
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  error(key: string, fields: Record<string, unknown>, message: string): void {
    this.write('error', key, fields, message);
  }

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    this.write('warn', key, fields, message);
  }

  /** Reports the lines left out in windows that are over. */
  flush(): void {
    const now = this.clock();
    for (const [key, window] of this.windows) {
      if (now - window.start < 60000) continue;
      this.reportSuppressed(key, window);
      this.windows.delete(key);
    }
  }

  private write(level: 'warn' | 'error', key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock();
    let window = this.windows.get(key);
    if (window !== undefined && now - window.start >= 60000) {
      this.reportSuppressed(key, window);
      window = undefined;
    }
    if (window === undefined) {
      window = { start: now, count: 0, level };
      this.windows.set(key, window);
    }
    window.count++;
    if (window.count <= ERRORS_PER_MINUTE) this.log[level]({ key, ...fields }, message);
  }

  private reportSuppressed(key: string, window: { count: number; level: 'warn' | 'error' }): void {
    if (window.count <= ERRORS_PER_MINUTE) return;
    this.log[window.level]({ key, suppressed: window.count - ERRORS_PER_MINUTE }, `${key}: more lines like the above were not logged`);
  }
}

function version(): string {
  try {
    const file = fileURLToPath(new URL('../../package.json', import.meta.url));
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Builds the pipeline's options from the configuration, as `read` does. */
function pipelineLimits(config: Config) {
  const limits = config.limits;
  return {
    ...(limits.max_flows !== undefined ? { maxFlows: limits.max_flows } : {}),
    ...(limits.flow_buffer !== undefined ? { maxBufferedPerDirection: limits.flow_buffer } : {}),
    ...(limits.total_buffer !== undefined ? { maxBufferedTotal: limits.total_buffer } : {}),
    ...(limits.idle_timeout !== undefined ? { idleTimeout: limits.idle_timeout } : {}),
  };
}

/**
 * Returns the capture filter: --filter, else capture.filter, else the default, whose fallback
 * without VLAN tags serves interfaces without Ethernet headers.
 */
function captureFilter(config: Config, override: string | undefined): { filter: string; fallback?: string } {
  const configured = override ?? config.capture.filter;
  if (configured !== undefined) return { filter: configured };
  const ports = [...config.smtp.ports, ...config.smtp.implicit_tls_ports];
  return { filter: defaultCaptureFilter(ports), fallback: defaultCaptureFilter(ports, false) };
}

/** Returns whether an interface is Ethernet: ARPHRD_ETHER (1) in /sys/class/net/IFACE/type. */
function isEthernet(iface: string): boolean {
  if (iface === 'any' || iface.includes('/')) return false;
  try {
    return readFileSync(`/sys/class/net/${iface}/type`, 'ascii').trim() === '1';
  } catch {
    return false;
  }
}

/** Minimum slot size, in bytes, at which the sensor warns: slots sized for 64 KiB frames. */
const LARGE_SLOT_BYTES = 32768;

/**
 * Logs how many packets each capture buffer can queue, and warns when its slots are sized for
 * 64 KiB frames (offloads on, or "any"), which leaves room for about 1,000 packets in 64 MiB.
 */
function logRingSizes(interfaces: readonly string[], log: Logger): void {
  for (const ring of readRingSizes(interfaces)) {
    const fields = { interface: ring.iface, slots: ring.slots, slotBytes: ring.slotBytes };
    if (ring.slotBytes >= LARGE_SLOT_BYTES) {
      // On Ethernet, offloads are the cause. libpcap sizes the slots of "any" and of links
      // without Ethernet headers (tun) for 64 KiB frames whatever their settings.
      const remedy = isEthernet(ring.iface)
        ? `turn offloads off (ethtool -K ${ring.iface} gro off lro off gso off tso off) or raise capture.buffer_size`
        : 'raise capture.buffer_size';
      log.warn(
        fields,
        `the capture buffer of ${ring.iface} has room for ${ring.slots} packets only, because libpcap sized its slots for 64 KiB frames: ${remedy}`,
      );
    } else {
      log.info(fields, 'capture buffer');
    }
  }
}

/** Seconds between two log lines while the sensor waits for an interface. */
const INTERFACE_WAIT_LOG_SECONDS = 60;

/**
 * Waits until every interface that exists is up. Returns false when SIGINT or SIGTERM arrived
 * while waiting. An interface that does not exist is left to the capture, which reports it.
 */
async function waitForInterfacesUp(interfaces: readonly string[], log: Logger): Promise<boolean> {
  const down = (): string[] => interfaces.filter((iface) => interfaceIsUp(iface) === false);
  let waitingFor = down();
  if (waitingFor.length === 0) return true;

  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    stopSignal = signal;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  log.warn({ interfaces: waitingFor }, 'interface down: waiting for it to come up (ip link set IFACE up)');
  try {
    let loggedAt = Date.now();
    while (stopSignal === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      waitingFor = down();
      if (waitingFor.length === 0) {
        log.info({ interfaces }, 'interface up: starting the capture');
        return true;
      }
      if (Date.now() - loggedAt >= INTERFACE_WAIT_LOG_SECONDS * 1000) {
        log.warn({ interfaces: waitingFor }, 'interface still down: waiting for it to come up');
        loggedAt = Date.now();
      }
    }
    log.info({ signal: stopSignal }, 'stopped while waiting for the interface');
    return false;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Serializes the settings the analyzer reads, to tell whether a reload changed them. */
function detectionSettings(config: Config): string {
  const { sensor, networks, senders, devices, thresholds, rules, inventory, detect } = config;
  const settings = { sensor, networks, senders, devices, thresholds, rules, inventory, detect };
  return JSON.stringify(settings, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
}

/**
 * Returns the configuration sections a reload changed that take effect only at a restart:
 * everything but the detection settings and the capture filter and reporting (capture.filter,
 * stats_interval, loss_warning), which a reload applies.
 */
function restartOnlyChanges(before: Config, after: Config): string[] {
  const applied = new Set(['sensor', 'networks', 'senders', 'devices', 'thresholds', 'rules', 'inventory', 'detect']);
  const text = (value: unknown): string => JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  const changed: string[] = [];
  for (const key of Object.keys(after) as (keyof Config)[]) {
    if (applied.has(key)) continue;
    if (key === 'capture') {
      const { filter: _f1, stats_interval: _s1, loss_warning: _l1, ...rest1 } = before.capture;
      const { filter: _f2, stats_interval: _s2, loss_warning: _l2, ...rest2 } = after.capture;
      for (const field of Object.keys(rest2) as (keyof typeof rest2)[]) {
        if (text(rest1[field]) !== text(rest2[field])) changed.push(`capture.${field}`);
      }
      continue;
    }
    if (text(before[key]) !== text(after[key])) changed.push(key);
  }
  return changed;
}

/** Runs `mailtap live`. Resolves with the exit status once the sensor stops. */
export async function runLive(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      interface: { type: 'string', short: 'i', multiple: true },
      config: { type: 'string' },
      db: { type: 'string' },
      filter: { type: 'string' },
      format: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(LIVE_HELP + '\n');
    return 0;
  }
  const format = values.format;
  if (format !== undefined && format !== 'json' && format !== 'table') {
    throw new UsageError(`invalid --format "${format}": expected json or table`);
  }
  const configFile = values.config;
  let config: Config = configFile !== undefined ? loadConfig(configFile) : defaultConfig();
  const interfaces = [...new Set(values.interface ?? config.capture.interfaces)];
  if (interfaces.length === 0) {
    throw new UsageError('no interface to capture on: give -i IFACE or set capture.interfaces in the configuration');
  }
  if (values.filter !== undefined && values.filter.trim() === '') {
    throw new UsageError('empty --filter: leave it out to use the default filter');
  }

  const missing = missingCaptureCapabilities();
  if (missing !== undefined && missing.length > 0) {
    process.stderr.write(capabilityMessage(missing) + '\n');
    return EXIT_NO_PERMISSION;
  }

  const log = pino(
    { base: { sensor: config.sensor.name, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 2, sync: true }),
  );
  const errors = new RateLimitedLog(log);

  // A SIGHUP (systemctl reload) before the capture runs would end the process, Node's default
  // for the signal, and systemd does not restart a unit that a signal of its own ended. The
  // reload is done once the capture has started instead.
  let reloadPending = false;
  const earlyReload = (): void => {
    reloadPending = true;
    log.info('SIGHUP before the capture started: reloading once it runs');
  };
  process.on('SIGHUP', earlyReload);

  // libpcap cannot open an interface that is down, and cap 0.2.1 aborts the process when a
  // captured interface goes down. A sensor restarted after that waits here instead of failing
  // again, so a mirror port that stays down for minutes does not exhaust the service's restarts.
  if (!(await waitForInterfacesUp(interfaces, log))) return 0;

  const dbPath = values.db ?? config.store.path;
  let store: EventStore;
  try {
    store = await openEventStore(dbPath, false);
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    log.error({ db: dbPath, err: error.message }, 'cannot open the store');
    process.stderr.write(`mailtap: error: ${error.message}\n`);
    return 1;
  }

  const started = new Date();
  const sensorVersion = version();
  let lastSequence = 0;
  let consumers: EventConsumer[] = [];
  const out = process.stdout;
  if (format === 'table') out.write(tableHeader() + '\n');
  const deliver = (event: EcsEvent): void => {
    const sequence = event.event.sequence;
    if (sequence !== undefined && sequence > lastSequence) lastSequence = sequence;
    if (format === 'table') out.write(tableRow(event) + '\n');
    else if (format === 'json') out.write(escapeJsonForTerminal(JSON.stringify(event)) + '\n');
    for (const consumer of consumers) {
      try {
        consumer.event(event);
      } catch (error) {
        errors.error('consumer', { err: errorText(error) }, 'an event consumer failed');
      }
    }
  };
  const retention = config.store.retention;
  // NOTE: StoredOutput queues batches without a bound, so a store slower than the traffic
  // grows the heap. `read` waits on busy(), but a live capture cannot pause the wire.
  let analyzer = new Analyzer(config);
  // Inventory, baselines and open alerts continue from the state the last run saved.
  const restoreWarning = await restoreAnalyzer(store, analyzer);
  if (restoreWarning !== undefined) log.warn({ db: dbPath }, restoreWarning);
  const stored = new StoredOutput(store, (event) => deliver(event as EcsEvent), {
    state: () => analyzerStatePuts(analyzer),
    keepEvents: true,
    retention: {
      ...(retention.max_age !== undefined ? { maxAgeSeconds: retention.max_age } : {}),
      ...(retention.max_size !== undefined ? { maxBytes: retention.max_size } : {}),
    },
  });

  // Live capture never waits for the scanners: a message that finds the queue full is recorded
  // as not scanned.
  const scanner =
    config.scan.clamav !== undefined || config.scan.rspamd !== undefined
      ? new Scanner({ config: config.scan, wait: false, hostname: config.sensor.name, log: (line) => log.warn({ scan: true }, line) })
      : undefined;
  const pipeline = new Pipeline({
    ...(scanner ? { scanner } : {}),
    smtpPorts: config.smtp.ports,
    implicitTlsPorts: config.smtp.implicit_tls_ports,
    analyzer,
    flowLimits: pipelineLimits(config),
    onEvent: (event) => stored.add(event),
  });

  const startSmtp = config.smtp;
  let filters = captureFilter(config, values.filter);
  let capture: LiveCapture;
  try {
    capture = LiveCapture.open({
      interfaces,
      filter: filters.filter,
      ...(filters.fallback !== undefined ? { fallbackFilter: filters.fallback } : {}),
      bufferSize: config.capture.buffer_size,
      onPacket: (packet) => {
        // The stages count bad input themselves, so an exception here is a bug. It must not
        // reach cap's native callback, where it would end the process.
        try {
          pipeline.handlePacket(packet);
        } catch (error) {
          errors.error('packet', { err: errorText(error) }, 'a packet could not be processed');
        }
      },
    });
  } catch (error) {
    const message = errorText(error);
    log.error({ interfaces, filter: filters.filter, err: message }, 'cannot start the capture');
    process.stderr.write(`mailtap: error: ${message}\n`);
    await store.close();
    return 1;
  }
  const drops = new InterfaceDropCounter(interfaces);
  const kernel = new KernelDropCounter(interfaces);
  if (kernel.unavailable !== undefined) {
    log.warn({ interfaces, reason: kernel.unavailable }, 'kernel capture drop counts unavailable: status shows the loss estimate only');
  }

  // Rates are over the last tick; the loss check is over the last stats interval.
  let previous = { at: Date.now(), packets: 0, bytes: 0 };
  let rates = { packetsPerSecond: 0, bitsPerSecond: 0 };
  const stats = (): SensorStats => {
    const flows = pipeline.flows.stats;
    const counters = pipeline.counters;
    const acked = flows.ackedBytes;
    const kernelCounts = kernel.read();
    return {
      sensor: config.sensor.name,
      version: sensorVersion,
      sources: [...interfaces],
      started: started.toISOString(),
      uptimeSeconds: Math.round((Date.now() - started.getTime()) / 1000),
      packets: capture.stats.packets,
      bytes: capture.stats.bytes,
      packetsPerSecond: rates.packetsPerSecond,
      bitsPerSecond: rates.bitsPerSecond,
      flows: flows.activeFlows,
      sessions: counters.sessions,
      transactions: counters.transactions,
      alerts: counters.alerts,
      lastSequence,
      loss: {
        ackedUnseenBytes: flows.ackedUnseenBytes,
        estimatedRatio: acked > 0 ? flows.ackedUnseenBytes / acked : 0,
        interfaceDrops: drops.read(),
        kernelPackets: kernelCounts?.received ?? null,
        kernelDrops: kernelCounts?.dropped ?? null,
      },
    };
  };
  const sensor: LiveSensor = { interfaces, config: () => config, stats };
  try {
    consumers = await liveConsumers(sensor, store, log);
  } catch (error) {
    const message = errorText(error);
    log.error({ err: message }, 'cannot start the event consumers');
    process.stderr.write(`mailtap: error: ${message}\n`);
    capture.close();
    await pipeline.finish();
    await stored.drain();
    scanner?.close();
    await store.close();
    // A configuration that forbids serving the feed is a configuration error.
    return (error as { reason?: string }).reason === 'config' ? 2 : 1;
  }

  let stopping: Promise<number> | undefined;
  let resolveDone: (status: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });

  // The loss check compares the counters with their values at the previous stats line.
  let lastReport = { at: Date.now(), acked: 0, unseen: 0, drops: 0, kernelDrops: 0 };
  const internalErrors = { handler: 0, internal: 0 };
  const tick = (): void => {
    const now = Date.now();
    pipeline.tick(captureClock() / 1000);
    const seconds = (now - previous.at) / 1000;
    if (seconds > 0) {
      rates = {
        packetsPerSecond: Math.round((capture.stats.packets - previous.packets) / seconds),
        bitsPerSecond: Math.round(((capture.stats.bytes - previous.bytes) * 8) / seconds),
      };
    }
    previous = { at: now, packets: capture.stats.packets, bytes: capture.stats.bytes };

    const current = stats();
    for (const consumer of consumers) {
      try {
        consumer.stats?.(current);
      } catch (error) {
        errors.error('consumer', { err: errorText(error) }, 'an event consumer failed');
      }
    }

    const flows = pipeline.flows.stats;
    if (flows.handlerErrors > internalErrors.handler || flows.internalErrors > internalErrors.internal) {
      errors.error(
        'pipeline',
        { handlerErrors: flows.handlerErrors, internalErrors: flows.internalErrors },
        'flows were dropped after an internal error',
      );
      internalErrors.handler = flows.handlerErrors;
      internalErrors.internal = flows.internalErrors;
    }

    if (stored.error !== undefined) {
      log.error({ db: dbPath, err: stored.error.message }, 'writing to the store failed; stopping');
      void stop('store', 1);
      return;
    }
    if ((now - lastReport.at) / 1000 >= config.capture.stats_interval) report(now, current);
    errors.flush();
  };

  const report = (now: number, current: SensorStats): void => {
    const flows = pipeline.flows.stats;
    const acked = flows.ackedBytes - lastReport.acked;
    const unseen = flows.ackedUnseenBytes - lastReport.unseen;
    const newDrops = current.loss.interfaceDrops - lastReport.drops;
    const newKernelDrops = (current.loss.kernelDrops ?? 0) - lastReport.kernelDrops;
    const ratio = acked > 0 ? unseen / acked : 0;
    log.info(
      {
        stats: current,
        interval: {
          seconds: Math.round((now - lastReport.at) / 1000),
          ackedBytes: acked,
          ackedUnseenBytes: unseen,
          interfaceDrops: newDrops,
          kernelDrops: newKernelDrops,
        },
        decode: { frames: pipeline.decoder.stats.frames, errors: pipeline.decoder.stats.errors },
        tcp: { gaps: flows.gaps, gapBytes: flows.gapBytes, evictedFlows: flows.evictedFlows, timedOutFlows: flows.timedOutFlows },
      },
      'stats',
    );
    if (ratio > config.capture.loss_warning || newDrops > 0 || newKernelDrops > 0) {
      errors.warn(
        'capture_loss',
        {
          estimatedRatio: ratio,
          ackedBytes: acked,
          ackedUnseenBytes: unseen,
          interfaceDrops: newDrops,
          kernelDrops: newKernelDrops,
          threshold: config.capture.loss_warning,
        },
        'capture loss: the sensor misses traffic (check the mirror port, capture.buffer_size and the CPU load)',
      );
    }
    lastReport = {
      at: now,
      acked: flows.ackedBytes,
      unseen: flows.ackedUnseenBytes,
      drops: current.loss.interfaceDrops,
      kernelDrops: current.loss.kernelDrops ?? 0,
    };
  };
  const timer = setInterval(tick, TICK_SECONDS * 1000);

  const reload = (): void => {
    if (configFile === undefined) {
      log.info('SIGHUP: no --config file to reload');
      return;
    }
    let next: Config;
    try {
      next = loadConfig(configFile);
    } catch (error) {
      const message = error instanceof ConfigError ? error.message : errorText(error);
      log.error({ config: configFile, err: message }, 'SIGHUP: the configuration is invalid; keeping the previous one');
      return;
    }

    // The SMTP parser keeps the ports of the start, so the default filter keeps them too.
    const nextFilters = captureFilter({ ...next, smtp: startSmtp }, values.filter);
    try {
      // A new filter reopens the capture sockets, and their kernel counters go with the old ones.
      if (nextFilters.filter !== capture.filter) kernel.read();
      capture.setFilter(nextFilters.filter, nextFilters.fallback);
      kernel.rescan();
    } catch (error) {
      log.error(
        { config: configFile, filter: nextFilters.filter, err: errorText(error) },
        'SIGHUP: the new filter is invalid; keeping the previous configuration',
      );
      return;
    }

    filters = nextFilters;
    const needRestart = restartOnlyChanges(config, next);
    // A new analyzer starts without the inventory, baselines and open alerts of the old one,
    // so it replaces the old one only when a setting it reads changed.
    const detectionChanged = detectionSettings(next) !== detectionSettings(config);
    config = next;
    if (detectionChanged) {
      // The new analyzer takes over the inventory, baselines and open alerts of the old one.
      const next = new Analyzer(config);
      const problem = next.restore(analyzer.snapshot());
      if (problem !== undefined) log.warn({ err: problem }, 'SIGHUP: the detection state could not be carried over');
      analyzer = next;
      pipeline.replaceAnalyzer(analyzer);
    }
    log.info({ config: configFile, filter: filters.filter, detectionChanged }, 'configuration reloaded');
    if (needRestart.length > 0) {
      const sections = needRestart.join(', ');
      log.warn({ config: configFile, sections: needRestart }, `SIGHUP: ${sections} changed and take effect at the next restart`);
    }
  };

  const stop = async (reason: string, status: number): Promise<number> => {
    stopping ??= (async () => {
      clearInterval(timer);
      // The sockets' kernel counters go with them: the last reading is taken first.
      kernel.read();
      capture.close();
      log.info({ reason }, 'stopping: storing pending events');
      try {
        await pipeline.finish();
        // Also saves the analyzer state and the device records.
        await stored.drain();
      } catch (error) {
        log.error({ err: errorText(error) }, 'error while storing the pending events');
        status = 1;
      }
      for (const consumer of consumers) {
        try {
          await consumer.close?.();
        } catch (error) {
          log.error({ err: errorText(error) }, 'an event consumer failed to close');
        }
      }
      scanner?.close();
      await store.close();
      if (stored.error !== undefined && status === 0) status = 1;
      log.info({ reason, status, stats: stats() }, 'capture stopped');
      process.off('SIGINT', onStop);
      process.off('SIGTERM', onStop);
      process.off('SIGHUP', reload);
      resolveDone(status);
      return status;
    })();
    return stopping;
  };
  const onStop = (signal: NodeJS.Signals): void => {
    // A second signal ends the process at once.
    if (stopping !== undefined) process.exit(signal === 'SIGINT' ? 130 : 143);
    void stop(signal, 0);
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', reload);
  process.off('SIGHUP', earlyReload);
  // Logged once the signal handlers are in place: a supervisor may stop the sensor right away.
  log.info(
    { interfaces, filter: filters.filter, linkTypes: capture.linkTypes(), bufferSize: config.capture.buffer_size, db: dbPath, host: hostname() },
    'capture started',
  );
  logRingSizes(interfaces, log);
  const withoutVlan = capture.fallbackInterfaces();
  if (withoutVlan.length > 0) {
    log.info({ interfaces: withoutVlan, filter: filters.fallback }, 'interfaces without VLAN tags use the default filter without its VLAN part');
  }
  if (reloadPending) reload();

  return done;
}
