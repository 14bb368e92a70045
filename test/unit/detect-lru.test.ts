import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruMap } from '../../src/detect/lru.js';

describe('LruMap', () => {
  it('evicts the oldest entry first', () => {
    const evicted: string[] = [];
    const map = new LruMap<string, number>(3, (key) => evicted.push(key));
    for (const key of ['a', 'b', 'c', 'd', 'e']) map.set(key, 1);
    assert.deepEqual(evicted, ['a', 'b']);
    assert.equal(map.size, 3);
    assert.equal(map.evicted, 2);
    assert.equal(map.get('a'), undefined);
    assert.equal(map.get('e'), 1);
  });

  it('keeps an entry used within maxSize / 2 insertions', () => {
    const map = new LruMap<string, number>(10);
    map.set('hot', 0);
    // The hot entry is read after every 4th insertion, so it is never the oldest for long.
    for (let i = 0; i < 1000; i++) {
      map.set(`cold${i}`, i);
      if (i % 4 === 3) assert.equal(map.get('hot'), 0, `hot entry evicted after cold${i}`);
    }
    assert.equal(map.size, 10);
  });

  it('peek does not protect an entry', () => {
    const map = new LruMap<string, number>(4);
    map.set('a', 1);
    for (let i = 0; i < 4; i++) {
      map.set(`b${i}`, i);
      map.peek('a');
    }
    assert.equal(map.peek('a'), undefined);
  });
});
