import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ListenAddress } from '../config/service.js';
import type { SensorStats } from '../events/consumer.js';

/**
 * The Prometheus endpoint of a running sensor: GET /metrics returns the sensor's figures and
 * the default Node.js process metrics of prom-client in the Prometheus text format 0.0.4.
 * Each scrape reads one SensorStats snapshot, so the figures of one scrape are consistent.
 */

export interface MetricsServer {
  /** The address and port the server listens on (the real port when 0 was requested). */
  readonly address: ListenAddress;
  close(): Promise<void>;
}

/** Defines the sensor's metrics on a new registry. Each scrape reads the snapshot that current() returns. */
export function createMetricsRegistry(current: () => SensorStats): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // The sensor keeps its own totals, so each counter is set from the snapshot at scrape time.
  const counter = (name: string, help: string, read: (stats: SensorStats) => number | null): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read(current()) ?? 0);
      },
    });
  };
  const gauge = (name: string, help: string, read: (stats: SensorStats) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(current()));
      },
    });
  };

  counter('mailtap_packets_total', 'Packets captured since the sensor started.', (s) => s.packets);
  counter('mailtap_bytes_total', 'Bytes captured since the sensor started.', (s) => s.bytes);
  counter('mailtap_sessions_total', 'SMTP sessions seen since the sensor started.', (s) => s.sessions);
  counter('mailtap_transactions_total', 'SMTP transactions reported since the sensor started.', (s) => s.transactions);
  counter('mailtap_alerts_total', 'Alert events raised since the sensor started.', (s) => s.alerts);
  counter(
    'mailtap_capture_acked_unseen_bytes_total',
    'Bytes the receiver acknowledged that the capture never saw.',
    (s) => s.loss.ackedUnseenBytes,
  );
  counter(
    'mailtap_interface_drops_total',
    'Packets the kernel or the interfaces dropped (rx_dropped and rx_missed_errors).',
    (s) => s.loss.interfaceDrops,
  );
  counter(
    'mailtap_kernel_packets_total',
    'Packets that passed the capture filter, counted by the kernel in the capture sockets (0 when mailtap_kernel_counters_available is 0).',
    (s) => s.loss.kernelPackets,
  );
  counter(
    'mailtap_kernel_drops_total',
    'Packets the kernel dropped because the capture buffer was full (0 when mailtap_kernel_counters_available is 0).',
    (s) => s.loss.kernelDrops,
  );
  gauge(
    'mailtap_kernel_counters_available',
    '1 when the sensor reads the kernel counters of its capture sockets, else 0.',
    (s) => (s.loss.kernelDrops === null ? 0 : 1),
  );
  gauge('mailtap_flows', 'TCP flows in the flow table.', (s) => s.flows);
  gauge('mailtap_capture_loss_ratio', 'Estimated capture loss: acknowledged but unseen bytes over all acknowledged bytes, 0 to 1.', (s) => s.loss.estimatedRatio);
  gauge('mailtap_packets_per_second', 'Packets per second over the last interval.', (s) => s.packetsPerSecond);
  gauge('mailtap_bits_per_second', 'Bits per second over the last interval.', (s) => s.bitsPerSecond);
  gauge('mailtap_uptime_seconds', 'Seconds since the sensor started.', (s) => s.uptimeSeconds);
  gauge('mailtap_last_sequence', 'Newest sequence number the event store assigned.', (s) => s.lastSequence);
  new Gauge({
    name: 'mailtap_sensor_info',
    help: 'Sensor name and version; the value is always 1.',
    labelNames: ['sensor', 'version'],
    registers: [registry],
    collect() {
      const stats = current();
      this.reset();
      this.set({ sensor: stats.sensor, version: stats.version }, 1);
    },
  });
  return registry;
}

/**
 * Serves GET /metrics at address. getStats is called once per scrape. A failing scrape gets
 * status 500 with the reason in the body and is passed to onError (for the sensor's log).
 * Other paths get 404 and other methods 405.
 */
export async function startMetricsServer(
  address: ListenAddress,
  getStats: () => SensorStats,
  onError: (error: Error) => void = () => {},
): Promise<MetricsServer> {
  let snapshot: SensorStats | undefined;
  const registry = createMetricsRegistry(() => {
    snapshot ??= getStats();
    return snapshot;
  });

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    try {
      snapshot = undefined;
      const body = await registry.metrics();
      response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : body);
    } catch (error) {
      onError(error as Error);
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting the metrics failed: ${(error as Error).message}\n`);
    }
  };

  const server: Server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  let closed: Promise<void> | undefined;
  return {
    address: { host: address.host, port },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
