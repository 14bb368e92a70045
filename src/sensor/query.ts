/**
 * Store queries over the control socket, so that `mailtap alerts`, `messages`, `show` and
 * `devices` work while a running sensor locks the store's LevelDB LOCK file. A request is one
 * JSON line. The reply is one JSON line per row, then an end line, then the server closes:
 *
 *   {"query":"range","since_sequence":N,"since_time":T,"until_time":T,"device":D,"dataset":S,"limit":N}
 *     -> one event per line, then {"end":true,"count":N,"more":BOOL}
 *   {"query":"get","id":ID}   -> the event (when stored), then {"end":true,"count":0|1,"more":false}
 *   {"query":"devices"}       -> one Device record per line, then {"end":true,...}
 *   {"query":"newest"}        -> {"end":true,"count":0,"more":false,"newest":T|null}
 *
 * An error is one line {"error":"..."}. The server only reads the store. A range reply contains
 * at most MAX_QUERY_EVENTS events. "more" is true when the query has further events, which the
 * client fetches with another request (see SocketStoreReader.range).
 */
import { createConnection, type Socket } from 'node:net';
import { z } from 'zod';
import type { Device } from '../devices/types.js';
import { isoTime, type EcsEvent } from '../events/ecs.js';
import type { RangeQuery } from '../store/index.js';

/** The read-only part of EventStore that the query commands and the control socket use. */
export interface StoreQueries {
  range(query: RangeQuery): AsyncIterable<EcsEvent>;
  get(id: string): Promise<EcsEvent | undefined>;
  devices(): Promise<Device[]>;
  newestTimestamp(): Promise<string | undefined>;
}

/** Maximum number of events in one range reply. A client that expects more sends another request. */
export const MAX_QUERY_EVENTS = 5000;

/** Maximum number of query connections served at once. A further one gets an error line. */
export const MAX_QUERY_CONNECTIONS = 4;

/** Time without progress (no byte read or written) after which either side gives up. */
export const QUERY_IDLE_TIMEOUT_MS = 10_000;

const text = z.string().min(1).max(512);
const timeText = z.string().regex(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/).max(40);

export const queryRequestSchema = z.discriminatedUnion('query', [
  z
    .object({
      query: z.literal('range'),
      since_sequence: z.number().int().min(0).optional(),
      since_time: timeText.optional(),
      until_time: timeText.optional(),
      device: text.optional(),
      dataset: text.optional(),
      limit: z.number().int().min(1).optional(),
    })
    .strict(),
  z.object({ query: z.literal('get'), id: text }).strict(),
  z.object({ query: z.literal('devices') }).strict(),
  z.object({ query: z.literal('newest') }).strict(),
]);

export type QueryRequest = z.infer<typeof queryRequestSchema>;

interface EndLine {
  end: true;
  count: number;
  more: boolean;
  newest?: string | null;
}

/** Writes one line and waits while the socket's buffer is full. Returns false when the socket closed. */
async function writeLine(socket: Socket, line: string): Promise<boolean> {
  if (socket.destroyed) return false;
  if (socket.write(line + '\n')) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}

/**
 * Serves one query request on socket from store, then ends the connection. An error of the
 * store becomes an error line, so nothing here throws.
 */
export async function serveQuery(socket: Socket, line: string, store: StoreQueries): Promise<void> {
  let request: QueryRequest;
  try {
    const parsed = queryRequestSchema.safeParse(JSON.parse(line));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`invalid query: ${issue?.path.join('.') || 'request'}: ${issue?.message ?? 'unexpected shape'}`);
    }
    request = parsed.data;
  } catch (error) {
    socket.end(JSON.stringify({ error: (error as Error).message.slice(0, 200) }) + '\n');
    return;
  }
  socket.setTimeout(QUERY_IDLE_TIMEOUT_MS);
  try {
    const end: EndLine = { end: true, count: 0, more: false };
    if (request.query === 'range') {
      const limit = Math.min(request.limit ?? MAX_QUERY_EVENTS, MAX_QUERY_EVENTS);
      const query: RangeQuery = { limit: limit + 1 };
      if (request.since_sequence !== undefined) query.sinceSequence = request.since_sequence;
      if (request.since_time !== undefined) query.sinceTime = request.since_time;
      if (request.until_time !== undefined) query.untilTime = request.until_time;
      if (request.device !== undefined) query.device = request.device;
      if (request.dataset !== undefined) query.dataset = request.dataset;
      for await (const event of store.range(query)) {
        if (end.count === limit) {
          end.more = true;
          break;
        }
        if (!(await writeLine(socket, JSON.stringify(event)))) return;
        end.count++;
      }
    } else if (request.query === 'get') {
      const event = await store.get(request.id);
      if (event !== undefined) {
        if (!(await writeLine(socket, JSON.stringify(event)))) return;
        end.count = 1;
      }
    } else if (request.query === 'devices') {
      for (const device of await store.devices()) {
        if (!(await writeLine(socket, JSON.stringify(device)))) return;
        end.count++;
      }
    } else {
      end.newest = (await store.newestTimestamp()) ?? null;
    }
    socket.end(JSON.stringify(end) + '\n');
  } catch (error) {
    if (!socket.destroyed) socket.end(JSON.stringify({ error: `reading the store failed: ${(error as Error).message}` }) + '\n');
  }
}

/** A failure to reach the sensor or a reply that breaks the protocol. */
export class QueryError extends Error {
  constructor(
    message: string,
    /** The connect error code (ENOENT, ECONNREFUSED, EACCES), when the connection failed. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/**
 * Sends one request to the sensor at path and returns its rows and end line. One reply has at
 * most MAX_QUERY_EVENTS rows, so keeping them in memory is bounded.
 */
export function sendQuery(path: string, request: QueryRequest, timeoutMs = QUERY_IDLE_TIMEOUT_MS): Promise<{ rows: unknown[]; end: EndLine }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const rows: unknown[] = [];
    let pending = '';
    let end: EndLine | undefined;
    let failed: Error | undefined;
    const fail = (error: Error): void => {
      failed ??= error;
      socket.destroy();
    };
    const take = (line: string): void => {
      if (line === '' || failed !== undefined) return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        fail(new QueryError(`the sensor at ${path} sent a line that is not JSON: ${JSON.stringify(line.slice(0, 80))}`));
        return;
      }
      const fields = value as { error?: unknown; end?: unknown };
      if (typeof fields.error === 'string') fail(new QueryError(`the sensor at ${path} replied: ${fields.error}`));
      else if (fields.end === true) end = value as EndLine;
      else rows.push(value);
    };
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => fail(new QueryError(`the sensor at ${path} sent nothing for ${timeoutMs} ms`)));
    socket.once('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        take(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      fail(new QueryError(`cannot reach the sensor at ${path}: ${error.code ?? error.message}`, error.code));
    });
    socket.once('close', () => {
      if (failed !== undefined) reject(failed);
      else if (end === undefined) reject(new QueryError(`the sensor at ${path} closed the connection before the end of its reply`));
      else resolve({ rows, end });
    });
  });
}

/** StoreQueries served by the running sensor at a control socket path. */
export class SocketStoreReader implements StoreQueries {
  constructor(readonly path: string) {}

  /**
   * Yields what EventStore.range yields, fetched in replies of at most MAX_QUERY_EVENTS. A
   * query read in sequence order continues after the last sequence it got. A query read from
   * the time index (a time bound and no device) continues at the last @timestamp and skips the
   * events of that @timestamp it has had.
   */
  async *range(query: RangeQuery = {}): AsyncIterable<EcsEvent> {
    let remaining = query.limit ?? Infinity;
    const timeOrder =
      query.device === undefined && (query.sinceTime !== undefined || query.untilTime !== undefined);
    const request: Extract<QueryRequest, { query: 'range' }> = { query: 'range' };
    if (query.sinceSequence !== undefined) request.since_sequence = Math.max(0, Math.floor(query.sinceSequence));
    if (query.sinceTime !== undefined) request.since_time = isoText(query.sinceTime);
    if (query.untilTime !== undefined) request.until_time = isoText(query.untilTime);
    if (query.device !== undefined) request.device = query.device;
    if (query.dataset !== undefined) request.dataset = query.dataset;
    let lastTime: string | undefined;
    let seenAtLastTime = new Set<number>();
    while (remaining > 0) {
      // Asking for more than remaining covers the events of lastTime that are skipped below.
      request.limit = Math.min(MAX_QUERY_EVENTS, remaining + seenAtLastTime.size);
      const { rows, end } = await sendQuery(this.path, request);
      let fresh = 0;
      for (const row of rows) {
        const event = row as EcsEvent;
        const seq = event.event?.sequence ?? 0;
        const time = event['@timestamp'];
        if (timeOrder && time === lastTime && seenAtLastTime.has(seq)) continue;
        fresh++;
        if (timeOrder) {
          if (time !== lastTime) seenAtLastTime = new Set();
          lastTime = time;
          seenAtLastTime.add(seq);
        } else {
          request.since_sequence = seq;
        }
        yield event;
        if (--remaining <= 0) return;
      }
      if (!end.more) return;
      if (fresh === 0) {
        throw new QueryError(`more than ${MAX_QUERY_EVENTS} events share the @timestamp ${lastTime}; query the store directly`);
      }
      if (timeOrder && lastTime !== undefined) request.since_time = lastTime;
    }
  }

  async get(id: string): Promise<EcsEvent | undefined> {
    const { rows } = await sendQuery(this.path, { query: 'get', id });
    return rows[0] as EcsEvent | undefined;
  }

  async devices(): Promise<Device[]> {
    return (await sendQuery(this.path, { query: 'devices' })).rows as Device[];
  }

  async newestTimestamp(): Promise<string | undefined> {
    return (await sendQuery(this.path, { query: 'newest' })).end.newest ?? undefined;
  }
}

/** Capture seconds or ISO text as the store's @timestamp text. */
function isoText(time: number | string): string {
  return typeof time === 'string' ? time : isoTime(time);
}
