import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseBdatArgument } from '../../src/smtp/commands.js';
import { anomalyNames, c, run, s, type Step } from './smtp-harness.js';

const EHLO_CHUNKING: Step[] = [
  s('220 example.com ESMTP Postfix (Debian/GNU)'),
  c('EHLO localhost'),
  s('250-example.com', '250-PIPELINING', '250-SIZE 10240000', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250 CHUNKING'),
];

describe('SmtpSession BDAT', () => {
  it('reads RFC 3030 example 1', () => {
    const message = 'To: Susan@random.com\r\nFrom: Sam@random.com\r\nSubject: This is a bodyless test message\r\n';
    const { recorder } = run([
      s('220 cnri.reston.va.us SMTP service ready'),
      c('EHLO ymir.claremont.edu'),
      s('250-cnri.reston.va.us says hello', '250 CHUNKING'),
      c('MAIL FROM:<Sam@Random.com>'),
      s('250 <Sam@Random.com>... Sender ok'),
      c('RCPT TO:<Susan@Random.com>'),
      s('250 <Susan@random.com>... Recipient ok'),
      [0, 'BDAT 86 LAST\r\n' + message],
      s('250 Message OK, 86 octets received'),
      c('QUIT'),
      s('221 Goodbye'),
    ]);
    assert.equal(message.length, 86);
    const tx = recorder.tx(0);
    assert.equal(tx.bodyKind, 'bdat');
    assert.equal(tx.bdatChunks, 1);
    assert.equal(tx.bodyBytes, 86);
    assert.equal(tx.bodyComplete, true);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.lastReply?.text, 'Message OK, 86 octets received');
    assert.equal(recorder.bodyText(1), message);
    assert.equal(recorder.session0.commands, 5);
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('reads RFC 3030 example 2 with pipelined chunks', () => {
    const first = Buffer.alloc(100000, 'a');
    const second = Buffer.alloc(324, 'b');
    const { recorder } = run([
      s('220 cnri.reston.va.us SMTP service ready'),
      c('EHLO ymir.claremont.edu'),
      s('250-cnri.reston.va.us says hello', '250-PIPELINING', '250-BINARYMIME', '250 CHUNKING'),
      c('MAIL FROM:<ned@ymir.claremont.edu> BODY=BINARYMIME', 'RCPT TO:<gvaudre@cnri.reston.va.us>', 'RCPT TO:<jstewart@cnri.reston.va.us>'),
      s('250 <ned@ymir.claremont.edu>... Sender and BINARYMIME ok', '250 <gvaudre@cnri.reston.va.us>... Recipient ok', '250 <jstewart@cnri.reston.va.us>... Recipient ok'),
      [0, Buffer.concat([Buffer.from('BDAT 100000\r\n'), first.subarray(0, 60000)])],
      [0, Buffer.concat([first.subarray(60000), Buffer.from('BDAT 324\r\n'), second, Buffer.from('BDAT 0 LAST\r\n')])],
      s('250 100000 bytes received', '250 324 bytes received', '250 Message OK, 100324 octets received'),
      c('QUIT'),
      s('221 Goodbye'),
    ]);
    const tx = recorder.tx(0);
    assert.deepEqual(tx.mailParams, { BODY: 'BINARYMIME' });
    assert.equal(tx.bdatChunks, 3);
    assert.equal(tx.bodyBytes, 100324);
    assert.equal(tx.bodyComplete, true);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.lastReply?.text, 'Message OK, 100324 octets received');
    assert.deepEqual(recorder.bodyBytes(1), Buffer.concat([first, second]));
  });

  it('passes binary data with CRLF.CRLF and NUL bytes unchanged', () => {
    const binary = Buffer.from('head\r\n.\r\n\0\0.\r\n..\r\nBDAT 5\r\nQUIT\r\n\xff', 'latin1');
    const { recorder } = run([
      ...EHLO_CHUNKING,
      [0, Buffer.concat([Buffer.from(`MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT ${binary.length} LAST\r\n`), binary, Buffer.from('MAIL FROM:<e@f>\r\n')])],
      s('250 ok', '250 ok', '250 2.0.0 Ok: queued as 75A291CA025', '250 ok'),
    ]);
    assert.equal(recorder.transactions.length, 2);
    assert.deepEqual(recorder.bodyBytes(1), binary);
    assert.equal(recorder.tx(0).queueId, '75A291CA025');
    assert.equal(recorder.tx(1).mailFrom, 'e@f');
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('finds every chunk boundary when fed byte by byte', () => {
    const script = 'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3\r\nx\r\nBDAT 2 LAST\r\n\r\nQUIT\r\n';
    const steps: Step[] = [...script].map((ch) => [0, ch]);
    const { recorder } = run(steps);
    assert.equal(recorder.bodyText(1), 'x\r\n\r\n');
    assert.equal(recorder.tx(0).bdatChunks, 2);
    assert.equal(recorder.session0.commands, 5);
  });

  it('reads BDAT 0 LAST as the end of the body', () => {
    // Zeek rfc3030-bdat-0-last.pcap: last_reply "250 2.0.0 Ok: 0 bytes queued as 75A291CA025".
    const { recorder } = run([
      ...EHLO_CHUNKING,
      c('MAIL FROM:<zeek@localhost>', 'RCPT TO:<root@localhost>', 'BDAT 0 LAST'),
      s('250 2.1.0 Ok', '250 2.1.5 Ok', '250 2.0.0 Ok: 0 bytes queued as 75A291CA025'),
      c('QUIT'),
      s('221 2.0.0 Bye'),
    ]);
    const tx = recorder.tx(0);
    assert.equal(tx.bodyBytes, 0);
    assert.equal(tx.bodyComplete, true);
    assert.equal(tx.bodyKind, 'bdat');
    assert.equal(tx.queueId, '75A291CA025');
    assert.equal(recorder.bodies.get(1)?.complete, true);
  });

  // The client bytes of Zeek's smtp-bdat-cmd-*.pcap captures; Zeek's smtp.log gives
  // last_reply "521 5.5.4 Syntax: BDAT count [LAST]" and the weird.log names below.
  for (const [size, name] of [
    ['-1', 'smtp_invalid_bdat_command'],
    ['15555555557777777777', 'smtp_huge_bdat_chunk'],
    ['184467440737095516150', 'smtp_invalid_bdat_command'],
  ] as const) {
    it(`rejects chunk size ${size} and reads QUIT as a command`, () => {
      const { recorder } = run([
        ...EHLO_CHUNKING,
        c('MAIL FROM:<zeek@localhost>'),
        s('250 2.1.0 Ok'),
        c('RCPT TO:<root@localhost>'),
        s('250 2.1.5 Ok'),
        c(`BDAT ${size} LAST`),
        s('521 5.5.4 Syntax: BDAT count [LAST]'),
        c('QUIT'),
      ]);
      const tx = recorder.tx(0);
      assert.equal(tx.mailFrom, 'zeek@localhost');
      assert.deepEqual(tx.recipients.map((r) => r.address), ['root@localhost']);
      assert.equal(tx.lastReply?.code, 521);
      assert.equal(tx.lastReply?.text, '5.5.4 Syntax: BDAT count [LAST]');
      assert.equal(tx.status, 'incomplete');
      // The client tried to send the body with BDAT, although no chunk was read.
      assert.equal(tx.bodyKind, 'bdat');
      assert.equal(tx.bodyBytes, 0);
      assert.equal(tx.bdatChunks, 0);
      assert.deepEqual(anomalyNames(tx.anomalies), [name]);
      assert.equal(recorder.session0.commands, 5);
    });
  }

  it('keeps the envelope after a BDAT with a bad tail (Suricata smtp-bdat-bad-tail-next-mail)', () => {
    const first = 'From: alice@example.com\r\nTo: bob@example.com\r\nSubject: after rejected BDAT\r\n\r\nFirst message follows a rejected BDAT command.\r\n';
    const { recorder } = run([
      ...EHLO_CHUNKING,
      c('mail from:<alice@example.com>'),
      s('250 2.1.0 Ok'),
      c('rcpt to:<bob@example.com>'),
      s('250 2.1.5 Ok'),
      c('BDAT 5 X'),
      s('521 5.5.4 Syntax: BDAT count [LAST]'),
      [0, `BDAT ${first.length} LAST\r\n${first}mail from:<bob@example.com>\r\nrcpt to:<alice@example.com>\r\ndata\r\nFrom: bob@example.com\r\n\r\nsecond\r\n.\r\n`],
    ]);
    assert.equal(recorder.transactions.length, 2);
    assert.equal(recorder.tx(0).mailFrom, 'alice@example.com');
    assert.equal(recorder.bodyText(1), first);
    assert.equal(recorder.tx(1).mailFrom, 'bob@example.com');
    assert.deepEqual(recorder.tx(1).recipients.map((r) => r.address), ['alice@example.com']);
    assert.equal(recorder.bodyText(2), 'From: bob@example.com\r\n\r\nsecond\r\n');
    assert.deepEqual(anomalyNames(recorder.tx(0).anomalies), ['smtp_invalid_bdat_command']);
  });

  it('flags DATA after BDAT in one transaction', () => {
    const { recorder } = run([s('220 mx'), [0, 'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 1\r\nx'], c('DATA'), s('250 ok', '250 ok', '250 ok', '503 5.5.1 Error: BDAT and DATA are mutually exclusive'), c('QUIT')]);
    const tx = recorder.tx(0);
    assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_mixed_data_bdat']);
    assert.equal(tx.status, 'rejected');
    assert.equal(tx.bodyComplete, false);
    assert.equal(recorder.bodies.get(1)?.complete, false);
  });

  it('drops pipelined chunks after a rejected BDAT', () => {
    const { recorder } = run([
      s('220 mx'),
      c('MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'BDAT 3'),
      [0, 'abc'],
      s('250 ok', '250 ok', '552 5.3.4 Message too big'),
      [0, 'BDAT 2 LAST\r\nxyRSET\r\n'],
      s('250 ok', '250 ok'),
    ]);
    assert.equal(recorder.transactions.length, 1);
    const tx = recorder.tx(0);
    assert.equal(tx.status, 'rejected');
    assert.equal(tx.lastReply?.code, 552);
    assert.equal(recorder.bodyText(1), 'abc');
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('counts a gap inside a chunk against its size', () => {
    const { recorder } = run([
      s('220 mx'),
      c('MAIL FROM:<a@b>', 'RCPT TO:<c@d>'),
      [0, 'BDAT 10 LAST\r\n0123'],
      ['gap', 0, 4],
      [0, '89QUIT\r\n'],
      s('250 ok', '250 ok', '250 ok', '221 bye'),
    ]);
    const tx = recorder.tx(0);
    assert.equal(recorder.bodyText(1), '012389');
    assert.equal(tx.bodyComplete, false);
    assert.equal(tx.status, 'completed');
    assert.equal(recorder.session0.commands, 4);
  });
});

describe('parseBdatArgument', () => {
  it('accepts sizes and LAST', () => {
    assert.deepEqual(parseBdatArgument('86 LAST'), { ok: true, size: 86, last: true });
    assert.deepEqual(parseBdatArgument('100000'), { ok: true, size: 100000, last: false });
    assert.deepEqual(parseBdatArgument('0 last'), { ok: true, size: 0, last: true });
  });

  it('rejects bad sizes', () => {
    assert.equal(parseBdatArgument('').ok, false);
    assert.equal(parseBdatArgument('+5').ok, false);
    assert.equal(parseBdatArgument('5 X').ok, false);
    assert.equal(parseBdatArgument('5 LAST X').ok, false);
    assert.equal(parseBdatArgument('9007199254740992').ok, false);
    assert.deepEqual(parseBdatArgument('9007199254740991'), { ok: true, size: 9007199254740991, last: false });
  });
});
