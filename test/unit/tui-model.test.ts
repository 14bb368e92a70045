import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DashboardModel, HISTORY_MINUTES, MinuteCounter, deviceName, type DeviceState } from '../../src/tui/model.js';
import type { EcsEvent } from '../../src/events/ecs.js';

/** 2026-12-04T18:00:00Z in seconds. */
const T0 = Date.UTC(2026, 11, 4, 18, 0, 0) / 1000;

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function transaction(time: number, key: string, options: { ip?: string; rcpt?: string[]; outcome?: string; subject?: string; label?: string } = {}): EcsEvent {
  return {
    '@timestamp': iso(time),
    event: {
      kind: 'event',
      category: ['email'],
      type: ['info'],
      dataset: 'mailtap.smtp',
      action: 'smtp-transaction',
      id: `C${time}-1`,
      end: iso(time + 0.5),
      outcome: (options.outcome ?? 'success') as 'success',
    },
    source: { ip: options.ip ?? '10.0.0.1', port: 40000 },
    server: { ip: '10.0.0.25', port: 25 },
    email: { subject: options.subject ?? 'hello', attachments: [{ file: { name: 'a.pdf' } }] },
    smtp: { helo: 'host.example', mail_from: 'a@example.com', rcpt_to: options.rcpt ?? ['b@example.com'], last_reply: '250 ok' },
    mailtap: { device: { key, ...(options.label !== undefined ? { label: options.label } : {}), vendor: 'Brother' } },
  };
}

function alert(time: number, key: string, rule: string, severity: string, count: number): EcsEvent {
  return {
    '@timestamp': iso(time),
    event: { kind: 'alert', category: ['email'], type: ['info'], dataset: 'mailtap.alert', action: 'alert-updated', id: `${rule}-${key}`, start: iso(T0) },
    message: `device did ${rule}`,
    rule: { id: rule },
    source: { ip: '10.0.0.1' },
    mailtap: { alert: { severity, count }, device: { key, ips: ['10.0.0.1'], mac: '30-05-5C-00-00-01' } },
  };
}

describe('deviceName', () => {
  const base = { key: 'ip:192.0.2.7', ehloNames: [] as string[] } as unknown as DeviceState;

  it('prefers the label, then the vendor', () => {
    assert.equal(deviceName({ ...base, label: 'printer-2', vendor: 'Brother' }), 'printer-2');
    assert.equal(deviceName({ ...base, vendor: 'Brother' }), 'Brother');
  });

  it('falls back to names the device gave', () => {
    assert.equal(deviceName({ ...base, dhcpHostname: 'NPI1A2B3C', ehloNames: ['scan.local'] }), 'NPI1A2B3C');
    assert.equal(deviceName({ ...base, ehloNames: ['scan.local'] }), 'scan.local');
  });

  it('shows the IP address, not the key', () => {
    assert.equal(deviceName({ ...base, ip: '192.0.2.7' }), '192.0.2.7');
  });
});

describe('MinuteCounter', () => {
  it('sums the last hour', () => {
    const counter = new MinuteCounter();
    counter.add(T0);
    counter.add(T0 + 59);
    counter.add(T0 + 60, 3);
    assert.deepEqual(counter.series(T0 + 60, 3), [0, 2, 3]);
    assert.equal(counter.total(T0 + 60), 5);
    // 60 minutes after T0 the first minute has left the window; the second is still in it.
    assert.equal(counter.total(T0 + HISTORY_MINUTES * 60), 3);
    assert.equal(counter.total(T0 + (HISTORY_MINUTES + 1) * 60), 0);
  });

  it('clears skipped minutes', () => {
    const counter = new MinuteCounter();
    counter.add(T0, 7);
    counter.add(T0 + 61 * 60, 1);
    assert.equal(counter.total(T0 + 61 * 60), 1);
    assert.deepEqual(counter.series(T0 + 61 * 60, 2), [0, 1]);
  });

  it('ignores times older than the window', () => {
    const counter = new MinuteCounter();
    counter.add(T0 + 3600);
    counter.add(T0);
    assert.equal(counter.total(T0 + 3600), 1);
  });
});

describe('DashboardModel', () => {
  it('counts messages and recipients per device', () => {
    const model = new DashboardModel();
    model.ingest(transaction(T0, 'mac:aa', { rcpt: ['x@a', 'y@b'] }));
    model.ingest(transaction(T0 + 10, 'mac:aa', { outcome: 'failure' }));
    model.ingest(transaction(T0 + 20, 'mac:bb', { ip: '10.0.0.2' }));
    const device = model.devices.get('mac:aa')!;
    assert.equal(device.messages, 1);
    assert.equal(device.recipients, 3);
    assert.equal(model.messagesLastHour(device), 1);
    assert.equal(model.recipientsLastHour(device), 3);
    assert.equal(device.transactions.length, 2);
    assert.deepEqual(device.transactions[0].attachments, ['a.pdf']);
    assert.equal(device.transactions[0].server, '10.0.0.25:25');
    assert.deepEqual(device.ehloNames, ['host.example']);
    assert.equal(model.messagesPerMinute.total(model.now), 2);
    assert.equal(model.now, T0 + 20.5);
  });

  it('keys a device without fields by IP', () => {
    const model = new DashboardModel();
    const event = transaction(T0, 'unused', { ip: '192.0.2.9' });
    delete (event.mailtap as Record<string, unknown>).device;
    model.ingest(event);
    assert.deepEqual([...model.devices.keys()], ['ip:192.0.2.9']);
  });

  it('folds alert repeats into one row', () => {
    const model = new DashboardModel();
    model.ingest(alert(T0 + 5, 'mac:aa', 'relay_bypass', 'high', 1));
    model.ingest(alert(T0 + 9, 'mac:aa', 'relay_bypass', 'high', 300));
    model.ingest(alert(T0 + 7, 'mac:bb', 'cleartext_auth', 'medium', 1));
    const list = model.alertList();
    assert.deepEqual(
      list.map((a) => [a.rule, a.count, a.emissions]),
      [
        ['relay_bypass', 300, 2],
        ['cleartext_auth', 1, 1],
      ],
    );
    assert.equal(model.devices.get('mac:aa')!.severityRank, 3);
    assert.equal(model.devices.get('mac:aa')!.mac, '30-05-5C-00-00-01');
    assert.equal(model.devices.get('mac:bb')!.severityRank, 2);
  });

  it('sorts by status then messages', () => {
    const model = new DashboardModel();
    model.ingest(transaction(T0, 'mac:quiet'));
    model.ingest(transaction(T0, 'mac:busy'));
    model.ingest(transaction(T0 + 1, 'mac:busy'));
    model.ingest(alert(T0 + 2, 'mac:bad', 'new_sender', 'medium', 1));
    assert.deepEqual(model.deviceList().map((d) => d.key), ['mac:bad', 'mac:busy', 'mac:quiet']);
    assert.deepEqual(model.deviceList('', 'last-seen').map((d) => d.key), ['mac:bad', 'mac:busy', 'mac:quiet']);
    assert.deepEqual(model.deviceList('', 'messages').map((d) => d.key), ['mac:busy', 'mac:quiet', 'mac:bad']);
  });

  it('filters on label and IP', () => {
    const model = new DashboardModel();
    model.ingest(transaction(T0, 'mac:aa', { label: 'printer-floor-2', ip: '10.0.0.31' }));
    model.ingest(transaction(T0, 'mac:bb', { label: 'ws-bob', ip: '10.0.0.22' }));
    assert.deepEqual(model.deviceList('PRINTER').map((d) => d.key), ['mac:aa']);
    assert.deepEqual(model.deviceList('0.0.22').map((d) => d.key), ['mac:bb']);
    assert.deepEqual(model.deviceList('nothing'), []);
  });

  it('caps devices, alerts and transactions', () => {
    const model = new DashboardModel({ maxDevices: 3, maxAlerts: 2, maxTransactionsPerDevice: 4 });
    for (let i = 0; i < 5; i++) model.ingest(transaction(T0 + i, `mac:${i}`));
    assert.deepEqual([...model.devices.keys()], ['mac:2', 'mac:3', 'mac:4']);
    assert.equal(model.droppedDevices, 2);
    for (let i = 0; i < 10; i++) model.ingest(transaction(T0 + 10 + i, 'mac:4', { subject: `s${i}` }));
    const kept = model.devices.get('mac:4')!.transactions.map((t) => t.subject);
    assert.deepEqual(kept, ['s6', 's7', 's8', 's9']);
    for (const rule of ['a', 'b', 'c']) model.ingest(alert(T0 + 30, 'mac:4', rule, 'low', 1));
    assert.deepEqual([...model.alerts.keys()], ['b-mac:4', 'c-mac:4']);
    assert.equal(model.droppedAlerts, 1);
  });

  it('counts events without a time', () => {
    const model = new DashboardModel();
    model.ingest({ '@timestamp': 'not a time', event: { kind: 'event', category: [], type: [], dataset: 'mailtap.smtp', action: 'x', id: 'x' } });
    model.ingest({ event: null } as unknown as EcsEvent);
    assert.equal(model.invalidEvents, 2);
    assert.equal(model.devices.size, 0);
  });

  it('counts a deviceless alert once', () => {
    const model = new DashboardModel();
    const event = alert(T0, 'unused', 'relay_bypass', 'high', 1);
    delete (event.mailtap as Record<string, unknown>).device;
    delete (event as Record<string, unknown>).source;
    model.ingest(event);
    assert.equal(model.invalidEvents, 1);
    assert.equal(model.alerts.size, 0);
    assert.equal(model.devices.size, 0);
  });
});
