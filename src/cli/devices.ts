import { parseArgs } from 'node:util';
import { Analyzer } from '../analyze.js';
import { createCaptureStats, readCapture } from '../capture/index.js';
import { CaptureError } from '../capture/types.js';
import { defaultConfig, loadConfig } from '../config/load.js';
import type { Device } from '../devices/types.js';
import { deviceFields } from '../events/alert.js';
import { ECS_VERSION, isoTime } from '../events/ecs.js';
import { escapeJsonForTerminal, sanitizeForTerminal } from '../events/sanitize.js';
import { Pipeline } from '../pipeline.js';
import { formatCount } from './format.js';
import { listStoredDevices } from './query.js';
import { UsageError } from './usage.js';

export const DEVICES_HELP = `Usage: mailtap devices [options] FILE...
       mailtap devices [--db DIR] [--config FILE] [--socket PATH] [--json]

Reads capture files and lists every device seen: the MAC and its vendor, IP addresses, names
from DHCP and EHLO, the label, type and owner from the configuration, and mail counters.
Without capture files, lists the device records of the event store instead.

Options:
  --config FILE   YAML configuration (see appliance/mailtap.yaml); without files, its
                  store.path is the store to list
  --db DIR        list the device records of this event store (default: store.path of the
                  configuration, $XDG_STATE_HOME/mailtap or ~/.local/state/mailtap)
  --socket PATH   while a running sensor holds the store, ask it through this control socket
                  (default: control.socket of the configuration, else the path of mailtap status)
  --json          one JSON document per device ("mailtap.device" events) instead of a table
  --all           also devices that never spoke SMTP (seen only in ARP, DHCP or neighbour discovery)
  -h, --help      this help`;

function deviceEvent(device: Device): Record<string, unknown> {
  return {
    '@timestamp': isoTime(device.lastSeen),
    event: { kind: 'state', category: ['host'], type: ['info'], dataset: 'mailtap.device', id: device.key },
    mailtap: {
      device: {
        ...deviceFields(device),
        first_seen: isoTime(device.firstSeen),
        last_seen: isoTime(device.lastSeen),
        ...(device.firstMailSeen !== undefined ? { first_mail_seen: isoTime(device.firstMailSeen) } : {}),
        ...(device.owner ? { owner: device.owner } : {}),
        counters: {
          sessions: device.counters.sessions,
          transactions: device.counters.transactions,
          messages: device.counters.messages,
          recipients: device.counters.recipients,
          rejected_recipients: device.counters.rejectedRecipients,
          bytes: device.counters.bytes,
        },
      },
    },
    ecs: { version: ECS_VERSION },
  };
}

/** Returns the DHCP host name and EHLO names of a device, each once. */
function deviceNames(device: Device): string[] {
  const names = device.dhcpHostname !== undefined ? [device.dhcpHostname, ...device.ehloNames] : device.ehloNames;
  return [...new Set(names)];
}

const COLUMNS: { title: string; width: number; value: (d: Device) => string }[] = [
  { title: 'DEVICE', width: 20, value: (d) => d.label ?? d.mac ?? d.key.replace(/^ip:/, '') },
  { title: 'VENDOR', width: 22, value: (d) => d.vendor ?? '' },
  { title: 'TYPE', width: 10, value: (d) => d.type ?? (d.isRouter ? 'router' : '') },
  { title: 'IP', width: 15, value: (d) => d.ips.at(-1)?.ip ?? '' },
  { title: 'NAMES', width: 26, value: (d) => deviceNames(d).join(', ') },
  { title: 'SESS', width: 5, value: (d) => formatCount(d.counters.sessions) },
  { title: 'MSGS', width: 5, value: (d) => formatCount(d.counters.messages) },
  { title: 'RCPTS', width: 6, value: (d) => formatCount(d.counters.recipients) },
  { title: 'REJ', width: 4, value: (d) => formatCount(d.counters.rejectedRecipients) },
  { title: 'LAST SEEN', width: 19, value: (d) => isoTime(d.lastSeen).slice(0, 19).replace('T', ' ') },
  { title: 'OWNER', width: 0, value: (d) => (d.owner ? `${d.owner.name}${d.owner.email ? ` <${d.owner.email}>` : ''}` : '') },
];

function row(values: string[]): string {
  return values
    .map((value, i) => {
      const width = (COLUMNS[i] as (typeof COLUMNS)[number]).width;
      const safe = sanitizeForTerminal(value, width === 0 ? 60 : width);
      return width === 0 ? safe : safe.padEnd(width);
    })
    .join(' ');
}

function printTable(devices: Device[]): void {
  process.stdout.write(row(COLUMNS.map((c) => c.title)) + '\n');
  for (const device of devices) process.stdout.write(row(COLUMNS.map((c) => c.value(device))) + '\n');
}

/** Runs `mailtap devices`. Returns the exit status. */
export async function runDevices(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      db: { type: 'string' },
      socket: { type: 'string' },
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(DEVICES_HELP + '\n');
    return 0;
  }
  if (values.db !== undefined || positionals.length === 0) {
    if (positionals.length > 0) throw new UsageError('--db and capture files exclude each other');
    return listStoredDevices({ db: values.db, config: values.config, socket: values.socket }, values.json, printTable, deviceEvent);
  }
  const config = values.config !== undefined ? loadConfig(values.config) : defaultConfig();
  const analyzer = new Analyzer(config);
  const pipeline = new Pipeline({
    smtpPorts: config.smtp.ports,
    implicitTlsPorts: config.smtp.implicit_tls_ports,
    analyzer,
    onEvent: () => {},
  });
  let failed = 0;
  const stats = createCaptureStats();
  for (const file of positionals) {
    try {
      await readCapture(file, pipeline.handlePacket, { stats });
    } catch (error) {
      if (!(error instanceof CaptureError)) throw error;
      failed++;
      process.stderr.write(`mailtap: error: ${error.message} (${error.code})\n`);
    }
  }
  await pipeline.finish();

  const devices = analyzer.inventory.list().filter((d) => values.all || d.counters.sessions > 0 || d.counters.transactions > 0);
  if (values.json) {
    for (const device of devices) process.stdout.write(escapeJsonForTerminal(JSON.stringify(deviceEvent(device))) + '\n');
  } else {
    printTable(devices);
  }
  return failed > 0 ? 1 : 0;
}
