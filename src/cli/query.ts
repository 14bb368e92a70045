/**
 * Query commands over an event store directory: `mailtap alerts`, `messages`, `show` and
 * `devices --db`. They only read the store, which `mailtap read --db DIR` fills.
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/values.js';
import type { Device } from '../devices/types.js';
import type { EcsEvent } from '../events/ecs.js';
import { escapeJsonForTerminal, sanitizeForTerminal } from '../events/sanitize.js';
import { QueryError, type StoreQueries } from '../sensor/query.js';
import { StoreOpenError } from './open-store.js';
import { openStoreReader, type StoreLocation, type StoreReader } from './store-reader.js';
import { UsageError } from './usage.js';

type Fields = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const STORE_HELP = `  --db DIR        the event store directory; without it, store.path of the configuration
  --config FILE   YAML configuration whose store.path to use (default: the built-in default,
                  $XDG_STATE_HOME/mailtap or ~/.local/state/mailtap)
  --socket PATH   while a running sensor holds the store, ask it through this control socket
                  (default: control.socket of the configuration, else the path of mailtap status)`;

const SINCE_HELP = `  --since WHEN    only events at or after WHEN: a duration such as 90s, 15m, 1h or 2d before
                  the newest event in the store (not the clock), or an ISO 8601 time`;

export const ALERTS_HELP = `Usage: mailtap alerts [--db DIR] [options]

Lists the latest version of each alert in the store, newest first.

Options:
${STORE_HELP}
${SINCE_HELP}
  --device X      only alerts of this device: label, MAC, IP address or device key
  --json          one JSON document per alert instead of a table
  -h, --help      this help`;

export const MESSAGES_HELP = `Usage: mailtap messages [--db DIR] --device X [options]

Lists the SMTP transactions of one device, oldest first.

Options:
${STORE_HELP}
  --device X      the device: label, MAC, IP address or device key (required)
${SINCE_HELP}
  --to DOMAIN     only transactions with a recipient in DOMAIN (case-insensitive)
  --json          one JSON document per transaction instead of a table
  -h, --help      this help`;

export const SHOW_HELP = `Usage: mailtap show [--db DIR] ID

Prints the stored event whose event.id is ID as indented JSON.

Options:
${STORE_HELP}
  -h, --help      this help`;

/**
 * Runs a query command on the store of --db, else of the configuration's store.path. The store
 * is read directly or, while a running sensor has it open, through the sensor's control socket.
 * A store that neither way reaches (missing, locked, no permission) ends in one line on stderr
 * and status 1, and so does a sensor that fails while it replies.
 */
async function withStore(where: StoreLocation, work: (store: StoreReader) => Promise<number>): Promise<number> {
  let store: StoreReader;
  try {
    store = await openStoreReader(where);
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    process.stderr.write(`mailtap: ${error.message}\n`);
    return 1;
  }
  try {
    return await work(store);
  } catch (error) {
    if (!(error instanceof QueryError)) throw error;
    process.stderr.write(`mailtap: ${error.message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** Turns --since into the ISO lower bound of a range query; undefined when not given. */
export async function sinceTime(store: StoreQueries, text: string | undefined): Promise<string | undefined> {
  if (text === undefined) return undefined;
  const seconds = parseDuration(text);
  if (seconds !== undefined) {
    const newest = await store.newestTimestamp();
    if (newest === undefined) return undefined;
    return new Date(Date.parse(newest) - seconds * 1000).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  }
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) {
    throw new UsageError(`invalid --since "${text}": expected a duration such as 90s, 15m, 1h, 2d or an ISO 8601 time`);
  }
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Resolves --device to what range({ device }) takes: a label through the stored device records,
 * anything else (device key, MAC, IP address) as given. Undefined when a label is unknown.
 */
export async function resolveDevice(store: StoreQueries, text: string): Promise<string | undefined> {
  if (/^(mac|ip):/.test(text) || /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(text) || /^[\d.]+$|:/.test(text)) {
    return text;
  }
  const device = (await store.devices()).find((d) => d.label === text);
  if (device) return device.key;
  // A store without device records: alerts carry the label of their device, and they are few.
  for await (const alert of store.range({ dataset: 'mailtap.alert' })) {
    const fields = (alert.mailtap as Fields | undefined)?.device as Fields | undefined;
    if (fields?.label === text && typeof fields.key === 'string') return fields.key;
  }
  return undefined;
}

function unknownDevice(text: string): number {
  process.stderr.write(`mailtap: no device labelled "${text}" in the store; give its MAC or IP address instead\n`);
  return 1;
}

function cell(text: string, width: number): string {
  const safe = sanitizeForTerminal(text, width === 0 ? 80 : width);
  return width === 0 ? safe : safe.padEnd(width);
}

function time(event: EcsEvent): string {
  return event['@timestamp'].slice(0, 19).replace('T', ' ');
}

function deviceName(event: EcsEvent): string {
  const device = (event.mailtap as Fields | undefined)?.device as Fields | undefined;
  const source = event.source as Fields | undefined;
  return device?.label ?? source?.mac ?? source?.ip ?? device?.key ?? '';
}

function ownerText(owner: Fields | undefined): string {
  if (!owner) return '';
  return `${owner.name ?? ''}${owner.email ? ` <${owner.email}>` : ''}`;
}

function printJson(event: unknown): void {
  process.stdout.write(escapeJsonForTerminal(JSON.stringify(event)) + '\n');
}

/** Prints a command's help text to stdout and returns exit status 0. */
function printHelp(help: string): number {
  process.stdout.write(help + '\n');
  return 0;
}

/** Options of every query command: where the store is, and -h. */
const STORE_OPTIONS = {
  db: { type: 'string' },
  config: { type: 'string' },
  socket: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Options of the commands that list events, `alerts` and `messages`. */
const LIST_OPTIONS = {
  ...STORE_OPTIONS,
  since: { type: 'string' },
  device: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** Runs `mailtap alerts`. Returns the exit status. */
export async function runAlerts(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: LIST_OPTIONS });
  if (values.help) return printHelp(ALERTS_HELP);

  return withStore(values, async (store) => {
    const since = await sinceTime(store, values.since);
    let device: string | undefined;
    if (values.device !== undefined) {
      device = await resolveDevice(store, values.device);
      if (device === undefined) return unknownDevice(values.device);
    }
    // The store keeps one version per alert id; the map guards against a store written otherwise.
    const latest = new Map<string, EcsEvent>();
    for await (const event of store.range({ dataset: 'mailtap.alert', sinceTime: since, device })) {
      const id = event.event.id ?? `seq:${event.event.sequence}`;
      const seen = latest.get(id);
      if (!seen || (event.event.sequence ?? 0) > (seen.event.sequence ?? 0)) latest.set(id, event);
    }
    const alerts = [...latest.values()].sort((a, b) =>
      a['@timestamp'] < b['@timestamp'] ? 1 : a['@timestamp'] > b['@timestamp'] ? -1 : 0,
    );
    if (values.json) {
      for (const alert of alerts) printJson(alert);
      return 0;
    }
    const widths = [19, 8, 20, 5, 18, 30, 0];
    const line = (cells: string[]): string => cells.map((c, i) => cell(c, widths[i] as number)).join(' ').trimEnd();
    process.stdout.write(line(['LAST SEEN', 'SEVERITY', 'RULE', 'COUNT', 'DEVICE', 'OWNER', 'MESSAGE']) + '\n');
    for (const event of alerts) {
      const alert = ((event.mailtap as Fields | undefined)?.alert ?? {}) as Fields;
      process.stdout.write(
        line([
          time(event),
          String(alert.severity ?? ''),
          String((event.rule as Fields | undefined)?.name ?? ''),
          String(alert.count ?? 1),
          deviceName(event),
          ownerText(alert.owner as Fields | undefined),
          String(event.message ?? ''),
        ]) + '\n',
      );
    }
    return 0;
  });
}

/** Returns whether one of the transaction's recipients is in `domain` (lower case). */
function hasRecipientIn(event: EcsEvent, domain: string): boolean {
  const rcpts: unknown[] = ((event.smtp as Fields | undefined)?.rcpt_to as unknown[] | undefined) ?? [];
  const suffix = '@' + domain;
  return rcpts.some((r) => typeof r === 'string' && r.toLowerCase().endsWith(suffix));
}

/** Runs `mailtap messages`. Returns the exit status. */
export async function runMessages(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...LIST_OPTIONS, to: { type: 'string' } } });
  if (values.help) return printHelp(MESSAGES_HELP);

  if (values.device === undefined || values.device === '') {
    throw new UsageError('missing --device: give a label, MAC or IP address');
  }
  const domain = values.to?.replace(/^@/, '').toLowerCase();
  if (domain === '') throw new UsageError('empty --to: give a domain such as partner.example');
  const deviceText = values.device;
  return withStore(values, async (store) => {
    const since = await sinceTime(store, values.since);
    const device = await resolveDevice(store, deviceText);
    if (device === undefined) return unknownDevice(deviceText);
    const widths = [19, 21, 24, 30, 24, 20, 0];
    const line = (cells: string[]): string => cells.map((c, i) => cell(c, widths[i] as number)).join(' ').trimEnd();
    if (!values.json) {
      process.stdout.write(line(['TIME', 'SERVER', 'MAIL FROM', 'RECIPIENTS', 'SUBJECT', 'ATTACHMENTS', 'LAST REPLY']) + '\n');
    }
    for await (const event of store.range({ dataset: 'mailtap.smtp', sinceTime: since, device })) {
      if (event.event.action !== 'smtp-transaction') continue;
      if (domain !== undefined && !hasRecipientIn(event, domain)) continue;
      if (values.json) {
        printJson(event);
        continue;
      }
      const smtp = (event.smtp ?? {}) as Fields;
      const dest = (event.destination ?? {}) as Fields;
      const rcpts: string[] = smtp.rcpt_to ?? [];
      const attachments: Fields[] = (event.email as Fields | undefined)?.attachments ?? [];
      process.stdout.write(
        line([
          time(event),
          dest.ip === undefined ? '' : String(dest.ip).includes(':') ? `[${dest.ip}]:${dest.port}` : `${dest.ip}:${dest.port}`,
          smtp.mail_from === '' ? '<>' : String(smtp.mail_from ?? ''),
          rcpts.length === 0 ? '' : `${rcpts[0]}${rcpts.length > 1 ? ` +${rcpts.length - 1}` : ''}`,
          String((event.email as Fields | undefined)?.subject ?? ''),
          attachments.map((a) => a.file?.name ?? a.file?.mime_type ?? '?').join(', '),
          String(smtp.last_reply ?? ''),
        ]) + '\n',
      );
    }
    return 0;
  });
}

/** Runs `mailtap show`. Returns the exit status: 1 when no event has that id. */
export async function runShow(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: STORE_OPTIONS,
  });
  if (values.help) return printHelp(SHOW_HELP);

  if (positionals.length !== 1) throw new UsageError('expected exactly one event id');
  const id = positionals[0] as string;
  return withStore(values, async (store) => {
    const event = await store.get(id);
    if (event === undefined) {
      process.stderr.write(`mailtap: no event with id "${sanitizeForTerminal(id, 200)}" in the store\n`);
      return 1;
    }
    process.stdout.write(escapeJsonForTerminal(JSON.stringify(event, null, 2)) + '\n');
    return 0;
  });
}

/** Lists the device records of a store for `mailtap devices --db DIR`. */
export async function listStoredDevices(
  where: StoreLocation,
  json: boolean,
  print: (devices: Device[]) => void,
  toJson: (device: Device) => unknown,
): Promise<number> {
  return withStore(where, async (store) => {
    const devices = await store.devices();
    if (json) for (const device of devices) printJson(toJson(device));
    else print(devices);
    return 0;
  });
}
