/** `mailtap read --db`: records are stored before they are printed, once, with sequence numbers. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { EventStore } from '../../src/store/index.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { CLI, REPO, runCli } from './cli.js';

const STORY = join(REPO, 'captures', 'story.pcap');
const CONFIG = join(REPO, 'captures', 'story.yaml');

async function storedEvents(dir: string): Promise<EcsEvent[]> {
  const store = await EventStore.open(dir);
  const events: EcsEvent[] = [];
  for await (const event of store.range({})) events.push(event);
  await store.close();
  return events;
}

describe('read --db', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailtap-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('stores every printed record with its sequence', async () => {
    const result = runCli(['read', '--db', dir, '--config', CONFIG, STORY]);
    assert.equal(result.status, 0, result.stderr);
    const sequences = result.records.map((r) => r.event.sequence as number);
    assert.ok(sequences.every((n) => Number.isInteger(n)));
    for (let i = 1; i < sequences.length; i++) assert.ok(sequences[i]! > sequences[i - 1]!, `sequence ${i}`);
    const stored = await storedEvents(dir);
    const storedIds = new Set(stored.map((e) => e.event.id));
    for (const record of result.records) assert.ok(storedIds.has(record.event.id), record.event.id);
    // 333 transactions and 8 alerts (the latest version of each) from the story capture.
    assert.equal(stored.filter((e) => e.event.action === 'smtp-transaction').length, 333);
    assert.equal(stored.filter((e) => e.event.kind === 'alert').length, 8);
  });

  test('reading the capture again adds no records', async () => {
    const before = (await storedEvents(dir)).filter((e) => e.event.kind === 'event').length;
    const result = runCli(['read', '-q', '--db', dir, '--config', CONFIG, STORY]);
    assert.equal(result.status, 0, result.stderr);
    const afterCount = (await storedEvents(dir)).filter((e) => e.event.kind === 'event').length;
    assert.equal(afterCount, before);
  });

  test('stores the device inventory', async () => {
    const store = await EventStore.open(dir);
    const devices = await store.devices();
    await store.close();
    const printer = devices.find((d) => d.key === 'mac:30:05:5c:98:00:31');
    assert.equal(printer?.label, 'printer-floor-2');
    assert.equal(printer?.counters.transactions, 303);
  });

  test('a store that cannot be opened is an error', () => {
    const result = runCli(['read', '--db', join(REPO, 'package.json'), STORY]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^mailtap: error: cannot open the event store .*package\.json: .*\n$/);
  });
});

describe('read --db retention', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailtap-retention-'));
  const config = join(dir, 'retention.yaml');
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a short max_age keeps only the newest records', async () => {
    // The story capture spans 83.6 s; a 30 s retention keeps the records of its last 30 s.
    const base = readFileSync(CONFIG, 'utf8');
    writeFileSync(config, `${base}\nstore:\n  retention:\n    max_age: 30s\n`);
    const db = join(dir, 'db');
    const result = runCli(['read', '-q', '--db', db, '--config', config, STORY]);
    assert.equal(result.status, 0, result.stderr);
    const newest = Math.max(...result.records.map((r) => Date.parse(r['@timestamp'])));
    const stored = await storedEvents(db);
    assert.ok(stored.length > 0);
    assert.ok(stored.length < result.records.length);
    for (const event of stored) {
      assert.ok(Date.parse(event['@timestamp']) >= newest - 30_000, event.event.id);
    }
    // The store keeps the latest version of an alert, so printed records count once per id.
    const latest = new Map(result.records.map((r) => [r.event.id, r]));
    const kept = [...latest.values()].filter((r) => Date.parse(r['@timestamp']) >= newest - 30_000);
    assert.equal(stored.length, kept.length);
  });
});

describe('read --db after SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailtap-kill-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every printed record survives and sequences continue', async () => {
    const db = join(dir, 'db');
    const child = spawn(process.execPath, [CLI, 'read', '--db', db, '--config', CONFIG, '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    // The capture arrives and stdin stays open, so the process is still reading when killed.
    child.stdin.write(readFileSync(STORY));
    const deadline = Date.now() + 20_000;
    while (stdout.split('\n').length < 100 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));

    const printed = stdout
      .split('\n')
      .filter((line) => line.endsWith('}'))
      .map((line) => JSON.parse(line) as EcsEvent);
    assert.ok(printed.length >= 99, `printed ${printed.length} records before the kill`);
    const stored = await storedEvents(db);
    const storedIds = new Set(stored.map((e) => e.event.id));
    for (const record of printed) assert.ok(storedIds.has(record.event.id), record.event.id);
    const highest = Math.max(...stored.map((e) => e.event.sequence as number));

    const again = runCli(['read', '-q', '--db', db, '--config', CONFIG, STORY]);
    assert.equal(again.status, 0, again.stderr);
    // Records stored before the kill keep their sequence; everything new continues after it.
    const storedSequence = new Map(stored.map((e) => [e.event.id, e.event.sequence]));
    let fresh = 0;
    for (const record of again.records) {
      const earlier = storedSequence.get(record.event.id);
      if (earlier !== undefined && record.event.kind === 'event') {
        assert.equal(record.event.sequence, earlier, record.event.id);
      } else {
        fresh++;
        assert.ok((record.event.sequence as number) > highest, `${record.event.id} after ${highest}`);
      }
    }
    assert.ok(fresh > 0, 'the rest of the capture was stored after the restart');
  });
});

describe('read --db whose reader goes away', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailtap-store-epipe-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs read --db into a pipe whose reader exits (true: at once; head -1: after a line). */
  function pipeTo(reader: string, db: string): { status: string; stderr: string } {
    const command = `"${process.execPath}" "${CLI}" read -q --db "${db}" --config "${CONFIG}" "${STORY}" | ${reader}; echo "mailtap-status=\${PIPESTATUS[0]}" >&2`;
    const result = spawnSync(command, { shell: '/bin/bash', encoding: 'utf8' });
    return { status: /mailtap-status=(\d+)/.exec(result.stderr)?.[1] ?? '', stderr: result.stderr.replace(/mailtap-status=\d+\n/, '') };
  }

  for (const reader of ['true', 'head -1 > /dev/null']) {
    test(`every record read is stored when the reader is "${reader}", status 0`, async () => {
      const db = join(dir, reader.split(' ')[0] as string);
      const { status, stderr } = pipeTo(reader, db);
      assert.equal(status, '0', stderr);
      assert.doesNotMatch(stderr, /EPIPE|Error|internal error/);
      const stored = await storedEvents(db);
      // The counts of the story capture, as in "stores every printed record" above.
      assert.equal(stored.filter((e) => e.event.action === 'smtp-transaction').length, 333);
      assert.equal(stored.filter((e) => e.event.kind === 'alert').length, 8);
      const full = runCli(['read', '-q', '--config', CONFIG, STORY]);
      assert.deepEqual(new Set(stored.map((e) => e.event.id)), new Set(full.records.map((r) => r.event.id)));
    });
  }
});
