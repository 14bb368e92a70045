#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/load.js';
import { stdoutClosed } from './closed-stdout.js';
import { runDevices } from './devices.js';
import { runStatus } from './status.js';
import { runLive } from './live.js';
import { runAlerts, runMessages, runShow } from './query.js';
import { READ_HELP, runRead } from './read.js';
import { UsageError } from './usage.js';

const HELP = `Usage: mailtap COMMAND [options]

Passive sensor for outgoing e-mail: reports every SMTP transaction seen on the wire.

Commands:
  read FILE...      read capture files and print one record per SMTP transaction, and alerts
  devices FILE...   read capture files and list the devices seen, with vendor, names and counts
  alerts            list the latest version of each stored alert, newest first
  messages --device X
                    list the stored SMTP transactions of a device (label, MAC or IP)
  show ID           print the stored event with this event.id
  devices           list the device records of the event store
  live -i IFACE     capture from interfaces (a mirror port), store every record and log
  status            print the figures of the running sensor (packets, loss, sessions, uptime)
  tui --url ws://HOST:PORT/v1/events
                    show a running sensor's feed in the terminal dashboard

The query commands (alerts, messages, show, devices without files) read the event store of
--db DIR, else store.path of the --config file, else $XDG_STATE_HOME/mailtap or
~/.local/state/mailtap. Only "read --db DIR" writes to a store. While "mailtap live" holds
the store, they ask it through its control socket (--socket PATH, see docs/store.md).

Options:
  -h, --help     this help
  -V, --version  the version

Run "mailtap COMMAND --help" for the options of a command.`;

/** Returns the version from package.json, found next to the dist/ or src/ folder. */
function version(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'read':
      return runRead(rest);
    case 'devices':
      return runDevices(rest);
    case 'alerts':
      return runAlerts(rest);
    case 'messages':
      return runMessages(rest);
    case 'show':
      return runShow(rest);
    case 'tui':
      // Loaded on demand, so that blessed does not slow down the start of the other commands.
      return (await import('./tui.js')).runTui(rest);
    case 'status':
      return runStatus(rest);
    case 'live':
      return runLive(rest);
    case '--version':
    case '-V':
      process.stdout.write(`mailtap ${version()}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP + '\n' + (command === undefined ? '' : '\n' + READ_HELP + '\n'));
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}": expected read, devices, alerts, messages, show, live, status or tui`);
  }
}

// A reader that goes away (mailtap read x.pcap | head) ends the run quietly, as in other Unix
// tools, unless the command has work to finish (see closed-stdout.ts).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') {
    if (!stdoutClosed()) process.exit(0);
    return;
  }
  throw error;
});

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`mailtap: invalid configuration:\n${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (error instanceof UsageError || String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS')) {
      const command = process.argv[2];
      const help = ['read', 'devices', 'alerts', 'messages', 'show', 'tui', 'live', 'status'].includes(command ?? '') ? `mailtap ${command} --help` : 'mailtap --help';
      process.stderr.write(`mailtap: ${(error as Error).message}\nRun "${help}" for usage.\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`mailtap: internal error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 70; // EX_SOFTWARE from sysexits.h
  },
);
