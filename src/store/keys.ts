import type { EcsEvent } from '../events/ecs.js';

/**
 * LevelDB key layout of the event store. All keys are UTF-8 strings, and the store relies on
 * LevelDB's bytewise order of them:
 *
 *   seq!<16-digit sequence>        -> the event (JSON)
 *   id!<event.id>                  -> its sequence (number)
 *   time!<@timestamp>!<16-digit>   -> '' (index by time, then sequence)
 *   dev!<device id>!<16-digit>     -> '' (index by device, one entry per device id below)
 *   device!<device key>            -> the Device record (JSON)
 *   meta!nextSeq                   -> the next sequence to assign (number)
 *   meta!bytes                     -> bytes of all stored event JSON (number)
 *   state!<name>                   -> saved state of a component, such as "analyzer" (JSON)
 *
 * A device id is "mac:<lower-case colon MAC>" or "ip:<address>", the form of Device.key, so an
 * event is indexed under mailtap.device.key, "ip:<source.ip>" and "mac:<source.mac>".
 */

/** Digits of a sequence in keys; 16 digits stay below Number.MAX_SAFE_INTEGER (9.007e15). */
export const SEQ_DIGITS = 16;
export const MAX_SEQUENCE = 10 ** SEQ_DIGITS - 1;

const FIRST_SEQ = '0'.repeat(SEQ_DIGITS);
const LAST_SEQ = '9'.repeat(SEQ_DIGITS);

export const META_NEXT_SEQ = 'meta!nextSeq';
export const META_BYTES = 'meta!bytes';

export function seqText(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

export function seqKey(seq: number): string {
  return 'seq!' + seqText(seq);
}

/** Reads the sequence from the last 16 characters of a seq!, time! or dev! key. */
export function seqOfKey(key: string): number {
  return Number(key.slice(-SEQ_DIGITS));
}

export function idKey(id: string): string {
  return 'id!' + id;
}

export function timeKey(timestamp: string, seq: number): string {
  return timeKeyOf(timestamp, seqText(seq));
}

export function deviceIndexKey(deviceId: string, seq: number): string {
  return deviceIndexKeyOf(deviceId, seqText(seq));
}

/** Returns the time! key for a sequence already formatted by seqText. */
function timeKeyOf(timestamp: string, digits: string): string {
  return `time!${timestamp}!${digits}`;
}

/** Returns the dev! key for a sequence already formatted by seqText. */
function deviceIndexKeyOf(deviceId: string, digits: string): string {
  return `dev!${deviceId}!${digits}`;
}

export function stateKey(name: string): string {
  return 'state!' + name;
}

export function deviceKey(key: string): string {
  return 'device!' + key;
}

/** Bounds that select every seq! key after `afterSeq`. */
export function seqRange(afterSeq: number): { gt: string; lte: string } {
  return { gt: seqKey(afterSeq), lte: 'seq!' + LAST_SEQ };
}

/**
 * Bounds that select the dev! entries of one device id after `afterSeq`. They list the 16-digit
 * forms explicitly, so the entries of a device id that extends this one ("ip:10.0.0.1" and
 * "ip:10.0.0.12") fall outside.
 */
export function deviceIndexRange(deviceId: string, afterSeq: number): { gt: string; lte: string } {
  return { gt: deviceIndexKey(deviceId, afterSeq), lte: `dev!${deviceId}!${LAST_SEQ}` };
}

/** Bounds of the time! entries with since <= @timestamp < until; either end may be open. */
export function timeRange(since?: string, until?: string): { gte: string; lt: string } {
  return {
    gte: since !== undefined ? `time!${since}!${FIRST_SEQ}` : 'time!',
    // '"' follows '!' in byte order, so 'time"' bounds every time! key.
    lt: until !== undefined ? `time!${until}!${FIRST_SEQ}` : 'time"',
  };
}

export const DEVICE_RANGE = { gt: 'device!', lt: 'device"' };

const MAC_TEXT = /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i;

/**
 * Normalises what a caller names a device by: a device key ("mac:..." or "ip:..."), a MAC in
 * colon or ECS dash form, or an IP address.
 */
export function deviceId(text: string): string {
  if (text.startsWith('mac:')) return 'mac:' + text.slice(4).toLowerCase().replace(/-/g, ':');
  if (text.startsWith('ip:')) return text;
  if (MAC_TEXT.test(text)) return 'mac:' + text.toLowerCase().replace(/-/g, ':');
  return 'ip:' + text;
}

/** Maximum number of device ids that eventDeviceIds keeps normalised; past it the cache starts over. */
const MAX_CACHED_DEVICE_IDS = 4096;

/**
 * Device ids by the device key or MAC text, and by the source IP. A site has few devices, so
 * the caches save a regular expression and two new strings per id of every stored event.
 */
const cachedDeviceIds = new Map<string, string>();
const cachedIpIds = new Map<string, string>();

function cachedId(cache: Map<string, string>, text: string, make: (text: string) => string): string {
  let id = cache.get(text);
  if (id === undefined) {
    id = make(text);
    if (cache.size >= MAX_CACHED_DEVICE_IDS) cache.clear();
    cache.set(text, id);
  }
  return id;
}

const ipId = (ip: string): string => 'ip:' + ip;

/** Lists the device ids an event is indexed under, without repeats. */
export function eventDeviceIds(event: EcsEvent): string[] {
  // At most three ids, so includes() finds repeats more cheaply than a Set.
  const ids: string[] = [];
  const mailtap = event.mailtap as { device?: { key?: unknown } } | undefined;
  const key = mailtap?.device?.key;
  if (typeof key === 'string' && key.length > 0) ids.push(cachedId(cachedDeviceIds, key, deviceId));
  const source = event.source as { ip?: unknown; mac?: unknown } | undefined;
  if (typeof source?.ip === 'string' && source.ip.length > 0) {
    const id = cachedId(cachedIpIds, source.ip, ipId);
    if (!ids.includes(id)) ids.push(id);
  }
  if (typeof source?.mac === 'string' && source.mac.length > 0) {
    const id = cachedId(cachedDeviceIds, source.mac, deviceId);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** Lists every index key (time! and dev!) that the stored event at `seq` has. */
export function indexKeys(event: EcsEvent, seq: number): string[] {
  return indexKeysFor(event['@timestamp'], eventDeviceIds(event), seq);
}

/** Lists the index keys of an event with this @timestamp and these device ids at `seq`. */
export function indexKeysFor(timestamp: string, deviceIds: readonly string[], seq: number): string[] {
  // The 16 digits are formatted once for all keys of the event.
  const digits = seqText(seq);
  const keys = [timeKeyOf(timestamp, digits)];
  for (const id of deviceIds) keys.push(deviceIndexKeyOf(id, digits));
  return keys;
}
