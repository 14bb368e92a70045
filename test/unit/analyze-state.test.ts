/**
 * Saving and restoring the analyzer: a detector restored from a saved state (through JSON, as
 * the store keeps it) decides exactly as one that never stopped, and a bad state is rejected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Analyzer, ANALYZER_STATE_VERSION } from '../../src/analyze.js';
import type { Device } from '../../src/devices/types.js';
import { Inventory } from '../../src/devices/inventory.js';
import { Detector } from '../../src/detect/index.js';
import type { MailObservation, SessionObservation } from '../../src/detect/types.js';
import { DAY0, HOUR, makeConfig, makeDevice, makeMail, makeSession, type Emission } from './detect-fixtures.js';

const RAW_CONFIG = {
  networks: { relays: ['10.1.0.25/32'] },
  senders: { allowed: ['10.1.2.0/24'] },
  thresholds: {
    volume_floor_messages: 6,
    volume_floor_recipients: 1000,
    volume_floor_domains: 1000,
    volume_factor: 2,
    rejected_recipients: 3,
    new_sender_learning: '1d',
  },
};

type Observation = { kind: 'mail'; o: MailObservation } | { kind: 'session'; o: SessionObservation };

/** Deterministic PRNG (mulberry32), so that every run of the generator yields the same input. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generates ten days of mail of six devices. It has a few messages most hours, a flood on day
 * 8, rejected recipients, EHLO changes, macro documents, AUTH in clear, direct delivery past
 * the relay, and devices that start sending on day 3 and day 9 (after the learning period).
 * `devices` receives the device objects, as the inventory stores them.
 */
function* traffic(devices: Map<string, Device>): Generator<Observation> {
  const next = random(7);
  for (let i = 0; i < 6; i++) {
    const mac = `02:00:00:00:00:0${i}`;
    const ip = i < 3 ? `10.1.2.${10 + i}` : `10.1.9.${10 + i}`;
    devices.set(`mac:${mac}`, makeDevice({ mac, ips: [{ ip, firstSeen: DAY0, lastSeen: DAY0 }] }));
  }
  const list = [...devices.values()];
  for (let hour = 0; hour < 10 * 24; hour++) {
    for (const [index, device] of list.entries()) {
      if (index === 4 && hour < 3 * 24) continue;
      if (index === 5 && hour < 9 * 24) continue;
      const flood = index === 1 && hour === 8 * 24 + 10;
      const count = flood ? 30 : Math.floor(next() * 4);
      const ip = device.ips[0]!.ip;
      for (let m = 0; m < count; m++) {
        const ts = DAY0 + hour * HOUR + Math.floor((m * HOUR) / (count + 1)) + index;
        device.firstMailSeen ??= ts;
        const rejected = next() < 0.15;
        const helo = next() < 0.02 ? `renamed-${hour}.corp.example` : `host${index}.corp.example`;
        const direct = next() < 0.03;
        yield {
          kind: 'mail',
          o: makeMail({
            ts,
            eventId: `f${hour}-${index}-${m}-1`,
            device,
            clientIp: ip,
            helo,
            serverIp: direct ? '198.51.100.7' : '10.1.0.25',
            serverInternal: !direct,
            serverIsRelay: !direct,
            recipients: [
              { address: `a${m}@d${m % 5}.example`, code: rejected ? 550 : 250 },
              { address: `b${m}@corp.example`, code: 250 },
            ],
            attachments: next() < 0.02 ? [{ name: 'invoice.docm', mimeType: 'application/octet-stream', size: 100 }] : [],
          }),
        };
        yield {
          kind: 'session',
          o: makeSession({
            ts,
            eventId: `f${hour}-${index}-${m}-0`,
            device,
            clientIp: ip,
            helo,
            serverIp: direct ? '198.51.100.7' : '10.1.0.25',
            serverInternal: !direct,
            serverIsRelay: !direct,
            ...(next() < 0.02 ? { authMechanism: 'PLAIN', authUser: 'scan' } : {}),
          }),
        };
      }
    }
  }
}

function observe(detector: Detector, item: Observation): void {
  if (item.kind === 'mail') detector.observeTransaction(item.o);
  else detector.observeSession(item.o);
}

function newDetector(): { detector: Detector; emitted: Emission[] } {
  const emitted: Emission[] = [];
  return { detector: new Detector(makeConfig(RAW_CONFIG), (alert, change) => emitted.push({ alert, change })), emitted };
}

/** Runs the whole traffic without a stop, and with a stop after `split` observations. */
function runWithStop(split: number): { straight: string[]; restored: string[]; fresh: string[] } {
  const straight = newDetector();
  const all = [...traffic(new Map())];
  all.forEach((item, i) => {
    if (i === split) straight.emitted.length = 0;
    observe(straight.detector, item);
  });
  straight.detector.flush(Infinity);

  const devices = new Map<string, Device>();
  const input = traffic(devices);
  const first = newDetector();
  for (let i = 0; i < split; i++) observe(first.detector, input.next().value as Observation);
  const saved: unknown = JSON.parse(JSON.stringify(first.detector.exportState()));
  const second = newDetector();
  second.detector.importState(saved as ReturnType<Detector['exportState']>, (key) => devices.get(key));
  const fresh = newDetector();
  for (const item of input) {
    observe(second.detector, item);
    observe(fresh.detector, item);
  }
  second.detector.flush(Infinity);
  fresh.detector.flush(Infinity);
  const text = (list: Emission[]) => list.map((e) => JSON.stringify(e));
  return { straight: text(straight.emitted), restored: text(second.emitted), fresh: text(fresh.emitted) };
}

describe('detector state round trip', () => {
  const total = [...traffic(new Map())].length;

  for (const fraction of [0.35, 0.82]) {
    it(`restore at ${fraction * 100} % matches no stop`, () => {
      const { straight, restored, fresh } = runWithStop(Math.floor(total * fraction));
      assert.ok(straight.length > 5, `${straight.length} emissions after the stop`);
      assert.deepEqual(restored, straight);
      // A detector that starts over instead decides differently, so the state matters.
      assert.notDeepEqual(fresh, straight);
    });
  }

  it('covers rules that depend on learning', () => {
    const { straight } = runWithStop(Math.floor(total * 0.5));
    const rules = new Set(straight.map((line) => (JSON.parse(line) as Emission).alert.rule));
    for (const rule of ['volume_spike', 'new_sender', 'rejected_recipients', 'identity_change']) {
      assert.ok(rules.has(rule as never), `${rule} among ${[...rules].join(', ')}`);
    }
    const changes = new Set(straight.map((line) => (JSON.parse(line) as Emission).change));
    assert.ok(changes.has('updated'), 'an alert opened before the stop is updated after it');
  });
});

describe('Analyzer.snapshot and restore', () => {
  const config = makeConfig(RAW_CONFIG);

  it('inventory restores devices, counters, routers', () => {
    const inventory = new Inventory(config, { routerMinIps: 3 });
    inventory.resolveClient('02:00:00:00:00:01', '10.1.2.10', DAY0);
    const printer = inventory.resolveClient('02:00:00:00:00:02', '10.1.2.11', DAY0 + 5);
    printer.counters.transactions = 7;
    printer.firstMailSeen = DAY0 + 5;
    inventory.resolveClient('02:00:00:00:00:03', '10.1.2.12', DAY0 + 9);
    inventory.resolveClient('02:00:00:00:00:03', '10.1.2.13', DAY0 + 9);
    const state = JSON.parse(JSON.stringify(inventory.exportState()));
    const copy = new Inventory(config, { routerMinIps: 3 });
    copy.importState(state);
    assert.deepEqual(copy.exportState(), inventory.exportState());
    assert.equal(copy.get('mac:02:00:00:00:00:02')?.counters.transactions, 7);
    // The third address behind 02:00:00:00:00:03 makes it a router in both.
    copy.resolveClient('02:00:00:00:00:03', '10.1.2.14', DAY0 + 20);
    inventory.resolveClient('02:00:00:00:00:03', '10.1.2.14', DAY0 + 20);
    assert.equal(copy.get('mac:02:00:00:00:00:03')?.isRouter, true);
    assert.deepEqual(copy.exportState(), inventory.exportState());
  });

  it('labels and owners from current config', () => {
    const inventory = new Inventory(config);
    inventory.resolveClient('02:00:00:00:00:01', '10.1.2.10', DAY0);
    const labelled = makeConfig({ ...RAW_CONFIG, devices: [{ label: 'scanner-3', mac: '02:00:00:00:00:01', owner: { name: 'IT' } }] });
    const copy = new Inventory(labelled);
    copy.importState(JSON.parse(JSON.stringify(inventory.exportState())));
    assert.equal(copy.get('mac:02:00:00:00:00:01')?.label, 'scanner-3');
    assert.deepEqual(copy.get('mac:02:00:00:00:00:01')?.owner, { name: 'IT' });
  });

  it('snapshot round-trips through JSON', () => {
    const analyzer = new Analyzer(config);
    const device = analyzer.inventory.resolveClient('02:00:00:00:00:01', '10.1.2.10', DAY0);
    device.firstMailSeen = DAY0;
    const snapshot = analyzer.snapshot();
    assert.equal(snapshot.version, ANALYZER_STATE_VERSION);
    const copy = new Analyzer(config);
    assert.equal(copy.restore(JSON.parse(JSON.stringify(snapshot))), undefined);
    assert.deepEqual(copy.snapshot(), snapshot);
    assert.equal(copy.inventory.get('mac:02:00:00:00:00:01')?.firstMailSeen, DAY0);
  });

  it('rejects wrong version or damaged state', () => {
    const analyzer = new Analyzer(config);
    analyzer.inventory.resolveClient('02:00:00:00:00:01', '10.1.2.10', DAY0);
    const good = JSON.parse(JSON.stringify(analyzer.snapshot()));

    const fresh = new Analyzer(config);
    assert.match(fresh.restore({ ...good, version: 0 }) ?? '', /version 0, this mailtap reads version 1/);
    assert.match(fresh.restore(null) ?? '', /version none/);
    assert.match(fresh.restore('garbage') ?? '', /version none/);
    const damaged = structuredClone(good);
    damaged.inventory.devices[0].counters = 'many';
    assert.match(fresh.restore(damaged) ?? '', /damaged: inventory\.devices\.0\.counters/);
    assert.equal(fresh.inventory.size, 0, 'a rejected state leaves the analyzer empty');

    const badSlots = structuredClone(good);
    const volume = {
      windowLength: 3600,
      window: 1,
      counts: { messages: 1, recipients: 1, domains: 1 },
      alerted: false,
      slots: 'AAAA',
      slotDays: [],
      domains: [],
    };
    badSlots.detector.devices = [['mac:02:00:00:00:00:01', { volume }]];
    assert.equal(fresh.restore(badSlots), undefined, 'volume slots of the wrong size are dropped, the rest is kept');
    assert.equal(fresh.inventory.size, 1);
    assert.equal(new Analyzer(config).inventory.size, 0);
  });
});
