import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';

import { RateLimitedLog } from '../../src/cli/live.js';

/** A pino logger that collects its JSON lines. */
function collectingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ base: null, timestamp: false }, { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) });
  return { log, lines };
}

describe('RateLimitedLog', () => {
  it('logs five lines per key and minute, then one line with the count left out', () => {
    const { log, lines } = collectingLogger();
    let now = 0;
    const limited = new RateLimitedLog(log, () => now);
    for (let i = 0; i < 12; i++) limited.error('store', { n: i }, 'write failed');
    limited.error('other', {}, 'another kind');
    assert.deepEqual(
      lines.map((line) => line.n ?? line.key),
      [0, 1, 2, 3, 4, 'other'],
    );
    now = 59_999;
    limited.flush();
    assert.equal(lines.length, 6);
    now = 60_000;
    limited.flush();
    // pino level 50 is error; 12 lines, 5 written.
    assert.deepEqual(lines[6], { level: 50, key: 'store', suppressed: 7, msg: 'store: more lines like the above were not logged' });
    limited.error('store', { n: 12 }, 'write failed');
    assert.equal(lines[7]?.n, 12);
    assert.equal(lines.length, 8);
  });

  it('keeps the level of the key for the count line', () => {
    const { log, lines } = collectingLogger();
    let now = 0;
    const limited = new RateLimitedLog(log, () => now);
    for (let i = 0; i < 6; i++) limited.warn('capture_loss', {}, 'loss');
    now = 60_000;
    limited.warn('capture_loss', {}, 'loss');
    // The count line (level 40, warn) comes before the first line of the new minute.
    assert.deepEqual(
      lines.map((line) => [line.level, line.suppressed]),
      [[40, undefined], [40, undefined], [40, undefined], [40, undefined], [40, undefined], [40, 1], [40, undefined]],
    );
  });
});
