import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RspamdVerdict, ScanResult } from '../../src/scan/types.js';
import { DAY0, HOUR, makeDetector, makeMail } from './detect-fixtures.js';

function rated(score: number, action = 'no action'): ScanResult {
  const verdict: RspamdVerdict = { score, requiredScore: 15, action, symbols: ['MISSING_MID'] };
  return { rspamd: { status: 'scanned', verdict } };
}

describe('virus_found', () => {
  it('fires critical with the signatures for an infected message', () => {
    const { detector, emitted } = makeDetector();
    const scan: ScanResult = { clamav: { status: 'scanned', verdict: { signatures: ['Eicar-Test-Signature'] } } };
    detector.observeTransaction(makeMail({ scan, eventId: 'f1-1' }));
    assert.equal(emitted.length, 1);
    const alert = emitted[0]!.alert;
    assert.equal(alert.rule, 'virus_found');
    assert.equal(alert.severity, 'critical');
    assert.deepEqual(alert.evidence.signatures, ['Eicar-Test-Signature']);
    assert.deepEqual(alert.eventIds, ['f1-1']);
  });

  it('stays quiet for a clean message and a message clamd did not scan', () => {
    const { detector, emitted } = makeDetector();
    detector.observeTransaction(makeMail({ scan: { clamav: { status: 'scanned', verdict: { signatures: [] } } } }));
    detector.observeTransaction(makeMail({ scan: { clamav: { status: 'not_scanned', reason: 'unavailable' } } }));
    assert.equal(emitted.length, 0);
  });

  it('can be switched off', () => {
    const { detector, emitted } = makeDetector({ rules: { virus_found: { enabled: false } } });
    const scan: ScanResult = { clamav: { status: 'scanned', verdict: { signatures: ['X'] } } };
    detector.observeTransaction(makeMail({ scan }));
    assert.equal(emitted.length, 0);
  });
});

describe('spam_outbound', () => {
  it('fires at the configured score, not below it', () => {
    const { detector, emitted } = makeDetector({ scan: { spam_score: 7 }, rules: { spam_rate: { enabled: false } } });
    detector.observeTransaction(makeMail({ scan: rated(6.99) }));
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ scan: rated(7) }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.rule, 'spam_outbound');
    assert.equal(emitted[0]!.alert.evidence.score, 7);
    assert.equal(emitted[0]!.alert.evidence.threshold, 7);
  });

  it('fires for action reject whatever the score', () => {
    const { detector, emitted } = makeDetector({ scan: { spam_score: 50 }, rules: { spam_rate: { enabled: false } } });
    detector.observeTransaction(makeMail({ scan: rated(2, 'reject') }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.action, 'reject');
  });
});

describe('spam_rate', () => {
  const raw = {
    scan: { spam_score: 6, spam_rate: { share: 0.25, min_messages: 4, window: '1h' } },
    rules: { spam_outbound: { enabled: false } },
  };

  it('fires when a quarter of at least four rated messages in the window are spam', () => {
    const { detector, emitted } = makeDetector(raw);
    const scores = [1, 1, 9];
    scores.forEach((score, i) => detector.observeTransaction(makeMail({ ts: DAY0 + i, scan: rated(score) })));
    // Three rated: under min_messages.
    assert.equal(emitted.length, 0);
    detector.observeTransaction(makeMail({ ts: DAY0 + 10, scan: rated(1) }));
    // 1 of 4 = 0.25.
    assert.equal(emitted.length, 1);
    const alert = emitted[0]!.alert;
    assert.equal(alert.rule, 'spam_rate');
    assert.equal(alert.evidence.rated, 4);
    assert.equal(alert.evidence.spam, 1);
    assert.equal(alert.count, 1);
  });

  it('stays quiet under the share, and counts each window on its own', () => {
    const { detector, emitted } = makeDetector(raw);
    for (let i = 0; i < 5; i++) detector.observeTransaction(makeMail({ ts: DAY0 + i, scan: rated(i === 4 ? 9 : 1) }));
    // Four clean ones first, then one spam: 1 of 5 = 0.2 < 0.25.
    assert.equal(emitted.length, 0);
    // The next hour starts from zero: three clean and one spam message make 0.25 again.
    for (let i = 0; i < 4; i++) detector.observeTransaction(makeMail({ ts: DAY0 + HOUR + i, scan: rated(i === 3 ? 9 : 1) }));
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.alert.evidence.rated, 4);
  });

  it('ignores messages rspamd did not rate', () => {
    const { detector, emitted } = makeDetector(raw);
    for (let i = 0; i < 8; i++) {
      detector.observeTransaction(makeMail({ ts: DAY0 + i, scan: { rspamd: { status: 'not_scanned', reason: 'timeout' } } }));
    }
    assert.equal(emitted.length, 0);
  });
});
