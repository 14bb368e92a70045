/**
 * Compares `mailtap read` with what other projects expect from their own test captures:
 * Zeek's smtp.log and files.log baselines, Suricata's eve.json checks, Arkime's session fields,
 * and a per-session model of each capture (envelope with reply codes, message size and SHA-256,
 * raw header values, attachments) that the corpus derived from the capture and Wireshark.
 * Where a peer has a documented quirk, the test asserts mailtap's value and says why.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SHARED_CAPTURES, readRecords, type Fields } from './cli.js';

/**
 * Assertions where mailtap deliberately gives another value than the peer or the corpus's own
 * model of the capture, keyed by the assertion's label, with the value mailtap must give.
 */
const DIFFERENCES: Record<string, { expected: unknown; why: string }> = {
  'smtp-subject-multi-nospace.pcap session 1 tx 1: message size': {
    expected: 236,
    why:
      'the client ends DATA with "\\r\\n.\\n"; mailtap takes the bare-LF dot line as the end of data, ' +
      'as Postfix and Sendmail do, and flags smtp_bare_lf, where the model reads on to the end of the stream',
  },
  'smtp-subject-multi-nospace.pcap session 1 tx 1: message sha256': {
    expected: 'a3c16ad442510b97164e3af5d1f9f136541f22f098268efb8e4ea19c9c31eef8',
    why: 'same bare-LF end of data as the message size',
  },
  'smtp-subject-windows.pcap session 1 tx 1: message size': {
    expected: 122,
    why:
      'the client ends DATA with ".\\n\\n"; Sendmail took the bare-LF dot line as the end of data ' +
      '(it replied 250, then 500 to the empty line after it), and so does mailtap',
  },
  'smtp-subject-windows.pcap session 1 tx 1: message sha256': {
    expected: '3c240653713c01b5f27d076005f2a27b28710775efc9cc4aa656f9ccb66ce258',
    why: 'same bare-LF end of data as the message size',
  },
  'smtp-subject-multi-nospace.pcap arkime session 1: decoded subject': {
    expected: ['xxxxxxxxxxxxx: xxxx\u00eaxx xx\u00e9xxxxxxxxx xxx xxx xxxxxxxxxxx xx xxxxxxxxxxxxxxx - xxxx'],
    why:
      'RFC 2047 section 6.2 drops the folding white space between adjacent encoded words; ' +
      'Arkime keeps it and shows double spaces',
  },
  'smtp-bdat-cmd-chunk-size-overflow.pcap session 1 tx 1: message': {
    expected: false,
    why:
      'BDAT 15555555557777777777 LAST is invalid and the server replies 521, so no chunk follows: ' +
      'the next line is QUIT, as Zeek logs it; the model reads QUIT as a 6-byte chunk',
  },
  'smtp-bdat-cmd-chunk-size-overflow2.pcap session 1 tx 1: message': {
    expected: false,
    why: 'the same invalid BDAT size, 21 digits long, rejected with 521; QUIT follows as a command',
  },
  'smtp-bdat-cmd-negative-chunk-size.pcap session 1 tx 1: body command': {
    expected: 'BDAT',
    why:
      'the client sent BDAT -1 LAST; mailtap reports the body command the client tried, as the ' +
      'model does for the two oversized BDAT captures, while no chunk is read',
  },
  'firewall-133-smtp-out-of-order.pcap session 1 tx 1: recipients': {
    expected: ['bob@example.com'],
    why:
      'the first RCPT came before MAIL FROM and got 503; mailtap records it as a session anomaly ' +
      '(smtp_command_out_of_sequence), where the model adds it to the next transaction',
  },
  'firewall-133-smtp-out-of-order.pcap session 1 tx 1: recipient replies': {
    expected: ['250'],
    why: 'the same RCPT before MAIL FROM, rejected with 503',
  },
  'smtp-bug-6053.pcap session 1 tx 1: recipient replies': {
    expected: ['250'],
    why:
      'the 5 KB greeting runs into "250-smtp001..." without CRLF, which shifts the model\'s reply ' +
      'pairing by one; mailtap pairs the RCPT with its 250 and the QUIT with the 221',
  },
  'smtp-attachment-msg.pcap session 1 tx 1: number of named attachments': {
    expected: 1,
    why: 'the message/rfc822 part test.msg has Content-Disposition attachment; the model lists no message/rfc822 parts',
  },
  'rfc3030-bdat-nonascii.pcap session 1 tx 1: number of named attachments': {
    expected: 1,
    why: 'the same message/rfc822 attachment test.msg, sent with BDAT',
  },
};

/** Asserts deep equality, or mailtap's own value where DIFFERENCES lists the label. */
function expectValue(actual: unknown, expected: unknown, label: string): void {
  const difference = DIFFERENCES[label];
  if (difference) {
    assert.deepEqual(actual, difference.expected, `${label} (mailtap differs on purpose: ${difference.why})`);
    return;
  }
  assert.deepEqual(actual, expected, label);
}

/**
 * Captures whose corpus model lists only the first recipients. mailtap must report them all;
 * the total comes from counting RCPT commands with tshark -Y 'smtp.req.command == "RCPT"'.
 */
const RECIPIENTS_IN_CAPTURE: Record<string, number> = {
  'smtp-many-addresses.pcap': 600,
};

/** Suricata checks replaced by mailtap's value for the same field, with the reason. */
const SURICATA_DIFFERENCES: Record<string, { field: string; expected: unknown; why: string }[]> = {
  'smtp-mime-encap-8649-baseline.pcap': [
    {
      field: 'fileinfo.size',
      expected: 32,
      why:
        'the single-part body is "EICAR-MIME-BYPASS-TEST-PAYLOAD\\r\\n"; RFC 5321 4.1.1.4 makes the CRLF ' +
        'before the dot line the end of the last body line, so it is content; Suricata drops it',
    },
  ],
};

interface Entry {
  file: string;
  anchor: Fields;
  derived?: Fields[];
}

function entries(source: string): Entry[] {
  return JSON.parse(readFileSync(join(SHARED_CAPTURES, source, 'expected.json'), 'utf8')) as Entry[];
}

const SOURCES = readdirSync(SHARED_CAPTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

const recordCache = new Map<string, Fields[]>();
function records(source: string, file: string): Fields[] {
  const path = join(SHARED_CAPTURES, source, file);
  let cached = recordCache.get(path);
  if (!cached) {
    cached = readRecords(path);
    recordCache.set(path, cached);
  }
  return cached;
}

/** Splits "ip:port" where the ip may be IPv6 ("::1:56660"). */
function splitEndpoint(text: string): { ip: string; port: number } {
  const at = text.lastIndexOf(':');
  return { ip: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

function fromClient(all: Fields[], ip: string, port: number): Fields[] {
  return all.filter((r) => r.source?.ip === ip && r.source?.port === port);
}

function transactions(all: Fields[]): Fields[] {
  return all
    .filter((r) => r.event.action === 'smtp-transaction')
    .sort((a, b) => a.smtp.trans_depth - b.smtp.trans_depth);
}

/** Parses the corpus notation "ARG -> CODE" into the argument and the reply code (null: none seen). */
function arrow(text: string): { arg: string; code: string | null } {
  const at = text.lastIndexOf(' -> ');
  const code = text.slice(at + 4);
  return { arg: text.slice(0, at), code: code === 'None' ? null : code };
}

/** Returns the address of a MAIL or RCPT argument: "<a@b> SIZE=1" and "a@b" both give "a@b". */
function envelopeAddress(arg: string): string {
  const trimmed = arg.trim();
  if (trimmed.startsWith('<')) return trimmed.slice(1, trimmed.indexOf('>'));
  return trimmed.split(/\s+/)[0];
}

function unfold(raw: string): string {
  return raw.replace(/\r?\n(?=[ \t])/g, '');
}

function replyCode(reply: string | null | undefined): string | null {
  return reply ? reply.slice(0, 3) : null;
}

/** Address inside angle brackets if any, else the trimmed text. */
function bareAddress(text: string): string {
  const match = /<([^>]*)>/.exec(text);
  return (match ? match[1] : text).trim();
}

function expectedHelo(list: string[]): string | undefined {
  const parsed = list.map((item) => {
    const { arg, code } = arrow(item);
    return { name: arg.replace(/^\S+\s?/, ''), code };
  });
  // A rejected HELO/EHLO leaves the earlier greeting in force (RFC 5321 4.1.4).
  const accepted = parsed.filter((h) => h.code === null || h.code.startsWith('2'));
  return (accepted.length > 0 ? accepted : parsed).at(-1)?.name;
}

function checkDerivedMessage(tx: Fields, message: Fields, where: string): void {
  expectValue(tx.mailtap?.message?.size, message.raw_len, `${where}: message size`);
  expectValue(tx.mailtap?.message?.sha256, message.raw_sha256, `${where}: message sha256`);
  const headers = tx.smtp.headers ?? {};
  for (const [key, field] of [
    ['from', 'from'],
    ['to', 'to'],
    ['cc', 'cc'],
    ['date', 'date'],
  ] as const) {
    const fields: unknown[] = message[key] ?? [];
    // The model lists one entry per header field; mailtap joins repeated To and Cc fields with ", ".
    if (fields.length === 0 || !fields.every((f): f is string => typeof f === 'string')) continue;
    if (fields.some((f) => f.includes('=?'))) continue; // encoded words: decoded values differ by design
    const expected = (key === 'to' || key === 'cc' ? fields : fields.slice(0, 1)).map((f) => unfold(f).trim());
    assert.equal(headers[field], expected.join(', '), `${where}: header ${key}`);
  }
  const subject = message.subject?.[0];
  if (typeof subject === 'string' && !subject.includes('=?')) {
    assert.equal(tx.email.subject, unfold(subject).trim(), `${where}: subject`);
  }
  const messageId = message.message_id?.[0];
  if (typeof messageId === 'string') assert.equal(tx.email.message_id, unfold(messageId).trim(), `${where}: message id`);
  const mailer = message.x_mailer?.[0];
  if (typeof mailer === 'string') assert.equal(tx.email.x_mailer, unfold(mailer).trim(), `${where}: x-mailer`);
  if (typeof message.content_type === 'string') {
    assert.equal(tx.email.content_type, message.content_type.toLowerCase(), `${where}: content type`);
  }
  const expectedFiles: Fields[] = message.attachments ?? [];
  const ours: Fields[] = (tx.email.attachments ?? []).filter((a: Fields) => a.file.name !== undefined);
  expectValue(ours.length, expectedFiles.length, `${where}: number of named attachments`);
  for (const expected of expectedFiles) {
    const found = ours.find((a) => a.file.hash?.sha256 === expected.sha256);
    assert.ok(found, `${where}: attachment ${expected.filename} with sha256 ${expected.sha256}`);
    assert.equal(found.file.name, expected.filename, `${where}: attachment name`);
    assert.equal(found.file.size, expected.size, `${where}: attachment ${expected.filename} size`);
  }
}

function checkDerivedSession(all: Fields[], session: Fields, file: string, where: string): void {
  if (session.client === null) {
    // Not on an SMTP port (Arkime's smtp-html.pcap is one packet to port 8000): no record at all.
    assert.equal(all.length, 0, `${where}: records for a non-SMTP flow`);
    return;
  }
  const { ip, port } = splitEndpoint(session.client);
  const mine = fromClient(all, ip, port);
  const txs = transactions(mine);
  assert.equal(txs.length, session.transactions.length, `${where}: transactions of ${session.client}`);
  const helo = expectedHelo(session.helo ?? []);

  if (session.transactions.length === 0) {
    const sessions = mine.filter((r) => r.event.action === 'smtp-session');
    assert.equal(sessions.length, 1, `${where}: one session record for ${session.client}`);
    if (helo) assert.equal(sessions[0].smtp.helo, helo, `${where}: session helo`);
    if (session.starttls === '220') {
      assert.equal(sessions[0].smtp.tls, true, `${where}: STARTTLS accepted`);
      assert.equal(sessions[0].smtp.tls_mode, 'starttls', `${where}: tls mode`);
    }
    return;
  }

  session.transactions.forEach((expected: Fields, index: number) => {
    const tx = txs[index];
    const at = `${where} tx ${index + 1}`;
    if (helo) assert.equal(tx.smtp.helo, helo, `${at}: helo`);
    const mail = expected.mail_from?.[0];
    if (mail) {
      const { arg, code } = arrow(mail);
      assert.equal(tx.smtp.mail_from, envelopeAddress(arg), `${at}: mail from`);
      assert.equal(replyCode(tx.smtp.mail_reply), code, `${at}: mail from reply`);
    }
    const rcpts = (expected.rcpt_to ?? []).map(arrow);
    const total = RECIPIENTS_IN_CAPTURE[file];
    if (total !== undefined) assert.equal(tx.smtp.rcpt_to.length, total, `${at}: number of recipients`);
    const listed = total !== undefined ? rcpts.length : tx.smtp.rcpt_to.length;
    expectValue(
      tx.smtp.rcpt_to.slice(0, listed),
      rcpts.map((r: { arg: string }) => envelopeAddress(r.arg)),
      `${at}: recipients`,
    );
    expectValue(
      tx.smtp.rcpt_replies.slice(0, listed).map(replyCode),
      rcpts.map((r: { code: string | null }) => r.code),
      `${at}: recipient replies`,
    );
    expectValue(tx.smtp.body?.kind?.toUpperCase(), expected.body, `${at}: body command`);
    if (expected.final_reply) assert.equal(replyCode(tx.smtp.last_reply), expected.final_reply, `${at}: final reply`);
    if (expected.message) {
      const hasMessage = tx.mailtap?.message !== undefined;
      expectValue(hasMessage, true, `${at}: message`);
      if (hasMessage) checkDerivedMessage(tx, expected.message, at);
    }
  });
}

/** Zeek smtp.log rows: one per transaction, or per session when there was none. */
function checkZeekSmtpLog(all: Fields[], row: Fields, where: string): void {
  const mine = fromClient(all, row['id.orig_h'], Number(row['id.orig_p']));
  const depth = Number(row.trans_depth);
  const record =
    transactions(mine).find((r) => r.smtp.trans_depth === depth) ??
    (depth === 1 ? mine.find((r) => r.event.action === 'smtp-session') : undefined);
  assert.ok(record, `${where}: a record for ${row['id.orig_h']}:${row['id.orig_p']} depth ${depth}`);
  assert.equal(record.destination.ip, row['id.resp_h'], `${where}: server ip`);
  assert.equal(record.destination.port, Number(row['id.resp_p']), `${where}: server port`);
  if (row.helo !== undefined && row.helo !== '-') assert.equal(record.smtp.helo, row.helo, `${where}: helo`);
  assert.equal(record.smtp.tls, row.tls === 'T', `${where}: tls`);
  if (row.mailfrom !== undefined && row.mailfrom !== '-') assert.equal(record.smtp.mail_from, row.mailfrom, `${where}: mailfrom`);
  if (row.rcptto !== undefined && row.rcptto !== '-') {
    // Zeek logs recipients as a set, so only membership is comparable, not order.
    assert.deepEqual([...record.smtp.rcpt_to].sort(), row.rcptto.split(',').sort(), `${where}: rcptto`);
  }
  if (row.last_reply !== undefined && row.last_reply !== '-') {
    assert.equal(record.smtp.last_reply, row.last_reply, `${where}: last_reply`);
  }
  const headers = record.smtp.headers ?? {};
  const compare = (ours: unknown, theirs: string | undefined, name: string): void => {
    // Zeek logs header values without RFC 2047 decoding, so encoded values are compared elsewhere.
    if (theirs === undefined || theirs === '-' || theirs.includes('=?')) return;
    assert.equal(ours, theirs, `${where}: ${name}`);
  };
  // The corpus abbreviates long values to their length, first and last characters.
  const abbreviated = (value: unknown): value is { len: number; prefix: string; suffix: string } =>
    typeof value === 'object' && value !== null && 'len' in value;
  for (const key of ['to', 'cc'] as const) {
    const theirs: unknown = row[key];
    if (!abbreviated(theirs)) continue;
    // A set's order is Zeek's own, so only the length of the joined items is comparable.
    const ours = String(headers[key] ?? '').replace(/,[ \t]+/g, ',');
    assert.equal(ours.length, theirs.len, `${where}: length of ${key}`);
  }
  // Zeek also drops the white space that starts a folded line, where RFC 5322 2.2.3 unfolding
  // keeps it ("a,\r\n b" is "a, b"); the corpus model check above asserts the RFC form.
  const zeekUnfolded = (value: unknown): unknown =>
    typeof value === 'string' ? value.replace(/,[ \t]+/g, ',') : value;
  compare(headers.from, row.from, 'from');
  // Zeek keeps To and Cc as sets of the comma-separated items, so their order is not comparable.
  const asSet = (value: unknown): unknown =>
    typeof value === 'string' ? value.split(',').map((item) => item.trim()).sort().join(',') : value;
  const zeekSet = (value: unknown): string | undefined =>
    typeof value !== 'string' || value === '-' ? undefined : (asSet(value) as string);
  compare(asSet(zeekUnfolded(headers.to)), zeekSet(row.to), 'to');
  compare(asSet(zeekUnfolded(headers.cc)), zeekSet(row.cc), 'cc');
  compare(headers.date, row.date, 'date');
  compare(headers.in_reply_to, row.in_reply_to, 'in_reply_to');
  compare(record.email?.subject, row.subject, 'subject');
  compare(record.email?.message_id, row.msg_id, 'msg_id');
  compare(record.email?.x_mailer, row.user_agent, 'user_agent');
}

/** Zeek files.log rows: every file with a SHA-1 is a part that mailtap hashed the same way. */
function checkZeekFile(all: Fields[], row: Fields, where: string, hashes: Set<string>): void {
  const txs = transactions(all);
  if (row.mime_type === 'message/rfc822' && (row.filename === undefined || row.filename === '-')) {
    // Zeek's rfc822 message file analysis logs the whole message as one file: compare its size
    // with the message mailtap hashed. Its SHA-1 is of the whole message, which mailtap hashes
    // with SHA-256 only (compared with the corpus model above).
    assert.ok(
      txs.some((r) => r.mailtap.message?.size === Number(row.seen_bytes)),
      `${where}: a message of ${row.seen_bytes} bytes`,
    );
    return;
  }
  if (row.sha1 !== undefined && row.sha1 !== '-') {
    assert.ok(hashes.has(row.sha1), `${where}: a MIME part with sha1 ${row.sha1}`);
  }
  if (row.filename === undefined || row.filename === '-') return;
  const attachments = txs.flatMap((r) => r.email.attachments ?? []);
  const found = attachments.find((a: Fields) => a.file.name === row.filename);
  assert.ok(found, `${where}: attachment ${row.filename}`);
  if (row.seen_bytes !== undefined) {
    // Zeek counts the CRLF before the closing MIME boundary as part of the file; RFC 2046 5.1.1
    // assigns that CRLF to the boundary, so mailtap's decoded size is 2 bytes smaller.
    assert.equal(found.file.size, Number(row.seen_bytes) - 2, `${where}: ${row.filename} size`);
  }
  if (row.mime_type !== undefined) assert.equal(found.file.mime_type, row.mime_type, `${where}: ${row.filename} type`);
}

/** Suricata eve.json "smtp" and "fileinfo" checks, as fields of some record. */
function suricataMatches(record: Fields, match: Fields): boolean {
  const attachments: Fields[] = record.email?.attachments ?? [];
  for (const [key, value] of Object.entries(match)) {
    const indexed = /^(.+)\[(\d+)\]$/.exec(key);
    const base = indexed ? indexed[1] : key;
    const index = indexed ? Number(indexed[2]) : 0;
    let ok = true;
    switch (base) {
      case 'event_type':
        ok = value === 'smtp' || value === 'fileinfo';
        break;
      case 'src_ip':
        ok = record.source.ip === value;
        break;
      case 'src_port':
        ok = record.source.port === value;
        break;
      case 'dest_ip':
        ok = record.destination.ip === value;
        break;
      case 'dest_port':
        ok = record.destination.port === value;
        break;
      case 'tx_id':
        ok = record.smtp.trans_depth === Number(value) + 1;
        break;
      case 'smtp.helo':
        ok = record.smtp.helo === value;
        break;
      case 'smtp.mail_from':
        ok = record.smtp.mail_from === bareAddress(String(value));
        break;
      case 'smtp.rcpt_to':
        ok = record.smtp.rcpt_to?.[index] === bareAddress(String(value));
        break;
      case 'email.from':
        ok = record.smtp.headers?.from === value;
        break;
      case 'email.to':
        ok = record.email?.to?.address?.[index] === bareAddress(String(value));
        break;
      case 'email.subject':
        ok = record.email?.subject === value;
        break;
      case 'email.message_id':
        ok = record.email?.message_id === value;
        break;
      case 'email.date':
        ok = record.smtp.headers?.date === value;
        break;
      case 'email.attachment':
        ok = attachments.filter((a) => a.file.name !== undefined)[index]?.file.name === value;
        break;
      case 'fileinfo.filename':
        ok = attachments.some((a) => a.file.name === value);
        break;
      case 'fileinfo.size':
        ok = attachments.some((a) => a.file.size === value);
        break;
      case 'fileinfo.sha256':
        ok = attachments.some((a) => a.file.hash?.sha256 === value);
        break;
      case 'not-has-key': {
        const keys = Array.isArray(value) ? value : [value];
        ok = keys.every((k: string) => {
          if (k === 'smtp.rcpt_to') return (record.smtp.rcpt_to ?? []).length === 0;
          const slot = /^(smtp\.rcpt_to|email\.to)\[(\d+)\]$/.exec(k);
          if (!slot) return true;
          const list = slot[1] === 'smtp.rcpt_to' ? record.smtp.rcpt_to : record.email?.to?.address;
          return (list ?? []).length <= Number(slot[2]);
        });
        break;
      }
      default:
        // Fields about Suricata itself (email.status, body_md5, fileinfo.state, app_proto) have
        // no counterpart in mailtap.
        ok = true;
    }
    if (!ok) return false;
  }
  return true;
}

function suricataChecks(anchor: Fields): Fields[] {
  const checks: Fields[] = [];
  for (const run of anchor['suricata-verify'] ?? []) {
    for (const check of run.checks ?? []) {
      const match = check.match;
      if (!match || !(check.count >= 1)) continue; // count 0 checks depend on IPS policy settings
      if (match.event_type !== 'smtp' && match.event_type !== 'fileinfo') continue;
      if (check.requires?.['lt-version'] !== undefined) continue; // only current Suricata behaviour
      checks.push(match);
    }
  }
  return checks;
}

/** Arkime session fields. Arkime lower-cases addresses and host names. */
function checkArkime(all: Fields[], expected: Fields, where: string): void {
  const { ip, port } = splitEndpoint(expected.client);
  const txs = transactions(fromClient(all, ip, port));
  const sessions = fromClient(all, ip, port).filter((r) => r.event.action === 'smtp-session');
  const any = txs[0] ?? sessions[0];
  if (!expected.protocol?.includes('smtp')) return;
  assert.ok(any, `${where}: a record for ${expected.client}`);
  const lower = (list: string[] | undefined): string[] => (list ?? []).map((s) => s.toLowerCase());
  if (expected['email.smtpHello']) {
    assert.deepEqual([any.smtp.helo?.toLowerCase()], lower(expected['email.smtpHello']), `${where}: helo`);
  }
  if (expected['email.src']) {
    assert.deepEqual(lower(txs.map((t) => t.smtp.mail_from)), lower(expected['email.src']), `${where}: mail from`);
  }
  if (expected['email.dst']) {
    const rcpts = [...new Set(txs.flatMap((t) => t.smtp.rcpt_to as string[]))];
    assert.deepEqual(lower(rcpts).sort(), lower(expected['email.dst']).sort(), `${where}: recipients`);
  }
  if (expected['email.subject']) {
    expectValue(txs.map((t) => t.email.subject), expected['email.subject'], `${where}: decoded subject`);
  }
  if (expected['email.id']) {
    assert.deepEqual(txs.map((t) => bareAddress(t.email.message_id ?? '')), expected['email.id'], `${where}: message id`);
  }
  if (expected['email.useragent']) {
    assert.deepEqual(txs.map((t) => t.email.x_mailer), expected['email.useragent'], `${where}: user agent`);
  }
  if (expected['email.filename']) {
    const names = txs.flatMap((t) => (t.email.attachments ?? []).map((a: Fields) => a.file.name));
    assert.deepEqual(names, expected['email.filename'], `${where}: attachment names`);
  }
  if (expected['email.sha256']) {
    // Arkime hashes every decoded body part, text parts included.
    const hashes = txs.flatMap((t) => (t.mailtap.mime?.parts ?? []).map((p: Fields) => p.sha256));
    for (const hash of expected['email.sha256']) assert.ok(hashes.includes(hash), `${where}: attachment sha256 ${hash}`);
  }
}

for (const source of SOURCES) {
  describe(`${source} captures`, () => {
    for (const entry of entries(source)) {
      test(`${entry.file} matches derived sessions`, () => {
        const all = records(source, entry.file);
        for (const [i, session] of (entry.derived ?? []).entries()) {
          checkDerivedSession(all, session, entry.file, `${entry.file} session ${i + 1}`);
        }
      });

      const zeek: Fields[] = entry.anchor?.['zeek btest baselines'] ?? [];
      const smtpRows = zeek.flatMap((b) => (b['smtp.log'] as Fields[] | undefined) ?? []);
      const fileRows = zeek.flatMap((b) =>
        ['files.log', 'files.cut', 'files.log.cut'].flatMap((k) => (b[k] as Fields[] | undefined) ?? []),
      );
      if (smtpRows.length > 0 || fileRows.length > 0) {
        test(`${entry.file} matches Zeek logs`, () => {
          const all = records(source, entry.file);
          smtpRows.forEach((row, i) => checkZeekSmtpLog(all, row, `${entry.file} smtp.log row ${i + 1}`));
          const hashes = new Set<string>(
            transactions(all).flatMap((r) => (r.mailtap.mime?.parts ?? []).map((p: Fields) => p.sha1)),
          );
          fileRows.forEach((row, i) => checkZeekFile(all, row, `${entry.file} files.log row ${i + 1}`, hashes));
        });
      }

      const checks = suricataChecks(entry.anchor ?? {}).map((match) => {
        const replaced = { ...match };
        for (const difference of SURICATA_DIFFERENCES[entry.file] ?? []) {
          if (difference.field in replaced) replaced[difference.field] = difference.expected;
        }
        return replaced;
      });
      if (checks.length > 0) {
        test(`${entry.file} matches Suricata checks`, () => {
          const all = records(source, entry.file);
          for (const match of checks) {
            assert.ok(
              all.some((r) => suricataMatches(r, match)),
              `${entry.file}: no record matches Suricata's ${JSON.stringify(match)}`,
            );
          }
        });
      }

      const arkime: Fields[] = entry.anchor?.['arkime tests/pcap/*.test'] ?? [];
      if (arkime.length > 0) {
        test(`${entry.file} matches Arkime sessions`, () => {
          const all = records(source, entry.file);
          arkime.forEach((expected, i) => checkArkime(all, expected, `${entry.file} arkime session ${i + 1}`));
        });
      }
    }
  });
}
