import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ReplyAssembler, parseEnhancedCode, parseQueueId, parseReplyLine } from '../../src/smtp/replies.js';

const reply = (code: number, text: string) => ({ code, text, ts: 0 });

describe('parseReplyLine', () => {
  it('reads code and separator', () => {
    assert.deepEqual(parseReplyLine(Buffer.from('250-PIPELINING')), { code: 250, continued: true, textStart: 4 });
    assert.deepEqual(parseReplyLine(Buffer.from('221 bye')), { code: 221, continued: false, textStart: 4 });
    assert.deepEqual(parseReplyLine(Buffer.from('250')), { code: 250, continued: false, textStart: 3 });
  });

  it('rejects lines without a valid code', () => {
    for (const text of ['', '25', '2a0 x', '650 x', '250x', 'garbage', '\x16\x03\x01']) {
      assert.equal(parseReplyLine(Buffer.from(text, 'latin1')), undefined, JSON.stringify(text));
    }
  });
});

describe('ReplyAssembler', () => {
  it('joins the lines of a multi-line reply', () => {
    const assembler = new ReplyAssembler();
    const lines = ['250-mx.example', '250-SIZE 100', '250 2.0.0 HELP'];
    let result;
    for (const text of lines) {
      const line = Buffer.from(text);
      result = assembler.add(line, parseReplyLine(line) as NonNullable<ReturnType<typeof parseReplyLine>>, 5);
    }
    assert.deepEqual(result?.lines, ['mx.example', 'SIZE 100', '2.0.0 HELP']);
    assert.equal(result?.reply.text, 'mx.example\nSIZE 100\n2.0.0 HELP');
    assert.equal(result?.reply.enhanced, undefined);
    assert.equal(assembler.codeMismatch, false);
  });
});

describe('parseEnhancedCode', () => {
  it('reads codes whose class matches the reply', () => {
    assert.equal(parseEnhancedCode('2.1.0 Ok', 250), '2.1.0');
    assert.equal(parseEnhancedCode('5.7.1 denied', 550), '5.7.1');
    assert.equal(parseEnhancedCode('5.7.1 denied', 250), undefined);
    assert.equal(parseEnhancedCode('2.5 hours', 250), undefined);
  });

  // RFC 3463 section 2: class "." subject "." detail, subject and detail 1 to 3 digits.
  it('checks the digit counts and the end', () => {
    assert.equal(parseEnhancedCode('4.7.0', 450), '4.7.0');
    assert.equal(parseEnhancedCode('5.123.456 x', 550), '5.123.456');
    assert.equal(parseEnhancedCode('5.1234.1 x', 550), undefined);
    assert.equal(parseEnhancedCode('5.1.1234 x', 550), undefined);
    assert.equal(parseEnhancedCode('5..1 x', 550), undefined);
    assert.equal(parseEnhancedCode('2.0.0Ok', 250), undefined);
    assert.equal(parseEnhancedCode('2.0.0\tOk', 250), undefined);
    assert.equal(parseEnhancedCode('3.0.0 x', 354), undefined);
  });
});

describe('parseQueueId', () => {
  it('reads the ids of common servers', () => {
    // Zeek smtp.log last_reply values and the formats of Postfix, Exim, Sendmail and Gmail.
    assert.equal(parseQueueId(reply(250, '2.0.0 Ok: 3462 bytes queued as 077781CA025')), '077781CA025');
    assert.equal(parseQueueId(reply(250, 'OK id=1Mugho-0003Dg-Un')), '1Mugho-0003Dg-Un');
    assert.equal(parseQueueId(reply(250, '2.0.0 s3PDALgR032600 Message accepted for delivery')), 's3PDALgR032600');
    assert.equal(parseQueueId(reply(250, '2.0.0 OK  1617282828 a1si12345678abc.12 - gsmtp')), 'a1si12345678abc.12');
  });

  it('gives nothing for other replies', () => {
    assert.equal(parseQueueId(reply(250, 'Ok')), undefined);
    assert.equal(parseQueueId(reply(250, 'ok 1184401929 qp 26211')), undefined);
    assert.equal(parseQueueId(reply(550, 'queued as ABCDEF')), undefined);
  });
});
