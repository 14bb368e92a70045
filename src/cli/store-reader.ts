/**
 * Sources of the query commands' rows: the store directory itself or, while a running sensor
 * locks the store's LevelDB LOCK file, that sensor through its control socket. Both return the
 * same rows, so query.ts and devices.ts filter and format them the same way.
 */
import { defaultConfig, loadConfig } from '../config/load.js';
import { defaultSocketPath } from '../sensor/control.js';
import { QueryError, SocketStoreReader, sendQuery, type StoreQueries } from '../sensor/query.js';
import { StoreOpenError, openEventStore, storeDirectory } from './open-store.js';

/** Rows of a store, read directly or from the sensor; close() releases the store. */
export interface StoreReader extends StoreQueries {
  close(): Promise<void>;
}

/** The options that locate the store of a query command: --db, --config and --socket. */
export interface StoreLocation {
  db?: string | undefined;
  config?: string | undefined;
  socket?: string | undefined;
}

/** Returns the control socket: --socket, else control.socket of --config, else the default of `mailtap status`. */
export function querySocketPath(where: StoreLocation): string {
  if (where.socket !== undefined && where.socket !== '') return where.socket;
  const config = where.config !== undefined ? loadConfig(where.config) : defaultConfig();
  return config.control.socket ?? defaultSocketPath();
}

/**
 * Opens the store of `where` for reading. When LevelDB rejects the open because another process
 * locks the store, or for lack of permission, the sensor at the control socket serves the queries
 * instead. Throws StoreOpenError with one line when neither works.
 */
export async function openStoreReader(where: StoreLocation): Promise<StoreReader> {
  const dir = storeDirectory(where.db, where.config);
  try {
    return await openEventStore(dir, true);
  } catch (error) {
    if (!(error instanceof StoreOpenError) || (error.reason !== 'locked' && error.reason !== 'permission')) throw error;
    const path = querySocketPath(where);
    try {
      // A cheap request that checks that a sensor with a store replies there.
      await sendQuery(path, { query: 'newest' });
    } catch (queryError) {
      const base = error.message.replace(/; stop it first$/, '');
      const reason = queryError instanceof QueryError && queryError.code !== undefined ? queryError.code : (queryError as Error).message;
      throw new StoreOpenError(
        `${base}, and no sensor responds to store queries on ${path} (${reason}); ` +
          'stop that process, or pass --socket PATH of the sensor that holds the store',
        error.reason,
      );
    }
    const reader = new SocketStoreReader(path);
    return {
      range: (query) => reader.range(query),
      get: (id) => reader.get(id),
      devices: () => reader.devices(),
      newestTimestamp: () => reader.newestTimestamp(),
      close: async () => {},
    };
  }
}
