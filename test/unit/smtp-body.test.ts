import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DataBodyDecoder } from '../../src/smtp/body.js';

interface Decoded {
  body: string;
  /** Offset after the terminator within the chunk where it ended, -1 if it did not end. */
  endOffset: number;
  endChunk: number;
  bareLf: number;
  bareCr: number;
  bareCrDotLines: number;
  bareLfEnd: string | undefined;
}

function decode(chunks: string[]): Decoded {
  const out: Buffer[] = [];
  const decoder = new DataBodyDecoder((chunk) => out.push(Buffer.from(chunk)));
  decoder.start();
  const result = (endOffset: number, endChunk: number): Decoded => ({
    body: Buffer.concat(out).toString('latin1'),
    endOffset,
    endChunk,
    bareLf: decoder.bareLfCount,
    bareCr: decoder.bareCrCount,
    bareCrDotLines: decoder.bareCrDotLines,
    bareLfEnd: decoder.bareLfEnd,
  });
  for (let i = 0; i < chunks.length; i++) {
    const end = decoder.feed(Buffer.from(chunks[i] as string, 'latin1'), 0);
    if (end !== -1) return result(end, i);
  }
  return result(-1, -1);
}

describe('DataBodyDecoder', () => {
  it('ends at CRLF.CRLF and keeps the last line ending', () => {
    const result = decode(['Subject: x\r\n\r\nHello\r\n.\r\nQUIT\r\n']);
    assert.equal(result.body, 'Subject: x\r\n\r\nHello\r\n');
    assert.equal(result.endOffset, 'Subject: x\r\n\r\nHello\r\n.\r\n'.length);
  });

  it('ends an empty body at the first line', () => {
    const result = decode(['.\r\n']);
    assert.equal(result.body, '');
    assert.equal(result.endOffset, 3);
  });

  it('removes the stuffed dot (RFC 5321 section 4.5.2)', () => {
    const result = decode(['..\r\n..leading\r\n.x\r\nmid.dle\r\n.\r\n']);
    assert.equal(result.body, '.\r\n.leading\r\nx\r\nmid.dle\r\n');
  });

  it('keeps a CR after a line-start dot that is not a terminator', () => {
    const result = decode(['.\rX\r\n.\r\n']);
    assert.equal(result.body, '\rX\r\n');
  });

  it('finds the terminator across every split of the input', () => {
    const input = 'A\r\n..B\r\n\r\n.\r\nNEXT';
    const expectedBody = 'A\r\n.B\r\n\r\n';
    for (let cut = 0; cut <= input.length; cut++) {
      for (let cut2 = cut; cut2 <= input.length; cut2++) {
        const chunks = [input.slice(0, cut), input.slice(cut, cut2), input.slice(cut2)];
        const result = decode(chunks);
        assert.equal(result.body, expectedBody, `cuts ${cut},${cut2}`);
        const consumed = chunks.slice(0, result.endChunk).join('').length + result.endOffset;
        assert.equal(consumed, input.length - 'NEXT'.length, `cuts ${cut},${cut2}`);
      }
    }
  });

  it('finds the terminator fed one byte at a time', () => {
    const input = 'line one\r\n.\r\n';
    const result = decode([...input]);
    assert.equal(result.body, 'line one\r\n');
    assert.equal(result.endChunk, input.length - 1);
  });

  it('does not end at a dot in the middle of a line', () => {
    const result = decode(['a.\r\n', 'b\r\n.', 'x\r\n']);
    assert.equal(result.endOffset, -1);
    assert.equal(result.body, 'a.\r\nb\r\nx\r\n');
  });

  it('accepts a bare-LF terminator and counts bare LF lines', () => {
    const result = decode(['one\ntwo\r\n.\n']);
    assert.equal(result.body, 'one\ntwo\r\n');
    assert.equal(result.bareLf, 2);
  });

  it('detects a bare LF whose CR check spans chunks', () => {
    assert.equal(decode(['abc\r', '\n.\r\n']).bareLf, 0);
    assert.equal(decode(['abc', '\n.\r\n']).bareLf, 1);
  });

  it('passes binary bytes through unchanged', () => {
    const binary = '\0\x01\xff\r\x00\n';
    const result = decode([binary + '\r\n.\r\n']);
    assert.equal(result.body, binary + '\r\n');
  });

  it('names the terminator when it has a bare LF', () => {
    const cases: [string, string | undefined][] = [
      ['a\n.\n', '<LF>.<LF>'],
      ['a\r\n.\n', '<CR><LF>.<LF>'],
      ['a\n.\r\n', '<LF>.<CR><LF>'],
      ['a\r\n.\r\n', undefined],
      ['.\n', '<CR><LF>.<LF>'],
    ];
    for (const [input, expected] of cases) {
      const result = decode([input]);
      assert.equal(result.endOffset, input.length, JSON.stringify(input));
      assert.equal(result.bareLfEnd, expected, JSON.stringify(input));
    }
  });

  it('does not end at a bare CR sequence', () => {
    // The three end-of-data forms with a bare CR, each followed by a smuggled command.
    const cases: [string, string, number][] = [
      ['a\r.\r', 'a\r.\r', 2],
      ['a\r\n.\r', 'a\r\n\r', 1],
      ['a\r.\r\n', 'a\r.\r\n', 1],
    ];
    for (const [sequence, body, bareCr] of cases) {
      const input = sequence + 'MAIL FROM:<x@y>\r\n.\r\n';
      const result = decode([input]);
      const label = JSON.stringify(sequence);
      assert.equal(result.endOffset, input.length, label);
      assert.equal(result.body, body + 'MAIL FROM:<x@y>\r\n', label);
      assert.equal(result.bareCr, bareCr, label);
      assert.equal(result.bareCrDotLines, 1, label);
      assert.equal(result.bareLf, 0, label);
    }
  });

  it('counts bare CRs across every split', () => {
    const input = 'a\rb\r\n\r\r\n.\rX\r\nc\r.\r\n.\r\n';
    for (let cut = 0; cut <= input.length; cut++) {
      const result = decode([input.slice(0, cut), input.slice(cut)]);
      assert.equal(result.body, 'a\rb\r\n\r\r\n\rX\r\nc\r.\r\n', `cut ${cut}`);
      assert.equal(result.bareCr, 4, `cut ${cut}`);
    }
    assert.equal(decode([input]).bareCrDotLines, 2);
  });

  it('checks a CR at a chunk end against the next chunk', () => {
    assert.equal(decode(['abc\r', '\n.\r\n']).bareCr, 0);
    assert.equal(decode(['abc\r', 'x\r\n.\r\n']).bareCr, 1);
    assert.equal(decode(['abc\r', '', '\n.\r\n']).bareCr, 0);
  });

  it('scans a long body without CRs in linear time', () => {
    const body = 'x\n'.repeat(200000);
    const started = process.hrtime.bigint();
    const result = decode([body + '.\r\n']);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(result.bareLf, 200000);
    assert.equal(result.bareCr, 0);
    // A search for CR from every line start would take minutes here.
    assert.ok(elapsedMs < 2000, `${elapsedMs} ms`);
  });
});
