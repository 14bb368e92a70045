/**
 * Runs `mailtap live` as an unprivileged user (nobody) with only CAP_NET_RAW and CAP_NET_ADMIN
 * as ambient capabilities, as the systemd unit does, and checks that it captures a mail sent
 * with swaks between two network namespaces. Needs root (CI runs as root), iproute2, setpriv
 * and swaks.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, REPO, type Fields } from './cli.js';

const CLIENT_NS = 'mt9uc';
const SERVER_NS = 'mt9us';
const CLIENT_IF = 'mt9uc0';
const SERVER_IF = 'mt9us0';
const CLIENT_IP = '10.209.9.1';
const SERVER_IP = '10.209.9.2';
const NOBODY = 65534;
/** Port of the metrics endpoint on the loopback of the server namespace, which has its own ports. */
const METRICS_PORT = 9187;

function sh(command: string, args: string[]): void {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${run.stderr}`);
}

function cleanUp(): void {
  spawnSync('ip', ['netns', 'del', CLIENT_NS]);
  spawnSync('ip', ['netns', 'del', SERVER_NS]);
}

/** Collects the lines of a child's output stream and resolves waitFor() once a line matches. */
class LineWatcher {
  readonly lines: string[] = [];
  private waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  constructor(stream: NodeJS.ReadableStream) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      let end: number;
      while ((end = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, end);
        rest = rest.slice(end + 1);
        this.lines.push(line);
        const waiting = [];
        for (const waiter of this.waiters) {
          if (waiter.test(line)) waiter.resolve(line);
          else waiting.push(waiter);
        }
        this.waiters = waiting;
      }
    });
  }

  waitFor(test: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const found = this.lines.find(test);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }
}

describe('live as an unprivileged user', { skip: process.getuid?.() !== 0 ? 'needs root for network namespaces' : false }, () => {
  let dir: string;
  let smtp: ChildProcess | undefined;
  let sensor: ChildProcess | undefined;
  let sensorOut: LineWatcher;
  let sensorErr = '';

  before(async () => {
    cleanUp();
    sh('ip', ['netns', 'add', CLIENT_NS]);
    sh('ip', ['netns', 'add', SERVER_NS]);
    sh('ip', ['link', 'add', CLIENT_IF, 'netns', CLIENT_NS, 'type', 'veth', 'peer', 'name', SERVER_IF, 'netns', SERVER_NS]);
    sh('ip', ['-n', CLIENT_NS, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', CLIENT_IF]);
    sh('ip', ['-n', SERVER_NS, 'addr', 'add', `${SERVER_IP}/24`, 'dev', SERVER_IF]);
    for (const [ns, link] of [[CLIENT_NS, CLIENT_IF], [SERVER_NS, SERVER_IF], [CLIENT_NS, 'lo'], [SERVER_NS, 'lo']] as const) {
      sh('ip', ['-n', ns, 'link', 'set', link, 'up']);
    }

    dir = mkdtempSync(join(tmpdir(), 'mailtap-unpriv-'));
    chmodSync(dir, 0o755);
    const db = join(dir, 'db');
    sh('mkdir', [db]);
    chownSync(db, NOBODY, NOBODY);
    writeFileSync(
      join(dir, 'mailtap.yaml'),
      `sensor:\n  name: unpriv-test\nfeed:\n  listen: 127.0.0.1:0\ncontrol:\n  socket: ${join(dir, 'run', 'mailtap.sock')}\nmetrics:\n  listen: 127.0.0.1:${METRICS_PORT}\n`,
    );
    sh('mkdir', [join(dir, 'run')]);
    chownSync(join(dir, 'run'), NOBODY, NOBODY);

    // An SMTP server in the server namespace that accepts every message.
    const server = `const { SMTPServer } = require('smtp-server');
      const s = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'],
        onData(stream, session, cb) { stream.resume(); stream.on('end', () => cb(null, 'queued as UNPRIV1')); } });
      s.listen(25, '${SERVER_IP}', () => console.log('listening'));`;
    smtp = spawn('ip', ['netns', 'exec', SERVER_NS, process.execPath, '-e', server], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new LineWatcher(smtp.stdout!).waitFor((l) => l === 'listening', 10000, 'the SMTP server');

    sensor = spawn(
      'ip',
      [
        'netns', 'exec', SERVER_NS,
        'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
        '--inh-caps=+net_raw,+net_admin', '--ambient-caps=+net_raw,+net_admin',
        process.execPath, CLI, 'live', '-i', SERVER_IF, '--config', join(dir, 'mailtap.yaml'), '--db', db, '--format', 'json',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    sensorOut = new LineWatcher(sensor.stdout!);
    sensor.stderr!.setEncoding('utf8');
    const started = new LineWatcher(sensor.stderr!);
    sensor.stderr!.on('data', (chunk: string) => (sensorErr += chunk));
    await started.waitFor((l) => l.includes('capture started'), 15000, 'the sensor to start');
  });

  after(async () => {
    if (sensor && sensor.exitCode === null) {
      sensor.kill('SIGTERM');
      await once(sensor, 'exit');
    }
    smtp?.kill('SIGTERM');
    cleanUp();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sensor runs as nobody with two capabilities', () => {
    // ip netns exec and setpriv exec into the next program, so the child's pid is node's.
    const status = readFileSync(`/proc/${sensor!.pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    // linux/capability.h: CAP_NET_ADMIN is bit 12 and CAP_NET_RAW bit 13, so the mask is 0x3000.
    assert.match(status, /^CapEff:\s+0000000000003000$/m);
    assert.match(status, /^CapAmb:\s+0000000000003000$/m);
  });

  it('swaks mail is captured and printed', async () => {
    const swaks = spawnSync(
      'ip',
      ['netns', 'exec', CLIENT_NS, 'swaks', '--server', SERVER_IP, '--from', 'scanner@corp.example', '--to', 'alice@corp.example',
        '--header', 'Subject: unprivileged capture', '--helo', 'scanner-9'],
      { encoding: 'utf8', timeout: 20000 },
    );
    assert.equal(swaks.status, 0, swaks.stdout + swaks.stderr);
    const line = await sensorOut.waitFor((l) => l.includes('"mail_from"'), 20000, 'the transaction record');
    const record = JSON.parse(line) as Fields;
    assert.equal(record.smtp.mail_from, 'scanner@corp.example');
    assert.deepEqual(record.smtp.rcpt_to, ['alice@corp.example']);
    assert.equal(record.source.ip, CLIENT_IP);
    assert.equal(record.destination.ip, SERVER_IP);
    assert.equal(record.email.subject, 'unprivileged capture');
    assert.ok(record.event.sequence >= 1, 'the record was stored with a sequence number');
  });

  it('status reads the sensor socket', () => {
    const run = spawnSync(process.execPath, [CLI, 'status', '--json', '--socket', join(dir, 'run', 'mailtap.sock')], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr + sensorErr);
    const stats = JSON.parse(run.stdout) as Fields;
    assert.equal(stats.sensor, 'unpriv-test');
    assert.deepEqual(stats.sources, [SERVER_IF]);
    assert.ok(stats.transactions >= 1);
    assert.ok(stats.packets >= 10);
  });

  it('queries go through the sensor socket', async () => {
    // The sensor has the store's LevelDB LOCK, so messages and show query it over control.socket.
    // The spawn is asynchronous because the sensor's line watchers run in this process.
    const query = (args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args, '--db', join(dir, 'db'), '--config', join(dir, 'mailtap.yaml')]);
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const messages = await query(['messages', '--device', CLIENT_IP, '--json']);
    assert.equal(messages.status, 0, messages.stderr + sensorErr);
    const records = messages.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Fields);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.smtp.mail_from, 'scanner@corp.example');
    assert.equal(records[0]?.email.subject, 'unprivileged capture');
    const show = await query(['show', String(records[0]?.event.id)]);
    assert.equal(show.status, 0, show.stderr);
    assert.deepEqual(JSON.parse(show.stdout), records[0]);
  });

  it('metrics endpoint serves the figures', () => {
    const scrape = `require('http').get('http://127.0.0.1:${METRICS_PORT}/metrics', (res) => {
      let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => process.stdout.write(body)); });`;
    const run = spawnSync('ip', ['netns', 'exec', SERVER_NS, process.execPath, '-e', scrape], { encoding: 'utf8', timeout: 10000 });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^mailtap_transactions_total [1-9]\d*$/m);
    assert.match(run.stdout, /^mailtap_sensor_info\{sensor="unpriv-test",version="[^"]+"\} 1$/m);
  });

  it('without capabilities live exits 77', () => {
    const run = spawnSync(
      'ip',
      ['netns', 'exec', SERVER_NS, 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
        process.execPath, CLI, 'live', '-i', SERVER_IF, '--db', join(dir, 'db2')],
      { encoding: 'utf8', timeout: 20000 },
    );
    assert.equal(run.status, 77, run.stderr);
    assert.match(run.stderr, /lacks CAP_NET_RAW\./);
  });
});

