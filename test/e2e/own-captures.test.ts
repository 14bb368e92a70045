/**
 * Checks `mailtap read` on captures/office.pcap and captures/printer.pcap against the values in
 * captures/README.md. Those come from swaks' transcripts, Postfix's logs and the message
 * generator captures/make-messages.py, not from mailtap.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, runCli, type Fields } from './cli.js';

const OFFICE = join(REPO, 'captures', 'office.pcap');
const PRINTER = join(REPO, 'captures', 'printer.pcap');

const WORKSTATION_MAC = 'F8-BC-12-00-00-21';
const PRINTER_MAC = '30-05-5C-00-00-31';
const RELAY_MAC = '3C-EC-EF-00-00-10';
const ROUTER_LAN_MAC = '74-AC-B9-00-00-01';

/** Lab passwords and the printer's AUTH PLAIN argument, none of which may appear in any output. */
const SECRETS = ['scan-lab-secret', 'alice-lab-secret', 'AHNjYW5uZXJAY29ycC5leGFtcGxlAHNjYW4tbGFiLXNlY3JldA=='];

/** The header Postfix put in front of office-1 when it forwarded it (captures/README.md). */
const RECEIVED_OFFICE_1 =
  'Received: from ws-alice.corp.example (unknown [10.99.0.21])\r\n' +
  '\tby mail.corp.example (Postfix) with ESMTP id 6BA1C20C161\r\n' +
  '\tfor <carol@partner.example>; Fri,  4 Dec 2026 17:09:10 +0000 (UTC)\r\n';

/** The same header for office-3, with ESMTPSA, its queue id and recipient. The relay log dates it 17:09:10. */
const RECEIVED_OFFICE_3 =
  'Received: from ws-alice.corp.example (unknown [10.99.0.21])\r\n' +
  '\tby mail.corp.example (Postfix) with ESMTPSA id B5CC420C48E\r\n' +
  '\tfor <dave@partner.example>; Fri,  4 Dec 2026 17:09:10 +0000 (UTC)\r\n';

interface ExpectedRecipient {
  address: string;
  code: number;
  params?: Record<string, string>;
}

interface ExpectedAttachment {
  name: string;
  type: string;
  size: number;
  sha256: string;
}

interface ExpectedTransaction {
  label: string;
  client: string;
  server: string;
  sourceMac: string;
  destinationMac: string;
  helo: string;
  mailFrom: string;
  mailParams?: Record<string, string>;
  recipients: ExpectedRecipient[];
  bodyBytes: number;
  /** SHA-256 of the DATA bytes, or the message file and Received header it was forwarded with. */
  sha256: string | { message: string; received: string };
  subject: string;
  fromHeader: string;
  toHeader: string;
  messageId: string;
  receivedHeaders: number;
  attachment?: ExpectedAttachment;
  lastReply: string;
  queueId: string;
  auth?: { mechanism: string; user: string };
}

const OFFICE_1 = {
  subject: 'Grüße aus dem Büro – Angebot für Q3',
  fromHeader: 'Alice Example <alice@corp.example>',
  toHeader: 'Carol Partner <carol@partner.example>',
  messageId: '<20240304091500.office1@ws-alice.corp.example>',
};

const OFFICE_3 = {
  subject: 'Quarterly figures',
  fromHeader: 'alice@corp.example',
  toHeader: 'dave@partner.example',
  messageId: '<20240304092500.office3@ws-alice.corp.example>',
};

const OFFICE_TRANSACTIONS: ExpectedTransaction[] = [
  {
    label: 'stream 0, office-1 to the relay',
    client: '10.99.0.21:44256',
    server: '10.99.0.10:25',
    sourceMac: WORKSTATION_MAC,
    destinationMac: RELAY_MAC,
    helo: 'ws-alice.corp.example',
    mailFrom: 'alice@corp.example',
    recipients: [{ address: 'carol@partner.example', code: 250 }],
    bodyBytes: 461,
    sha256: '0846ea54a33d8169f61889cf48a941e65812699d880ce0d22d078b6bb3589281',
    ...OFFICE_1,
    receivedHeaders: 0,
    lastReply: '250 2.0.0 Ok: queued as 6BA1C20C161',
    queueId: '6BA1C20C161',
  },
  {
    label: 'stream 1, office-1 forwarded to the MX',
    client: '10.99.0.10:43351',
    server: '10.99.1.25:25',
    sourceMac: RELAY_MAC,
    destinationMac: ROUTER_LAN_MAC,
    helo: 'mail.corp.example',
    mailFrom: 'alice@corp.example',
    mailParams: { SIZE: '650' },
    recipients: [{ address: 'carol@partner.example', code: 250, params: { ORCPT: 'rfc822;carol@partner.example' } }],
    bodyBytes: 650,
    sha256: { message: 'office-1-utf8-subject.eml', received: RECEIVED_OFFICE_1 },
    ...OFFICE_1,
    receivedHeaders: 1,
    lastReply: '250 2.0.0 Ok: queued as 0ECA520C495',
    queueId: '0ECA520C495',
  },
  {
    label: 'stream 2, office-2 pipelined with a rejected recipient',
    client: '10.99.0.21:44268',
    server: '10.99.0.10:25',
    sourceMac: WORKSTATION_MAC,
    destinationMac: RELAY_MAC,
    helo: 'ws-alice.corp.example',
    mailFrom: 'alice@corp.example',
    recipients: [
      { address: 'bob@corp.example', code: 250 },
      { address: 'nobody@corp.example', code: 550 },
    ],
    bodyBytes: 346,
    sha256: 'aed504cbc205f4d57a1fa2c47b8aa6175dab94662caf278cb986fc0b2aea475c',
    subject: 'Team lunch on Friday',
    fromHeader: 'alice@corp.example',
    toHeader: 'bob@corp.example, nobody@corp.example',
    messageId: '<20240304092000.office2@ws-alice.corp.example>',
    receivedHeaders: 0,
    lastReply: '250 2.0.0 Ok: queued as 83F3220C307',
    queueId: '83F3220C307',
  },
  {
    label: 'stream 4, office-3 forwarded to the MX',
    client: '10.99.0.10:49213',
    server: '10.99.1.25:25',
    sourceMac: RELAY_MAC,
    destinationMac: ROUTER_LAN_MAC,
    helo: 'mail.corp.example',
    mailFrom: 'alice@corp.example',
    mailParams: { SIZE: '871' },
    recipients: [{ address: 'dave@partner.example', code: 250, params: { ORCPT: 'rfc822;dave@partner.example' } }],
    bodyBytes: 871,
    sha256: { message: 'office-3-starttls-auth.eml', received: RECEIVED_OFFICE_3 },
    ...OFFICE_3,
    receivedHeaders: 1,
    attachment: {
      name: 'q3-figures.csv',
      type: 'text/csv',
      size: 62,
      sha256: 'c38dea187e21211a5814caba425cdbcef5d395caaac3223e2f740acddea67369',
    },
    lastReply: '250 2.0.0 Ok: queued as 0D83820C494',
    queueId: '0D83820C494',
  },
];

const PRINTER_HEADERS = {
  fromHeader: 'Brother MFC-L2750DW <scanner@corp.example>',
  subject: 'Scanned from BRN30055C310031',
};

const PRINTER_TRANSACTIONS: ExpectedTransaction[] = [
  {
    label: 'stream 0, printer-1 to the relay with AUTH PLAIN',
    client: '10.99.0.31:46514',
    server: '10.99.0.10:587',
    sourceMac: PRINTER_MAC,
    destinationMac: RELAY_MAC,
    helo: 'BRN30055C310031',
    mailFrom: 'scanner@corp.example',
    recipients: [{ address: 'alice@corp.example', code: 250 }],
    bodyBytes: 8835,
    sha256: '65dc2c1c9159e23b5539c894387686b68cf2eab363e01e8075f61f5f7685d10f',
    ...PRINTER_HEADERS,
    toHeader: 'alice@corp.example',
    messageId: '<20240304101500.scan1@BRN30055C310031.corp.example>',
    receivedHeaders: 0,
    attachment: {
      name: 'Scan_20240304_101500.pdf',
      type: 'application/pdf',
      size: 6000,
      sha256: '0ff54c05b33b1175f4a7ed837f2f7e98de3834963fa51b3689d7ba63f13f36de',
    },
    lastReply: '250 2.0.0 Ok: queued as 819C520C4A9',
    queueId: '819C520C4A9',
    auth: { mechanism: 'PLAIN', user: 'scanner@corp.example' },
  },
  {
    label: 'stream 1, printer-2 straight to the partner MX',
    client: '10.99.0.31:50348',
    server: '10.99.1.25:25',
    sourceMac: PRINTER_MAC,
    destinationMac: ROUTER_LAN_MAC,
    helo: 'BRN30055C310031',
    mailFrom: 'scanner@corp.example',
    recipients: [{ address: 'carol@partner.example', code: 250 }],
    bodyBytes: 6104,
    sha256: '3e2200991acae26b7b0e1c213027a71b3b28eccc99693a67bbead36b03c4a851',
    ...PRINTER_HEADERS,
    toHeader: 'carol@partner.example',
    messageId: '<20240304101700.scan2@BRN30055C310031.corp.example>',
    receivedHeaders: 0,
    attachment: {
      name: 'Scan_20240304_101700.pdf',
      type: 'application/pdf',
      size: 4000,
      sha256: '5b4b8782c1b215067bf558efd798eb93955173dddb89f0f65f304d57d3bd50a5',
    },
    lastReply: '250 2.0.0 Ok: queued as AA85920C4B1',
    queueId: 'AA85920C4B1',
  },
];

/** Message files written by captures/make-messages.py; undefined when python3 cannot run it. */
let messageDir: string | undefined;
let messageSkipReason = '';

before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'mailtap-own-captures-'));
  const result = spawnSync('python3', [join(REPO, 'captures', 'make-messages.py'), dir], { encoding: 'utf8' });
  if (result.status === 0) {
    messageDir = dir;
  } else {
    messageSkipReason = `captures/make-messages.py did not run (${result.error?.message ?? result.stderr.trim()})`;
    rmSync(dir, { recursive: true, force: true });
  }
});

after(() => {
  if (messageDir) rmSync(messageDir, { recursive: true, force: true });
});

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function endpoint(side: Fields): string {
  return `${side.ip}:${side.port}`;
}

function replyCode(reply: string | null): number | null {
  return reply === null ? null : Number(reply.slice(0, 3));
}

/** Runs `mailtap read` and returns the records keyed by client address, failing on duplicates. */
function readByClient(file: string): { records: Fields[]; byClient: Map<string, Fields> } {
  const result = runCli(['read', '--quiet', file]);
  assert.equal(result.status, 0, `mailtap read ${file} exited with ${result.status}: ${result.stderr}`);
  const byClient = new Map<string, Fields>();
  for (const record of result.records) {
    const client = endpoint(record.source);
    assert.ok(!byClient.has(client), `two records for client ${client}`);
    byClient.set(client, record);
  }
  return { records: result.records, byClient };
}

function checkTransaction(record: Fields | undefined, want: ExpectedTransaction): void {
  const label = want.label;
  assert.ok(record, `${label}: no record for client ${want.client}`);
  assert.equal(record.event.action, 'smtp-transaction', `${label}: event.action`);
  assert.equal(endpoint(record.source), want.client, `${label}: source`);
  assert.equal(endpoint(record.destination), want.server, `${label}: destination`);
  assert.equal(endpoint(record.client), want.client, `${label}: client`);
  assert.equal(endpoint(record.server), want.server, `${label}: server`);
  assert.equal(record.source.mac, want.sourceMac, `${label}: source.mac`);
  assert.equal(record.destination.mac, want.destinationMac, `${label}: destination.mac`);

  const smtp = record.smtp;
  assert.equal(smtp.status, 'completed', `${label}: smtp.status`);
  assert.equal(smtp.tls, false, `${label}: smtp.tls`);
  assert.equal(smtp.helo, want.helo, `${label}: smtp.helo`);
  assert.equal(smtp.helo_command, 'EHLO', `${label}: smtp.helo_command`);
  assert.equal(smtp.mail_from, want.mailFrom, `${label}: smtp.mail_from`);
  assert.deepEqual(smtp.mail_params, want.mailParams, `${label}: smtp.mail_params`);
  assert.equal(replyCode(smtp.mail_reply), 250, `${label}: MAIL FROM reply code`);
  assert.deepEqual(
    smtp.rcpt_to,
    want.recipients.map((r) => r.address),
    `${label}: smtp.rcpt_to`,
  );
  assert.deepEqual(
    smtp.rcpt_replies.map(replyCode),
    want.recipients.map((r) => r.code),
    `${label}: RCPT TO reply codes`,
  );
  const withParams = want.recipients.some((r) => r.params !== undefined);
  assert.deepEqual(
    smtp.rcpt_params,
    withParams ? want.recipients.map((r) => r.params ?? {}) : undefined,
    `${label}: smtp.rcpt_params`,
  );
  const rejected = want.recipients.filter((r) => r.code >= 400);
  assert.deepEqual(
    (smtp.rejected_rcpt ?? []).map((r: Fields) => [r.address, replyCode(r.reply)]),
    rejected.map((r) => [r.address, r.code]),
    `${label}: smtp.rejected_rcpt`,
  );
  assert.deepEqual(smtp.body, { kind: 'data', bytes: want.bodyBytes, complete: true }, `${label}: smtp.body`);
  assert.equal(smtp.last_reply, want.lastReply, `${label}: smtp.last_reply`);
  assert.equal(smtp.queue_id, want.queueId, `${label}: smtp.queue_id`);
  assert.deepEqual(smtp.auth, want.auth, `${label}: smtp.auth`);

  assert.equal(record.mailtap.message.size, want.bodyBytes, `${label}: mailtap.message.size`);
  if (typeof want.sha256 === 'string') {
    assert.equal(record.mailtap.message.sha256, want.sha256, `${label}: mailtap.message.sha256`);
  } else if (messageDir) {
    const original = readFileSync(join(messageDir, want.sha256.message));
    const forwarded = Buffer.concat([Buffer.from(want.sha256.received, 'latin1'), original]);
    assert.equal(forwarded.length, want.bodyBytes, `${label}: length of the Received header plus the message file`);
    assert.equal(record.mailtap.message.sha256, sha256(forwarded), `${label}: mailtap.message.sha256`);
  }

  const email = record.email;
  assert.equal(email.subject, want.subject, `${label}: email.subject`);
  assert.equal(email.message_id, want.messageId, `${label}: email.message_id`);
  assert.equal(smtp.headers.from, want.fromHeader, `${label}: smtp.headers.from`);
  assert.equal(smtp.headers.to, want.toHeader, `${label}: smtp.headers.to`);
  assert.equal(smtp.headers.received, want.receivedHeaders, `${label}: number of Received headers`);
  assert.deepEqual(email.sender, { address: want.mailFrom }, `${label}: email.sender`);

  const attachments = (email.attachments ?? []).map((a: Fields) => ({
    name: a.file.name,
    type: a.file.mime_type,
    size: a.file.size,
    sha256: a.file.hash?.sha256,
  }));
  assert.deepEqual(attachments, want.attachment ? [want.attachment] : [], `${label}: email.attachments`);
}

/** Asserts that every record starts and ends within the capture's first and last frame. */
function checkTimes(records: Fields[], first: string, last: string): void {
  for (const record of records) {
    assert.ok(record.event.start >= first, `${record.event.id}: event.start ${record.event.start} before ${first}`);
    assert.ok(record.event.end <= last, `${record.event.id}: event.end ${record.event.end} after ${last}`);
  }
}

describe('captures/office.pcap', () => {
  const { records, byClient } = readByClient(OFFICE);

  test('five records: four transactions, one session', () => {
    assert.equal(records.length, 5);
    const actions = records.map((r) => r.event.action).sort();
    assert.deepEqual(actions, [
      'smtp-session',
      'smtp-transaction',
      'smtp-transaction',
      'smtp-transaction',
      'smtp-transaction',
    ]);
  });

  for (const want of OFFICE_TRANSACTIONS) {
    test(want.label, (t) => {
      if (typeof want.sha256 !== 'string' && !messageDir) {
        t.diagnostic(`message hash not checked: ${messageSkipReason}`);
      }
      checkTransaction(byClient.get(want.client), want);
    });
  }

  test('stream 3, STARTTLS session without transaction', () => {
    const record = byClient.get('10.99.0.21:34260');
    assert.ok(record, 'no record for client 10.99.0.21:34260');
    assert.equal(record.event.action, 'smtp-session');
    assert.equal(endpoint(record.destination), '10.99.0.10:587');
    assert.equal(record.source.mac, WORKSTATION_MAC);
    assert.equal(record.destination.mac, RELAY_MAC);
    assert.equal(record.smtp.tls, true);
    assert.equal(record.smtp.tls_mode, 'starttls');
    assert.equal(record.smtp.transactions, 0);
    assert.equal(record.smtp.helo, 'ws-alice.corp.example');
    assert.equal(record.smtp.last_reply, '220 2.0.0 Ready to start TLS');
    assert.ok(record.smtp.extensions.includes('STARTTLS'), 'extensions list STARTTLS');
    assert.ok(record.smtp.extensions.includes('AUTH PLAIN LOGIN'), 'extensions list AUTH PLAIN LOGIN');
    // AUTH, MAIL and the message went inside TLS: nothing of them may be reported.
    assert.equal(record.smtp.auth, undefined);
    assert.equal(record.email, undefined);
  });

  test('record times within the capture', () => {
    checkTimes(records, '2026-12-04T17:09:10.314818Z', '2026-12-04T17:09:11.068506Z');
  });
});

describe('captures/printer.pcap', () => {
  const { records, byClient } = readByClient(PRINTER);

  test('two transactions and one alert', () => {
    assert.equal(records.length, 3);
    assert.deepEqual(
      records.map((r) => r.event.action),
      ['smtp-transaction', 'alert-opened', 'smtp-transaction'],
    );
    // The scanner logs in with AUTH PLAIN on port 587 without STARTTLS (swaks transcript).
    const alert = records.find((r) => r.event.kind === 'alert') as Fields;
    assert.equal(alert.rule.name, 'cleartext_auth');
    assert.equal(alert.mailtap.alert.evidence.user, 'scanner@corp.example');
  });

  for (const want of PRINTER_TRANSACTIONS) {
    test(want.label, () => checkTransaction(byClient.get(want.client), want));
  }

  test('record times within the capture', () => {
    checkTimes(records, '2026-12-04T17:09:12.502739Z', '2026-12-04T17:09:12.700801Z');
  });
});

describe('AUTH secrets', () => {
  for (const file of [OFFICE, PRINTER]) {
    for (const format of ['json', 'table']) {
      test(`none in ${file.slice(REPO.length + 1)} as ${format}`, () => {
        const result = runCli(['read', '--format', format, file]);
        assert.equal(result.status, 0, result.stderr);
        for (const secret of SECRETS) {
          assert.ok(!result.stdout.includes(secret), `stdout contains ${secret}`);
          assert.ok(!result.stderr.includes(secret), `stderr contains ${secret}`);
        }
      });
    }
  }
});

test('make-messages.py output matches README', (t) => {
  if (!messageDir) {
    t.skip(messageSkipReason);
    return;
  }
  // The forwarded-message hashes above rest on these files being the ones the devices sent.
  assert.equal(
    sha256(readFileSync(join(messageDir, 'office-1-utf8-subject.eml'))),
    '0846ea54a33d8169f61889cf48a941e65812699d880ce0d22d078b6bb3589281',
  );
  assert.equal(
    sha256(readFileSync(join(messageDir, 'office-3-starttls-auth.eml'))),
    '2f3484dc65cfe54d647a3468838a7d61bfddc5d450ccdd76c77524f7b6f91194',
  );
});
