import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeJsonForTerminal, escapeJsonForTerminal } from '../../src/events/sanitize.js';

describe('escapeJsonForTerminal', () => {
  it('escapes DEL, C1 and bidi characters', () => {
    const json = JSON.stringify({ subject: 'a\u007fb\u009bc\u202ed\u2028e' });
    assert.equal(escapeJsonForTerminal(json), '{"subject":"a\\u007fb\\u009bc\\u202ed\\u2028e"}');
  });

  it('returns safe text unchanged', () => {
    const json = JSON.stringify({ subject: 'Grüße – Отчёт 会議' });
    assert.equal(escapeJsonForTerminal(json), json);
  });
});

describe('encodeJsonForTerminal', () => {
  // UTF-8 lengths from RFC 3629 section 3: U+00FC and U+0080 take 2 bytes, U+2013 and U+2028 take 3.
  it('writes safe text as UTF-8', () => {
    const bytes = encodeJsonForTerminal('"ü – x"');
    assert.equal(bytes.length, 10);
    assert.equal(bytes.toString('hex'), '22c3bc20e28093207822');
  });

  it('escapes unsafe characters next to safe ones', () => {
    // U+2013 (E2 80 93) and U+00A0 (C2 A0) share a lead byte with unsafe characters but stay.
    assert.equal(encodeJsonForTerminal('"\u2013\u00a0\u2028"').toString('utf8'), '"\u2013\u00a0\\u2028"');
    assert.equal(encodeJsonForTerminal('"\u0085"').toString('utf8'), '"\\u0085"');
    assert.equal(encodeJsonForTerminal('"\u2069"').toString('utf8'), '"\\u2069"');
    assert.equal(encodeJsonForTerminal('"\u200e"').toString('utf8'), '"\\u200e"');
    assert.equal(encodeJsonForTerminal('"\u007f"').toString('utf8'), '"\\u007f"');
  });

  it('matches escapeJsonForTerminal on every BMP character', () => {
    for (let code = 0; code <= 0xffff; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const json = JSON.stringify('x' + String.fromCharCode(code) + 'y');
      assert.deepEqual(encodeJsonForTerminal(json), Buffer.from(escapeJsonForTerminal(json), 'utf8'), `U+${code.toString(16)}`);
    }
  });
});
