import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_EVENT_IDS } from '../../src/detect/index.js';
import { DAY0, HOUR, makeDetector, makeDevice, makeMail } from './detect-fixtures.js';

// Only unauthorized_sender: 1000 messages would also be a volume spike, and a day later a new sender.
const senders = {
  senders: { allowed: ['10.1.5.0/24'] },
  rules: { volume_spike: { enabled: false }, new_sender: { enabled: false } },
};

describe('alert deduplication', () => {
  it('folds 1000 matches into one alert', () => {
    const { detector, emitted } = makeDetector(senders);
    // One unauthorized transaction per second, 1000 s in all.
    for (let i = 0; i < 1000; i++) detector.observeTransaction(makeMail({ ts: DAY0 + i, eventId: `f${i}-1` }));
    detector.flush(DAY0 + 1000);

    const opened = emitted.filter((e) => e.change === 'opened');
    const updated = emitted.filter((e) => e.change === 'updated');
    assert.equal(opened.length, 1);
    // With a 300 s interval, the updates due at 300, 600 and 900 s go out before the match of
    // that second is counted, and the rest at flush.
    assert.equal(updated.length, 4);
    assert.deepEqual(
      updated.map((e) => e.alert.count),
      [300, 600, 900, 1000],
    );
    const last = emitted[emitted.length - 1]!.alert;
    assert.equal(last.count, 1000);
    assert.equal(last.firstSeen, DAY0);
    assert.equal(last.lastSeen, DAY0 + 999);
    assert.equal(last.eventIds.length, MAX_EVENT_IDS);
    assert.equal(last.eventIds[0], 'f980-1');
    assert.equal(last.eventIds[MAX_EVENT_IDS - 1], 'f999-1');
  });

  it('emits a due update without a further match', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ ts: DAY0 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 10 }));
    assert.equal(emitted.length, 1);
    // Another device, allowed, moves the capture clock past the interval.
    const other = makeDevice({ mac: '02:00:00:00:00:09' });
    detector.observeTransaction(makeMail({ ts: DAY0 + 301, clientIp: '10.1.5.9', device: other }));
    assert.equal(emitted.length, 2);
    assert.equal(emitted[1]!.change, 'updated');
    assert.equal(emitted[1]!.alert.count, 2);
    detector.flush(DAY0 + 400);
    assert.equal(emitted.length, 2);
  });

  it('emits an update that arrived late', () => {
    const { detector, emitted } = makeDetector(senders);
    const other = makeDevice({ mac: '02:00:00:00:00:09' });
    detector.observeTransaction(makeMail({ ts: DAY0 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 400, clientIp: '10.1.5.9', device: other }));
    // A second capture file replays an earlier match after the check at DAY0 + 300 passed.
    detector.observeTransaction(makeMail({ ts: DAY0 + 100 }));
    assert.equal(emitted.length, 1);
    detector.observeTransaction(makeMail({ ts: DAY0 + 401, clientIp: '10.1.5.9', device: other }));
    assert.equal(emitted.length, 2);
    assert.equal(emitted[1]!.alert.count, 2);
  });

  it('keeps emitted alerts unchanged', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ ts: DAY0, eventId: 'a-1' }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 1, eventId: 'b-1' }));
    assert.equal(emitted[0]!.alert.count, 1);
    assert.deepEqual(emitted[0]!.alert.eventIds, ['a-1']);
  });

  it('updates a recurrence within the quiet period', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ ts: DAY0 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 23 * HOUR }));
    assert.deepEqual(
      emitted.map((e) => [e.change, e.alert.count]),
      [
        ['opened', 1],
        ['updated', 2],
      ],
    );
  });

  it('opens again after the quiet period', () => {
    const { detector, emitted } = makeDetector(senders);
    detector.observeTransaction(makeMail({ ts: DAY0 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 10 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 10 + 24 * HOUR + 1 }));
    assert.deepEqual(
      emitted.map((e) => [e.change, e.alert.count, e.alert.firstSeen]),
      [
        ['opened', 1, DAY0],
        ['updated', 2, DAY0],
        ['opened', 1, DAY0 + 10 + 24 * HOUR + 1],
      ],
    );
    assert.equal(emitted[2]!.alert.id, emitted[0]!.alert.id);
  });

  it('sends the pending update of a forgotten alert', () => {
    const { detector, emitted } = makeDetector({ ...senders, detect: { max_alerts: 1 } });
    detector.observeTransaction(makeMail({ ts: DAY0 }));
    detector.observeTransaction(makeMail({ ts: DAY0 + 1 }));
    const other = makeDevice({ mac: '02:00:00:00:00:09' });
    detector.observeTransaction(makeMail({ ts: DAY0 + 2, clientIp: '10.1.2.9', device: other }));
    assert.deepEqual(
      emitted.map((e) => [e.change, e.alert.device.key, e.alert.count]),
      [
        ['opened', 'mac:30:05:5c:00:00:31', 1],
        ['updated', 'mac:30:05:5c:00:00:31', 2],
        ['opened', 'mac:02:00:00:00:00:09', 1],
      ],
    );
  });
});
