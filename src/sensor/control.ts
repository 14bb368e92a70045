import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { SensorStats } from '../events/consumer.js';
import { MAX_QUERY_CONNECTIONS, serveQuery, type StoreQueries } from './query.js';

/**
 * The control socket of a running sensor: a UNIX stream socket that reads one request line,
 * replies, then closes the connection. "status\n" gets one JSON line of SensorStats, and
 * `mailtap status` is its client. A JSON line with a "query" member is a read-only store query,
 * served by query.ts, whose clients are `mailtap alerts`, `messages`, `show` and `devices`.
 */

/** Socket path of the systemd service: RuntimeDirectory=mailtap gives /run/mailtap. */
export const SERVICE_SOCKET_PATH = '/run/mailtap/mailtap.sock';

/** Maximum request line length in bytes. A client that sends more without a newline is disconnected. */
export const MAX_REQUEST_BYTES = 2048;

/** Time a client has to send its request before the server closes the connection. */
export const REQUEST_TIMEOUT_MS = 5000;

/** Error codes of a connection attempt that mean no sensor listens on the path. */
const NOT_RUNNING_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

/**
 * Returns the default socket path, in this order: $MAILTAP_SOCKET when set. The service's path
 * for root or when /run/mailtap exists, because the service listens there and `mailtap status`
 * should find it. $XDG_RUNTIME_DIR/mailtap.sock. Else mailtap-UID.sock in the temporary directory.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MAILTAP_SOCKET) return env.MAILTAP_SOCKET;
  if (process.getuid?.() === 0 || existsSync(dirname(SERVICE_SOCKET_PATH))) return SERVICE_SOCKET_PATH;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'mailtap.sock');
  return join(tmpdir(), `mailtap-${process.getuid?.() ?? 'user'}.sock`);
}

/** A socket path that another sensor is still listening on. */
export class SocketInUseError extends Error {
  readonly code = 'MAILTAP_ERR_SOCKET_IN_USE';
}

/** Connects to path and reports whether something accepts the connection. */
function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Removes a socket file left behind by a sensor that ended without closing it. Throws
 * SocketInUseError when a live sensor still accepts connections there, and never deletes
 * a file that is not a socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; remove it or choose another --socket path`);
  if (await isListening(path)) {
    throw new SocketInUseError(`another sensor is listening on ${path}; stop it or choose another socket path`);
  }
  unlinkSync(path);
}

export interface ControlServer {
  readonly path: string;
  /** Stops accepting connections and removes the socket file. */
  close(): Promise<void>;
}

/** State shared by the connections of one control server. */
interface ServerContext {
  getStats: () => SensorStats;
  store: StoreQueries | undefined;
  /** Connections that are being served a store query. */
  queries: Set<Socket>;
}

function handleConnection(socket: Socket, context: ServerContext): void {
  let request = '';
  socket.setEncoding('utf8');
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    request += chunk;
    const end = request.indexOf('\n');
    if (end < 0) {
      if (Buffer.byteLength(request) > MAX_REQUEST_BYTES) socket.destroy();
      return;
    }
    const command = request.slice(0, end).trim();
    socket.removeAllListeners('data');
    if (!command.startsWith('{')) {
      socket.end(reply(command, context.getStats) + '\n');
      return;
    }
    const store = context.store;
    if (store === undefined) {
      socket.end(JSON.stringify({ error: 'this sensor has no event store to query' }) + '\n');
    } else if (context.queries.size >= MAX_QUERY_CONNECTIONS) {
      socket.end(JSON.stringify({ error: `the sensor is already serving ${MAX_QUERY_CONNECTIONS} queries; try again later` }) + '\n');
    } else {
      context.queries.add(socket);
      void serveQuery(socket, command, store).finally(() => context.queries.delete(socket));
    }
  });
}

function reply(command: string, getStats: () => SensorStats): string {
  if (command !== 'status') {
    return JSON.stringify({ error: `unknown request "${command.slice(0, 40)}": expected "status"` });
  }
  try {
    return JSON.stringify(getStats());
  } catch (error) {
    return JSON.stringify({ error: `reading the sensor's figures failed: ${(error as Error).message}` });
  }
}

/**
 * Listens on the UNIX socket at path and replies to each "status" request with the JSON of
 * getStats(), and to each query request with rows read from store (none without a store). A
 * stale socket file from an earlier run is removed first. The socket file gets mode 0660, so
 * the sensor's group may query it and other users may not.
 */
export async function startControlServer(
  path: string,
  getStats: () => SensorStats,
  store?: StoreQueries,
): Promise<ControlServer> {
  await removeStaleSocket(path);
  // The service gets /run/mailtap from systemd; root running the sensor by hand does not.
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  const context: ServerContext = { getStats, store, queries: new Set() };
  const server: Server = createServer((socket) => handleConnection(socket, context));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o660);
  let closed: Promise<void> | undefined;
  return {
    path,
    close() {
      closed ??= new Promise<void>((resolve) => {
        // server.close() unlinks the socket file of a UNIX socket server. It waits for open
        // connections, so queries in progress end here, before the store closes.
        server.close(() => resolve());
        for (const socket of context.queries) socket.destroy();
      });
      return closed;
    },
  };
}

/** No sensor listens on the socket path (missing file, refused connection). */
export class SensorNotRunningError extends Error {
  readonly code = 'MAILTAP_ERR_NOT_RUNNING';
}

/**
 * Sends a status request to the sensor at path and returns its figures. Throws
 * SensorNotRunningError when nothing listens there, and an Error for a timeout or a reply
 * that is not a SensorStats document.
 */
export function requestStatus(path: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<SensorStats> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let response = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`the sensor at ${path} did not reply within ${timeoutMs} ms`));
    });
    socket.once('connect', () => socket.write('status\n'));
    socket.on('data', (chunk: string) => {
      response += chunk;
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (NOT_RUNNING_CODES.has(error.code ?? '')) {
        reject(new SensorNotRunningError(`no sensor is running at ${path} (${error.code})`));
      } else {
        reject(new Error(`cannot reach the sensor at ${path}: ${error.message}`));
      }
    });
    socket.once('end', () => {
      socket.destroy();
      try {
        const parsed = JSON.parse(response) as SensorStats | { error: string };
        if ('error' in parsed) reject(new Error(`the sensor at ${path} replied: ${parsed.error}`));
        else resolve(parsed);
      } catch {
        reject(new Error(`the sensor at ${path} sent a reply that is not JSON: ${JSON.stringify(response.slice(0, 80))}`));
      }
    });
  });
}
