import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { LineSplitter } from '../../src/smtp/lines.js';

/** Feed chunks and collect lines with their flags. */
function split(chunks: string[], max = 100): { text: string; bareLf: boolean; truncated: boolean; rawLength: number }[] {
  const splitter = new LineSplitter(max);
  const lines = [];
  for (const chunk of chunks) {
    const data = Buffer.from(chunk, 'latin1');
    let pos = 0;
    while (pos < data.length) {
      pos = splitter.next(data, pos);
      if (splitter.line !== undefined) {
        lines.push({
          text: splitter.line.toString('latin1'),
          bareLf: splitter.bareLf,
          truncated: splitter.truncated,
          rawLength: splitter.rawLength,
        });
      }
    }
  }
  return lines;
}

describe('LineSplitter', () => {
  it('splits CRLF lines within one chunk', () => {
    const lines = split(['EHLO a\r\nMAIL FROM:<x@y>\r\n']);
    assert.deepEqual(lines.map((line) => line.text), ['EHLO a', 'MAIL FROM:<x@y>']);
    assert.equal(lines[0]?.bareLf, false);
  });

  it('accepts bare LF and flags it', () => {
    const lines = split(['NOOP\nQUIT\r\n']);
    assert.deepEqual(lines.map((line) => line.text), ['NOOP', 'QUIT']);
    assert.equal(lines[0]?.bareLf, true);
    assert.equal(lines[1]?.bareLf, false);
  });

  it('keeps an empty line', () => {
    assert.deepEqual(split(['\r\n\n']).map((line) => line.text), ['', '']);
  });

  it('gives the same lines for every two-chunk split', () => {
    const input = 'RCPT TO:<a@b>\r\nDATA\r\n\r\nX\n';
    const expected = ['RCPT TO:<a@b>', 'DATA', '', 'X'];
    for (let cut = 0; cut <= input.length; cut++) {
      const lines = split([input.slice(0, cut), input.slice(cut)]);
      assert.deepEqual(lines.map((line) => line.text), expected, `cut at ${cut}`);
      assert.deepEqual(lines.map((line) => line.bareLf), [false, false, false, true], `cut at ${cut}`);
    }
  });

  it('assembles a line delivered byte by byte', () => {
    const input = 'HELO host.example\r\n';
    const lines = split([...input]);
    assert.deepEqual(lines.map((line) => line.text), ['HELO host.example']);
    assert.equal(lines[0]?.bareLf, false);
  });

  it('cuts a long line within one chunk', () => {
    const lines = split(['A'.repeat(30) + '\r\nNOOP\r\n'], 10);
    assert.equal(lines[0]?.text, 'A'.repeat(10));
    assert.equal(lines[0]?.truncated, true);
    assert.equal(lines[0]?.rawLength, 30);
    assert.equal(lines[1]?.text, 'NOOP');
    assert.equal(lines[1]?.truncated, false);
  });

  it('cuts a long line spread over chunks', () => {
    const lines = split(['B'.repeat(7), 'B'.repeat(7), 'B'.repeat(7) + '\r', '\nQUIT\r\n'], 10);
    assert.equal(lines[0]?.text, 'B'.repeat(10));
    assert.equal(lines[0]?.truncated, true);
    assert.equal(lines[0]?.rawLength, 21);
    assert.equal(lines[0]?.bareLf, false);
    assert.equal(lines[1]?.text, 'QUIT');
  });

  it('keeps a line of exactly the maximum length whole', () => {
    const lines = split(['C'.repeat(5), 'C'.repeat(5) + '\r', '\n'], 10);
    assert.equal(lines[0]?.text, 'C'.repeat(10));
    assert.equal(lines[0]?.truncated, false);
  });

  it('drops the partial line on reset', () => {
    const splitter = new LineSplitter(100);
    splitter.next(Buffer.from('garb'), 0);
    assert.equal(splitter.hasPartial, true);
    splitter.reset();
    const data = Buffer.from('age\r\n');
    splitter.next(data, 0);
    assert.equal(splitter.line?.toString(), 'age');
  });

  it('wipes a line assembled in its scratch buffer', () => {
    const splitter = new LineSplitter(100);
    splitter.next(Buffer.from('c2Vj'), 0);
    splitter.next(Buffer.from('cmV0\r\n'), 0);
    const line = splitter.line as Buffer;
    assert.equal(line.toString(), 'c2VjcmV0');
    splitter.wipeLine();
    assert.equal(line.toString(), '\0'.repeat(8));
  });

  it('reports once when an unended line passes the limit', () => {
    const splitter = new LineSplitter(10);
    const passed = ['D'.repeat(6), 'D'.repeat(6), 'D'.repeat(6), 'D\r\n'].map((chunk) => {
      splitter.next(Buffer.from(chunk), 0);
      return splitter.limitPassed;
    });
    // 12 bytes exceed the 11-byte scratch buffer (10 and a CR) in the second chunk.
    assert.deepEqual(passed, [false, true, false, false]);
    assert.equal(splitter.truncated, true);
    assert.equal(splitter.rawLength, 19);
  });

  it('counts the bytes of an unended line', () => {
    const splitter = new LineSplitter(10);
    splitter.next(Buffer.alloc(4000, 'E'), 0);
    splitter.next(Buffer.alloc(96, 'E'), 0);
    assert.equal(splitter.partialLength, 4096);
    assert.equal(splitter.line, undefined);
  });

  it('does not report a long line that ends in the same chunk', () => {
    const splitter = new LineSplitter(10);
    splitter.next(Buffer.from('F'.repeat(5)), 0);
    splitter.next(Buffer.from('F'.repeat(20) + '\r\n'), 0);
    assert.equal(splitter.limitPassed, false);
    assert.equal(splitter.truncated, true);
  });
});
