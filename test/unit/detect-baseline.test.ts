import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Detector } from '../../src/detect/index.js';
import { DeviceVolume, MAX_WINDOW_DOMAINS, type VolumeParams } from '../../src/detect/baseline.js';
import { DAY, DAY0, HOUR, makeDetector, makeDevice, makeMail } from './detect-fixtures.js';

// A device that has sent mail since DAY0, so that new_sender stays out of the way.
const printer = makeDevice({ label: 'printer-2nd-floor', firstMailSeen: DAY0 });
const DOMAINS = ['corp.example', 'partner.example', 'supplier.example'];

/** Sends count messages spread evenly over the hour that starts at hourStart, one recipient each. */
function sendHour(detector: Detector, hourStart: number, count: number): void {
  for (let k = 0; k < count; k++) {
    const ts = hourStart + Math.floor((k * HOUR) / count);
    const address = `user${k}@${DOMAINS[k % DOMAINS.length]}`;
    detector.observeTransaction(makeMail({ ts, device: printer, recipients: [{ address, code: 250 }] }));
  }
}

/** The normal day: 5 messages an hour, 40 between 09:00 and 10:00 UTC. */
function sendNormalDay(detector: Detector, day: number, fromHour = 0, toHour = 24): void {
  for (let hour = fromHour; hour < toHour; hour++) sendHour(detector, DAY0 + day * DAY + hour * HOUR, hour === 9 ? 40 : 5);
}

function feedNormalDays(detector: Detector, days: number): void {
  for (let day = 0; day < days; day++) sendNormalDay(detector, day);
}

describe('volume baseline', () => {
  it('14 normal days raise nothing', () => {
    const { detector, emitted } = makeDetector();
    feedNormalDays(detector, 14);
    detector.flush(DAY0 + 14 * DAY);
    assert.deepEqual(emitted, []);
  });

  it('spike at 03:00 alerts within its window', () => {
    const { detector, emitted } = makeDetector();
    feedNormalDays(detector, 14);
    const spikeStart = DAY0 + 14 * DAY + 3 * HOUR;
    sendNormalDay(detector, 14, 0, 3);
    sendHour(detector, spikeStart, 400);

    // The opening, then an update every 300 s of the hour.
    assert.equal(emitted.filter((e) => e.change === 'opened').length, 1);
    const { alert, change } = emitted[0]!;
    assert.equal(change, 'opened');
    assert.equal(alert.rule, 'volume_spike');
    // Baseline: 5 messages at 02:00-05:00 on each of the 7 days before. Threshold:
    // max(4 x 5, floor 50) = 50, crossed by the 51st message, sent 50 x 9 s into the hour.
    assert.equal(alert.firstSeen, spikeStart + 450);
    assert.ok(alert.firstSeen < spikeStart + HOUR);
    assert.deepEqual(alert.evidence, {
      window: { start: spikeStart, end: spikeStart + HOUR, seconds: HOUR },
      messages: 51,
      recipients: 51,
      domains: 3,
      baseline: { messages: 5, recipients: 5, domains: 3, days: 7 },
      threshold: { messages: 50, recipients: 200, domains: 20 },
      exceeded: ['messages'],
    });
    assert.equal(
      alert.message,
      'printer-2nd-floor (10.1.2.31) sent 51 messages to 51 recipients in 3 domains within 1h, ' +
        'over its threshold of 50 messages, 200 recipients, 20 domains',
    );

    detector.flush(spikeStart + HOUR);
    const last = emitted[emitted.length - 1]!;
    assert.equal(last.change, 'updated');
    assert.equal(last.alert.count, 1);
    assert.equal(last.alert.evidence.messages, 400);
    assert.equal(last.alert.evidence.recipients, 400);
    assert.deepEqual(last.alert.evidence.exceeded, ['messages', 'recipients']);
  });

  it('spike is not learned and recurs as an update', () => {
    const { detector, emitted } = makeDetector();
    feedNormalDays(detector, 14);
    sendNormalDay(detector, 14, 0, 3);
    sendHour(detector, DAY0 + 14 * DAY + 3 * HOUR, 400);
    sendNormalDay(detector, 14, 4, 24);
    sendNormalDay(detector, 15, 0, 3);
    sendHour(detector, DAY0 + 15 * DAY + 3 * HOUR, 400);
    detector.flush(DAY0 + 15 * DAY + 4 * HOUR);

    assert.equal(emitted.filter((e) => e.change === 'opened').length, 1);
    const last = emitted[emitted.length - 1]!.alert;
    assert.equal(last.count, 2);
    assert.deepEqual(last.evidence.baseline, { messages: 5, recipients: 5, domains: 3, days: 7 });
    assert.equal(last.evidence.messages, 400);
  });

  it('daily peak raises its own threshold', () => {
    const { detector, emitted } = makeDetector();
    feedNormalDays(detector, 14);
    sendNormalDay(detector, 14, 0, 8);
    // 08:00 borrows the 09:00 peak of the days before: max(4 x 40, 50) = 160.
    sendHour(detector, DAY0 + 14 * DAY + 8 * HOUR, 100);
    sendHour(detector, DAY0 + 14 * DAY + 9 * HOUR, 160);
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 14 * DAY + 9 * HOUR + 3599, device: printer }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.messages, 161);
    assert.deepEqual(emitted[0]!.alert.evidence.threshold, { messages: 160, recipients: 200, domains: 20 });
  });

  it('quiet hour keeps the floor', () => {
    const { detector, emitted } = makeDetector();
    feedNormalDays(detector, 14);
    sendHour(detector, DAY0 + 14 * DAY + 13 * HOUR, 51);
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.messages, 51);
  });
});

describe('volume floors', () => {
  it('device without history alerts over 50 messages', () => {
    const { detector, emitted } = makeDetector();
    sendHour(detector, DAY0 + 5 * HOUR, 50);
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 6 * HOUR - 1, device: printer }));
    assert.equal(emitted.length, 1);
    assert.deepEqual(emitted[0]!.alert.evidence.baseline, { messages: 0, recipients: 0, domains: 0, days: 0 });
    assert.deepEqual(emitted[0]!.alert.evidence.exceeded, ['messages']);
  });

  it('recipients floor is 200', () => {
    const { detector, emitted } = makeDetector();
    const fifty = Array.from({ length: 50 }, (_, i) => ({ address: `r${i}@corp.example`, code: 250 }));
    for (let i = 0; i < 4; i++) detector.observeTransaction(makeMail({ ts: DAY0 + i, device: printer, recipients: fifty }));
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 4, device: printer }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.recipients, 201);
    assert.deepEqual(emitted[0]!.alert.evidence.exceeded, ['recipients']);
  });

  it('domains floor is 20', () => {
    const { detector, emitted } = makeDetector();
    for (let i = 0; i < 20; i++) {
      // Upper and lower case spell the same domain.
      const recipients = [
        { address: `a@d${i}.example`, code: 250 },
        { address: `b@D${i}.EXAMPLE`, code: 250 },
      ];
      detector.observeTransaction(makeMail({ ts: DAY0 + i, device: printer, recipients }));
    }
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 20, device: printer, recipients: [{ address: 'c@d20.example' }] }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.domains, 21);
    assert.deepEqual(emitted[0]!.alert.evidence.exceeded, ['domains']);
  });

  it('shorter window resets its counts', () => {
    const { detector, emitted } = makeDetector({ thresholds: { volume_window: '10m' } });
    for (let k = 0; k < 100; k++) detector.observeTransaction(makeMail({ ts: DAY0 + k * 12, device: printer }));
    assert.equal(emitted.length, 0);
  });
});

describe('DeviceVolume', () => {
  const params: VolumeParams = { window: HOUR, factor: 4, floors: { messages: 50, recipients: 200, domains: 20 } };
  const one = [{ address: 'alice@corp.example' }];

  it('midnight borrows 23:00 of the day before', () => {
    const volume = new DeviceVolume();
    for (let k = 0; k < 30; k++) volume.add(DAY0 + 23 * HOUR + k, one, params);
    // 00:00 of day 2 reads 23:00 to 01:00 around 00:00 of day 1.
    volume.add(DAY0 + 2 * DAY + 10, one, params);
    assert.equal(volume.baseline.messages, 30);
    assert.equal(volume.baselineDays, 1);
    assert.equal(volume.threshold.messages, 120);
  });

  it('counts unlisted recipients without domains', () => {
    const volume = new DeviceVolume();
    // A transaction with 1 listed and 1999 unlisted recipients (over the SMTP list bound).
    const verdict = volume.add(DAY0 + 10, one, params, 1999);
    assert.equal(volume.counts.recipients, 2000);
    assert.equal(volume.counts.domains, 1);
    // 2000 recipients pass the floor of 200 with no baseline yet.
    assert.equal(verdict, 'crossed');
  });

  it('forgets days older than a week', () => {
    const volume = new DeviceVolume();
    for (let k = 0; k < 30; k++) volume.add(DAY0 + 12 * HOUR + k, one, params);
    volume.add(DAY0 + 7 * DAY + 12 * HOUR, one, params);
    assert.equal(volume.baseline.messages, 30);
    volume.add(DAY0 + 8 * DAY + 12 * HOUR, one, params);
    assert.equal(volume.baseline.messages, 1);
    assert.equal(volume.baselineDays, 1);
  });

  it('domain count saturates', () => {
    const volume = new DeviceVolume();
    const recipients = Array.from({ length: 600 }, (_, i) => ({ address: `user@d${i}.example` }));
    volume.add(DAY0, recipients, { ...params, floors: { messages: 50, recipients: 1000, domains: 1000 } });
    assert.equal(volume.counts.domains, MAX_WINDOW_DOMAINS);
  });
});
