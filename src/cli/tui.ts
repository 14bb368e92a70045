import { parseArgs } from 'node:util';
import { DashboardModel } from '../tui/model.js';
import { FeedClient } from '../tui/feed.js';
import { Dashboard } from '../tui/view.js';
import { UsageError } from './usage.js';

export const TUI_HELP = `Usage: mailtap tui --url ws://HOST:PORT/v1/events [--token T]

Shows a running sensor's event feed in the terminal dashboard: devices, alerts, messages per
minute and the recent messages of one device. On the first connection it replays the last
5000 stored events; after a disconnect it reconnects and resumes after the last event received.

Options:
  --url URL      the sensor's feed, ws://HOST:PORT/v1/events (the path is added when missing)
  --token T      bearer token of the feed; default: the MAILTAP_TOKEN environment variable
  -h, --help     this help

Keys: arrows or j/k move, Enter details, / filter, s sort, p pause, ? help, q quit.`;

/** Returns url with the feed's path when it has none. */
export function feedUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid --url "${text}": expected ws://HOST:PORT/v1/events`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new UsageError(`invalid --url "${text}": expected a ws:// or wss:// URL`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/events';
  return url.toString();
}

/** Runs `mailtap tui`. Returns the exit status after q. */
export async function runTui(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(TUI_HELP + '\n');
    return 0;
  }
  if (values.url === undefined) throw new UsageError('missing --url: give the sensor feed, ws://HOST:PORT/v1/events');

  const url = feedUrl(values.url);
  const token = values.token ?? process.env.MAILTAP_TOKEN;
  const model = new DashboardModel();
  const client = new FeedClient({
    url,
    ...(token !== undefined ? { token } : {}),
    onEvent: (event) => model.ingest(event),
    onStats: (stats) => model.setStats(stats),
  });

  return new Promise((resolve) => {
    // A live feed can be quiet, so the clock of the last-hour figures and the chart also follows the wall clock.
    const clockTimer = setInterval(() => model.advanceClock(Date.now() / 1000), 1000);
    new Dashboard({
      model,
      source: url,
      state: () => client.describe(),
      onQuit: () => {
        clearInterval(clockTimer);
        client.stop();
        resolve(0);
      },
    });
    client.start();
  });
}
