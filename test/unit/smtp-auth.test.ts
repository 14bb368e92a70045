import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { decodeBase64, extractUser } from '../../src/smtp/auth.js';
import { Recorder, c, run, s, type Step } from './smtp-harness.js';

/** Everything the session emitted, as one string to search for secrets. */
function emitted(recorder: Recorder): string {
  return JSON.stringify({ transactions: recorder.transactions, sessions: recorder.sessions });
}

const b64 = (text: string): string => Buffer.from(text, 'latin1').toString('base64');

describe('SmtpSession AUTH PLAIN', () => {
  // RFC 4954 section 9: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=" is "test\0test\01234".
  it('reads the user from the RFC 4954 initial response', () => {
    const { recorder } = run([
      s('220 smtp.example.com ESMTP Server'),
      c('EHLO client.example.com'),
      s('250-smtp.example.com Hello client.example.com', '250-AUTH GSSAPI DIGEST-MD5 PLAIN', '250 ENHANCEDSTATUSCODES'),
      c('AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ='),
      s('235 2.7.0 Authentication successful'),
      c('MAIL FROM:<test@example.com>'),
      s('250 ok'),
    ]);
    const info = recorder.session0;
    assert.equal(info.authMechanism, 'PLAIN');
    assert.equal(info.authUser, 'test');
    assert.equal(info.authSuccess, true);
    assert.equal(recorder.tx(0).authUser, 'test');
    assert.equal(recorder.tx(0).authMechanism, 'PLAIN');
    assert.ok(!emitted(recorder).includes('dGVzdAB0ZXN0ADEyMzQ='));
    assert.ok(!emitted(recorder).includes('1234'));
  });

  const password = 'tanstaaftanstaaf';
  const plainTim = b64('\0tim\0' + password);

  it('reads the user after a 334 challenge and never emits the password', () => {
    const { recorder } = run([
      s('220 mx'),
      c('EHLO h'),
      s('250-mx', '250 AUTH PLAIN'),
      c('AUTH PLAIN'),
      s('334 '),
      c(plainTim),
      s('235 2.7.0 Authentication successful'),
      c('MAIL FROM:<tim@example.com>', 'RCPT TO:<x@example.com>', 'DATA'),
      s('250 ok', '250 ok', '354 go'),
      c('hello', '.'),
      s('250 ok'),
    ]);
    assert.equal(recorder.session0.authUser, 'tim');
    assert.equal(recorder.session0.authSuccess, true);
    assert.equal(recorder.tx(0).authUser, 'tim');
    const text = emitted(recorder);
    assert.ok(!text.includes(password));
    assert.ok(!text.includes(plainTim));
    assert.ok(!text.includes(plainTim.slice(0, 12)));
  });

  it('reads the user when the response is held before the 334', () => {
    const { recorder } = run([s('220 mx'), c('AUTH PLAIN', plainTim), s('334 ', '235 ok'), c('QUIT'), s('221 bye')]);
    assert.equal(recorder.session0.authUser, 'tim');
    assert.equal(recorder.session0.commands, 2);
    assert.ok(!emitted(recorder).includes(password));
  });

  it('follows PLAIN in a client-only capture', () => {
    const { recorder } = run([c('EHLO h'), c('AUTH PLAIN'), c(plainTim), c('MAIL FROM:<tim@x>')]);
    assert.equal(recorder.session0.authUser, 'tim');
    assert.equal(recorder.session0.authSuccess, undefined);
    assert.equal(recorder.tx(0).authUser, 'tim');
    assert.equal(recorder.tx(0).mailFrom, 'tim@x');
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('records a failed AUTH and keeps its user out of transactions', () => {
    const { recorder } = run([s('220 mx'), c('AUTH PLAIN ' + plainTim), s('535 5.7.8 Authentication credentials invalid'), c('MAIL FROM:<a@b>'), s('250 ok')]);
    assert.equal(recorder.session0.authSuccess, false);
    assert.equal(recorder.session0.authUser, 'tim');
    assert.equal(recorder.tx(0).authUser, undefined);
    assert.equal(recorder.tx(0).authMechanism, undefined);
  });
});

describe('SmtpSession AUTH LOGIN', () => {
  const secret = 'Sup3rSecretPassw0rd!';
  // Zeek's smtp.pcap uses AUTH LOGIN; this is the same exchange with made-up credentials.
  const LOGIN: Step[] = [
    s('220 mx'),
    c('EHLO GP'),
    s('250-mx', '250 AUTH LOGIN PLAIN'),
    c('AUTH LOGIN'),
    s('334 VXNlcm5hbWU6'),
    c(b64('gurpartap@patriots.in')),
    s('334 UGFzc3dvcmQ6'),
    c(b64(secret)),
    s('235 Authentication succeeded'),
    c('MAIL FROM:<gurpartap@patriots.in>'),
    s('250 OK'),
  ];

  it('reads the user name and drops the password', () => {
    const { recorder } = run(LOGIN);
    assert.equal(recorder.session0.authMechanism, 'LOGIN');
    assert.equal(recorder.session0.authUser, 'gurpartap@patriots.in');
    assert.equal(recorder.session0.authSuccess, true);
    assert.equal(recorder.tx(0).authUser, 'gurpartap@patriots.in');
    assert.ok(!emitted(recorder).includes(secret));
    assert.ok(!emitted(recorder).includes(b64(secret)));
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('counts two responses in a client-only capture', () => {
    const { recorder } = run(LOGIN.filter((step) => step[0] === 0));
    // Without the 334 challenges the first response may be the password, so no user is kept.
    assert.equal(recorder.session0.authUser, undefined);
    assert.equal(recorder.tx(0).mailFrom, 'gurpartap@patriots.in');
    assert.equal(recorder.session0.commands, 3);
    assert.ok(!emitted(recorder).includes(b64(secret)));
  });

  it('takes the user from an initial response', () => {
    const { recorder } = run([c('AUTH LOGIN ' + b64('ann')), c(b64(secret)), c('QUIT')]);
    assert.equal(recorder.session0.authUser, 'ann');
    assert.equal(recorder.session0.commands, 2);
  });

  it('takes the user after a Password challenge first', () => {
    // "UGFzc3dvcmQ6" is base64 "Password:" and "VXNlcm5hbWU6" is "Username:".
    const { recorder } = run([
      s('220 mx'),
      c('EHLO h'),
      s('250-mx', '250 AUTH LOGIN'),
      c('AUTH LOGIN'),
      s('334 UGFzc3dvcmQ6'),
      c(b64(secret)),
      s('334 VXNlcm5hbWU6'),
      c(b64('ann')),
      s('235 ok'),
      c('MAIL FROM:<a@b>'),
      s('250 ok'),
    ]);
    assert.equal(recorder.session0.authUser, 'ann');
    assert.equal(recorder.tx(0).authUser, 'ann');
    assert.ok(!emitted(recorder).includes(secret));
    assert.ok(!emitted(recorder).includes(b64(secret)));
  });

  it('records no user after a Password challenge alone', () => {
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN'), s('334 UGFzc3dvcmQ6'), c(b64(secret)), s('235 ok'), c('MAIL FROM:<a@b>'), s('250 ok')]);
    assert.equal(recorder.session0.authUser, undefined);
    assert.equal(recorder.session0.authSuccess, true);
    assert.ok(!emitted(recorder).includes(secret));
  });

  it('accepts "User Name:" in any case', () => {
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN'), s('334 ' + b64('USER NAME:')), c(b64('ann')), s('334 ' + b64('password:')), c(b64(secret)), s('235 ok')]);
    assert.equal(recorder.session0.authUser, 'ann');
    assert.ok(!emitted(recorder).includes(secret));
  });

  it('records no user after an unexpected challenge', () => {
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN'), s('334 ' + b64('Who are you?')), c(b64(secret)), s('334 '), c(b64('ann')), s('235 ok')]);
    assert.equal(recorder.session0.authUser, undefined);
    assert.ok(!emitted(recorder).includes(secret));
  });

  it('keeps the initial response as user, not the answer to Password', () => {
    // "dXNlcg==" is base64 "user".
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN dXNlcg=='), s('334 UGFzc3dvcmQ6'), c(b64(secret)), s('235 ok')]);
    assert.equal(recorder.session0.authUser, 'user');
    assert.ok(!emitted(recorder).includes(secret));
  });

  it('reads the user when both responses are sent before the challenges', () => {
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN', b64(secret), b64('ann')), s('334 UGFzc3dvcmQ6'), s('334 VXNlcm5hbWU6'), s('235 ok')]);
    assert.equal(recorder.session0.authUser, 'ann');
    assert.ok(!emitted(recorder).includes(secret));
  });

  it('never shows a password read as a command in an anomaly', () => {
    // The server rejects the user name, then the client sends its password anyway.
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN'), s('334 VXNlcm5hbWU6'), c(b64('ann')), s('535 no'), c(b64(secret))]);
    assert.deepEqual(recorder.session0.anomalies.map((a) => a.name), ['smtp_unknown_command']);
    assert.ok(!emitted(recorder).includes(b64(secret).slice(0, 8)));
  });

  it('ends the exchange at a "*" cancel', () => {
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN'), s('334 VXNlcm5hbWU6'), c('*'), s('501 5.7.0 Authentication cancelled'), c('MAIL FROM:<a@b>'), s('250 ok')]);
    assert.equal(recorder.session0.authSuccess, false);
    assert.equal(recorder.session0.authUser, undefined);
    assert.equal(recorder.tx(0).mailFrom, 'a@b');
  });
});

describe('SmtpSession other SASL mechanisms', () => {
  it('reads the CRAM-MD5 user of RFC 2195', () => {
    // RFC 2195 section 2: user "tim", secret "tanstaaftanstaaf".
    const { recorder } = run([
      s('220 mx'),
      c('AUTH CRAM-MD5'),
      s('334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+'),
      c('dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw'),
      s('235 ok'),
    ]);
    assert.equal(recorder.session0.authMechanism, 'CRAM-MD5');
    assert.equal(recorder.session0.authUser, 'tim');
    assert.ok(!emitted(recorder).includes('b913a602c7eda7a495b4e6e7334d3890'));
  });

  it('reads the XOAUTH2 user without the token', () => {
    const token = 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg';
    const ir = b64(`user=someuser@example.com\x01auth=Bearer ${token}\x01\x01`);
    const { recorder } = run([s('220 mx'), c('AUTH XOAUTH2 ' + ir), s('235 2.7.0 Accepted')]);
    assert.equal(recorder.session0.authUser, 'someuser@example.com');
    assert.ok(!emitted(recorder).includes(token));
  });

  it('reads OAUTHBEARER and SCRAM user names', () => {
    assert.equal(extractUser('OAUTHBEARER', Buffer.from('n,a=user@example.com,\x01host=server.example.com\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01')), 'user@example.com');
    // RFC 5802 section 5: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL".
    assert.equal(extractUser('SCRAM-SHA-1', Buffer.from('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL')), 'user');
    assert.equal(extractUser('SCRAM-SHA-256', Buffer.from('n,,n=a=2Cb,r=x')), 'a,b');
  });

  it('flags an undecodable PLAIN response without its content', () => {
    const { recorder } = run([s('220 mx'), c('AUTH PLAIN not*base64'), s('501 bad')]);
    assert.deepEqual(recorder.session0.anomalies.map((a) => [a.name, a.detail]), [['smtp_auth_decode_failed', 'PLAIN response']]);
  });
});

describe('SmtpSession SASL responses read as commands', () => {
  // "pw1234" is "cHcxMjM0" in base64: one short word, like a command verb.
  const short = 'pw1234';
  const secrets = [short, b64(short), b64('\0bob\0' + short)];

  /** Assert that no form of the password appears in anything the session emitted. */
  function assertNoSecret(recorder: Recorder): void {
    const text = emitted(recorder);
    for (const secret of secrets) assert.ok(!text.includes(secret), `emitted ${secret}`);
  }

  it('hides an AUTH LOGIN password picked up mid-stream', () => {
    const { recorder } = run(
      [s('334 VXNlcm5hbWU6'), c(b64('bob')), s('334 UGFzc3dvcmQ6'), c(b64(short)), s('235 ok'), c('MAIL FROM:<bob@x.example>'), s('250 ok')],
      { flow: { midstream: true } },
    );
    const anomalies = recorder.session0.anomalies;
    assert.deepEqual(anomalies.map((a) => a.name), ['smtp_unknown_command', 'smtp_unknown_command']);
    assert.deepEqual(anomalies.map((a) => a.detail), ['4-byte line, printable ASCII', '8-byte line, printable ASCII']);
    assert.equal(recorder.tx(0).mailFrom, 'bob@x.example');
    assertNoSecret(recorder);
  });

  it('hides an AUTH PLAIN response picked up mid-stream', () => {
    const { recorder } = run([s('334 '), c(b64('\0bob\0' + short)), s('235 ok'), c('QUIT'), s('221 bye')], {
      flow: { midstream: true },
    });
    assert.deepEqual(recorder.session0.anomalies.map((a) => a.detail), ['16-byte line, printable ASCII']);
    assertNoSecret(recorder);
  });

  it('hides responses after a lost AUTH command', () => {
    const { recorder } = run([c('EHLO h'), ['gap', 0, 'AUTH LOGIN\r\n'.length], c(b64('bob'), b64(short), 'MAIL FROM:<bob@x.example>', 'QUIT')]);
    assert.equal(recorder.tx(0).mailFrom, 'bob@x.example');
    assertNoSecret(recorder);
  });

  it('hides a password after a rejected AUTH', () => {
    const { recorder } = run([s('220 mx'), c('AUTH LOGIN'), s('504 unrecognized'), c(b64('bob'), b64(short))]);
    assert.equal(recorder.session0.anomalies.length, 2);
    assertNoSecret(recorder);
  });
});

describe('decodeBase64', () => {
  it('matches Buffer base64 decoding', () => {
    for (const text of ['', 'a', 'ab', 'abc', 'abcd', '\0tim\0tanstaaftanstaaf', 'ÿþ\x00\x01']) {
      const encoded = Buffer.from(text, 'latin1').toString('base64');
      assert.deepEqual(decodeBase64(Buffer.from(encoded)), Buffer.from(text, 'latin1'), encoded);
      assert.deepEqual(decodeBase64(Buffer.from(encoded.replace(/=+$/, ''))), Buffer.from(text, 'latin1'), encoded);
    }
  });

  it('rejects invalid input', () => {
    assert.equal(decodeBase64(Buffer.from('ab$d')), undefined);
    assert.equal(decodeBase64(Buffer.from('a')), undefined);
  });
});
