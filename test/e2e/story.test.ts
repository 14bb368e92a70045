/**
 * The story capture (captures/story.pcap, described in captures/README.md from swaks, Postfix
 * and dnsmasq logs): normal office mail through the relay, a printer that sends 300 messages
 * straight to the internet, a camera with cleartext AUTH LOGIN and an unknown laptop. With
 * captures/story.yaml, mailtap must raise exactly the alerts the README lists.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { REPO, runCli, type CliResult, type Fields } from './cli.js';

const STORY = join(REPO, 'captures', 'story.pcap');
const CONFIG = join(REPO, 'captures', 'story.yaml');

const PRINTER = 'mac:30:05:5c:98:00:31';
const CAMERA = 'mac:00:40:8c:98:00:41';
const LAPTOP = 'mac:fc:77:74:98:00:77';

/** The README's table "Expected alerts with story.yaml": rule and device. */
const EXPECTED = [
  ['unauthorized_sender', LAPTOP],
  ['relay_bypass', PRINTER],
  ['relay_bypass', LAPTOP],
  ['volume_spike', PRINTER],
  ['new_sender', LAPTOP],
  ['cleartext_auth', CAMERA],
  ['rejected_recipients', PRINTER],
  ['risky_attachment', LAPTOP],
].map(([rule, device]) => `${rule}-${device}`);

describe('story capture alerts', () => {
  let result: CliResult;
  /** The last state of each alert, by alert id. */
  const alerts = new Map<string, Fields>();

  before(() => {
    result = runCli(['read', '--config', CONFIG, STORY]);
    for (const record of result.records) {
      if (record.event.kind === 'alert') alerts.set(record.event.id, record);
    }
  });

  test('exit status and record counts', () => {
    assert.equal(result.status, 0, result.stderr);
    // 333 transactions: tshark counts 333 MAIL commands outside TLS in story.pcap.
    assert.equal(result.records.filter((r) => r.event.action === 'smtp-transaction').length, 333);
  });

  test('direction follows networks.internal', () => {
    // story.yaml: 10.98.0.0/24 is internal, so mail to the relay (10.98.0.10) stays inside and
    // mail to the internet MX (10.98.1.25) leaves.
    const transactions = result.records.filter((r) => r.event.action === 'smtp-transaction');
    const outbound = transactions.filter((r) => r.destination.ip === '10.98.1.25');
    const inside = transactions.filter((r) => r.destination.ip.startsWith('10.98.0.'));
    assert.equal(outbound.length + inside.length, transactions.length);
    assert.ok(outbound.length >= 301, `${outbound.length} transactions to the internet MX`);
    for (const record of outbound) {
      assert.equal(record.network.direction, 'outbound');
      assert.equal(record.email.direction, 'outbound');
    }
    for (const record of inside) {
      assert.equal(record.network.direction, 'internal');
      assert.equal(record.email.direction, 'unknown');
    }
  });

  test('exactly the expected alerts', () => {
    assert.deepEqual([...alerts.keys()].sort(), [...EXPECTED].sort());
  });

  test('normal devices raise none', () => {
    const devices = new Set([...alerts.values()].map((a) => a.mailtap.device.key));
    for (const normal of ['mac:f8:bc:12:98:00:21', 'mac:14:cb:19:98:00:22', 'mac:80:96:21:98:00:23', 'mac:3c:ec:ef:98:00:10']) {
      assert.equal(devices.has(normal), false, normal);
    }
  });

  test('printer alerts name its owner', () => {
    for (const rule of ['relay_bypass', 'volume_spike', 'rejected_recipients']) {
      const alert = alerts.get(`${rule}-${PRINTER}`);
      assert.deepEqual(alert?.mailtap.alert.owner, {
        name: 'Facilities',
        email: 'facilities@corp.example',
        phone: '+49 30 1234567',
      });
      assert.equal(alert?.mailtap.device.label, 'printer-floor-2');
    }
  });

  test('volume spike evidence matches the capture', () => {
    // README: 303 messages (3 scans + 300), 315 RCPT, 62 distinct recipient domains.
    const evidence = alerts.get(`volume_spike-${PRINTER}`)?.mailtap.alert.evidence;
    assert.equal(evidence.messages, 303);
    assert.equal(evidence.recipients, 315);
    assert.equal(evidence.domains, 62);
    assert.deepEqual(evidence.threshold, { messages: 50, recipients: 100, domains: 20 });
  });

  test('relay bypass counts the 300 sessions', () => {
    assert.equal(alerts.get(`relay_bypass-${PRINTER}`)?.mailtap.alert.count, 300);
    assert.equal(alerts.get(`relay_bypass-${PRINTER}`)?.mailtap.alert.evidence.serverIp, '10.98.1.25');
  });

  test('cleartext auth names the user, never the password', () => {
    const evidence = alerts.get(`cleartext_auth-${CAMERA}`)?.mailtap.alert.evidence;
    assert.equal(evidence.user, 'camera@corp.example');
    assert.equal(evidence.mechanism, 'LOGIN');
    for (const secret of ['cam-lab-Secret-7731', 'Y2FtLWxhYi1TZWNyZXQtNzczMQ==']) {
      assert.equal(result.stdout.includes(secret), false);
      assert.equal(result.stderr.includes(secret), false);
    }
  });

  test('risky attachment names the macro document', () => {
    const evidence = alerts.get(`risky_attachment-${LAPTOP}`)?.mailtap.alert.evidence;
    assert.equal(evidence.attachments[0].name, 'Invoice_2024-0412.docm');
  });

  test('alerts are ECS alert events', () => {
    const alert = alerts.get(`cleartext_auth-${CAMERA}`) as Fields;
    assert.equal(alert.event.dataset, 'mailtap.alert');
    assert.equal(alert.rule.name, 'cleartext_auth');
    assert.equal(typeof alert.rule.description, 'string');
    assert.equal(alert.event.severity, 47);
    assert.equal(alert.source.ip, '10.98.0.41');
  });
});

describe('devices command', () => {
  test('lists the story devices with vendor, names and counts', () => {
    const result = runCli(['devices', '--json', '--config', CONFIG, STORY]);
    assert.equal(result.status, 0, result.stderr);
    const devices = new Map(result.records.map((r) => [r.mailtap.device.key, r.mailtap.device]));
    const printer = devices.get(PRINTER);
    // Vendors from the IEEE registry, names from DHCP (dnsmasq log) and EHLO (swaks transcripts).
    assert.equal(printer.vendor, 'Brother industries, LTD.');
    assert.equal(printer.dhcp_hostname, 'BRN30055C980031');
    assert.equal(printer.dhcp_vendor_class, 'Brother MFC-L2750DW');
    assert.deepEqual(printer.ehlo_names, ['BRN30055C980031']);
    assert.equal(printer.label, 'printer-floor-2');
    assert.deepEqual(printer.counters, {
      sessions: 303,
      transactions: 303,
      messages: 303,
      recipients: 315,
      rejected_recipients: 12,
      bytes: printer.counters.bytes,
    });
    const camera = devices.get(CAMERA);
    assert.equal(camera.vendor, 'Axis Communications AB');
    assert.equal(camera.dhcp_vendor_class, 'AXIS,Network Camera,M3106-L Mk II');
    const laptop = devices.get(LAPTOP);
    assert.equal(laptop.vendor, 'Intel Corporate');
    assert.deepEqual(laptop.ips, ['10.98.0.162']);
    assert.equal(laptop.label, undefined);
    assert.equal(devices.get('mac:14:cb:19:98:00:22').counters.rejected_recipients, 1);
  });

  test('table lists one row per device', () => {
    const result = runCli(['devices', '--config', CONFIG, STORY]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.match(lines[0] as string, /^DEVICE\s+VENDOR/);
    assert.equal(lines.length, 1 + 7);
    assert.ok(lines.some((line) => line.startsWith('printer-floor-2') && line.includes('Facilities')));
  });
});

describe('broken config', () => {
  test('exit 2 with file, line and key', () => {
    const result = runCli(['read', '--config', join(REPO, 'test', 'e2e', 'fixtures', 'bad-config.yaml'), STORY]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /bad-config\.yaml:3:7: networks\.internal\[0\]: expected an IP address or a CIDR network/);
    assert.match(result.stderr, /bad-config\.yaml:5:3: thresholds\.volume_windw: unknown key/);
    assert.match(result.stderr, /bad-config\.yaml:7:12: smtp\.ports\[0\]: expected a port number/);
    assert.equal(result.stdout, '');
  });
});
