/**
 * Starts the real clamd and rspamd of the Debian packages for the scanning tests, each in a
 * temporary folder with its own configuration, socket and port, never the system services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The EICAR anti-virus test file (eicar.org), 68 bytes, written in two pieces. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR' + '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/** rspamd keeps its compiled Hyperscan databases here between runs, so later starts skip the compilation. */
const RSPAMD_HS_CACHE = join(tmpdir(), 'mailtap-test-rspamd-hs-cache');

/**
 * Public suffixes that rspamd recognises in URLs: those of the test messages and a few common
 * ones. The full list (/usr/share/rspamd/effective_tld_names.dat, about 9,600 entries) takes
 * rspamd 10 to 40 s to compile at its first start on a busy 2-core machine.
 */
const TEST_TLDS = ['com', 'net', 'org', 'de', 'uk', 'co.uk', 'example', 'info', 'biz', 'ru', 'cn'];

export interface Daemon {
  dir: string;
  process: ChildProcess;
  /** Stops the daemon and removes its folder. */
  stop(): Promise<void>;
}

function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) {
        reject(new Error(`${what} exited with status ${child.exitCode} before it was ready`));
        return;
      }
      void check().then((ready) => {
        if (ready) resolve();
        else if (Date.now() > deadline) reject(new Error(`${what} was not ready within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

export interface Clamd extends Daemon {
  socket: string;
}

/**
 * Starts clamd with a database folder that holds only one .hdb file: the MD5 signature of the
 * EICAR file named `signature` (clamd reports it with the suffix ".UNOFFICIAL").
 */
export async function startClamd(signature: string): Promise<Clamd> {
  const dir = mkdtempSync(join(tmpdir(), 'mt8-clamd-'));
  const db = join(dir, 'db');
  mkdirSync(db);
  const md5 = createHash('md5').update(EICAR, 'latin1').digest('hex');
  writeFileSync(join(db, 'test.hdb'), `${md5}:${EICAR.length}:${signature}\n`);
  const socket = join(dir, 'clamd.sock');
  const config = join(dir, 'clamd.conf');
  writeFileSync(
    config,
    [
      `LocalSocket ${socket}`,
      `DatabaseDirectory ${db}`,
      `TemporaryDirectory ${dir}`,
      `PidFile ${join(dir, 'clamd.pid')}`,
      `LogFile ${join(dir, 'clamd.log')}`,
      'Foreground yes',
      'StreamMaxLength 25M',
      '',
    ].join('\n'),
  );
  const child = spawn('clamd', ['--foreground', `--config-file=${config}`], { stdio: 'ignore' });
  const stop = stopper(child, dir);
  try {
    await waitFor(() => ping(socket), 30_000, 'clamd', child);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dir, process: child, socket, stop };
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    let reply = '';
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (data) => (reply += data.toString('latin1')));
    s.on('close', () => resolve(reply.startsWith('PONG')));
    s.on('error', () => resolve(false));
  });
}

export interface Rspamd extends Daemon {
  url: string;
}

/**
 * Starts rspamd with its stock rules, one normal worker on 127.0.0.1:PORT and no controller or
 * proxy. DNS goes to a closed port with a short timeout, so network checks fail at once, and
 * the public suffix list is TEST_TLDS. Measured on a 2-core machine under load 14: 3 s for the
 * first start, 1 s with the Hyperscan cache.
 */
export async function startRspamd(): Promise<Rspamd> {
  const dir = mkdtempSync(join(tmpdir(), 'mt8-rspamd-'));
  for (const sub of ['db', 'run', 'log', 'local.d']) mkdirSync(join(dir, sub));
  mkdirSync(RSPAMD_HS_CACHE, { recursive: true });
  const port = await freePort();
  writeFileSync(
    join(dir, 'rspamd.conf'),
    `.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "error";
}
worker "normal" {
    bind_socket = "127.0.0.1:${port}";
    count = 1;
    .include "$CONFDIR/worker-normal.inc"
}
`,
  );
  writeFileSync(
    join(dir, 'local.d', 'options.inc'),
    `dns {
  nameserver = ["127.0.0.1:1"];
  timeout = 0.2s;
  retransmits = 1;
}
hs_cache_dir = "${RSPAMD_HS_CACHE}";
url_tld = "${join(dir, 'tld.dat')}";
`,
  );
  writeFileSync(join(dir, 'tld.dat'), TEST_TLDS.join('\n') + '\n');
  const child = spawn(
    'rspamd',
    [
      '-f',
      '-u',
      'root',
      '-g',
      'root',
      '-c',
      join(dir, 'rspamd.conf'),
      `--var=DBDIR=${join(dir, 'db')}`,
      `--var=RUNDIR=${join(dir, 'run')}`,
      `--var=LOGDIR=${join(dir, 'log')}`,
      `--var=LOCAL_CONFDIR=${dir}`,
    ],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child, dir);
  try {
    await waitFor(() => httpPing(url), 50_000, 'rspamd', child);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dir, process: child, url, stop };
}

function httpPing(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/ping`, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
    req.end();
  });
}

/** Writes a mailtap config for captures/scan.pcap to dir and returns its path. */
export function writeScanConfig(dir: string, scan: string): string {
  const file = join(dir, 'mailtap.yaml');
  writeFileSync(file, `networks:\n  internal: [10.88.0.0/24]\nscan:\n${scan}`);
  return file;
}
