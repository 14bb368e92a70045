/**
 * `mailtap read --db` twice, over two captures a day apart: the second run continues with the
 * devices, baselines and learning period of the first. The captures are built here, so the
 * expected decisions follow from the thresholds in CONFIG:
 *
 * - day 1, 10:00 UTC: device A sends 10 messages in one session. At 10:10 device B sends one.
 *   The learning period (1h) has not ended and 10 messages stay under the floor of 20, so no alert.
 * - day 2, 10:00: A sends 35 messages. Its baseline for 10:00 is day 1's 10 messages, so its
 *   threshold is max(3 x 10, 20) = 30 and the 31st message raises volume_spike. A store
 *   without day 1 has baseline 0, threshold 20, and raises it at the 21st.
 * - day 2, 11:30: B sends again. No new_sender, because B sent on day 1. A store without day 1 raises
 *   new_sender for B, because its learning period started at 10:00 on day 2.
 * - day 2, 11:31: C sends for the first time: new_sender in both stores.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { EventStore } from '../../src/store/index.js';
import { runCli, type Fields } from './cli.js';
import { PcapBuilder, addSmtpConnection, type Endpoint, type SmtpStep } from './pcap-builder.js';

const CONFIG = `
networks:
  internal: [10.0.0.0/8]
thresholds:
  volume_floor_messages: 20
  volume_floor_recipients: 1000
  volume_floor_domains: 1000
  volume_factor: 3
  new_sender_learning: 1h
`;

/** 2024-03-04 00:00:00 UTC. */
const DAY1 = 1709510400;
const DAY2 = DAY1 + 86400;
const HOUR = 3600;

const RELAY: Endpoint = { mac: '02:00:00:00:00:25', ip: '10.0.0.25', port: 25 };
const A = { mac: '02:00:00:00:0a:0a', ip: '10.1.0.10' };
const B = { mac: '02:00:00:00:0b:0b', ip: '10.1.0.11' };
const C = { mac: '02:00:00:00:0c:0c', ip: '10.1.0.12' };

/** Builds one session of `messages` transactions, each to one recipient and accepted. */
function session(name: string, messages: number): SmtpStep[] {
  const steps: SmtpStep[] = [
    { server: '220 relay.corp.example ESMTP\r\n' },
    { client: `EHLO ${name}.corp.example\r\n` },
    { server: '250 relay.corp.example\r\n' },
  ];
  for (let i = 0; i < messages; i++) {
    steps.push(
      { client: `MAIL FROM:<${name}@corp.example>\r\n` },
      { server: '250 2.1.0 Ok\r\n' },
      { client: `RCPT TO:<user${i}@partner.example>\r\n` },
      { server: '250 2.1.5 Ok\r\n' },
      { client: 'DATA\r\n' },
      { server: '354 End data with <CR><LF>.<CR><LF>\r\n' },
      { client: `Subject: report ${i}\r\n\r\nbody ${i}\r\n.\r\n` },
      { server: `250 2.0.0 Ok: queued as Q${name}${i}\r\n` },
    );
  }
  steps.push({ client: 'QUIT\r\n' }, { server: '221 2.0.0 Bye\r\n' });
  return steps;
}

interface CaptureSession {
  client: { mac: string; ip: string };
  port: number;
  /** Start time in Unix seconds. */
  at: number;
  messages: number;
  name: string;
}

/** Builds a pcap of the sessions, each to RELAY. */
function capture(sessions: CaptureSession[]): Buffer {
  const builder = new PcapBuilder();
  for (const s of sessions) {
    addSmtpConnection(builder, { ...s.client, port: s.port }, RELAY, s.at * 1e6, session(s.name, s.messages));
  }
  return builder.toBuffer();
}

const dir = mkdtempSync(join(tmpdir(), 'mailtap-restore-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'site.yaml');
writeFileSync(config, CONFIG);
const day1 = join(dir, 'day1.pcap');
const day2 = join(dir, 'day2.pcap');
writeFileSync(
  day1,
  capture([
    { client: A, port: 40001, at: DAY1 + 10 * HOUR, messages: 10, name: 'a' },
    { client: B, port: 40002, at: DAY1 + 10 * HOUR + 600, messages: 1, name: 'b' },
  ]),
);
writeFileSync(
  day2,
  capture([
    { client: A, port: 41001, at: DAY2 + 10 * HOUR, messages: 35, name: 'a' },
    { client: B, port: 41002, at: DAY2 + 11.5 * HOUR, messages: 1, name: 'b' },
    { client: C, port: 41003, at: DAY2 + 11.5 * HOUR + 60, messages: 1, name: 'c' },
  ]),
);

function alerts(records: Fields[]): Fields[] {
  return records.filter((r) => r.event.kind === 'alert');
}

/** Returns the first version of each alert of `rule`, as it was opened. */
function opened(records: Fields[], rule: string): Fields[] {
  return alerts(records).filter((r) => r.rule.name === rule && r.event.action === 'alert-opened');
}

describe('read --db continues the analyzer state of the run before', () => {
  const db = join(dir, 'db');
  const first = runCli(['read', '-q', '--db', db, '--config', config, day1]);
  const second = runCli(['read', '-q', '--db', db, '--config', config, day2]);
  const alone = runCli(['read', '-q', '--db', join(dir, 'alone'), '--config', config, day2]);

  test('runs succeed, first raises no alert', () => {
    for (const run of [first, second, alone]) assert.equal(run.status, 0, run.stderr);
    assert.equal(first.records.filter((r) => r.event.action === 'smtp-transaction').length, 11);
    assert.deepEqual(alerts(first.records), []);
  });

  test('day 2 volume uses day 1 baseline', () => {
    const [spike] = opened(second.records, 'volume_spike');
    assert.equal(spike?.mailtap.device.key, `mac:${A.mac}`);
    assert.equal(spike?.mailtap.alert.evidence.baseline.messages, 10);
    assert.equal(spike?.mailtap.alert.evidence.threshold.messages, 30);
    assert.equal(spike?.mailtap.alert.evidence.messages, 31);

    const [control] = opened(alone.records, 'volume_spike');
    assert.equal(control?.mailtap.alert.evidence.baseline.messages, 0);
    assert.equal(control?.mailtap.alert.evidence.threshold.messages, 20);
    assert.equal(control?.mailtap.alert.evidence.messages, 21);
  });

  test('day 1 sender not new on day 2', () => {
    const keys = (records: Fields[]) => opened(records, 'new_sender').map((r) => r.mailtap.device.key as string);
    assert.deepEqual(keys(second.records), [`mac:${C.mac}`]);
    assert.deepEqual(keys(alone.records).sort(), [`mac:${B.mac}`, `mac:${C.mac}`]);
  });

  test('device counters add up over both runs', async () => {
    const store = await EventStore.open(db);
    const devices = await store.devices();
    await store.close();
    const counts = Object.fromEntries(devices.map((d) => [d.key, d.counters.transactions]));
    assert.deepEqual(counts, { [`mac:${A.mac}`]: 45, [`mac:${B.mac}`]: 2, [`mac:${C.mac}`]: 1 });
  });

  test('rereading day 2 counts nothing twice', async () => {
    const again = runCli(['read', '-q', '--db', db, '--config', config, day2]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(alerts(again.records), []);
    const store = await EventStore.open(db);
    const devices = await store.devices();
    let events = 0;
    for await (const event of store.range({})) if (event.event.kind === 'event') events++;
    await store.close();
    // One record per transaction. A session with a transaction has no record of its own.
    assert.equal(events, 11 + 37);
    assert.equal(devices.find((d) => d.key === `mac:${A.mac}`)?.counters.transactions, 45);
  });

  test('damaged saved state warns, is ignored', async () => {
    const broken = join(dir, 'broken');
    assert.equal(runCli(['read', '-q', '--db', broken, '--config', config, day1]).status, 0);
    const store = await EventStore.open(broken);
    await store.putState('analyzer', { version: 1, newestTs: 'soon' });
    await store.close();
    const run = runCli(['read', '-q', '--db', broken, '--config', config, day2]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^mailtap: warning: .*broken: saved state is damaged: newestTs: .*; starting without the saved analyzer state\n$/);
    // Without day 1's state, day 2 is judged as in a new store.
    assert.equal(opened(run.records, 'volume_spike')[0]?.mailtap.alert.evidence.threshold.messages, 20);
  });
});
