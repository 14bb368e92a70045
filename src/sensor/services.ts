import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { EventConsumer, SensorStats } from '../events/consumer.js';
import { defaultSocketPath, startControlServer, type ControlServer } from './control.js';
import { startMetricsServer, type MetricsServer } from './metrics.js';
import type { StoreQueries } from './query.js';

/**
 * Starts the control socket (always) and the Prometheus endpoint (when metrics.listen is set)
 * of a live sensor, and returns them as one event consumer whose close() stops both. With a
 * store, the control socket also serves read-only queries of that store. The servers start
 * in the background: a failure is logged and the capture goes on without them.
 */
export function startSensorServices(
  config: Config,
  getStats: () => SensorStats,
  log: Logger,
  store?: StoreQueries,
): EventConsumer {
  let control: ControlServer | undefined;
  let metrics: MetricsServer | undefined;
  const socketPath = config.control.socket ?? defaultSocketPath();

  const controlStarted = startControlServer(socketPath, getStats, store).then(
    (server) => {
      control = server;
      log.info({ socket: server.path }, 'control socket listening');
    },
    (error: Error) => log.error({ socket: socketPath, err: error.message }, 'control socket failed to start; mailtap status will not reach this sensor'),
  );

  const listen = config.metrics.listen;
  const metricsStarted =
    listen === undefined
      ? Promise.resolve()
      : startMetricsServer(listen, getStats, (error) => log.error({ err: error.message }, 'metrics scrape failed')).then(
          (server) => {
            metrics = server;
            log.info({ host: server.address.host, port: server.address.port }, 'metrics endpoint listening');
          },
          (error: Error) => log.error({ host: listen.host, port: listen.port, err: error.message }, 'metrics endpoint failed to start'),
        );

  return {
    event() {},
    async close() {
      await Promise.all([controlStarted, metricsStarted]);
      await Promise.all([control?.close(), metrics?.close()]);
    },
  };
}
