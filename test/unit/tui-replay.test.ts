import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventPacer, MAX_PACED_EVENTS } from '../../src/tui/replay.js';
import type { EcsEvent } from '../../src/events/ecs.js';

function event(id: string, seconds: number, endSeconds?: number): EcsEvent {
  return {
    '@timestamp': new Date(seconds * 1000).toISOString(),
    event: {
      kind: 'event',
      category: [],
      type: [],
      dataset: 'mailtap.smtp',
      action: 'smtp-transaction',
      id,
      ...(endSeconds !== undefined ? { end: new Date(endSeconds * 1000).toISOString() } : {}),
    },
  };
}

const T0 = 1_796_400_000;

describe('EventPacer', () => {
  it('releases by capture time over speed', () => {
    let now = 0;
    const released: string[] = [];
    const pacer = new EventPacer(10, (e) => released.push(e.event.id), () => now);
    pacer.push(event('a', T0));
    pacer.push(event('b', T0 + 5)); // due 500 ms later at 10x
    pacer.push(event('c', T0 + 20)); // due 2000 ms later
    pacer.releaseDue();
    assert.deepEqual(released, ['a']);
    now = 499;
    pacer.releaseDue();
    assert.deepEqual(released, ['a']);
    now = 500;
    pacer.releaseDue();
    assert.deepEqual(released, ['a', 'b']);
    now = 2000;
    pacer.releaseDue();
    assert.deepEqual(released, ['a', 'b', 'c']);
    pacer.stop();
  });

  it('never goes back in time', () => {
    let now = 0;
    const released: string[] = [];
    const pacer = new EventPacer(1, (e) => released.push(e.event.id), () => now);
    pacer.push(event('tx', T0, T0 + 10));
    pacer.push(event('alert', T0 + 2)); // an earlier @timestamp than the end of the transaction
    now = 0;
    pacer.releaseDue();
    assert.deepEqual(released, ['tx', 'alert']);
    pacer.stop();
  });

  it('shifts the schedule by a pause', () => {
    let now = 0;
    const released: string[] = [];
    const pacer = new EventPacer(1, (e) => released.push(e.event.id), () => now);
    pacer.push(event('a', T0));
    pacer.push(event('b', T0 + 1));
    pacer.releaseDue();
    pacer.pause();
    now = 5000;
    pacer.releaseDue();
    assert.deepEqual(released, ['a']);
    pacer.resume(); // paused 5000 ms, so b is due at 6000
    pacer.releaseDue();
    assert.deepEqual(released, ['a']);
    now = 6000;
    pacer.releaseDue();
    assert.deepEqual(released, ['a', 'b']);
    pacer.stop();
  });

  it('delivers at once at speed 0', () => {
    const released: string[] = [];
    const pacer = new EventPacer(0, (e) => released.push(e.event.id));
    pacer.push(event('a', T0));
    pacer.push(event('b', T0 + 3600));
    assert.deepEqual(released, ['a', 'b']);
    assert.equal(pacer.waitForRoom(), undefined);
  });

  it('makes reading wait when full', async () => {
    let now = 0;
    const pacer = new EventPacer(1, () => {}, () => now);
    for (let i = 0; i < MAX_PACED_EVENTS; i++) pacer.push(event(String(i), T0 + i));
    const wait = pacer.waitForRoom();
    assert.ok(wait !== undefined);
    let resolved = false;
    void wait.then(() => (resolved = true));
    now = (MAX_PACED_EVENTS / 2) * 1000; // releases the first half and one more
    pacer.releaseDue();
    await Promise.resolve();
    assert.equal(resolved, true);
    assert.equal(pacer.pending, MAX_PACED_EVENTS / 2 - 1);
    pacer.stop();
  });
});
