import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLI, REPO, readRecords, type Fields } from './cli.js';
import { PcapBuilder, addSmtpConnection } from './pcap-builder.js';

/**
 * The dashboard in a real terminal: tmux runs `mailtap read --tui`, the test sends keys with
 * send-keys and reads the screen with capture-pane. Expected rows and alerts come from the
 * story section of captures/README.md (swaks, Postfix and tshark facts, not mailtap output).
 */

const SOCKET = `mt7-e2e-${process.pid}`;
const STORY = join(REPO, 'captures', 'story.pcap');
const STORY_CONFIG = join(REPO, 'captures', 'story.yaml');

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
}

/** Returns the visible screen of the pane, without the newline capture-pane adds at the end. */
function pane(target: string): string {
  return tmux('capture-pane', '-p', '-t', target).replace(/\n$/, '');
}

function paneFormat(target: string, format: string): string {
  return tmux('display-message', '-p', '-t', target, format).trim();
}

/** Polls the pane until check returns true; fails with the last screen after timeoutMs. */
async function waitForPane(target: string, check: (screen: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let screen = '';
  while (Date.now() < deadline) {
    screen = pane(target);
    if (check(screen)) return screen;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out waiting for the pane ${target}; it shows:\n${screen}`);
}

function keys(target: string, ...names: string[]): void {
  tmux('send-keys', '-t', target, ...names);
}

/** Starts a tmux session running command, 120x40; the shell stays so the test can read the exit. */
function startSession(name: string, command: string): void {
  tmux(
    'new-session', '-d', '-s', name, '-x', '120', '-y', '40',
    `LANG=C.UTF-8 ${command}; echo "EXIT=$?"; sleep 120`,
  );
}

function readTui(file: string, extra = ''): string {
  return `node ${CLI} read ${file} ${extra} --tui --speed 0`;
}

let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mt7-tui-'));
  // Allow resize-window on detached sessions, so each session keeps its own size.
  tmux('start-server', ';', 'set-option', '-g', 'window-size', 'manual');
});

after(() => {
  try {
    tmux('kill-server');
  } catch {
    // The server is gone already.
  }
  // tmux can leave its socket file behind after kill-server.
  rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('dashboard on the story capture', () => {
  it('shows the printer row and its alerts', async () => {
    startSession('story', readTui(STORY, `--config ${STORY_CONFIG}`));
    const screen = await waitForPane('story', (s) => s.includes('end of capture'));
    const printer = screen.split('\n').find((line) => line.includes('printer-floor-2') && line.includes('10.98.0.31'));
    assert.ok(printer, `no printer row in:\n${screen}`);
    // 303 accepted messages (3 scans + 300 burst) and 315 RCPT (12 of them rejected).
    assert.match(printer, /^HIGH 3 +printer-floor-2 +30-05-5C-98-00-31 10\.98\.0\.31 +303 +315 18:08:5\d$/);
    const camera = screen.split('\n').find((line) => line.includes('camera-loading-dock') && line.includes('10.98.0.41'));
    assert.match(camera ?? '', /^MEDIUM 1 +camera-loading-dock/);
    assert.match(screen, /Devices 7 /);
    assert.match(screen, /Alerts 8, newest first/);
    assert.match(screen, /HIGH +relay_bypass x300 printer-floor-2 \(10\.98\.0\.31\) sent SMTP straight to external server 10\.98\.1\.25:25/);
    assert.match(screen, /HIGH +volume_spike x1 printer-floor-2/);
    assert.match(screen, /MEDIUM +rejected_recipients x3 printer-floor-2/);
    assert.match(screen, /MEDIUM +cleartext_auth x1 camera-loading-dock/);
  });

  it('moves the selection and opens details', async () => {
    // The table is sorted by alert severity, then messages: printer first, then the laptop.
    keys('story', 'j');
    await waitForPane('story', (s) => /Intel Corporate \(max 1, now 1\)/.test(s));
    keys('story', 'Enter');
    const laptop = await waitForPane('story', (s) => s.includes('Device Intel Corporate'));
    assert.match(laptop, /accounts@corp\.example -> ap@supplier\.example/);
    assert.match(laptop, /Invoice 2024-0412 +\[Invoice_2024-0412\.docm\]/);
    assert.match(laptop, /EHLO +DESKTOP-7QK2M4N/);
    assert.match(laptop, /HIGH +risky_attachment x1/);
    keys('story', 'Escape');
    await waitForPane('story', (s) => s.includes('Enter details'));
    keys('story', 'k', 'Enter');
    const printer = await waitForPane('story', (s) => s.includes('Device printer-floor-2'));
    assert.match(printer, /Recent messages 50 kept, newest first/);
    assert.match(printer, /scanner@corp\.example -> \w+@customer\d\d\.example/);
    assert.match(printer, /Payment advice 7\d\d\d/);
    assert.match(printer, /250 2\.0\.0 Ok: queued as/);
  });

  it('filters and sorts devices', async () => {
    keys('story', 'Escape');
    await waitForPane('story', (s) => s.includes('Enter details'));
    // Keys sent in one write, as a fast typist or a paste delivers them.
    keys('story', '/', 'w', 's', 'Enter');
    const filtered = await waitForPane('story', (s) => s.includes('Devices 3 of 7'));
    assert.match(filtered, /filter "ws"/);
    assert.doesNotMatch(filtered, /printer-floor-2 +30-05/);
    assert.doesNotMatch(filtered, /Device ws-/); // Enter applied the filter and opened nothing
    keys('story', 's');
    const byMessages = await waitForPane('story', (s) => s.includes('sort: messages/h'));
    const rows = byMessages.split('\n').filter((line) => /^ok +ws-/.test(line));
    // ws-bob sent 12 messages; alice's and chen's went inside TLS, so 0 are visible.
    assert.match(rows[0] ?? '', /^ok +ws-bob +14-CB-19-98-00-22 10\.98\.0\.22 +12 +14 /);
    keys('story', '/', 'C-u', 'Enter');
    await waitForPane('story', (s) => s.includes('Devices 7  sort: messages/h'));
    keys('story', 's', 's', 's');
    await waitForPane('story', (s) => s.includes('Devices 7  sort: status'));
  });

  it('keeps the layout at 80x24', async () => {
    keys('story', 'Escape');
    await waitForPane('story', (s) => s.includes('Enter details'));
    tmux('resize-window', '-t', 'story', '-x', '80', '-y', '24');
    const small = await waitForPane('story', (s) => s.split('\n').length <= 24 && !s.includes('30-05-5C-98-00-31'));
    const lines = small.split('\n');
    for (const line of lines) assert.ok(line.length <= 80, `line longer than 80 columns: ${line}`);
    assert.match(lines[0], /^mailtap +sensor story-lab/);
    assert.ok(lines.some((line) => /^HIGH 3 +printer-floor-2 +10\.98\.0\.31 +303 +315 18:08:5\d$/.test(line)), small);
    assert.ok(lines.some((line) => /^Alerts 8, newest first/.test(line)), small);
    assert.ok(lines.some((line) => line.startsWith('Messages per minute')), small);
    assert.equal(lines.length, 24);
    assert.match(lines[23], /^Up\/Down,j\/k move/);
    tmux('resize-window', '-t', 'story', '-x', '120', '-y', '40');
    const large = await waitForPane('story', (s) => s.includes('30-05-5C-98-00-31'));
    assert.match(large, /HIGH 3 +printer-floor-2 +30-05-5C-98-00-31/);
  });

  it('leaves the terminal clean on q', async () => {
    assert.equal(paneFormat('story', '#{alternate_on}'), '1');
    keys('story', 'q');
    const screen = await waitForPane('story', (s) => s.includes('EXIT='));
    assert.match(screen, /EXIT=0/);
    assert.equal(paneFormat('story', '#{alternate_on}'), '0');
    assert.equal(paneFormat('story', '#{cursor_flag}'), '1');
  });
});

describe('dashboard on a crash or a signal', () => {
  it('restores the terminal on a crash', async () => {
    // The view on the real terminal, then an uncaught exception half a second later.
    const script =
      `import('${join(REPO, 'dist', 'tui', 'index.js')}').then((tui) => {` +
      `new tui.Dashboard({ model: new tui.DashboardModel(), source: 'crash test', onQuit: () => {} });` +
      `setTimeout(() => { throw new Error('deliberate crash'); }, 500); })`;
    writeFileSync(join(dir, 'crash.mjs'), script);
    startSession('crash', `node ${join(dir, 'crash.mjs')}`);
    await waitForPane('crash', (s) => s.includes('crash test'));
    assert.equal(paneFormat('crash', '#{alternate_on}'), '1');
    const screen = await waitForPane('crash', (s) => s.includes('EXIT='));
    assert.match(screen, /Error: deliberate crash/);
    assert.match(screen, /EXIT=1/);
    assert.equal(paneFormat('crash', '#{alternate_on}'), '0');
    assert.equal(paneFormat('crash', '#{cursor_flag}'), '1');
  });

  it('quits on SIGTERM', async () => {
    startSession('term', readTui(STORY, `--config ${STORY_CONFIG}`));
    await waitForPane('term', (s) => s.includes('end of capture'));
    const shell = paneFormat('term', '#{pane_pid}');
    const node = execFileSync('pgrep', ['-P', shell], { encoding: 'utf8' }).trim();
    process.kill(Number(node), 'SIGTERM');
    const screen = await waitForPane('term', (s) => s.includes('EXIT='));
    assert.match(screen, /EXIT=143/);
    assert.match(screen, /smtp: 355 sessions/);
    assert.equal(paneFormat('term', '#{alternate_on}'), '0');
  });
});

describe('dashboard on hostile text', () => {
  const ehlo = 'evil\x1b]0;pwned\x07\x1b[2J';
  const subject = 'Hello \x1b[31mRED\x1b[0m {bold}tag{/bold}';

  before(() => {
    const builder = new PcapBuilder();
    const client = { mac: '02:00:00:00:00:07', ip: '10.7.0.7', port: 40007 };
    const server = { mac: '02:00:00:00:00:25', ip: '10.7.0.25', port: 25 };
    addSmtpConnection(builder, client, server, 1_796_400_000_000_000, [
      { server: '220 mx.example ESMTP\r\n' },
      { client: `EHLO ${ehlo}\r\n` },
      { server: '250 mx.example\r\n' },
      { client: 'MAIL FROM:<a@evil.example>\r\n' },
      { server: '250 2.1.0 Ok\r\n' },
      { client: 'RCPT TO:<b@corp.example>\r\n' },
      { server: '250 2.1.5 Ok\r\n' },
      { client: 'DATA\r\n' },
      { server: '354 go ahead\r\n' },
      { client: `Subject: ${subject}\r\nFrom: a@evil.example\r\n\r\nbody\r\n.\r\n` },
      { server: '250 2.0.0 Ok: queued as 7E\r\n' },
      { client: 'QUIT\r\n' },
      { server: '221 bye\r\n' },
    ]);
    writeFileSync(join(dir, 'escapes.pcap'), builder.toBuffer());
  });

  it('sets the title when printed raw', async () => {
    // Control: the same sequence written raw to this tmux does change the pane title, so the
    // check below can fail.
    startSession('control', `printf 'x\\033]0;pwned\\007'`);
    await waitForPane('control', (s) => s.includes('EXIT='));
    assert.equal(paneFormat('control', '#{pane_title}'), 'pwned');
  });

  it('shows escapes as visible text', async () => {
    startSession('hostile', readTui(join(dir, 'escapes.pcap')));
    const titleBefore = paneFormat('hostile', '#{pane_title}');
    await waitForPane('hostile', (s) => s.includes('end of capture'));
    keys('hostile', 'Enter');
    const screen = await waitForPane('hostile', (s) => s.includes('Recent messages'));
    assert.ok(screen.includes('EHLO       evil\\x1b]0;pwned\\x07\\x1b[2J'), screen);
    assert.ok(screen.includes('Hello \\x1b[31mRED\\x1b[0m {bold}tag{/bold}'), screen);
    // ESC[2J did not clear the screen: the header and the detail are still there.
    assert.match(screen, /^mailtap /);
    assert.notEqual(paneFormat('hostile', '#{pane_title}'), 'pwned');
    assert.equal(paneFormat('hostile', '#{pane_title}'), titleBefore);
    // ESC[31m did not turn the subject red: no red foreground attribute on that line.
    const coloured = tmux('capture-pane', '-p', '-e', '-t', 'hostile');
    const subjectLine = coloured.split('\n').find((line) => line.includes('RED')) ?? '';
    assert.doesNotMatch(subjectLine, /\x1b\[(?:[0-9;]*;)?31m/);
    keys('hostile', 'q');
    await waitForPane('hostile', (s) => s.includes('EXIT=0'));
    assert.equal(paneFormat('hostile', '#{pane_title}'), titleBefore);
  });
});

describe('dashboard on a sensor feed', () => {
  let server: WebSocketServer;
  let events: Fields[] = [];
  const sockets: WebSocket[] = [];
  const subscriptions: Array<{ since?: number; authorization?: string }> = [];
  /** Events the server has stored: the first `stored` of the story's records, seq 1..stored. */
  let stored = 0;
  let laptopAt = 0;

  before(async () => {
    events = readRecords(STORY, ['--config', STORY_CONFIG]);
    // The server withholds the laptop's transaction and what follows it until the reconnect.
    laptopAt = events.findIndex((event) => event.source?.ip === '10.98.0.162');
    stored = laptopAt;
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/events' });
    await new Promise((resolve) => server.once('listening', resolve));
    server.on('connection', (socket, request) => {
      sockets.push(socket);
      socket.send(JSON.stringify({ type: 'hello', version: '0.1.0', sensor: 'feed-lab', last_seq: stored }));
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; since?: number };
        subscriptions.push({ since: message.since, authorization: request.headers.authorization });
        for (let seq = (message.since ?? stored) + 1; seq <= stored; seq++) {
          socket.send(JSON.stringify({ type: 'event', seq, event: events[seq - 1] }));
        }
        socket.send(JSON.stringify({ type: 'live', seq: stored }));
      });
    });
  });

  after(async () => {
    for (const socket of sockets) socket.terminate();
    await new Promise((resolve) => server.close(resolve));
  });

  it('attaches and resumes after a disconnect', async () => {
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`;
    startSession('feed', `node ${CLI} tui --url ${url} --token lab-token`);
    const live = await waitForPane('feed', (s) => / live/.test(s) && s.includes('printer-floor-2'));
    // Before the laptop: the camera's and the printer's three alerts, six devices.
    assert.match(live, /Alerts 4, newest first/);
    assert.match(live, /Devices 6 /);
    // The first subscription requests the last 5000 events: since = max(0, last_seq - 5000).
    assert.deepEqual(subscriptions[0], { since: 0, authorization: 'Bearer lab-token' });

    for (const socket of sockets) socket.close(1001, 'sensor restarting');
    await waitForPane('feed', (s) => s.includes('disconnected, retrying'));
    stored = events.length;
    const resumed = await waitForPane('feed', (s) => s.includes('Alerts 8, newest first') && / live/.test(s));
    assert.equal(subscriptions[1].since, laptopAt);
    assert.match(resumed, /Devices 7 /);
    assert.match(resumed, /HIGH 4 +Intel Corporate/);
    // The story is more than an hour older than the wall clock that a live feed follows, so the
    // last-hour columns are 0; the totals in the detail view show nothing was counted twice.
    keys('feed', 'j', 'Enter');
    const printer = await waitForPane('feed', (s) => s.includes('Device printer-floor-2'));
    assert.match(printer, /counts +303 messages, 315 recipients/);
    keys('feed', 'q');
    await waitForPane('feed', (s) => s.includes('EXIT=0'));
    assert.equal(paneFormat('feed', '#{alternate_on}'), '0');
  });
});
