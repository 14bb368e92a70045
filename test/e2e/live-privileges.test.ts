import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI, runCli } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mailtap-live-priv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

describe('mailtap live without privileges', () => {
  // CI runs as root; setpriv switches to nobody, which drops every capability.
  test('names CAP_NET_RAW and how to grant it, exits 77', { skip: !(isRoot && hasSetpriv) && 'needs root and setpriv' }, () => {
    const db = join(dir, 'db-nobody');
    const result = spawnSync(
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, 'live', '-i', 'lo', '--db', db],
      { encoding: 'utf8' },
    );
    assert.equal(result.status, 77, result.stderr);
    assert.equal(result.stdout, '');
    const lines = result.stderr.split('\n');
    assert.equal(
      lines[0],
      'mailtap: error: live capture needs CAP_NET_RAW; this process lacks CAP_NET_RAW.',
    );
    assert.match(result.stderr, /sudo mailtap live/);
    assert.match(result.stderr, /AmbientCapabilities=CAP_NET_RAW/);
    assert.match(result.stderr, /setpriv .*--ambient-caps=\+net_raw/s);
    // The check comes before anything is opened.
    assert.equal(existsSync(db), false);
  });

  test('exits 77 for root without CAP_NET_RAW', { skip: !(isRoot && hasSetpriv) && 'needs root and setpriv' }, () => {
    // Root keeps every other capability, CAP_NET_ADMIN included.
    const result = spawnSync(
      'setpriv',
      ['--inh-caps=-all', '--bounding-set=-net_raw', process.execPath, CLI, 'live', '-i', 'lo', '--db', join(dir, 'db-raw')],
      { encoding: 'utf8' },
    );
    assert.equal(result.status, 77, result.stderr);
    assert.match(result.stderr.split('\n')[0] ?? '', /lacks CAP_NET_RAW\.$/);
  });
});

describe('mailtap live errors', { skip: !isRoot && 'needs root' }, () => {
  test('an unknown interface gives one clear line and exit status 1', () => {
    const result = runCli(['live', '-i', 'mt5none', '--db', join(dir, 'db-a')]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^mailtap: error: cannot capture on interface "mt5none": no such interface/m);
  });

  test('a filter libpcap cannot compile gives one clear line and exit status 1', () => {
    const result = runCli(['live', '-i', 'lo', '--filter', 'tcp port (', '--db', join(dir, 'db-b')]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^mailtap: error: invalid capture filter "tcp port \(": .*syntax error$/m);
  });

  test('no interface is a usage error', () => {
    const result = runCli(['live', '--db', join(dir, 'db-c')]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /no interface to capture on/);
  });
});
