/**
 * Messages of the feed protocol (docs/feed.md) and the per-client event filter.
 */
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { cidrContains, parseCidr, parseMac, type Cidr } from '../config/values.js';
import type { EcsEvent } from '../events/ecs.js';

/** Subprotocol the server selects. Browsers offer it together with "mailtap.token.TOKEN". */
export const SUBPROTOCOL = 'mailtap.v1';
export const TOKEN_SUBPROTOCOL_PREFIX = 'mailtap.token.';
export const FEED_PATH = '/v1/events';

/** Close codes the server uses. docs/feed.md lists them for clients. */
export const CLOSE_CODES = {
  /** The server or sensor shuts down. */
  goingAway: 1001,
  /** A binary frame, too many invalid messages, or more than 30 subscribes in a minute. */
  policyViolation: 1008,
  /** A message larger than feed.max_payload (sent by the ws library itself). */
  messageTooBig: 1009,
  /** Replay from the store failed. The client may reconnect with since. */
  internalError: 1011,
  /** The client's queue exceeded feed.max_buffered. The client may reconnect with since. */
  slowConsumer: 4000,
} as const;

/** Values of subscribe.types: event.action values and the short dataset names. */
export const EVENT_TYPES = [
  'smtp-transaction',
  'smtp-session',
  'smtp',
  'alert',
  'alert-opened',
  'alert-updated',
  'device',
  'stats',
] as const;

const SEVERITY_RANK: Record<string, number> = { low: 1, medium: 2, high: 3, critical: 4 };

/** Error codes of `{"type":"error"}` messages. */
export type ErrorCode = 'invalid_json' | 'invalid_message' | 'unknown_type' | 'invalid_subscribe' | 'no_store';

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Subscription {
  since?: number;
  /** Event types to send. Undefined means every type, stats included. */
  types?: ReadonlySet<string>;
  /** Minimum severity rank, 1 (low) to 4 (critical). It applies to alerts only, because other events have no severity. */
  minSeverity: number;
  device?: DeviceMatcher;
}

/** Parses one text message from a client. Throws ProtocolError for anything but a valid subscribe. */
export function parseClientMessage(text: string, config: Config): Subscription {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new ProtocolError('invalid_json', 'the message is not valid JSON');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    throw new ProtocolError('invalid_message', 'expected a JSON object with a "type" field');
  }
  const fields = message as Record<string, unknown>;
  if (typeof fields.type !== 'string') {
    throw new ProtocolError('invalid_message', 'expected a JSON object with a "type" field');
  }
  if (fields.type !== 'subscribe') {
    throw new ProtocolError('unknown_type', `unknown message type "${fields.type.slice(0, 40)}": expected "subscribe"`);
  }
  return parseSubscribe(fields, config);
}

function parseSubscribe(fields: Record<string, unknown>, config: Config): Subscription {
  const subscription: Subscription = { minSeverity: 1 };
  const { since, types, min_severity: minSeverity, device } = fields;
  if (since !== undefined) {
    if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
      throw new ProtocolError('invalid_subscribe', '"since" must be a sequence number: an integer of 0 or more');
    }
    subscription.since = since;
  }
  if (types !== undefined) {
    if (!Array.isArray(types) || types.length > EVENT_TYPES.length * 2) {
      throw new ProtocolError('invalid_subscribe', `"types" must be an array of ${EVENT_TYPES.join(', ')}`);
    }
    for (const type of types) {
      if (typeof type !== 'string' || !(EVENT_TYPES as readonly string[]).includes(type)) {
        throw new ProtocolError('invalid_subscribe', `unknown type ${JSON.stringify(type).slice(0, 40)} in "types": expected ${EVENT_TYPES.join(', ')}`);
      }
    }
    subscription.types = new Set(types as string[]);
  }
  if (minSeverity !== undefined) {
    const rank = typeof minSeverity === 'string' ? SEVERITY_RANK[minSeverity] : undefined;
    if (rank === undefined) {
      throw new ProtocolError('invalid_subscribe', '"min_severity" must be low, medium, high or critical');
    }
    subscription.minSeverity = rank;
  }
  if (device !== undefined) {
    if (typeof device !== 'string' || device.length === 0 || device.length > 256) {
      throw new ProtocolError('invalid_subscribe', '"device" must be a device label, MAC or IP address');
    }
    subscription.device = deviceMatcher(device, config);
  }
  return subscription;
}

/** The fields of an event that filters look at, extracted once per event. */
export interface EventFacts {
  action: string;
  /** event.dataset without the "mailtap." prefix. */
  dataset: string;
  /** Severity rank: 1 to 4 for alerts, 0 for events without a severity. */
  severity: number;
  event: EcsEvent;
}

export function eventFacts(event: EcsEvent): EventFacts {
  const dataset = event.event.dataset ?? '';
  const mailtap = event.mailtap as { alert?: { severity?: string } } | undefined;
  return {
    action: event.event.action ?? '',
    dataset: dataset.startsWith('mailtap.') ? dataset.slice(8) : dataset,
    severity: SEVERITY_RANK[mailtap?.alert?.severity ?? ''] ?? 0,
    event,
  };
}

/** Returns whether the event passes the subscription's types, severity and device. */
export function matches(subscription: Subscription, facts: EventFacts): boolean {
  const types = subscription.types;
  if (types !== undefined && !types.has(facts.action) && !types.has(facts.dataset)) return false;
  if (facts.severity > 0 && facts.severity < subscription.minSeverity) return false;
  if (subscription.device !== undefined && !subscription.device(facts.event)) return false;
  return true;
}

export function wantsStats(subscription: Subscription): boolean {
  return subscription.types === undefined || subscription.types.has('stats');
}

type DeviceMatcher = (event: EcsEvent) => boolean;

interface EventEndpoints {
  source?: { ip?: string; mac?: string };
  mailtap?: { device?: { key?: string; label?: string; mac?: string; ips?: string[] } };
}

/** Normalizes "AA-BB-..." and "aa:bb:..." to the colon form. Other text stays unchanged. */
function macText(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return parseMac(text) ?? text;
}

/**
 * Builds a matcher for a device given as a configured label, a MAC or an IP address. A label
 * from the config also matches transactions by that device's MAC and addresses, because
 * transaction events carry source.mac and source.ip but no label.
 */
function deviceMatcher(text: string, config: Config): DeviceMatcher {
  const mac = parseMac(text);
  if (mac !== undefined) {
    return (event) => {
      const e = event as EventEndpoints;
      return macText(e.source?.mac) === mac || macText(e.mailtap?.device?.mac) === mac;
    };
  }
  if (isIP(text) !== 0) {
    const address = parseCidr(text) as Cidr;
    const sameAddress = (ip: string | undefined): boolean => ip !== undefined && cidrContains(address, ip);
    return (event) => {
      const e = event as EventEndpoints;
      return sameAddress(e.source?.ip) || (e.mailtap?.device?.ips ?? []).some(sameAddress);
    };
  }
  const configured = config.devices.find((entry) => entry.label === text);
  const networks: Cidr[] = configured?.ip ?? [];
  const configuredMac = configured?.mac;
  return (event) => {
    const e = event as EventEndpoints;
    const device = e.mailtap?.device;
    if (device?.label === text || device?.key === text) return true;
    if (configuredMac !== undefined && macText(e.source?.mac) === configuredMac) return true;
    const ip = e.source?.ip;
    return ip !== undefined && networks.some((network) => cidrContains(network, ip));
  };
}
