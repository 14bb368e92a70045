import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_SMTP_LIMITS, SMTP_ANOMALIES, SmtpSession } from '../../src/smtp/index.js';
import { Recorder, anomalyNames, c, makeFlow, run, s, type Step } from './smtp-harness.js';

// RFC 5321 Appendix D.1, "A Typical SMTP Transaction Scenario". The client lines are wire
// text, so "...etc." is a stuffed line whose content is "..etc." (RFC 5321 section 4.5.2).
const RFC5321_D1: Step[] = [
  s('220 foo.com Simple Mail Transfer Service Ready'),
  c('EHLO bar.com'),
  s('250-foo.com greets bar.com', '250-8BITMIME', '250-SIZE', '250-DSN', '250 HELP'),
  c('MAIL FROM:<Smith@bar.com>'),
  s('250 OK'),
  c('RCPT TO:<Jones@foo.com>'),
  s('250 OK'),
  c('RCPT TO:<Green@foo.com>'),
  s('550 No such user here'),
  c('RCPT TO:<Brown@foo.com>'),
  s('250 OK'),
  c('DATA'),
  s('354 Start mail input; end with <CRLF>.<CRLF>'),
  c('Blah blah blah...', '...etc. etc. etc.', '.'),
  s('250 OK'),
  c('QUIT'),
  s('221 foo.com Service closing transmission channel'),
];

const D1_BODY = 'Blah blah blah...\r\n..etc. etc. etc.\r\n';

describe('SmtpSession typical transaction', () => {
  it('follows RFC 5321 D.1', () => {
    const { recorder } = run(RFC5321_D1);
    assert.equal(recorder.transactions.length, 1);
    const tx = recorder.tx(0);
    assert.equal(tx.depth, 1);
    assert.equal(tx.helo, 'bar.com');
    assert.equal(tx.heloCommand, 'EHLO');
    assert.equal(tx.mailFrom, 'Smith@bar.com');
    assert.equal(tx.mailReply?.code, 250);
    assert.deepEqual(tx.recipients.map((r) => r.address), ['Jones@foo.com', 'Green@foo.com', 'Brown@foo.com']);
    assert.deepEqual(tx.recipients.map((r) => r.accepted), [true, false, true]);
    assert.equal(tx.recipients[1]?.reply?.code, 550);
    assert.equal(tx.recipients[1]?.reply?.text, 'No such user here');
    assert.equal(tx.bodyKind, 'data');
    assert.equal(tx.dataReply?.code, 354);
    assert.equal(recorder.bodyText(1), D1_BODY);
    assert.equal(tx.bodyBytes, 37);
    assert.equal(tx.bodyComplete, true);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.lastReply?.code, 250);
    assert.equal(tx.lastReply?.text, 'OK');
    assert.equal(tx.tls, false);
    assert.deepEqual(tx.anomalies, []);
    assert.equal(recorder.bodies.get(1)?.complete, true);
    assert.equal(recorder.bodies.get(1)?.endCalls, 1);
  });

  it('reports the D.1 session', () => {
    const { recorder } = run(RFC5321_D1);
    const info = recorder.session0;
    assert.equal(info.banner?.code, 220);
    assert.equal(info.banner?.text, 'foo.com Simple Mail Transfer Service Ready');
    assert.equal(info.helo, 'bar.com');
    assert.deepEqual(info.extensions, ['8BITMIME', 'SIZE', 'DSN', 'HELP']);
    assert.equal(info.commands, 7);
    assert.equal(info.replies, 9);
    assert.equal(info.transactions, 1);
    assert.equal(info.tls, false);
    assert.equal(info.clientOnly, false);
    assert.equal(info.closeReason, 'fin');
    assert.deepEqual(info.anomalies, []);
  });

  it('reads the whole D.1 exchange split at every byte', () => {
    const client = RFC5321_D1.filter((step) => step[0] === 0);
    for (const [index, step] of RFC5321_D1.entries()) {
      if (step[0] !== 0) continue;
      const text = step[1] as string;
      for (let cut = 1; cut < text.length; cut++) {
        const steps = [...RFC5321_D1];
        steps.splice(index, 1, [0, text.slice(0, cut)], [0, text.slice(cut)]);
        const { recorder } = run(steps);
        assert.equal(recorder.transactions.length, 1, `step ${index} cut ${cut}`);
        assert.equal(recorder.bodyText(1), D1_BODY, `step ${index} cut ${cut}`);
        assert.equal(recorder.tx(0).status, 'completed');
      }
    }
    assert.ok(client.length > 0);
  });

  it('parses a multi-line reply with enhanced codes', () => {
    const { recorder } = run([
      s('220 mx ESMTP'),
      c('EHLO h'),
      s('250-mx', '250-size 1000', '250 AUTH PLAIN LOGIN'),
      c('MAIL FROM:<a@b>'),
      s('250 2.1.0 Ok'),
    ]);
    const info = recorder.session0;
    assert.deepEqual(info.extensions, ['SIZE 1000', 'AUTH PLAIN LOGIN']);
    assert.equal(recorder.tx(0).mailReply?.enhanced, '2.1.0');
    assert.equal(recorder.tx(0).mailReply?.text, '2.1.0 Ok');
  });
});

describe('SmtpSession pipelining', () => {
  // RFC 2920 section 3.2, the first example, both messages.
  const RFC2920: Step[] = [
    s('220 innosoft.com SMTP service ready'),
    c('EHLO dbc.mtview.ca.us'),
    s('250-innosoft.com', '250 PIPELINING'),
    c('MAIL FROM:<mrose@dbc.mtview.ca.us>', 'RCPT TO:<ned@innosoft.com>', 'RCPT TO:<dan@innosoft.com>', 'RCPT TO:<kvc@innosoft.com>', 'DATA'),
    s('250 sender <mrose@dbc.mtview.ca.us> OK', '250 recipient <ned@innosoft.com> OK', '250 recipient <dan@innosoft.com> OK', '250 recipient <kvc@innosoft.com> OK', '354 enter mail, end with line containing only "."'),
    c('first message', '.', 'MAIL FROM:<mrose@dbc.mtview.ca.us>'),
    s('250 message sent'),
    c('RCPT TO:<fred@innosoft.com>', 'RCPT TO:<bob@innosoft.com>', 'DATA'),
    s('250 sender <mrose@dbc.mtview.ca.us> OK', '550 remote mail to <fred@innosoft.com> not allowed', '250 recipient <bob@innosoft.com> OK', '354 enter mail, end with line containing only "."'),
    c('second message', '.', 'QUIT'),
    s('250 message sent', '221 goodbye'),
  ];

  it('pairs pipelined replies with commands (RFC 2920 3.2)', () => {
    const { recorder } = run(RFC2920);
    assert.equal(recorder.transactions.length, 2);
    const first = recorder.tx(0);
    assert.deepEqual(first.recipients.map((r) => r.accepted), [true, true, true]);
    assert.equal(first.status, 'completed');
    assert.equal(first.lastReply?.text, 'message sent');
    const second = recorder.tx(1);
    assert.equal(second.depth, 2);
    assert.equal(second.mailReply?.text, 'sender <mrose@dbc.mtview.ca.us> OK');
    assert.deepEqual(second.recipients.map((r) => [r.address, r.accepted]), [['fred@innosoft.com', false], ['bob@innosoft.com', true]]);
    assert.equal(recorder.bodyText(2), 'second message\r\n');
    assert.equal(second.status, 'completed');
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('reads pipelined commands and body in one segment', () => {
    const { recorder } = run([
      s('220 mx'),
      c('EHLO h'),
      s('250-mx', '250 PIPELINING'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@y>', 'DATA'),
      // The 354 and the body arrive before the replies to MAIL and RCPT are read.
      s('250 ok', '250 ok', '354 go'),
      c('Subject: s', '', 'body', '.', 'MAIL FROM:<c@x>', 'RCPT TO:<d@y>', 'DATA'),
      s('250 queued as ABC12345', '250 ok', '250 ok', '354 go'),
      c('second', '.', 'QUIT'),
      s('250 queued as DEF67890', '221 bye'),
    ]);
    assert.equal(recorder.transactions.length, 2);
    assert.equal(recorder.tx(0).queueId, 'ABC12345');
    assert.equal(recorder.tx(1).queueId, 'DEF67890');
    assert.equal(recorder.tx(1).mailFrom, 'c@x');
    assert.equal(recorder.bodyText(1), 'Subject: s\r\n\r\nbody\r\n');
    assert.equal(recorder.bodyText(2), 'second\r\n');
  });

  it('holds a body sent before the 354 and reads it after', () => {
    const { recorder } = run([
      s('220 mx'),
      c('HELO h'),
      s('250 mx'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@y>', 'DATA', 'early body', '.', 'QUIT'),
      s('250 ok', '250 ok', '354 go', '250 done', '221 bye'),
    ]);
    assert.equal(recorder.transactions.length, 1);
    assert.equal(recorder.bodyText(1), 'early body\r\n');
    assert.equal(recorder.tx(0).status, 'completed');
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('reads lines after a rejected DATA as commands (RFC 2920 3.2 errors)', () => {
    const { recorder } = run([
      s('220 innosoft.com SMTP service ready'),
      c('EHLO dbc.mtview.ca.us'),
      s('250-innosoft.com', '250 PIPELINING'),
      c('MAIL FROM:<mrose@dbc.mtview.ca.us>', 'RCPT TO:<ned@innosoft.com>', 'RCPT TO:<dan@innosoft.com>', 'RCPT TO:<kvc@innosoft.com>', 'DATA'),
      s('250 sender <mrose@dbc.mtview.ca.us> OK', '550 remote mail to <ned@innosoft.com> not allowed', '550 remote mail to <dan@innosoft.com> not allowed', '550 remote mail to <kvc@innosoft.com> not allowed', '554 no valid recipients given'),
      c('QUIT'),
      s('221 goodbye'),
    ]);
    assert.equal(recorder.transactions.length, 1);
    const tx = recorder.tx(0);
    assert.deepEqual(tx.recipients.map((r) => r.accepted), [false, false, false]);
    assert.equal(tx.dataReply?.code, 554);
    assert.equal(tx.status, 'rejected');
    assert.equal(tx.lastReply?.text, 'no valid recipients given');
    assert.equal(tx.bodyKind, undefined);
    assert.equal(recorder.bodies.size, 0);
    assert.equal(recorder.session0.commands, 7);
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('treats a rejected DATA followed by held text as commands', () => {
    const { recorder } = run([
      s('220 mx'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@y>', 'DATA', 'RSET', 'MAIL FROM:<c@x>', 'RCPT TO:<d@y>', 'DATA'),
      s('250 ok', '250 ok', '503 no', '250 reset', '250 ok', '250 ok', '354 go'),
      c('text', '.'),
      s('250 ok'),
    ]);
    assert.equal(recorder.transactions.length, 2);
    assert.equal(recorder.tx(0).status, 'rejected');
    assert.equal(recorder.tx(1).mailFrom, 'c@x');
    assert.equal(recorder.tx(1).status, 'completed');
    assert.equal(recorder.bodyText(2), 'text\r\n');
  });
});

describe('SmtpSession transactions', () => {
  it('ends a transaction at RSET and starts the next at MAIL', () => {
    const { recorder } = run([
      s('220 mx'),
      c('EHLO h'),
      s('250 mx'),
      c('MAIL FROM:<a@x>'),
      s('250 ok'),
      c('RCPT TO:<b@y>'),
      s('250 ok'),
      c('RSET'),
      s('250 reset'),
      c('MAIL FROM:<>'),
      s('250 ok'),
      c('RCPT TO:<c@y>'),
      s('250 ok'),
      c('DATA'),
      s('354 go'),
      c('x', '.'),
      s('250 ok'),
      c('MAIL FROM:<e@x>'),
      s('250 ok'),
      c('MAIL FROM:<f@x>'),
      s('250 ok'),
      c('QUIT'),
      s('221 bye'),
    ]);
    assert.deepEqual(recorder.transactions.map((tx) => [tx.depth, tx.mailFrom, tx.status]), [
      [1, 'a@x', 'reset'],
      [2, '', 'completed'],
      [3, 'e@x', 'aborted'],
      [4, 'f@x', 'incomplete'],
    ]);
    assert.equal(recorder.tx(0).lastReply?.text, 'reset');
    assert.equal(recorder.session0.transactions, 4);
  });

  it('resets the envelope at an accepted EHLO only', () => {
    const { recorder } = run([
      s('220 mx'),
      c('HELO client.example.com'),
      s('250 mx'),
      c('MAIL FROM:<alice@example.com>'),
      s('250 ok'),
      c('EHLO'),
      s('501 Syntax: EHLO hostname'),
      c('RCPT TO:<bob@example.com>'),
      s('250 ok'),
      c('EHLO other.example.com'),
      s('250 mx'),
      c('MAIL FROM:<bob@example.com>'),
      s('250 ok'),
    ]);
    assert.equal(recorder.transactions.length, 2);
    assert.equal(recorder.tx(0).status, 'reset');
    assert.deepEqual(recorder.tx(0).recipients.map((r) => r.address), ['bob@example.com']);
    assert.equal(recorder.tx(0).helo, 'client.example.com');
    assert.equal(recorder.tx(1).helo, 'other.example.com');
    assert.equal(recorder.session0.helo, 'other.example.com');
  });

  it('rejects a transaction whose MAIL FROM was refused', () => {
    const { recorder } = run([s('220 mx'), c('MAIL FROM:<spam@x>'), s('550 5.7.1 go away'), c('QUIT'), s('221 bye')]);
    assert.equal(recorder.tx(0).status, 'rejected');
    assert.equal(recorder.tx(0).lastReply?.enhanced, '5.7.1');
  });

  it('tolerates address forms servers accept', () => {
    const { recorder } = run([
      s('220 mx'),
      c('mail from: <a@b> SIZE=1234 BODY=8BITMIME SMTPUTF8 AUTH=<>', 'RCPT TO:plain@host', 'RCPT To:<@relay.example:routed@host> NOTIFY=NEVER', 'RCPT TO:<"john doe"@host>'),
      s('250 ok', '250 ok', '250 ok', '250 ok'),
    ]);
    const tx = recorder.tx(0);
    assert.equal(tx.mailFrom, 'a@b');
    assert.deepEqual(tx.mailParams, { SIZE: '1234', BODY: '8BITMIME', SMTPUTF8: '', AUTH: '<>' });
    assert.deepEqual(tx.recipients.map((r) => r.address), ['plain@host', 'routed@host', '"john doe"@host']);
    assert.deepEqual(tx.recipients[1]?.params, { NOTIFY: 'NEVER' });
  });

  it('parses the queue id of Exim and Postfix replies', () => {
    const exim = run([s('220 mx'), c('MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'DATA'), s('250 OK', '250 Accepted', '354 go'), c('x', '.'), s('250 OK id=1Mugho-0003Dg-Un')]);
    assert.equal(exim.recorder.tx(0).queueId, '1Mugho-0003Dg-Un');
    const postfix = run([s('220 mx'), c('MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'BDAT 1 LAST', 'x'), s('250 ok', '250 ok', '250 2.0.0 Ok: 86 bytes queued as 1E2891CA025')]);
    assert.equal(postfix.recorder.tx(0).queueId, '1E2891CA025');
    assert.equal(postfix.recorder.tx(0).lastReply?.text, '2.0.0 Ok: 86 bytes queued as 1E2891CA025');
  });

  it('emits every body end before its transaction', () => {
    const { recorder } = run([s('220 mx'), c('MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'DATA'), s('250 ok', '250 ok', '354 go'), c('cut off')]);
    assert.equal(recorder.tx(0).status, 'incomplete');
    assert.equal(recorder.tx(0).bodyComplete, false);
    assert.equal(recorder.bodies.get(1)?.complete, false);
    assert.equal(recorder.bodyText(1), 'cut off\r\n');
  });

  it('skips the body when openBody returns undefined', () => {
    const recorder = new Recorder();
    recorder.wantBody = false;
    run(RFC5321_D1, { recorder });
    assert.equal(recorder.tx(0).bodyBytes, 37);
    assert.equal(recorder.tx(0).bodyComplete, true);
  });
});

describe('SmtpSession client-only capture', () => {
  it('reads transactions without any server bytes', () => {
    const { recorder } = run([
      c('EHLO localhost.localdomain'),
      c('MAIL FROM:<sender@example.com>'),
      c('RCPT TO:<recipient@example.com>'),
      c('DATA'),
      c('Subject: subject', '', 'text', '.'),
      c('MAIL FROM:<second@example.com>', 'RCPT TO:<r2@example.com>', 'DATA', 'two', '.', 'QUIT'),
    ]);
    assert.equal(recorder.transactions.length, 2);
    const tx = recorder.tx(0);
    assert.equal(tx.helo, 'localhost.localdomain');
    assert.equal(tx.mailFrom, 'sender@example.com');
    assert.equal(tx.recipients[0]?.reply, undefined);
    assert.equal(tx.recipients[0]?.accepted, undefined);
    assert.equal(recorder.bodyText(1), 'Subject: subject\r\n\r\ntext\r\n');
    assert.equal(tx.bodyComplete, true);
    assert.equal(tx.status, 'incomplete');
    assert.equal(recorder.bodyText(2), 'two\r\n');
    assert.equal(recorder.session0.clientOnly, true);
    assert.deepEqual(recorder.session0.anomalies, []);
  });
});

describe('SmtpSession TLS', () => {
  it('stops parsing after STARTTLS is accepted (RFC 3207)', () => {
    const { recorder } = run([
      s('220 mail.imc.org SMTP service ready'),
      c('EHLO mail.example.com'),
      s('250-mail.imc.org offers a warm hug of welcome', '250-8BITMIME', '250-STARTTLS', '250 DSN'),
      c('STARTTLS'),
      s('220 Go ahead'),
      [0, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])],
      [1, Buffer.from([0x16, 0x03, 0x03, 0x00, 0x02, 9, 9])],
      c('MAIL FROM:<never@seen>'),
    ]);
    const info = recorder.session0;
    assert.equal(info.tls, true);
    assert.equal(info.tlsMode, 'starttls');
    assert.deepEqual(info.extensions, ['8BITMIME', 'STARTTLS', 'DSN']);
    assert.equal(recorder.transactions.length, 0);
    assert.deepEqual(info.anomalies, []);
  });

  it('continues in clear when STARTTLS is refused', () => {
    const { recorder } = run([s('220 mx'), c('STARTTLS'), s('454 TLS not available'), c('MAIL FROM:<a@b>'), s('250 ok')]);
    assert.equal(recorder.session0.tls, false);
    assert.equal(recorder.tx(0).mailFrom, 'a@b');
  });

  it('detects TLS after STARTTLS in a client-only capture', () => {
    const { recorder } = run([c('EHLO h'), c('MAIL FROM:<a@b>'), c('STARTTLS'), [0, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])]]);
    assert.equal(recorder.session0.tls, true);
    assert.equal(recorder.session0.tlsMode, 'starttls');
    assert.equal(recorder.tx(0).tls, false);
    assert.equal(recorder.tx(0).status, 'reset');
  });

  it('keeps clear text after a client-only STARTTLS without TLS bytes', () => {
    const { recorder } = run([c('STARTTLS'), c('MAIL FROM:<a@b>')]);
    assert.equal(recorder.session0.tls, false);
    assert.equal(recorder.tx(0).mailFrom, 'a@b');
  });

  it('reads nothing under implicit TLS', () => {
    const { recorder } = run([[1, Buffer.from([0x16, 3, 3])], c('MAIL FROM:<a@b>')], { implicitTls: true, flow: { server: { ip: '192.0.2.25', port: 465 } } });
    assert.equal(recorder.session0.tls, true);
    assert.equal(recorder.session0.tlsMode, 'implicit');
    assert.equal(recorder.session0.commands, 0);
    assert.equal(recorder.transactions.length, 0);
  });
});

describe('SmtpSession gaps', () => {
  it('resynchronises at the next command after a client gap', () => {
    const { recorder } = run([
      s('220 mx'),
      c('EHLO h'),
      s('250 mx'),
      [0, 'MAIL FROM:<a@'],
      ['gap', 0, 500],
      // Reply to the command lost in the gap: counted without an anomaly.
      s('250 ok'),
      [0, 'tail of something lost\r\nData follows\r\nMAIL FROM:<b@x>\r\n'],
      s('250 ok'),
      c('RCPT TO:<c@x>'),
      s('250 ok'),
    ]);
    assert.equal(recorder.transactions.length, 1);
    assert.equal(recorder.tx(0).mailFrom, 'b@x');
    assert.deepEqual(recorder.tx(0).recipients.map((r) => r.accepted), [true]);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_content_gap']);
  });

  it('marks a body with a gap incomplete and keeps reading it', () => {
    const { recorder } = run([
      s('220 mx'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@x>', 'DATA'),
      s('250 ok', '250 ok', '354 go'),
      c('first part'),
      ['gap', 0, 1000],
      c('last part', '.', 'QUIT'),
      s('250 ok', '221 bye'),
    ]);
    const tx = recorder.tx(0);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.bodyComplete, false);
    assert.equal(recorder.bodies.get(1)?.complete, false);
    assert.equal(recorder.bodyText(1), 'first part\r\nlast part\r\n');
    assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_content_gap']);
    assert.equal(recorder.session0.commands, 4);
  });

  it('ends the body at a reply when the end of data was lost', () => {
    const { recorder } = run([
      s('220 mx'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@x>', 'DATA'),
      s('250 ok', '250 ok', '354 go'),
      c('body'),
      ['gap', 0, 7],
      s('250 queued as QQQQQ1'),
      c('QUIT'),
      s('221 bye'),
    ]);
    const tx = recorder.tx(0);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.queueId, 'QQQQQ1');
    assert.equal(tx.bodyComplete, false);
    assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_content_gap', 'smtp_reply_during_body']);
    assert.equal(recorder.session0.commands, 4);
  });

  it('drops waiting commands after a server gap', () => {
    const { recorder } = run([
      s('220 mx'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@x>'),
      [1, '250 o'],
      ['gap', 1, 20],
      [1, 'k\r\n250 ok\r\n'],
      c('RCPT TO:<c@x>'),
      s('250 ok'),
    ]);
    const tx = recorder.tx(0);
    assert.deepEqual(tx.recipients.map((r) => r.accepted), [undefined, true]);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_content_gap']);
  });
});

describe('SmtpSession reply realignment', () => {
  it('skips the greeting when the first reply answers EHLO', () => {
    // Suricata smtp-rset-starttls.pcap: no greeting, then EHLO, RSET and STARTTLS.
    const { recorder } = run([[0, 'EHLO\n'], [1, '250\r\n'], [0, 'rset\nstaRttLs\n'], [1, '250\r\n'], [1, '220\r\n']]);
    const info = recorder.session0;
    assert.equal(info.banner, undefined);
    assert.equal(info.tls, true);
    assert.deepEqual(anomalyNames(info.anomalies), ['smtp_bare_lf', 'smtp_missing_reply']);
  });

  it('pairs a 334 with AUTH when the EHLO reply was lost', () => {
    // Suricata smtp-bug-6053.pcap: the greeting has no CRLF, so it swallows the EHLO reply.
    const { recorder } = run([
      [1, '220 mx ESMTP ' + 'A'.repeat(200)],
      c('EHLO Simone'),
      s('250-smtp001.mail.example.com'),
      c('AUTH LOGIN'),
      s('334 VXNlcm5hbWU6'),
      c('Z2FsdW50'),
      s('334 UGFzc3dvcmQ6'),
      c('VjF2MXRyMG4='),
      s('235 ok, go ahead (#2.0.0)'),
      c('MAIL FROM: <xxxxxx@xxxxx.co.uk>'),
      s('250 ok'),
      c('RCPT TO: <xxxxx@aba.com>'),
      s('250 ok'),
      c('QUIT'),
      s('221 smtp001.mail.example.com'),
    ]);
    const info = recorder.session0;
    assert.equal(info.helo, 'Simone');
    assert.equal(info.authUser, 'galunt');
    assert.equal(info.authSuccess, true);
    assert.deepEqual(recorder.tx(0).recipients.map((r) => r.reply?.code), [250]);
    assert.deepEqual(anomalyNames(info.anomalies), ['smtp_missing_reply']);
  });

  it('accepts an unsolicited 421', () => {
    const { recorder } = run([s('220 mx'), c('NOOP'), s('250 ok', '421 4.4.2 timeout')]);
    assert.deepEqual(recorder.session0.anomalies, []);
  });
});

describe('SmtpSession hostile input', () => {
  it('cuts long lines and flags them', () => {
    const { recorder } = run([s('220 mx'), c('MAIL FROM:<' + 'a'.repeat(10000) + '@b>'), s('250 ok')], { limits: { maxLineLength: 100 } });
    assert.equal(recorder.tx(0).mailFrom?.length, 100 - 'MAIL FROM:<'.length);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_line_too_long']);
  });

  it('records no HELO name from a cut line', () => {
    const steps: Step[] = [s('220 mx'), c('EHLO first.example'), s('250 mx'), c('EHLO ' + 'h'.repeat(300)), s('500 5.5.2 Error: line too long')];
    const { recorder } = run(steps, { limits: { maxLineLength: 100 } });
    const info = recorder.session0;
    assert.equal(info.helo, 'first.example');
    assert.deepEqual(anomalyNames(info.anomalies), ['smtp_line_too_long']);
    assert.equal(info.anomalies[0]?.detail, 'client line of 305 bytes');
  });

  it('flags a line that never ends', () => {
    const tenMegabytes = Buffer.alloc(10 * 1024 * 1024, 'x');
    const { recorder, session } = run([s('220 mx'), c('EHLO a'), s('250 mx'), [0, tenMegabytes]], { keepOpen: true });
    session.onClose('timeout', 5000);
    const anomalies = recorder.session0.anomalies;
    assert.deepEqual(anomalyNames(anomalies), ['smtp_line_too_long']);
    assert.equal(anomalies[0]?.detail, `client line of at least ${10 * 1024 * 1024} bytes without a line end`);
    assert.equal(anomalies[0]?.direction, 0);
  });

  it('flags a long line once when it ends later', () => {
    const steps: Step[] = [s('220 mx'), [0, 'NOOP ' + 'y'.repeat(150)], [0, 'y'.repeat(150)], [0, '\r\nQUIT\r\n'], [1, '2'.repeat(200)]];
    const { recorder } = run(steps, { limits: { maxLineLength: 100 } });
    const anomalies = recorder.session0.anomalies;
    assert.deepEqual(anomalyNames(anomalies), ['smtp_line_too_long', 'smtp_line_too_long']);
    assert.equal(anomalies[0]?.detail, 'client line of 305 bytes');
    assert.equal(anomalies[0]?.ts, 1002);
    assert.equal(anomalies[1]?.detail, 'reply line of at least 200 bytes without a line end');
    assert.equal(anomalies[1]?.direction, 1);
  });

  it('flags an unended line cut by a gap', () => {
    const steps: Step[] = [s('220 mx'), [0, 'z'.repeat(500)], ['gap', 0, 10], c('QUIT')];
    const { recorder } = run(steps, { limits: { maxLineLength: 100 } });
    const anomalies = recorder.session0.anomalies;
    assert.deepEqual(anomalyNames(anomalies), ['smtp_line_too_long', 'smtp_content_gap']);
    assert.equal(anomalies[0]?.detail, 'client line of at least 500 bytes without a line end');
  });

  it('flags unknown commands, unmatched and invalid replies', () => {
    const { recorder } = run([s('220 mx'), c('XYZZY now'), s('500 unknown'), s('250 extra'), [1, 'garbage\r\n'], c('\u0000\u0001\u0002')]);
    const anomalies = recorder.session0.anomalies;
    assert.deepEqual(anomalyNames(anomalies), ['smtp_unknown_command', 'smtp_unmatched_reply', 'smtp_invalid_reply', 'smtp_unknown_command']);
    assert.equal(anomalies[0]?.detail, '9-byte line, printable ASCII');
    assert.equal(anomalies[3]?.detail, '3-byte line, not printable ASCII');
  });

  it('bounds recipients per transaction', () => {
    const rcpts = Array.from({ length: 30 }, (_, i) => `RCPT TO:<r${i}@x>`);
    const { recorder } = run([s('220 mx'), c('MAIL FROM:<a@x>', ...rcpts), s('250 ok', ...rcpts.map(() => '250 ok'))], { limits: { maxRecipients: 10 } });
    const tx = recorder.tx(0);
    assert.equal(tx.recipients.length, 10);
    assert.ok(tx.recipients.every((r) => r.accepted === true));
    assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_too_many_recipients']);
    assert.equal(tx.anomalies[0]?.detail, '20 beyond 10');
    // 30 RCPT commands, 10 listed: the other 20 are counted on the record.
    assert.equal(tx.unlistedRecipients, 20);
  });

  it('bounds pending commands', () => {
    const noops = Array.from({ length: 50 }, () => 'NOOP');
    const { recorder, session } = run([s('220 mx'), c(...noops)], { limits: { maxPendingCommands: 8 }, keepOpen: true });
    assert.equal(session.pendingEntries, 1);
    const helos = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 'HELO a' : 'EHLO a'));
    session.onData(0, Buffer.from(helos.map((line) => line + '\r\n').join('')), 2000);
    assert.ok(session.pendingEntries <= 9);
    session.onClose('fin', 2001);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_too_many_pending_commands']);
    assert.equal(recorder.session0.commands, 100);
  });

  it('bounds anomalies per session', () => {
    const junk = Array.from({ length: 500 }, (_, i) => `JUNK${i}`);
    const { recorder } = run([s('220 mx'), c(...junk)], { limits: { maxAnomaliesPerSession: 5 } });
    const names = anomalyNames(recorder.session0.anomalies);
    assert.equal(names.length, 6);
    assert.equal(names[5], 'smtp_too_many_anomalies');
    assert.equal(recorder.session0.anomalies[5]?.detail, '495 further anomalies not recorded');
  });

  it('survives random bytes in both directions', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 50; round++) {
      const recorder = new Recorder();
      const session = new SmtpSession(makeFlow(), recorder);
      const pieces = ['MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n', 'DATA\r\n', 'BDAT 5\r\n', '.\r\n', 'AUTH LOGIN\r\n', '354 go\r\n', '250 ok\r\n', '334 x\r\n', 'STARTTLS\r\n', '220 go\r\n'];
      for (let i = 0; i < 200; i++) {
        const direction = random() % 2 === 0 ? 0 : 1;
        const data = random() % 3 === 0
          ? Buffer.from(Array.from({ length: random() % 64 }, () => random() % 256))
          : Buffer.from(pieces[random() % pieces.length] as string);
        if (random() % 20 === 0) session.onGap(direction, random() % 100, 1000 + i);
        else session.onData(direction, data, 1000 + i);
      }
      session.onClose('end', 2000);
      assert.equal(recorder.sessions.length, 1);
      for (const body of recorder.bodies.values()) assert.equal(body.endCalls, 1);
    }
  });

  it('documents every anomaly name it can emit', () => {
    for (const name of Object.keys(SMTP_ANOMALIES)) assert.match(name, /^smtp_[a-z0-9_]+$/);
    assert.equal(DEFAULT_SMTP_LIMITS.maxLineLength, 4096);
  });
});

describe('SmtpSession line endings', () => {
  const smuggled = 'MAIL FROM:<ceo@x.example>\r\nRCPT TO:<victim@y.example>\r\nDATA\r\nSubject: smuggled\r\n';

  /** A message whose body holds an end-of-data variant followed by a smuggled transaction. */
  function smuggle(sequence: string): Step[] {
    return [
      s('220 mx'),
      c('MAIL FROM:<good@x.example>', 'RCPT TO:<r@y.example>', 'DATA'),
      s('250 ok', '250 ok', '354 go'),
      [0, 'Subject: benign\r\n\r\nhello' + sequence + smuggled + '.\r\n'],
      s('250 ok queued as ONE01'),
      c('QUIT'),
      s('221 bye'),
    ];
  }

  it('ends data at a bare LF terminator and names it', () => {
    for (const [sequence, name] of [['\n.\n', '<LF>.<LF>'], ['\r\n.\n', '<CR><LF>.<LF>'], ['\n.\r\n', '<LF>.<CR><LF>']]) {
      const { recorder } = run(smuggle(sequence as string));
      const first = recorder.tx(0);
      assert.equal(recorder.bodyText(1), 'Subject: benign\r\n\r\nhello' + (sequence?.startsWith('\r') ? '\r\n' : '\n'), name);
      assert.ok(anomalyNames(first.anomalies).includes('smtp_bare_lf'), name);
      const end = first.anomalies.find((a) => a.name === 'smtp_bare_lf_end_of_data');
      assert.equal(end?.detail, `data ended with ${name}`);
      // The smuggled MAIL FROM is read as a second transaction.
      assert.equal(recorder.tx(1).mailFrom, 'ceo@x.example', name);
    }
  });

  it('reads a bare CR sequence as body and flags it', () => {
    for (const [sequence, bareCr] of [['\r.\r', 2], ['\r\n.\r', 1], ['\r.\r\n', 1]] as const) {
      const { recorder } = run(smuggle(sequence));
      const label = JSON.stringify(sequence);
      assert.equal(recorder.transactions.length, 1, label);
      const tx = recorder.tx(0);
      assert.equal(tx.status, 'completed', label);
      assert.equal(tx.queueId, 'ONE01', label);
      assert.ok(recorder.bodyText(1).endsWith(smuggled), label);
      assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_bare_cr'], label);
      const dotLines = '1 "." line next to a bare CR';
      assert.equal(tx.anomalies[0]?.detail, `${bareCr} bare CR${bareCr === 1 ? '' : 's'} in the body, ${dotLines}`, label);
    }
  });

  it('flags a bare CR in commands once per session', () => {
    const { recorder } = run([s('220 mx'), c('MAIL FROM:<a@b>\rRCPT TO:<c@d>', 'RSET x\r', 'NOOP'), s('250 ok', '250 ok', '250 ok')]);
    const anomalies = recorder.session0.anomalies;
    assert.deepEqual(anomalyNames(anomalies), ['smtp_bare_cr']);
    assert.equal(anomalies[0]?.detail, 'command line contained a CR without LF');
  });

  it('reports body line endings of a cut body', () => {
    const { recorder } = run([s('220 mx'), c('MAIL FROM:<a@b>', 'DATA'), s('250 ok', '354 go'), [0, 'x\r.\ry\n']]);
    const tx = recorder.tx(0);
    assert.equal(tx.bodyComplete, false);
    assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_bare_lf', 'smtp_bare_cr']);
  });
});

describe('SmtpSession events', () => {
  it('calls session exactly once and ignores data after close', () => {
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder);
    session.onData(1, Buffer.from('220 mx\r\n'), 1001);
    session.onClose('rst', 1002);
    session.onClose('fin', 1003);
    session.onData(0, Buffer.from('MAIL FROM:<a@b>\r\n'), 1004);
    assert.equal(recorder.sessions.length, 1);
    assert.equal(recorder.session0.closeReason, 'rst');
    assert.equal(recorder.transactions.length, 0);
  });

  it('records flow anomalies on the session', () => {
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder);
    session.onAnomaly({ name: 'retransmission_inconsistency', ts: 1001, direction: 0 });
    session.onClose('fin', 1002);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['retransmission_inconsistency']);
  });

  it('catches an exception thrown by the body consumer', () => {
    const recorder = new Recorder();
    recorder.openBody = () => ({
      write: () => {
        throw new Error('parser broke');
      },
      end: () => undefined,
    });
    run([s('220 mx'), c('MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'DATA'), s('250 ok', '250 ok', '354 go'), c('x', '.'), s('250 ok')], { recorder });
    assert.deepEqual(anomalyNames(recorder.tx(0).anomalies), ['smtp_body_sink_error']);
    assert.equal(recorder.tx(0).anomalies[0]?.detail, 'parser broke');
  });
});

describe('SmtpSession sequence errors', () => {
  it('reports a refused RCPT before MAIL as a session anomaly', () => {
    const { recorder } = run([
      s('220 mx.example.com ESMTP'),
      c('HELO client.example.com'),
      s('250 mx.example.com'),
      c('RCPT TO:<bob@example.com>'),
      s('503 5.5.1 Error: need MAIL command'),
      c('MAIL FROM:<alice@example.com>'),
      s('250 2.1.0 Ok'),
      c('RCPT TO:<bob@example.com>'),
      s('250 2.1.5 Ok'),
      c('QUIT'),
      s('221 Bye'),
    ]);
    assert.equal(recorder.transactions.length, 1);
    const tx = recorder.tx(0);
    assert.equal(tx.depth, 1);
    assert.equal(tx.mailFrom, 'alice@example.com');
    assert.deepEqual(tx.recipients.map((r) => r.address), ['bob@example.com']);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_command_out_of_sequence']);
    assert.equal(recorder.session0.transactions, 1);
  });

  it('keeps an unanswered RCPT before MAIL as a transaction', () => {
    // Without replies the MAIL FROM may have been sent before the capture started.
    const { recorder } = run([c('RCPT TO:<bob@example.com>', 'DATA', 'Subject: x', '', 'body', '.', 'QUIT')], {
      flow: { midstream: true },
    });
    assert.equal(recorder.transactions.length, 1);
    assert.equal(recorder.tx(0).mailFrom, undefined);
    assert.equal(recorder.bodyText(1), 'Subject: x\r\n\r\nbody\r\n');
  });

  it('pairs replies with commands sent before the greeting', () => {
    // The server's SYN-ACK was seen, so the session waits for the replies to come.
    const { recorder } = run(
      [
        c('EHLO client.example.com', 'MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'DATA', 'Subject: x', '', 'hi', '.'),
        s('220 mx.example.com ESMTP', '250 mx.example.com', '250 2.1.0 Ok', '250 2.1.5 Ok', '354 go ahead', '250 2.0.0 queued as 4AB12'),
      ],
      { flow: { packets: [1, 1] } },
    );
    const tx = recorder.tx(0);
    assert.equal(tx.mailReply?.code, 250);
    assert.equal(tx.recipients[0]?.accepted, true);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.queueId, '4AB12');
  });
});

describe('SmtpSession stream anomalies', () => {
  it('attaches a stream anomaly to the open transaction', () => {
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder);
    session.onData(1, Buffer.from('220 mx ESMTP\r\n'), 1);
    session.onData(0, Buffer.from('EHLO a\r\nMAIL FROM:<a@example.com>\r\n'), 2);
    session.onAnomaly({ name: 'retransmission_inconsistency', ts: 3, direction: 0 });
    session.onData(1, Buffer.from('250 mx\r\n250 ok\r\n'), 4);
    session.onClose('fin', 5);
    assert.deepEqual(anomalyNames(recorder.tx(0).anomalies), ['retransmission_inconsistency']);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), []);
  });

  it('keeps a stream anomaly outside transactions on the session', () => {
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder);
    session.onAnomaly({ name: 'retransmission_inconsistency', ts: 1, direction: 1 });
    session.onClose('fin', 2);
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['retransmission_inconsistency']);
  });
});
