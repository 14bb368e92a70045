/**
 * The event feed of `mailtap read --serve`: argument handling, the feed server with its store,
 * and the stats that `read` publishes to feed clients about once a second.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaptureStats } from '../capture/types.js';
import { parseListenAddress, type ListenAddress } from '../config/outputs-schema.js';
import type { Config } from '../config/schema.js';
import type { SensorStats } from '../events/consumer.js';
import type { FeedServer, Logger } from '../feed/index.js';
import type { Pipeline } from '../pipeline.js';
import type { EventStore } from '../store/index.js';
import { UsageError } from './usage.js';

/**
 * Rewrites "--serve [HOST:PORT]" into "--serve=VALUE" for parseArgs, which has no options with an
 * optional value. An empty value means the address of feed.listen in the config.
 */
export function normalizeServeArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (arg !== '--serve') {
      out.push(arg);
      continue;
    }
    const next = argv[i + 1];
    if (next !== undefined && parseListenAddress(next) !== undefined) {
      out.push(`--serve=${next}`);
      i++;
    } else {
      out.push('--serve=');
    }
  }
  return out;
}

/** Parses the value of --serve; empty: undefined, which means config.feed.listen. */
export function serveAddress(value: string): ListenAddress | undefined {
  if (value === '') return undefined;
  const address = parseListenAddress(value);
  if (address === undefined) throw new UsageError(`invalid --serve "${value}": expected HOST:PORT such as 127.0.0.1:8025`);
  return address;
}

/** A store directory created for --serve without --db, removed when the run ends. */
export function temporaryStoreDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'mailtap-serve-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Starts the feed. The feed and the ws package are loaded here, so that `read` without --serve
 * starts as fast as before. Throws FeedStartError (code MAILTAP_ERR_FEED).
 */
export async function startFeed(config: Config, store: EventStore, listen: ListenAddress | undefined, version: string): Promise<FeedServer> {
  const { FeedServer } = await import('../feed/index.js');
  return FeedServer.start({ config, store, version, logger: stderrLogger(), ...(listen !== undefined ? { listen } : {}) });
}

/**
 * Returns a feed logger that writes warnings and errors (rejected logins, closed slow clients) to
 * stderr as "mailtap: MESSAGE (key=value ...)". Connects and disconnects (info) are left out.
 */
export function stderrLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const print = (fields: object, message: string): void => {
    const parts: string[] = [];
    for (const [key, value] of Object.entries(fields)) {
      if (value instanceof Error) parts.push(`${key}=${value.message}`);
      else if (value !== null && typeof value !== 'object') parts.push(`${key}=${String(value)}`);
    }
    write(`mailtap: ${message}${parts.length > 0 ? ` (${parts.join(' ')})` : ''}\n`);
  };
  return { info() {}, warn: print, error: print };
}

/** Publishes SensorStats to the feed once a second while `read --serve` runs. */
export function publishStats(
  feed: FeedServer,
  source: { config: Config; version: string; files: string[]; capture: CaptureStats; pipeline: Pipeline; store: EventStore },
): () => void {
  const started = new Date();
  let previous = { at: Date.now(), packets: 0, bytes: 0 };
  const timer = setInterval(() => {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - previous.at) / 1000);
    const { capture, pipeline } = source;
    const stats: SensorStats = {
      sensor: source.config.sensor.name,
      version: source.version,
      sources: source.files,
      started: started.toISOString(),
      uptimeSeconds: Math.round((now - started.getTime()) / 1000),
      packets: capture.packets,
      bytes: capture.inputBytes,
      packetsPerSecond: (capture.packets - previous.packets) / seconds,
      bitsPerSecond: ((capture.inputBytes - previous.bytes) * 8) / seconds,
      flows: pipeline.flows.stats.activeFlows,
      sessions: pipeline.counters.sessions,
      transactions: pipeline.counters.transactions,
      alerts: pipeline.counters.alerts,
      lastSequence: source.store.nextSequence - 1,
      // NOTE: read has no capture-loss estimate yet; these stay 0.
      loss: { ackedUnseenBytes: 0, estimatedRatio: 0, interfaceDrops: 0, kernelPackets: null, kernelDrops: null },
    };
    previous = { at: now, packets: capture.packets, bytes: capture.inputBytes };
    feed.stats(stats);
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
