import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpeed } from '../../src/tui/index.js';
import { feedUrl } from '../../src/cli/tui.js';
import { UsageError } from '../../src/cli/usage.js';

describe('parseSpeed', () => {
  it('accepts numbers, 0 and max', () => {
    assert.equal(parseSpeed(undefined), 1);
    assert.equal(parseSpeed('10'), 10);
    assert.equal(parseSpeed('0.5'), 0.5);
    assert.equal(parseSpeed('0'), 0);
    assert.equal(parseSpeed('max'), 0);
  });

  it('rejects other values', () => {
    for (const text of ['fast', '-1', '', 'Infinity']) assert.throws(() => parseSpeed(text), UsageError, text);
  });
});

describe('feedUrl', () => {
  it('adds the feed path', () => {
    assert.equal(feedUrl('ws://10.0.0.5:8080'), 'ws://10.0.0.5:8080/v1/events');
    assert.equal(feedUrl('wss://sensor.example/v1/events'), 'wss://sensor.example/v1/events');
  });

  it('rejects other schemes', () => {
    assert.throws(() => feedUrl('http://sensor.example'), UsageError);
    assert.throws(() => feedUrl('not a url'), UsageError);
  });
});
