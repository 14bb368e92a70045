import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { encodeJsonLinesForTerminal, escapeJsonForTerminal } from '../../src/events/sanitize.js';

/** Returns the encoded bytes of one line, without its newline. */
const encodeLine = (json: string): Buffer => encodeJsonLinesForTerminal([json]).subarray(0, -1);

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

describe('encodeJsonLinesForTerminal', () => {
  // UTF-8 lengths from RFC 3629 section 3: U+00FC and U+0080 take 2 bytes, U+2013 and U+2028 take 3.
  it('writes safe text as UTF-8', () => {
    const bytes = encodeLine('"ü – x"');
    assert.equal(bytes.length, 10);
    assert.equal(bytes.toString('hex'), '22c3bc20e28093207822');
  });

  it('escapes unsafe characters next to safe ones', () => {
    // U+2013 (E2 80 93) and U+00A0 (C2 A0) share a lead byte with unsafe characters but stay.
    assert.equal(encodeLine('"\u2013\u00a0\u2028"').toString('utf8'), '"\u2013\u00a0\\u2028"');
    assert.equal(encodeLine('"\u0085"').toString('utf8'), '"\\u0085"');
    assert.equal(encodeLine('"\u2069"').toString('utf8'), '"\\u2069"');
    assert.equal(encodeLine('"\u200e"').toString('utf8'), '"\\u200e"');
    assert.equal(encodeLine('"\u007f"').toString('utf8'), '"\\u007f"');
  });

  it('ends every line with a newline', () => {
    assert.equal(encodeJsonLinesForTerminal(['{"a":1}', '"\u2028"', '"é"']).toString('utf8'), '{"a":1}\n"\\u2028"\n"é"\n');
    assert.equal(encodeJsonLinesForTerminal(['"x"']).length, 4);
  });

  it('matches escapeJsonForTerminal on every BMP character', () => {
    for (let code = 0; code <= 0xffff; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const json = JSON.stringify('x' + String.fromCharCode(code) + 'y');
      assert.deepEqual(encodeLine(json), Buffer.from(escapeJsonForTerminal(json), 'utf8'), `U+${code.toString(16)}`);
    }
  });
});
