import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { RULES } from '../../src/detect/index.js';
import { DAY, DAY0, HOUR, makeDetector, makeDevice, makeMail, makeSession } from './detect-fixtures.js';

const owner = { name: 'Facilities', email: 'facilities@corp.example' };
const senders = {
  devices: [{ label: 'crm', ip: ['10.1.0.40'] }],
  senders: { allowed: ['10.1.5.0/24', '00:00:5e:00:53:01', 'label:crm'] },
};

describe('unauthorized_sender', () => {
  it('fires for a device outside the allowed list', () => {
    const { detector, emitted } = makeDetector(senders);
    const device = makeDevice({ label: 'printer-2nd-floor', owner });
    detector.observeTransaction(makeMail({ device, eventId: 'f1-1' }));
    assert.equal(emitted.length, 1);
    const { alert, change } = emitted[0]!;
    assert.equal(change, 'opened');
    assert.equal(alert.id, 'unauthorized_sender-mac:30:05:5c:00:00:31');
    assert.equal(alert.rule, 'unauthorized_sender');
    assert.equal(alert.severity, 'high');
    assert.deepEqual(alert.owner, owner);
    assert.equal(alert.message, 'printer-2nd-floor (10.1.2.31) sent mail but is not an allowed sender');
    assert.equal(alert.evidence.mailFrom, 'scanner@corp.example');
    assert.deepEqual(alert.eventIds, ['f1-1']);
    assert.equal(alert.count, 1);
  });

  it('allows a network, a MAC and a label', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ clientIp: '10.1.5.9', device: makeDevice({ mac: '02:00:00:00:00:09' }) }));
    detector.observeTransaction(makeMail({ device: makeDevice({ mac: '00:00:5e:00:53:01' }) }));
    detector.observeTransaction(makeMail({ clientIp: '10.1.0.40', device: makeDevice({ mac: '02:00:00:00:00:40', label: 'crm' }) }));
    assert.equal(emitted.length, 0);
  });

  it('keeps the message on one line', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ device: makeDevice({ label: 'printer\nsecond floor' }) }));
    assert.equal(emitted[0]!.alert.message, 'printer second floor (10.1.2.31) sent mail but is not an allowed sender');
  });

  it('ignores a router MAC on the list', () => {
    const { detector, emitted } = makeDetector(senders);
    const device = makeDevice({ mac: '00:00:5e:00:53:01', isRouter: true });
    detector.observeTransaction(makeMail({ device }));
    assert.equal(emitted.length, 1);
  });

  it('allows relays and sessions without MAIL FROM', () => {
    const { detector, emitted } = makeDetector({ ...senders, networks: { relays: ['10.1.2.31'] } });
    detector.observeTransaction(makeMail());
    const other = makeDevice({ mac: '02:00:00:00:00:77' });
    detector.observeTransaction(makeMail({ clientIp: '10.1.2.77', device: other, mailFrom: undefined }));
    assert.equal(emitted.length, 0);
  });

  it('does nothing without an allowed list', () => {
    const { detector, emitted } = makeDetector();
    detector.observeTransaction(makeMail());
    assert.equal(emitted.length, 0);
  });

  it('ignores clients outside the internal networks', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ clientIp: '198.51.100.7', clientInternal: false }));
    assert.equal(emitted.length, 0);
  });
});

describe('relay as client', () => {
  it('is judged by volume only', () => {
    const { detector, emitted } = makeDetector({ ...senders, networks: { relays: ['10.1.0.25'] } });
    const relay = makeDevice({ mac: '02:00:00:00:00:25' });
    // The learning period of new_sender ends a day after this first observation.
    detector.observeSession(makeSession({ ts: DAY0 }));
    const exe = { name: 'setup.exe', mimeType: 'application/octet-stream', size: 9 };
    const rejected = Array.from({ length: 12 }, (_, i) => ({ address: `u${i}@example.net`, code: 550 }));
    for (let i = 0; i < 60; i++) {
      detector.observeTransaction(
        makeMail({ ts: DAY0 + DAY + i, clientIp: '10.1.0.25', device: relay, serverInternal: false, attachments: [exe], recipients: rejected }),
      );
    }
    assert.deepEqual(
      emitted.map((e) => e.alert.rule),
      ['volume_spike'],
    );
  });
});

describe('relay_bypass', () => {
  const relays = { networks: { relays: ['10.1.0.25'] } };
  const direct = { serverIp: '203.0.113.5', serverInternal: false, serverIsRelay: false };

  it('fires for a session straight to an external server', () => {
    const { detector, emitted } = makeDetector(relays);
    detector.observeSession(makeSession({ ...direct, transactions: 0 }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.rule, 'relay_bypass');
    assert.equal(emitted[0]!.alert.evidence.serverIp, '203.0.113.5');
    assert.equal(
      emitted[0]!.alert.message,
      '30:05:5c:00:00:31 (10.1.2.31) sent SMTP straight to external server 203.0.113.5:25, bypassing the relays',
    );
  });

  it('fires for implicit TLS without EHLO', () => {
    const { detector, emitted } = makeDetector(relays);
    detector.observeSession(makeSession({ ...direct, serverPort: 465, helo: undefined, tls: true, transactions: 0 }));
    assert.equal(emitted.length, 1);
  });

  it('skips relays, internal servers and bare connections', () => {
    const { detector, emitted } = makeDetector(relays);
    detector.observeSession(makeSession());
    detector.observeSession(makeSession({ ...direct, serverInternal: true, serverIp: '10.9.9.9' }));
    detector.observeSession(makeSession({ ...direct, clientIp: '10.1.0.25' }));
    detector.observeSession(makeSession({ ...direct, helo: undefined, transactions: 0 }));
    assert.equal(emitted.length, 0);
  });

  it('does nothing without relays', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession(direct));
    assert.equal(emitted.length, 0);
  });
});

describe('new_sender', () => {
  it('stays quiet during the learning period', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ ts: DAY0 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 23 * HOUR }));
    assert.equal(emitted.length, 0);
  });

  it('fires for a first MAIL FROM after learning', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ ts: DAY0 }));
    const ts = DAY0 + DAY + 1;
    const fresh = makeDevice({ mac: '02:00:00:00:00:42', label: 'cam-lobby' });
    detector.observeTransaction(makeMail({ ts, clientIp: '10.1.2.42', device: fresh }));
    const same = makeDevice({ mac: '02:00:00:00:00:43', firstMailSeen: ts });
    detector.observeTransaction(makeMail({ ts, clientIp: '10.1.2.43', device: same }));
    assert.deepEqual(
      emitted.map((e) => e.alert.message),
      ['cam-lobby (10.1.2.42) sent mail for the first time', '02:00:00:00:00:43 (10.1.2.43) sent mail for the first time'],
    );
    assert.equal(emitted[0]!.alert.severity, 'medium');
  });

  it('skips a device that sent mail before', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ ts: DAY0 }));
    const known = makeDevice({ firstMailSeen: DAY0 + 5 });
    detector.observeTransaction(makeMail({ ts: DAY0 + 2 * DAY, device: known }));
    assert.equal(emitted.length, 0);
  });
});

describe('cleartext_auth', () => {
  it('fires for PLAIN and LOGIN without TLS', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ authMechanism: 'PLAIN', authUser: 'scan', authSuccess: true }));
    const other = makeDevice({ mac: '02:00:00:00:00:50' });
    detector.observeSession(makeSession({ clientIp: '10.1.2.50', device: other, authMechanism: 'login', authUser: 'cam' }));
    assert.equal(emitted.length, 2);
    assert.deepEqual(emitted[0]!.alert.evidence, {
      mechanism: 'PLAIN',
      user: 'scan',
      success: true,
      serverIp: '10.1.0.25',
      serverPort: 25,
    });
    assert.equal(emitted[1]!.alert.evidence.mechanism, 'LOGIN');
    assert.equal(emitted[1]!.alert.evidence.user, 'cam');
  });

  it('skips TLS sessions and CRAM-MD5', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ authMechanism: 'PLAIN', authUser: 'scan', tls: true }));
    detector.observeSession(makeSession({ authMechanism: 'CRAM-MD5', authUser: 'scan' }));
    detector.observeSession(makeSession({ authMechanism: 'SCRAM-SHA-256', authUser: 'scan' }));
    assert.equal(emitted.length, 0);
  });

  it('fires for an external client too', () => {
    const { detector, emitted } = makeDetector();
    const device = makeDevice({ key: 'ip:198.51.100.7', mac: undefined });
    detector.observeSession(makeSession({ device, clientIp: '198.51.100.7', clientInternal: false, authMechanism: 'PLAIN' }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.message, '198.51.100.7 sent AUTH PLAIN credentials without TLS to 10.1.0.25:25');
  });
});

describe('rejected_recipients', () => {
  const rejected = (count: number, code: number) =>
    Array.from({ length: count }, (_, i) => ({ address: `user${i}@example.net`, code }));

  it('fires on the tenth 5xx within the window', () => {
    const { detector, emitted } = makeDetector();
    detector.observeTransaction(makeMail({ recipients: rejected(9, 550) }));
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 599, recipients: rejected(1, 550) }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.rule, 'rejected_recipients');
    assert.equal(emitted[0]!.alert.evidence.burst, 10);
    assert.equal(emitted[0]!.alert.message, '30:05:5c:00:00:31 (10.1.2.31) had 10 or more recipients rejected with 5xx within 10m');
  });

  it('skips 4xx and nine 5xx', () => {
    const { detector, emitted } = makeDetector();
    detector.observeTransaction(makeMail({ recipients: [...rejected(9, 550), ...rejected(5, 451)] }));
    assert.equal(emitted.length, 0);
  });

  it('skips rejections spread wider than the window', () => {
    const { detector, emitted } = makeDetector();
    for (let i = 0; i < 30; i++) detector.observeTransaction(makeMail({ ts: DAY0 + i * 67, recipients: rejected(1, 550) }));
    assert.equal(emitted.length, 0);
  });
});

describe('risky_attachment', () => {
  const pdf = { name: 'scan0001.pdf', mimeType: 'application/pdf', size: 52011 };

  it('fires for a double extension', () => {
    const { detector, emitted } = makeDetector();
    detector.observeTransaction(makeMail({ attachments: [pdf, { name: 'invoice.pdf.exe', mimeType: 'application/octet-stream', size: 9 }] }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.message, '30:05:5c:00:00:31 (10.1.2.31) sent an executable attachment behind a double extension');
    const listed = emitted[0]!.alert.evidence.attachments as { name: string; reason: string }[];
    assert.deepEqual(
      listed.map((a) => [a.name, a.reason]),
      [['invoice.pdf.exe', 'double_extension']],
    );
  });

  it('skips a plain PDF', () => {
    const { detector, emitted } = makeDetector();
    detector.observeTransaction(makeMail({ attachments: [pdf] }));
    assert.equal(emitted.length, 0);
  });

  it('fires when parts went unchecked', () => {
    const { detector, emitted } = makeDetector();
    // The parser gave up on the structure: whatever follows the PDF was never looked at.
    detector.observeTransaction(makeMail({ attachments: [pdf], partsUnchecked: true }));
    assert.equal(emitted.length, 1);
    assert.match(emitted[0]!.alert.message, /sent a message nested too deep or with too many MIME parts to check its attachments$/);
    assert.equal(emitted[0]!.alert.evidence.partsUnchecked, true);
  });

  it('fires for a blocked SHA-256', () => {
    const digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    const { detector, emitted } = makeDetector({ detect: { blocked_sha256: [digest.toUpperCase()] } });
    detector.observeTransaction(makeMail({ attachments: [{ ...pdf, sha256: digest }] }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.message, '30:05:5c:00:00:31 (10.1.2.31) sent an attachment on the SHA-256 block list');
  });
});

describe('identity_change', () => {
  const macA = makeDevice({ mac: '02:00:00:00:00:0a' });
  const macB = makeDevice({ mac: '02:00:00:00:00:0b' });

  it('fires when an IP moves to another MAC', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ device: macA }));
    detector.observeSession(makeSession({ ts: DAY0 + HOUR, device: macB }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.id, 'identity_change-mac:02:00:00:00:00:0b');
    assert.deepEqual(emitted[0]!.alert.evidence, {
      kind: 'mac_changed',
      ip: '10.1.2.31',
      previous: '02:00:00:00:00:0a',
      current: '02:00:00:00:00:0b',
      previousSeen: DAY0,
    });
  });

  it('skips a MAC change after the window', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ device: macA }));
    detector.observeSession(makeSession({ ts: DAY0 + DAY + 1, device: macB }));
    assert.equal(emitted.length, 0);
  });

  it('fires when an IP changes its EHLO name', () => {
    const { detector, emitted } = makeDetector();
    detector.observeSession(makeSession({ helo: 'printer31.corp.example' }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 60, helo: 'PRINTER31.corp.example' }));
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 120, helo: 'win-8k2j1' }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.kind, 'ehlo_changed');
    assert.equal(emitted[0]!.alert.evidence.previous, 'printer31.corp.example');
    assert.equal(emitted[0]!.alert.evidence.current, 'win-8k2j1');
    // The message names both EHLO names, after the device name.
    assert.match(emitted[0]!.alert.message, /with EHLO name "win-8k2j1", which used "printer31\.corp\.example" before$/);
  });

  it('fires on a fourth EHLO name of one MAC', () => {
    const { detector, emitted } = makeDetector();
    // Each name comes from another IP address, so only the per-MAC count can match.
    for (let i = 1; i <= 3; i++) detector.observeSession(makeSession({ clientIp: `10.1.3.${i}`, helo: `host${i}` }));
    assert.equal(emitted.length, 0);
    detector.observeSession(makeSession({ clientIp: '10.1.3.4', helo: 'host4' }));
    assert.equal(emitted.length, 1);
    assert.deepEqual(emitted[0]!.alert.evidence, {
      kind: 'too_many_ehlo_names',
      mac: '30:05:5c:00:00:31',
      names: ['host1', 'host2', 'host3', 'host4'],
      limit: 3,
    });
  });

  it('skips the names behind a router', () => {
    const { detector, emitted } = makeDetector();
    const router = makeDevice({ isRouter: true });
    for (let i = 1; i <= 6; i++) detector.observeSession(makeSession({ clientIp: `10.1.3.${i}`, device: router, helo: `host${i}` }));
    assert.equal(emitted.length, 0);
  });
});

describe('rule settings', () => {
  it('disabled rule never fires', () => {
    const { detector, emitted } = makeDetector({ ...senders, rules: { unauthorized_sender: { enabled: false } } });
    for (let i = 0; i < 10; i++) detector.observeTransaction(makeMail({ ts: DAY0 + i }));
    detector.flush(DAY0 + 10);
    assert.equal(emitted.length, 0);
  });

  it('severity override is used', () => {
    const { detector, emitted } = makeDetector({ rules: { cleartext_auth: { severity: 'critical' } } });
    detector.observeSession(makeSession({ authMechanism: 'PLAIN' }));
    assert.equal(emitted[0]!.alert.severity, 'critical');
    assert.equal(RULES.cleartext_auth.defaultSeverity, 'medium');
  });

  it('rejects a bad blocked digest', () => {
    assert.throws(() => parseConfig('detect:\n  blocked_sha256: [abc]\n', 'site.yaml'), {
      message: 'site.yaml:2:20: detect.blocked_sha256[0]: expected a SHA-256 digest of 64 hex digits, got "abc"',
    });
  });

  it('every rule has a description', () => {
    for (const info of Object.values(RULES)) assert.ok(info.description.length > 40);
  });
});

describe('detector input', () => {
  it('counts observations with a bad timestamp', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ ts: Number.NaN }));
    detector.observeSession(makeSession({ ts: -1, authMechanism: 'PLAIN' }));
    assert.equal(emitted.length, 0);
    assert.equal(detector.stats().invalidObservations, 2);
  });

  it('bounds state over 100000 devices', () => {
    const { detector } = makeDetector({ ...senders, detect: { max_devices: 1000, max_alerts: 500 } });
    for (let i = 0; i < 100_000; i++) {
      const mac = `02:00:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      const ip = `10.${128 + ((i >> 16) & 0xff)}.${(i >> 8) & 0xff}.${i & 0xff}`;
      detector.observeTransaction(
        makeMail({
          ts: DAY0 + i,
          clientIp: ip,
          device: makeDevice({ mac }),
          recipients: [{ address: `x${i}@d${i}.example`, code: 550 }],
        }),
      );
    }
    const stats = detector.stats();
    assert.equal(stats.devices, 1000);
    assert.equal(stats.addresses, 1000);
    assert.equal(stats.macs, 1000);
    assert.equal(stats.alerts, 500);
    assert.equal(stats.evictedDevices, 99_000);
    // 100000 unauthorized_sender alerts, and new_sender for the 13600 devices that start
    // sending a day or more after the first observation (i >= 86400), minus the 500 kept.
    assert.equal(stats.evictedAlerts, 113_100);
    assert.ok(stats.queuedChecks <= 2 * 500 + 64, `${stats.queuedChecks} queued checks`);
  });
});
