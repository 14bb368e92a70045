/**
 * `mailtap alerts`, `messages`, `show` and `devices --db` over a store filled with the records
 * of `mailtap read` on captures/story.pcap. The expected counts come from captures/README.md
 * (section story.pcap), which takes them from swaks, Postfix and tshark, not from mailtap.
 */
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EventStore } from '../../src/store/index.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { spawnSync } from 'node:child_process';
import { CLI, REPO, runCli, type Fields } from './cli.js';

const STORY = join(REPO, 'captures', 'story.pcap');
const CONFIG = join(REPO, 'captures', 'story.yaml');

const PRINTER_KEY = 'mac:30:05:5c:98:00:31';
const PRINTER_LABEL = 'printer-floor-2';

/** The README's "Expected alerts with story.yaml": one alert per rule and device. */
const EXPECTED_RULES = [
  'cleartext_auth',
  'new_sender',
  'rejected_recipients',
  'relay_bypass',
  'relay_bypass',
  'risky_attachment',
  'unauthorized_sender',
  'volume_spike',
];

/** Runs the CLI without parsing its output, because runCli parses every line starting with "{" and `show` prints indented JSON. */
function runRaw(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

describe('query commands over a store of story.pcap', () => {
  let dir: string;
  let db: string;
  let records: Fields[];

  before(async () => {
    const read = runCli(['read', '--quiet', '--config', CONFIG, STORY]);
    assert.equal(read.status, 0, read.stderr);
    records = read.records;
    dir = await mkdtemp(join(tmpdir(), 'mailtap-query-'));
    db = join(dir, 'db');
    const store = await EventStore.open(db);
    await store.append(records as EcsEvent[]);
    await store.close();
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('alerts lists the latest version of each of the 8 alerts, newest first', () => {
    const result = runCli(['alerts', '--db', db, '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.records.map((r) => r.rule.name).sort(), EXPECTED_RULES);
    const ids = result.records.map((r) => r.event.id);
    assert.equal(new Set(ids).size, 8);
    const times = result.records.map((r) => r['@timestamp'] as string);
    assert.deepEqual(times, [...times].sort().reverse());
    // The printer sent 300 sessions to the MX (README, "What each device does"): the stored
    // relay_bypass alert is the last update, not the first version with count 1.
    const bypass = result.records.find((r) => r.event.id === `relay_bypass-${PRINTER_KEY}`);
    assert.equal(bypass?.mailtap.alert.count, 300);
  });

  test('alerts prints a table with a row per alert', () => {
    const result = runCli(['alerts', '--db', db]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0] as string, /^LAST SEEN +SEVERITY +RULE +COUNT +DEVICE +OWNER +MESSAGE$/);
    assert.equal(lines.length, 9);
    assert.ok(lines.some((l) => /relay_bypass +300 +printer-floor-2 +Facilities/.test(l)));
  });

  test('alerts --device takes a label, MAC or IP address', () => {
    for (const device of [PRINTER_LABEL, '30:05:5c:98:00:31', '10.98.0.31']) {
      const result = runCli(['alerts', '--db', db, '--device', device, '--json']);
      assert.equal(result.status, 0, result.stderr);
      // README: relay_bypass, volume_spike and rejected_recipients are the printer's.
      assert.deepEqual(result.records.map((r) => r.rule.name).sort(), ['rejected_recipients', 'relay_bypass', 'volume_spike']);
    }
  });

  test('--since counts back from the newest event in the store, not from the clock', () => {
    // The laptop's session starts at 83.62 s and the capture ends at 83.63 s; the printer's
    // alerts are from its burst, which ends before 80 s.
    const recent = runCli(['alerts', '--db', db, '--since', '2s', '--json']);
    assert.equal(recent.status, 0, recent.stderr);
    assert.deepEqual(recent.records.map((r) => r.rule.name).sort(), ['new_sender', 'relay_bypass', 'risky_attachment', 'unauthorized_sender']);
    const all = runCli(['alerts', '--db', db, '--since', '1h', '--json']);
    assert.equal(all.records.length, 8);
    const iso = runCli(['alerts', '--db', db, '--since', '2026-12-04T18:08:59Z', '--json']);
    assert.equal(iso.records.length, 4);
  });

  test('messages lists the printer\'s 303 transactions by label, MAC or IP address', () => {
    // README: 3 scans through the relay and 300 messages of the burst.
    for (const device of [PRINTER_LABEL, '30-05-5C-98-00-31', '10.98.0.31']) {
      const result = runCli(['messages', '--db', db, '--device', device, '--json']);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.records.length, 303);
      assert.ok(result.records.every((r) => r.event.action === 'smtp-transaction'));
    }
  });

  test('messages --to keeps transactions with a recipient in the domain, case-insensitive', () => {
    // README: 12 burst messages name staffNN@partner.example, and scan 3 goes to carol@partner.example.
    const partner = runCli(['messages', '--db', db, '--device', PRINTER_LABEL, '--to', 'Partner.Example', '--json']);
    assert.equal(partner.status, 0, partner.stderr);
    assert.equal(partner.records.length, 13);
    // Message n goes to customerNN.example with NN = (n-1) mod 60 + 1: 5 messages per domain.
    const customer7 = runCli(['messages', '--db', db, '--device', PRINTER_LABEL, '--to', 'customer07.example', '--json']);
    assert.equal(customer7.records.length, 5);
    const none = runCli(['messages', '--db', db, '--device', PRINTER_LABEL, '--to', 'example', '--json']);
    assert.equal(none.records.length, 0);
  });

  test('alerts combines --since with --device', () => {
    // The printer's alerts end with its burst, before the last 2 s of the capture.
    const recent = runCli(['alerts', '--db', db, '--device', PRINTER_LABEL, '--since', '2s', '--json']);
    assert.equal(recent.status, 0, recent.stderr);
    assert.equal(recent.records.length, 0);
    const hour = runCli(['alerts', '--db', db, '--device', '10.98.0.31', '--since', '1h', '--json']);
    assert.deepEqual(hour.records.map((r) => r.rule.name).sort(), ['rejected_recipients', 'relay_bypass', 'volume_spike']);
  });

  test('messages combines --device, --since and --to', () => {
    const since = records.filter((r) => r.event.action === 'smtp-transaction' && r.mailtap?.device?.key === PRINTER_KEY)
      .map((r) => r['@timestamp'] as string)
      .sort()[150] as string;
    const expected = records.filter(
      (r) =>
        r.event.action === 'smtp-transaction' &&
        r.mailtap?.device?.key === PRINTER_KEY &&
        (r['@timestamp'] as string) >= since &&
        (r.smtp.rcpt_to as string[]).some((to) => to.toLowerCase().endsWith('@partner.example')),
    );
    // Some but not all of the 13 partner.example transactions are in the later half.
    assert.ok(expected.length > 0, `${expected.length} expected`);
    assert.ok(expected.length < 13, `${expected.length} expected`);
    const result = runCli(['messages', '--db', db, '--device', '30:05:5c:98:00:31', '--since', since, '--to', 'partner.example', '--json']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.records.map((r) => r.event.id).sort(), expected.map((r) => r.event.id).sort());
  });

  test('messages prints a table row per transaction', () => {
    const result = runCli(['messages', '--db', db, '--device', '10.98.0.41']);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    // README: the camera's one message, with snapshot.jpg, through the relay's port 587.
    assert.match(lines[1] as string, /10\.98\.0\.10:587 +camera@corp\.example +security@corp\.example +Motion detected: loadin… +snapshot\.jpg +250 /);
  });

  test('show prints the stored event with that id', () => {
    const transaction = records.find((r) => r.event.action === 'smtp-transaction') as Fields;
    const result = runRaw(['show', '--db', db, transaction.event.id]);
    assert.equal(result.status, 0, result.stderr);
    const stored = JSON.parse(result.stdout) as Fields;
    assert.equal(stored.event.id, transaction.event.id);
    assert.deepEqual(stored.smtp, transaction.smtp);
    assert.match(result.stdout, /^\{\n {2}"@timestamp"/);
    const missing = runRaw(['show', '--db', db, 'no-such-id']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no event with id "no-such-id"/);
  });

  test('devices --db lists the stored device records', async () => {
    const empty = runCli(['devices', '--db', db, '--json']);
    assert.equal(empty.status, 0, empty.stderr);
    assert.equal(empty.records.length, 0);
    const store = await EventStore.open(db);
    await store.putDevice({
      key: PRINTER_KEY,
      mac: '30:05:5c:98:00:31',
      ips: [{ ip: '10.98.0.31', firstSeen: 1796407656, lastSeen: 1796407740 }],
      label: PRINTER_LABEL,
      ehloNames: ['BRN30055C980031'],
      firstSeen: 1796407656,
      lastSeen: 1796407740,
      counters: { sessions: 303, messages: 303, transactions: 303, recipients: 315, rejectedRecipients: 12, bytes: 0 },
      isRouter: false,
    });
    await store.close();
    const json = runCli(['devices', '--db', db, '--json']);
    assert.deepEqual(json.records.map((r) => r.mailtap.device.key), [PRINTER_KEY]);
    const table = runCli(['devices', '--db', db]);
    assert.match(table.stdout.split('\n')[1] as string, /^printer-floor-2 /);
  });

  test('a missing store directory is an error with its path, status 1', () => {
    const missing = join(dir, 'missing');
    for (const args of [['alerts'], ['messages', '--device', '10.98.0.31'], ['show', 'x'], ['devices']]) {
      const result = runRaw([...args, '--db', missing]);
      assert.equal(result.status, 1, args.join(' '));
      assert.ok(result.stderr.includes(missing), result.stderr);
    }
  });

  test('a --db that is a regular file is not a directory, status 1', () => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'not a store\n');
    for (const args of [['alerts'], ['messages', '--device', '10.98.0.31'], ['show', 'x'], ['devices']]) {
      const result = runRaw([...args, '--db', file]);
      assert.equal(result.status, 1, args.join(' '));
      assert.equal(result.stderr, `mailtap: no event store at ${file}: it is not a directory\n`);
    }
  });

  test('without --db the store is store.path of --config, else the XDG default', () => {
    // A relative store.path counts from the directory of the configuration file.
    const config = join(dir, 'site.yaml');
    writeFileSync(config, 'store:\n  path: db\n');
    const configured = runCli(['alerts', '--config', config, '--json']);
    assert.equal(configured.status, 0, configured.stderr);
    assert.equal(configured.records.length, 8);

    const stateHome = join(dir, 'state');
    cpSync(db, join(stateHome, 'mailtap'), { recursive: true });
    const env = { ...process.env, XDG_STATE_HOME: stateHome };
    const byDefault = spawnSync(process.execPath, [CLI, 'messages', '--device', PRINTER_LABEL, '--json'], { encoding: 'utf8', env });
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.equal(byDefault.stdout.trimEnd().split('\n').length, 303);
    const devices = spawnSync(process.execPath, [CLI, 'devices', '--json'], { encoding: 'utf8', env });
    assert.equal(devices.status, 0, devices.stderr);

    const nowhere = spawnSync(process.execPath, [CLI, 'alerts'], { encoding: 'utf8', env: { ...env, XDG_STATE_HOME: join(dir, 'nowhere') } });
    assert.equal(nowhere.status, 1);
    assert.equal(nowhere.stderr, `mailtap: no event store at ${join(dir, 'nowhere', 'mailtap')}: the directory does not exist\n`);
  });

  test('a store held by another process is a one-line error, status 1', async () => {
    const holder = await EventStore.open(db);
    try {
      // The query commands then ask the sensor at the control socket; none listens on this one.
      const socket = join(dir, 'no-sensor.sock');
      for (const args of [['alerts', '--db', db, '--socket', socket], ['devices', '--db', db, '--socket', socket]]) {
        const result = runRaw(args);
        assert.equal(result.status, 1, args.join(' '));
        assert.match(result.stderr, /^mailtap: the event store .* is in use by another process \(a running mailtap holds its LOCK file\), and no sensor responds to store queries on .*no-sensor\.sock \(ENOENT\); stop that process, or pass --socket PATH of the sensor that holds the store\n$/);
        assert.equal(result.stdout, '');
      }
      const read = runRaw(['read', '-q', '--db', db, STORY]);
      assert.equal(read.status, 1);
      assert.match(read.stderr, /^mailtap: error: the event store .* is in use by another process \(a running mailtap holds its LOCK file\); stop it first\n$/);
      assert.equal(read.stdout, '');
    } finally {
      await holder.close();
    }
  });

  test('tables show control characters from the wire as escapes', async () => {
    // A transaction and an alert whose texts carry a colour change (ESC [31m), a C1 control
    // sequence introducer (U+009B) and a right-to-left override (U+202E).
    const hostile = '\u001b[31mred\u009b2J\u202eexe.pdf';
    const store = await EventStore.open(join(dir, 'hostile'));
    await store.append([
      {
        '@timestamp': '2026-12-04T18:10:00.000000Z',
        event: { kind: 'event', dataset: 'mailtap.smtp', action: 'smtp-transaction', id: 'hostile-1' },
        source: { ip: '10.98.0.99' },
        destination: { ip: '10.98.0.10', port: 25 },
        smtp: { mail_from: hostile, rcpt_to: [`${hostile}@x.example`], last_reply: hostile },
        email: { subject: hostile, attachments: [{ file: { name: hostile } }] },
      },
      {
        '@timestamp': '2026-12-04T18:10:00.000000Z',
        event: { kind: 'alert', dataset: 'mailtap.alert', action: 'alert-opened', id: 'new_sender-ip:10.98.0.99' },
        message: hostile,
        rule: { name: 'new_sender' },
        source: { ip: '10.98.0.99' },
        mailtap: { alert: { severity: 'medium', count: 1, owner: { name: hostile } }, device: { key: 'ip:10.98.0.99', label: hostile } },
      },
    ] as unknown as EcsEvent[]);
    await store.close();
    const outputs = [
      runRaw(['messages', '--db', join(dir, 'hostile'), '--device', '10.98.0.99']),
      runRaw(['alerts', '--db', join(dir, 'hostile')]),
      runRaw(['messages', '--db', join(dir, 'hostile'), '--device', '10.98.0.99', '--json']),
      runRaw(['alerts', '--db', join(dir, 'hostile'), '--json']),
    ];
    for (const output of outputs) {
      assert.equal(output.status, 0, output.stderr);
      assert.doesNotMatch(output.stdout, /[\u001b\u009b\u202e]/);
    }
    assert.match(outputs[0]?.stdout ?? '', /\\x1b\[31mred\\x9b2J\\u202eexe/);
    assert.match(outputs[1]?.stdout ?? '', /\\x1b\[31mred/);
    // JSON output keeps the value: parsing it gives the original text.
    assert.equal(JSON.parse(outputs[2]?.stdout ?? '').email.subject, hostile);
  });

  test('usage errors exit with status 2', () => {
    for (const args of [
      ['messages', '--db', db],
      ['show', '--db', db],
      ['alerts', '--db', db, '--since', 'yesterday'],
      ['alerts', '--db', db, '--bogus'],
    ]) {
      const result = runCli(args);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    }
    const unknown = runCli(['messages', '--db', db, '--device', 'no-such-label']);
    assert.equal(unknown.status, 1);
  });
});
