import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SmtpSession } from '../../src/smtp/index.js';
import { PendingQueue, canMerge, type Pending, type PendingKind } from '../../src/smtp/pending.js';
import { createTransaction } from '../../src/smtp/transaction.js';
import { Recorder, anomalyNames, c, makeFlow, run, s, type Step } from './smtp-harness.js';

function entry(kind: PendingKind, fields: Partial<Pending> = {}): Pending {
  return { kind, tx: undefined, rcptIndex: -1, last: false, heloCommand: 'HELO', count: 1, ...fields };
}

describe('PendingQueue', () => {
  it('merges plain commands of one transaction', () => {
    const tx = createTransaction(makeFlow(), 1, 1000);
    assert.equal(canMerge(entry('rcpt', { tx }), entry('other', { tx })), true);
    assert.equal(canMerge(entry('rset', { tx }), entry('bdat_invalid', { tx })), true);
    assert.equal(canMerge(entry('rcpt', { tx, rcptIndex: 0 }), entry('rcpt', { tx })), false);
    assert.equal(canMerge(entry('other', { tx }), entry('other')), false);
  });

  it('merges BDAT chunks but not the last one', () => {
    const tx = createTransaction(makeFlow(), 1, 1000);
    assert.equal(canMerge(entry('bdat', { tx }), entry('bdat', { tx })), true);
    assert.equal(canMerge(entry('bdat', { tx }), entry('bdat', { tx, last: true })), false);
    assert.equal(canMerge(entry('bdat', { tx }), entry('other', { tx })), false);
  });

  it('never merges DATA, AUTH or STARTTLS', () => {
    for (const kind of ['data', 'auth', 'starttls', 'mail', 'data_end', 'banner'] as const) {
      assert.equal(canMerge(entry(kind), entry(kind)), false, kind);
    }
    assert.equal(canMerge(entry('helo', { heloCommand: 'EHLO' }), entry('helo', { heloCommand: 'EHLO' })), true);
    assert.equal(canMerge(entry('helo', { heloCommand: 'EHLO' }), entry('helo', { heloCommand: 'HELO' })), false);
  });

  it('consumes one reply per merged command', () => {
    const queue = new PendingQueue();
    queue.append(entry('mail'));
    const plain = queue.append(entry('other'));
    assert.equal(queue.append(entry('rcpt')), plain);
    assert.equal(queue.append(entry('rset')), plain);
    queue.append(entry('data'));
    assert.equal(queue.size, 3);
    assert.deepEqual(
      Array.from({ length: 6 }, () => queue.takeOne()?.kind),
      ['mail', 'other', 'other', 'other', 'data', undefined],
    );
    assert.equal(queue.size, 0);
  });

  it('compacts kept recipients and emitted transactions', () => {
    const open = createTransaction(makeFlow(), 2, 1000);
    const emitted = createTransaction(makeFlow(), 1, 1000);
    emitted.emitted = true;
    const queue = new PendingQueue();
    queue.append(entry('data_end', { tx: emitted }));
    queue.append(entry('mail', { tx: open }));
    for (let i = 0; i < 4; i++) {
      queue.append(entry('rcpt', { tx: open, rcptIndex: i }));
      queue.append(entry('other', { tx: open }));
    }
    const data = queue.append(entry('data', { tx: open }));
    assert.equal(queue.size, 11);
    queue.compact(data);
    assert.equal(queue.size, 4);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => [queue.at(i)?.kind, queue.at(i)?.count, queue.at(i)?.tx === open]),
      [['other', 1, false], ['mail', 1, true], ['rcpt', 8, true], ['data', 1, true]],
    );
  });
});

const BODY =
  'Subject: hidden body\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n' +
  '--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="payload.exe"\r\n\r\n' +
  'MZ\r\n--B--\r\n';

/** One burst of MAIL, n RCPTs and DATA, then the replies in one burst, as a Postfix server sends them. */
function pipelinedRecipients(n: number): { client: string; server: string } {
  let client = 'MAIL FROM:<a@b.example>\r\n';
  let server = '250 2.1.0 Ok\r\n';
  for (let i = 0; i < n; i++) {
    client += `RCPT TO:<user${i}@example.com>\r\n`;
    server += i < 1000 ? `250 2.1.5 Ok ${i}\r\n` : '452 4.5.3 Error: too many recipients\r\n';
  }
  return { client: client + 'DATA\r\n', server: server + '354 End data with <CR><LF>.<CR><LF>\r\n' };
}

describe('SmtpSession pipelining past maxPendingCommands', () => {
  for (const n of [1023, 5000, 100000]) {
    it(`pairs replies after ${n} pipelined RCPTs`, () => {
      const { client, server } = pipelinedRecipients(n);
      const recorder = new Recorder();
      const session = new SmtpSession(makeFlow(), recorder);
      session.onData(1, Buffer.from('220 mx ESMTP\r\n'), 1001);
      session.onData(0, Buffer.from('EHLO h\r\n'), 1002);
      session.onData(1, Buffer.from('250-mx\r\n250 PIPELINING\r\n'), 1003);
      session.onData(0, Buffer.from(client), 1004);
      // MAIL, the 1000 recipients kept, one entry for the rest, and DATA.
      assert.equal(session.pendingEntries, n > 1000 ? 1003 : n + 2);
      session.onData(1, Buffer.from(server), 1005);
      session.onData(0, Buffer.from(BODY + '.\r\nQUIT\r\n'), 1006);
      session.onData(1, Buffer.from('250 2.0.0 Ok: queued as HIDDEN1\r\n221 2.0.0 Bye\r\n'), 1007);
      session.onClose('fin', 1008);

      assert.equal(recorder.transactions.length, 1);
      const tx = recorder.tx(0);
      assert.equal(tx.status, 'completed');
      assert.equal(tx.queueId, 'HIDDEN1');
      assert.equal(tx.lastReply?.text, '2.0.0 Ok: queued as HIDDEN1');
      assert.equal(tx.dataReply?.code, 354);
      assert.equal(tx.bodyComplete, true);
      assert.equal(recorder.bodyText(1), BODY);
      assert.equal(tx.recipients.length, 1000);
      assert.equal(tx.recipients[999]?.address, 'user999@example.com');
      assert.equal(tx.recipients[999]?.reply?.text, '2.1.5 Ok 999');
      assert.ok(tx.recipients.every((r, i) => r.accepted === true && r.reply?.text === `2.1.5 Ok ${i}`));
      assert.deepEqual(anomalyNames(tx.anomalies), ['smtp_too_many_recipients']);
      assert.equal(tx.anomalies[0]?.detail, `${n - 1000} beyond 1000`);
      assert.equal(recorder.session0.lastReply?.code, 221);
      assert.deepEqual(recorder.session0.anomalies, []);
    });
  }

  it('keeps pairing when kept RCPTs and NOOPs alternate', () => {
    const rcpts = Array.from({ length: 50 }, (_, i) => [`RCPT TO:<r${i}@x>`, 'NOOP']).flat();
    const replies = Array.from({ length: 50 }, (_, i) => [`250 rcpt ${i}`, '250 noop']).flat();
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder, { limits: { maxPendingCommands: 8 } });
    session.onData(1, Buffer.from('220 mx\r\n'), 1001);
    let peak = 0;
    for (const line of ['MAIL FROM:<a@x>', ...rcpts, 'DATA']) {
      session.onData(0, Buffer.from(line + '\r\n'), 1002);
      peak = Math.max(peak, session.pendingEntries);
    }
    session.onData(1, Buffer.from(['250 mail', ...replies, '354 go', ''].join('\r\n')), 1003);
    session.onData(0, Buffer.from('hello\r\n.\r\n'), 1004);
    session.onData(1, Buffer.from('250 Ok: queued as ALT01\r\n'), 1005);
    session.onClose('fin', 1006);

    assert.ok(peak <= 9, `peak ${peak}`);
    const tx = recorder.tx(0);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.queueId, 'ALT01');
    assert.equal(tx.mailReply?.text, 'mail');
    assert.equal(recorder.bodyText(1), 'hello\r\n');
    assert.equal(tx.recipients.length, 50);
    // Compaction drops the replies of some recipients; every reply kept is the right one.
    const withReply = tx.recipients.filter((r) => r.reply !== undefined);
    assert.ok(withReply.length > 0);
    assert.ok(tx.recipients.every((r, i) => r.reply === undefined || r.reply.text === `rcpt ${i}`));
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_too_many_pending_commands']);
  });

  it('counts commands only when compaction frees too little', () => {
    // BDAT chunks and NOOPs cannot share entries, and the transaction is open: nothing merges.
    const chunks = Array.from({ length: 5000 }, () => 'BDAT 1\r\nxNOOP\r\n').join('');
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder, { limits: { maxPendingCommands: 64 } });
    session.onData(1, Buffer.from('220 mx\r\n'), 1001);
    session.onData(0, Buffer.from('MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n' + chunks + 'BDAT 0 LAST\r\n'), 1002);
    assert.ok(session.pendingEntries <= 65, `entries ${session.pendingEntries}`);
    const replies = ['250 mail', '250 rcpt', ...Array.from({ length: 10000 }, () => '250 ok'), '250 Ok: queued as BDAT1', ''];
    session.onData(1, Buffer.from(replies.join('\r\n')), 1003);
    assert.equal(session.pendingEntries, 0);
    // The next transaction is paired again.
    session.onData(0, Buffer.from('MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n'), 1004);
    session.onData(1, Buffer.from('250 mail 2\r\n550 no such user\r\n554 no valid recipients\r\n'), 1005);
    session.onClose('fin', 1006);

    assert.equal(recorder.transactions.length, 2);
    const first = recorder.tx(0);
    assert.equal(first.bdatChunks, 5001);
    assert.equal(first.bodyBytes, 5000);
    assert.equal(recorder.bodyText(1), 'x'.repeat(5000));
    assert.equal(first.mailReply?.text, 'mail');
    // Compaction dropped the recipient's own entry, so its reply was consumed without effect.
    assert.equal(first.recipients[0]?.reply, undefined);
    assert.equal(first.recipients[0]?.address, 'b@y');
    const second = recorder.tx(1);
    assert.equal(second.mailReply?.text, 'mail 2');
    assert.equal(second.recipients[0]?.reply?.code, 550);
    assert.equal(second.status, 'rejected');
    assert.equal(second.lastReply?.text, 'no valid recipients');
    assert.deepEqual(anomalyNames(recorder.session0.anomalies), ['smtp_too_many_pending_commands']);
  });

  it('keeps one entry for pipelined BDAT chunks', () => {
    const count = 100000;
    const recorder = new Recorder();
    const session = new SmtpSession(makeFlow(), recorder);
    session.onData(1, Buffer.from('220 mx\r\n'), 1001);
    session.onData(0, Buffer.from('MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n' + 'BDAT 1\r\nx'.repeat(count) + 'BDAT 0 LAST\r\n'), 1002);
    assert.equal(session.pendingEntries, 4);
    const replies = ['250 mail', '250 rcpt', ...Array.from({ length: count }, () => '250 chunk'), '250 Ok: queued as BIG01', ''];
    session.onData(1, Buffer.from(replies.join('\r\n')), 1003);
    session.onClose('fin', 1004);

    const tx = recorder.tx(0);
    assert.equal(tx.status, 'completed');
    assert.equal(tx.queueId, 'BIG01');
    assert.equal(tx.bodyBytes, count);
    assert.deepEqual(recorder.session0.anomalies, []);
  });

  it('rejects a transaction at a refused chunk among merged ones', () => {
    const steps: Step[] = [
      s('220 mx'),
      c('MAIL FROM:<a@x>', 'RCPT TO:<b@y>'),
      [0, 'BDAT 1\r\naBDAT 1\r\nbBDAT 1\r\ncBDAT 1 LAST\r\nd'],
      s('250 mail', '250 rcpt', '250 chunk 1', '552 too big', '503 bad sequence', '503 bad sequence'),
    ];
    const { recorder } = run(steps);
    const tx = recorder.tx(0);
    assert.equal(tx.status, 'rejected');
    assert.equal(tx.lastReply?.text, 'too big');
  });
});
