import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { looksLikeCommand, parseCommandLine, parsePathArgument } from '../../src/smtp/commands.js';

describe('parseCommandLine', () => {
  it('finds the verb case-insensitively', () => {
    assert.deepEqual(parseCommandLine(Buffer.from('mail FROM:<a@b>')), { verb: 'MAIL', argStart: 5 });
    assert.deepEqual(parseCommandLine(Buffer.from('QUIT')), { verb: 'QUIT', argStart: 4 });
    assert.equal(parseCommandLine(Buffer.from('XYZZY')).verb, '');
    assert.equal(parseCommandLine(Buffer.from('')).verb, '');
  });
});

describe('parsePathArgument', () => {
  it('reads the null path and parameters', () => {
    assert.deepEqual(parsePathArgument('FROM:<> BODY=8BITMIME', 'FROM'), { address: '', params: { BODY: '8BITMIME' } });
  });

  it('accepts forms servers tolerate', () => {
    assert.equal(parsePathArgument('FROM: <a@b>', 'FROM')?.address, 'a@b');
    assert.equal(parsePathArgument('FROM:a@b SIZE=5', 'FROM')?.address, 'a@b');
    assert.equal(parsePathArgument('from <a@b>', 'FROM')?.address, 'a@b');
    assert.equal(parsePathArgument('TO:<@x.example,@y.example:u@z>', 'TO')?.address, 'u@z');
    assert.equal(parsePathArgument('TO:<"a>b"@c>', 'TO')?.address, '"a>b"@c');
  });

  it('rejects a missing keyword', () => {
    assert.equal(parsePathArgument('<a@b>', 'FROM'), undefined);
    assert.equal(parsePathArgument('FROM:<a@b>', 'TO'), undefined);
  });
});

describe('looksLikeCommand', () => {
  it('accepts upper-case commands only', () => {
    assert.equal(looksLikeCommand(Buffer.from('MAIL FROM:<a@b>')), true);
    assert.equal(looksLikeCommand(Buffer.from('QUIT')), true);
    assert.equal(looksLikeCommand(Buffer.from('Data follows')), false);
    assert.equal(looksLikeCommand(Buffer.from('MAIL me later')), false);
    assert.equal(looksLikeCommand(Buffer.from('tail of a line')), false);
  });
});
