import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { Inventory, MAX_EHLO_NAMES, MAX_IPS_PER_DEVICE } from '../../src/devices/inventory.js';
import { vendorOf } from '../../src/devices/oui.js';
import type { SmtpTransaction } from '../../src/smtp/types.js';

const CONFIG = parseConfig(
  [
    'networks:',
    '  internal: [10.98.0.0/24]',
    'devices:',
    '  - label: printer-2nd-floor',
    '    mac: 30:05:5c:00:00:31',
    '    type: printer',
    '    owner: { name: Facilities, email: facilities@corp.example }',
    '  - label: crm',
    '    ip: [10.98.0.40]',
    '    type: server',
  ].join('\n'),
  'test.yaml',
);

function transaction(overrides: Partial<SmtpTransaction>): SmtpTransaction {
  return {
    flow: {} as SmtpTransaction['flow'],
    depth: 1,
    startTs: 100,
    endTs: 101,
    mailParams: {},
    recipients: [],
    bodyBytes: 0,
    bdatChunks: 0,
    bodyComplete: false,
    status: 'incomplete',
    tls: false,
    anomalies: [],
    ...overrides,
  };
}

describe('vendorOf', () => {
  // Organisation names as the IEEE registry lists them (Wireshark's manuf file agrees).
  it('names registered OUIs', () => {
    assert.equal(vendorOf('30:05:5c:00:00:31'), 'Brother industries, LTD.');
    assert.equal(vendorOf('00:40:8c:12:34:56'), 'Axis Communications AB');
  });

  it('marks locally administered MACs', () => {
    assert.equal(vendorOf('02:00:00:00:00:01'), 'locally administered');
    assert.equal(vendorOf('da:a1:19:00:00:01'), 'locally administered');
  });

  it('returns undefined for an invalid MAC', () => {
    assert.equal(vendorOf('zz:zz:zz:00:00:00'), undefined);
  });
});

describe('Inventory', () => {
  it('keys a direct client by MAC and applies the config', () => {
    const inventory = new Inventory(CONFIG);
    const device = inventory.resolveClient('30:05:5c:00:00:31', '10.98.0.31', 100);
    assert.equal(device.key, 'mac:30:05:5c:00:00:31');
    assert.equal(device.vendor, 'Brother industries, LTD.');
    assert.equal(device.label, 'printer-2nd-floor');
    assert.equal(device.type, 'printer');
    assert.equal(device.owner?.email, 'facilities@corp.example');
    assert.deepEqual(device.ips.map((entry) => entry.ip), ['10.98.0.31']);
  });

  it('matches a known device by IP when the MAC is unknown', () => {
    const inventory = new Inventory(CONFIG);
    const device = inventory.resolveClient('00:16:3e:00:00:40', '10.98.0.40', 100);
    assert.equal(device.label, 'crm');
    assert.equal(device.type, 'server');
  });

  it('keys external clients by IP', () => {
    const inventory = new Inventory(CONFIG);
    const device = inventory.resolveClient('74:ac:b9:00:00:01', '198.51.100.7', 100);
    assert.equal(device.key, 'ip:198.51.100.7');
    assert.equal(device.mac, undefined);
  });

  it('detects a router from many IPs behind one MAC', () => {
    const inventory = new Inventory(CONFIG, { routerMinIps: 4 });
    const router = '74:ac:b9:00:00:01';
    const first = inventory.resolveClient(router, '10.98.0.101', 100);
    assert.equal(first.key, `mac:${router}`);
    inventory.resolveClient(router, '10.98.0.102', 101);
    inventory.resolveClient(router, '10.98.0.103', 102);
    const fourth = inventory.resolveClient(router, '10.98.0.104', 103);
    assert.equal(fourth.key, 'ip:10.98.0.104');
    assert.equal(first.isRouter, true);
    const again = inventory.resolveClient(router, '10.98.0.102', 104);
    assert.equal(again.key, 'ip:10.98.0.102');
  });

  it('learns names from DHCP and keeps IP history', () => {
    const inventory = new Inventory(CONFIG);
    const mac = '00:40:8c:00:00:51';
    inventory.observeNeighbor({ kind: 'dhcp', ts: 10, mac, ip: '10.98.0.51', hostname: 'axis-lobby', vendorClass: 'AXIS' });
    inventory.observeNeighbor({ kind: 'arp', ts: 20, mac, ip: '10.98.0.52' });
    const device = inventory.resolveClient(mac, '10.98.0.52', 30);
    assert.equal(device.dhcpHostname, 'axis-lobby');
    assert.equal(device.dhcpVendorClass, 'AXIS');
    assert.equal(device.vendor, 'Axis Communications AB');
    assert.deepEqual(device.ips.map((entry) => entry.ip), ['10.98.0.51', '10.98.0.52']);
    assert.equal(device.firstSeen, 10);
    assert.equal(device.lastSeen, 30);
  });

  it('counts sessions and transactions', () => {
    const inventory = new Inventory(CONFIG);
    const device = inventory.resolveClient('30:05:5c:00:00:31', '10.98.0.31', 100);
    inventory.recordSession(device, 'BRN30055C310031');
    inventory.recordTransaction(
      device,
      transaction({
        mailFrom: 'scanner@corp.example',
        status: 'completed',
        bodyBytes: 1200,
        recipients: [
          { address: 'a@x.example', params: {}, accepted: true },
          { address: 'b@x.example', params: {}, accepted: false },
        ],
      }),
    );
    inventory.recordTransaction(device, transaction({ startTs: 200, mailFrom: 'scanner@corp.example', status: 'rejected' }));
    assert.deepEqual(device.counters, {
      sessions: 1,
      messages: 1,
      transactions: 2,
      recipients: 2,
      rejectedRecipients: 1,
      bytes: 1200,
    });
    assert.equal(device.firstMailSeen, 100);
    assert.deepEqual(device.ehloNames, ['BRN30055C310031']);
  });

  it('bounds IPs, EHLO names and devices', () => {
    const inventory = new Inventory(CONFIG, { maxDevices: 100, routerMinIps: 1000 });
    const device = inventory.resolveClient('00:16:3e:00:00:01', '10.98.0.1', 0);
    for (let i = 0; i < 50; i++) {
      inventory.observeNeighbor({ kind: 'arp', ts: i, mac: '00:16:3e:00:00:01', ip: `10.98.0.${100 + i}` });
      inventory.addEhloName(device, `name-${i}`);
    }
    assert.equal(device.ips.length, MAX_IPS_PER_DEVICE);
    assert.equal(device.ehloNames.length, MAX_EHLO_NAMES);
    assert.equal(device.ehloNames.at(-1), 'name-49');
    for (let i = 0; i < 1000; i++) inventory.resolveClient(undefined, `10.98.1.${i % 250}`, i);
    assert.ok(inventory.size <= 100);
    assert.ok(inventory.evicted > 0);
  });
});
