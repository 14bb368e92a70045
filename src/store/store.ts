/**
 * Event store on LevelDB (the `level` package), values as JSON. Keys (keys.ts builds them):
 *
 *   seq!<16-digit sequence>        -> the event
 *   id!<event.id>                  -> its sequence
 *   time!<@timestamp>!<16-digit>   -> '' (time index)
 *   dev!<device id>!<16-digit>     -> '' (device index: mailtap.device.key, ip:<source.ip>,
 *                                     mac:<source.mac>)
 *   device!<device key>            -> Device
 *   meta!nextSeq                   -> next sequence to assign
 *   meta!bytes                     -> bytes of all stored event JSON, for sweep's maxBytes
 *   state!<name>                   -> saved state of a component, such as "analyzer"
 *
 * Every append and every sweep step is one LevelDB batch that also writes meta!nextSeq and
 * meta!bytes, so a process killed at any point leaves either the whole batch or none of it.
 * Writes are not fsync'ed unless the store is opened with `sync: true`, so a killed process
 * loses nothing once append has returned but a power cut can lose the last batches.
 */
import { Level } from 'level';
import type { Device } from '../devices/types.js';
import { isoTime, type EcsEvent } from '../events/ecs.js';
import {
  DEVICE_RANGE,
  META_BYTES,
  META_NEXT_SEQ,
  MAX_SEQUENCE,
  deviceId,
  deviceIndexRange,
  deviceKey,
  eventDeviceIds,
  idKey,
  indexKeys,
  indexKeysFor,
  seqKey,
  seqOfKey,
  seqRange,
  stateKey,
  timeRange,
} from './keys.js';

export interface StoreOptions {
  /** Fsync every batch. It is slower and needed only to survive a power cut or kernel crash. */
  sync?: boolean;
}

export interface RangeQuery {
  /** Only events with a sequence greater than this one: pass the last sequence you read. */
  sinceSequence?: number;
  /** Only events with @timestamp at or after this time (capture seconds or ISO 8601). */
  sinceTime?: number | string;
  /** Only events with @timestamp before this time (capture seconds or ISO 8601). */
  untilTime?: number | string;
  /** A device key, MAC (colon or dash form) or IP address, matched against the event's device and source. */
  device?: string;
  /** Only events of this event.dataset, such as "mailtap.alert". */
  dataset?: string;
  /** Maximum number of events returned. */
  limit?: number;
}

export interface SweepLimits {
  /** Delete events whose @timestamp is more than this many seconds before `nowTs`. */
  maxAgeSeconds?: number;
  /** Then delete the oldest events until their JSON takes at most this many bytes. */
  maxBytes?: number;
}

/**
 * Size of LevelDB's write buffer (memtable and log), 8 times the default of 4 MiB. LevelDB's
 * documentation: larger values speed up bulk loads, up to two buffers may be in memory, and
 * recovery on the next open takes longer. In four interleaved runs on a busy 2-core machine,
 * appending the benchmark's 33,827 events used 1.8-2.1 s of CPU with 4 MiB, 1.5-1.8 s with 32 MiB.
 */
const WRITE_BUFFER_BYTES = 32 * 1024 * 1024;

/** Events deleted per LevelDB batch during a sweep, which bounds the memory a sweep uses. */
export const SWEEP_BATCH = 1000;

/** A batch operation with its value already encoded: JSON text, or '' for an index entry. */
type BatchOp =
  | { type: 'put'; key: string; value: string; keyEncoding: 'utf8'; valueEncoding: 'utf8' }
  | { type: 'del'; key: string; keyEncoding: 'utf8' };

function put(key: string, value: string): BatchOp {
  return { type: 'put', key, value, keyEncoding: 'utf8', valueEncoding: 'utf8' };
}

function del(key: string): BatchOp {
  return { type: 'del', key, keyEncoding: 'utf8' };
}

/**
 * The implementation side of abstract-level's batch: `_batch(operations, options)` takes
 * operations whose keys and values are encoded and whose encodings are named (abstract-level
 * README, "Private API for implementors"). The store calls it directly because the public
 * batch() copies, checks and encodes each operation again, which took about a third of the
 * cost of storing on the benchmark capture (about 190,000 operations).
 */
interface EncodedBatch {
  _batch(operations: BatchOp[], options: { sync: boolean }): Promise<void>;
}

/** Result of appendText: per event, its sequence and its JSON text as stored. */
export interface AppendResult {
  sequences: number[];
  /** JSON of each event with its event.sequence set; a caller prints it instead of serializing again. */
  texts: string[];
}

/**
 * An event serialized before its sequence is known, so that the caller can drop the event
 * object at once instead of keeping it until its batch is written. On the benchmark capture
 * this cut the CPU time of read --db from about 11.9 s to 10.4 s (read alone: 8.7-9.5 s).
 */
export interface PreparedEvent {
  id: string | undefined;
  alert: boolean;
  timestamp: string;
  /** Device ids the event is indexed under (eventDeviceIds). */
  deviceIds: string[];
  /** The JSON text up to the value of event.sequence, and after it. */
  head: string;
  tail: string;
}

/** Stands for the sequence while an event is serialized: above MAX_SEQUENCE, so never a real one. */
const SEQUENCE_PLACEHOLDER = Number.MAX_SAFE_INTEGER;
const PLACEHOLDER_TEXT = `"sequence":${SEQUENCE_PLACEHOLDER}`;

/**
 * Serializes an event with a placeholder for its sequence. The placeholder is searched for
 * after the start of the "event" object. JSON escapes every quote inside a string value, so
 * the text '"sequence":' with its quotes can only be a key there.
 */
export function prepareEvent(event: EcsEvent): PreparedEvent {
  const previous = event.event.sequence;
  event.event.sequence = SEQUENCE_PLACEHOLDER;
  const json = JSON.stringify(event);
  if (previous === undefined) delete event.event.sequence;
  else event.event.sequence = previous;
  const at = json.indexOf(PLACEHOLDER_TEXT, json.indexOf('"event":{'));
  const split = at + PLACEHOLDER_TEXT.length - String(SEQUENCE_PLACEHOLDER).length;
  const id = event.event.id;
  return {
    id: typeof id === 'string' && id.length > 0 ? id : undefined,
    alert: event.event.kind === 'alert',
    timestamp: event['@timestamp'],
    deviceIds: eventDeviceIds(event),
    head: json.slice(0, split),
    tail: json.slice(at + PLACEHOLDER_TEXT.length),
  };
}

/** Extra keys written in the same batch as the events, such as the analyzer state. */
export type ExtraPuts = ReadonlyArray<{ key: string; value: unknown }>;

export class EventStore {
  private nextSeq: number;
  private bytes: number;
  /** Appends and sweeps run one at a time, in call order, because both read then write. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly db: Level<string, unknown>,
    private readonly sync: boolean,
    nextSeq: number,
    bytes: number,
  ) {
    this.nextSeq = nextSeq;
    this.bytes = bytes;
  }

  /** Opens or creates the store in directory `path`. */
  static async open(path: string, options: StoreOptions = {}): Promise<EventStore> {
    const db = new Level<string, unknown>(path, { valueEncoding: 'json', writeBufferSize: WRITE_BUFFER_BYTES });
    await db.open();
    const [metaNext, metaBytes] = await db.getMany([META_NEXT_SEQ, META_BYTES]);
    // meta!nextSeq is written in the same batch as the events, so it is never behind. The last
    // seq! key is read too, so that a store whose meta key was lost still never reuses a sequence.
    let nextSeq = typeof metaNext === 'number' ? metaNext : 1;
    for await (const key of db.keys({ ...seqRange(0), reverse: true, limit: 1 })) {
      nextSeq = Math.max(nextSeq, seqOfKey(key) + 1);
    }
    const bytes = typeof metaBytes === 'number' ? metaBytes : 0;
    return new EventStore(db, options.sync === true, nextSeq, bytes);
  }

  /**
   * Stores the events in one batch and returns their sequences, which are also set on each
   * event's event.sequence. An event whose event.id is stored already is skipped and gets the
   * stored sequence, except an alert: its new version takes a new sequence and replaces the
   * stored one. Events without an event.id are always stored.
   */
  async append(events: EcsEvent[]): Promise<number[]> {
    return (await this.appendText(events)).sequences;
  }

  /**
   * Does what append does and also returns the JSON text of each event with its sequence, so
   * that a caller that prints the events serializes each one once. `extra` keys are written in
   * the same batch, so that a process killed at any point keeps both or neither.
   */
  async appendText(events: EcsEvent[], extra: ExtraPuts = []): Promise<AppendResult> {
    const result = await this.appendPrepared(events.map(prepareEvent), extra);
    events.forEach((event, i) => (event.event.sequence = result.sequences[i]));
    return result;
  }

  /** Does what appendText does, for events that prepareEvent serialized. */
  appendPrepared(events: PreparedEvent[], extra: ExtraPuts = []): Promise<AppendResult> {
    return this.serialize(() => this.appendNow(events, extra));
  }

  private async appendNow(events: PreparedEvent[], extra: ExtraPuts): Promise<AppendResult> {
    const ops: BatchOp[] = [];
    const sequences: number[] = [];
    const texts: string[] = [];
    /** Sequence per event.id of the events this batch has already taken. */
    const inBatch = new Map<string, { seq: number; event: PreparedEvent; text: string }>();
    let nextSeq = this.nextSeq;
    let bytes = this.bytes;

    const known = await this.db.getMany(events.map((event) => idKey(event.id ?? '')));

    for (let i = 0; i < events.length; i++) {
      const event = events[i] as PreparedEvent;
      const id = event.id;
      const earlier = id !== undefined ? inBatch.get(id) : undefined;
      const storedSeq = id !== undefined && typeof known[i] === 'number' ? (known[i] as number) : undefined;

      if (!event.alert && (earlier || storedSeq !== undefined)) {
        const seq = earlier ? earlier.seq : (storedSeq as number);
        sequences.push(seq);
        texts.push(event.head + seq + event.tail);
        continue;
      }
      if (nextSeq > MAX_SEQUENCE) {
        throw new Error(`event store is full: sequence ${nextSeq} has more than 16 digits; start a new store directory`);
      }

      // An alert update removes the version stored before, whether it came in this batch or earlier.
      if (earlier) {
        ops.push(del(seqKey(earlier.seq)));
        for (const key of indexKeysFor(earlier.event.timestamp, earlier.event.deviceIds, earlier.seq)) ops.push(del(key));
        bytes -= Buffer.byteLength(earlier.text);
      } else if (storedSeq !== undefined) {
        const stored = await this.db.get(seqKey(storedSeq));
        if (stored !== undefined) bytes -= this.deleteOps(ops, stored as EcsEvent, storedSeq, false);
      }

      const seq = nextSeq++;
      // The text is stored as is: the bytes on disk are what the json encoding would write.
      const json = event.head + seq + event.tail;
      texts.push(json);
      bytes += Buffer.byteLength(json);
      ops.push(put(seqKey(seq), json));
      for (const key of indexKeysFor(event.timestamp, event.deviceIds, seq)) ops.push(put(key, ''));
      if (id !== undefined) {
        ops.push(put(idKey(id), String(seq)));
        inBatch.set(id, { seq, event, text: json });
      }
      sequences.push(seq);
    }

    if (ops.length > 0) {
      ops.push(put(META_NEXT_SEQ, String(nextSeq)));
      ops.push(put(META_BYTES, String(bytes)));
    }
    for (const extraPut of extra) ops.push(put(extraPut.key, JSON.stringify(extraPut.value)));
    await this.write(ops);
    this.nextSeq = nextSeq;
    this.bytes = bytes;
    return { sequences, texts };
  }

  /**
   * Adds the operations that delete a stored event and its index entries, and returns its size
   * in bytes. The id! entry is kept when `withId` is false, because a replacement rewrites it.
   */
  private deleteOps(ops: BatchOp[], event: EcsEvent, seq: number, withId: boolean): number {
    ops.push(del(seqKey(seq)));
    for (const key of indexKeys(event, seq)) ops.push(del(key));
    if (withId && typeof event.event?.id === 'string') ops.push(del(idKey(event.event.id)));
    return Buffer.byteLength(JSON.stringify(event));
  }

  /** Returns the stored event with this event.id, or undefined. */
  async get(id: string): Promise<EcsEvent | undefined> {
    const seq = await this.db.get(idKey(id));
    if (typeof seq !== 'number') return undefined;
    return (await this.db.get(seqKey(seq))) as EcsEvent | undefined;
  }

  /** Returns the stored event with this sequence, or undefined. */
  async getBySequence(seq: number): Promise<EcsEvent | undefined> {
    return (await this.db.get(seqKey(seq))) as EcsEvent | undefined;
  }

  /**
   * Yields the events that match every given condition, in sequence order. The exception is a
   * query with a time bound and no device, which reads the time index and yields in @timestamp
   * order.
   */
  async *range(query: RangeQuery = {}): AsyncIterable<EcsEvent> {
    const limit = query.limit ?? Infinity;
    if (limit <= 0) return;
    const afterSeq = Math.max(0, Math.floor(query.sinceSequence ?? 0));
    const since = query.sinceTime !== undefined ? timeText(query.sinceTime) : undefined;
    const until = query.untilTime !== undefined ? timeText(query.untilTime) : undefined;
    let count = 0;

    const matches = (event: EcsEvent): boolean =>
      (query.dataset === undefined || event.event.dataset === query.dataset) &&
      (since === undefined || event['@timestamp'] >= since) &&
      (until === undefined || event['@timestamp'] < until) &&
      (event.event.sequence ?? 0) > afterSeq;

    if (query.device === undefined && since === undefined && until === undefined) {
      for await (const [, value] of this.db.iterator(seqRange(afterSeq))) {
        const event = value as EcsEvent;
        if (!matches(event)) continue;
        yield event;
        if (++count >= limit) return;
      }
      return;
    }

    const index =
      query.device !== undefined
        ? this.db.keys(deviceIndexRange(deviceId(query.device), afterSeq))
        : this.db.keys(timeRange(since, until));
    for await (const key of index) {
      const seq = seqOfKey(key);
      if (seq <= afterSeq) continue;
      // NOTE: one get per index entry. An entry whose event a concurrent sweep has just deleted
      // is skipped.
      const event = (await this.db.get(seqKey(seq))) as EcsEvent | undefined;
      if (event === undefined || !matches(event)) continue;
      yield event;
      if (++count >= limit) return;
    }
  }

  /**
   * Returns the newest @timestamp in the store. The last appended event need not be the newest,
   * because an alert update can come after later events. So the time index is read from that
   * event's time on, which is a short read when events were appended in time order.
   */
  async newestTimestamp(): Promise<string | undefined> {
    let newest: string | undefined;
    for (let seq = this.nextSeq - 1; seq >= 1 && newest === undefined; seq--) {
      newest = (await this.getBySequence(seq))?.['@timestamp'];
    }
    if (newest === undefined) return undefined;
    for await (const event of this.range({ sinceTime: newest })) {
      if (event['@timestamp'] > newest) newest = event['@timestamp'];
    }
    return newest;
  }

  /** Stores the device record under its key, replacing the earlier one. */
  async putDevice(device: Device): Promise<void> {
    await this.db.put(deviceKey(device.key), device, { sync: this.sync });
  }

  /** Returns the state saved under `name`, or undefined when there is none. */
  async getState(name: string): Promise<unknown> {
    return this.db.get(stateKey(name));
  }

  /** Saves a component's state under `name`, replacing the earlier one. */
  putState(name: string, value: unknown): Promise<void> {
    return this.serialize(() => this.db.put(stateKey(name), value, { sync: this.sync }));
  }

  /** Returns every stored device record in key order. */
  async devices(): Promise<Device[]> {
    const out: Device[] = [];
    for await (const value of this.db.values(DEVICE_RANGE)) out.push(value as Device);
    return out;
  }

  /** Bytes of the JSON of all stored events; LevelDB's files on disk are smaller (compressed). */
  get storedBytes(): number {
    return this.bytes;
  }

  /** The sequence the next stored event will get. */
  get nextSequence(): number {
    return this.nextSeq;
  }

  /**
   * Deletes events older than `maxAgeSeconds` before `nowTs` (capture seconds), by @timestamp,
   * then the oldest events until the rest take at most `maxBytes`, with their index entries.
   */
  sweep(limits: SweepLimits, nowTs: number): Promise<{ deleted: number }> {
    return this.serialize(async () => {
      let deleted = 0;
      if (limits.maxAgeSeconds !== undefined) {
        const cutoff = isoTime(nowTs - limits.maxAgeSeconds);
        deleted += await this.deleteOldest(() => true, cutoff);
      }
      if (limits.maxBytes !== undefined) {
        const maxBytes = limits.maxBytes;
        deleted += await this.deleteOldest((bytes) => bytes > maxBytes, undefined);
      }
      return { deleted };
    });
  }

  /** Deletes events in @timestamp order, before `until`, while `more(stored bytes)` holds. */
  private async deleteOldest(
    more: (bytes: number) => boolean,
    until: string | undefined,
  ): Promise<number> {
    let deleted = 0;
    while (more(this.bytes)) {
      const ops: BatchOp[] = [];
      let bytes = this.bytes;
      let found = 0;
      for await (const key of this.db.keys({ ...timeRange(undefined, until), limit: SWEEP_BATCH })) {
        const seq = seqOfKey(key);
        const event = (await this.db.get(seqKey(seq))) as EcsEvent | undefined;
        found++;
        if (event === undefined) {
          // An index entry without its event: drop it so that the sweep does not stop on it.
          ops.push(del(key));
          continue;
        }
        bytes -= this.deleteOps(ops, event, seq, true);
        deleted++;
        if (!more(bytes)) break;
      }
      if (found === 0) break;
      ops.push(put(META_BYTES, String(Math.max(0, bytes))));
      await this.write(ops);
      this.bytes = Math.max(0, bytes);
    }
    return deleted;
  }

  /** Writes encoded operations as one atomic LevelDB batch. */
  private async write(ops: BatchOp[]): Promise<void> {
    if (ops.length === 0) return;
    if (this.db.status !== 'open') throw new Error(`the store is ${this.db.status}, not open`);
    await (this.db as unknown as EncodedBatch)._batch(ops, { sync: this.sync });
  }

  /** Closes the database; pending appends and sweeps finish first. */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.db.close();
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** Formats a capture time in seconds as the store's @timestamp text; ISO text passes through. */
function timeText(time: number | string): string {
  return typeof time === 'number' ? isoTime(time) : time;
}
