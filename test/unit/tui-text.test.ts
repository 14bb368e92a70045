import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, escapeTags, safeText, truncateToWidth } from '../../src/tui/text.js';

describe('safeText', () => {
  it('shows escape sequences as text', () => {
    assert.equal(safeText('a\x1b]0;title\x07b\x1b[2J'), 'a\\x1b]0;title\\x07b\\x1b[2J');
  });

  it('escapes C1, DEL and bidi controls', () => {
    assert.equal(safeText('\x9b31m\x7f'), '\\x9b31m\\x7f');
    assert.equal(safeText('abc\u202edcba'), 'abc\\u202edcba');
    assert.equal(safeText('line\u2028sep\u2029'), 'line\\u2028sep\\u2029');
  });

  it('escapes blessed tags', () => {
    assert.equal(safeText('{red-fg}x{/}'), '{open}red-fg{close}x{open}/{close}');
  });

  it('cuts before escaping tags', () => {
    // Five visible columns: "{bol" and the ellipsis; the tag escape never splits.
    assert.equal(safeText('{bold}', 5), '{open}bol\u2026');
  });

  it('pads to the width', () => {
    assert.equal(safeText('ab', 4, true), 'ab  ');
    assert.equal(safeText(undefined, 3, true), '   ');
  });
});

describe('display width', () => {
  it('counts wide and combining characters', () => {
    assert.equal(displayWidth('abc'), 3);
    assert.equal(displayWidth('日本'), 4);
    assert.equal(displayWidth('e\u0301'), 1);
    assert.equal(displayWidth('😀'), 2);
  });

  it('truncates by columns', () => {
    assert.equal(truncateToWidth('日本語テキスト', 5), '日本\u2026');
    assert.equal(truncateToWidth('abcdef', 4), 'abc\u2026');
    assert.equal(truncateToWidth('abcd', 4), 'abcd');
    assert.equal(truncateToWidth('😀😀😀', 4), '😀\u2026');
    assert.equal(truncateToWidth('abc', 0), '');
  });

  it('leaves text without braces alone', () => {
    assert.equal(escapeTags('plain'), 'plain');
  });
});
