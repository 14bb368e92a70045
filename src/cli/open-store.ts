/**
 * Opening the event store for the CLI: which directory (--db, else the configuration's
 * store.path) and a one-line reason when it cannot be opened.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { defaultConfig, loadConfig } from '../config/load.js';
import { EventStore } from '../store/index.js';

/** Reason a store could not be opened. For 'locked' and 'permission', a query tries the running sensor. */
export type StoreOpenReason = 'missing' | 'locked' | 'permission' | 'other';

/** A store that cannot be opened: the CLI prints the message and exits with status 1. */
export class StoreOpenError extends Error {
  constructor(
    message: string,
    readonly reason: StoreOpenReason = 'other',
  ) {
    super(message);
  }
}

/** Returns the reason of a LevelDB open error, as storeOpenMessage words it. */
function storeOpenReason(error: unknown): StoreOpenReason {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause?.code === 'LEVEL_LOCKED') return 'locked';
  const detail = String(cause?.message ?? (error as Error).message ?? error).split('\n')[0];
  return /permission denied|EACCES|EPERM/i.test(detail) ? 'permission' : 'other';
}

/**
 * Returns the store directory: --db when given, else store.path of the --config file (a
 * relative path counts from the file's directory), else the built-in default.
 */
export function storeDirectory(db: string | undefined, configFile: string | undefined): string {
  if (db !== undefined && db !== '') return db;
  if (configFile === undefined) return defaultConfig().store.path;
  const path = loadConfig(configFile).store.path;
  return isAbsolute(path) ? path : resolve(dirname(configFile), path);
}

/** Turns an error from opening LevelDB into one line that names the directory. */
export function storeOpenMessage(dir: string, error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail = String(cause?.message ?? (error as Error).message ?? error).split('\n')[0];
  if (cause?.code === 'LEVEL_LOCKED') {
    return `the event store ${dir} is in use by another process (a running mailtap holds its LOCK file); stop it first`;
  }
  if (/permission denied|EACCES|EPERM/i.test(detail)) {
    return `no permission to open the event store ${dir}: ${detail}`;
  }
  return `cannot open the event store ${dir}: ${detail}`;
}

/**
 * Opens the store at dir. With mustExist, a missing directory is an error rather than a new
 * empty store, so that a mistyped path in a query does not create one.
 */
export async function openEventStore(dir: string, mustExist: boolean): Promise<EventStore> {
  if (mustExist && !existsSync(dir)) {
    throw new StoreOpenError(`no event store at ${dir}: the directory does not exist`, 'missing');
  }
  if (mustExist && !statSync(dir).isDirectory()) {
    throw new StoreOpenError(`no event store at ${dir}: it is not a directory`, 'missing');
  }
  try {
    return await EventStore.open(dir);
  } catch (error) {
    throw new StoreOpenError(storeOpenMessage(dir, error), storeOpenReason(error));
  }
}
