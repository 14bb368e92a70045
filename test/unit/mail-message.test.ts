import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MessageParser, type MessageInfo } from '../../src/mail/index.js';

const CAPTURES = new URL('../../../shared/captures/', import.meta.url);

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function parse(message: Buffer | string, limits?: ConstructorParameters<typeof MessageParser>[0]) {
  const parser = new MessageParser(limits);
  parser.write(Buffer.isBuffer(message) ? message : Buffer.from(message, 'latin1'));
  parser.end(true);
  return parser.result;
}

async function parseInSteps(message: Buffer, step: number): Promise<MessageInfo> {
  const parser = new MessageParser();
  for (let i = 0; i < message.length; i += step) {
    parser.write(message.subarray(i, i + step));
  }
  parser.end(true);
  return parser.result;
}

function crlf(lines: string[]): string {
  return lines.join('\r\n');
}

/** Deterministic bytes (a 32-bit LCG), so a failure can be reproduced. */
function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

/** Wraps base64 at 76 characters per line as RFC 2045 section 6.8 requires. */
function base64Lines(data: Buffer): string {
  return data.toString('base64').replace(/.{76}/g, '$&\r\n');
}

const ATTACHMENT = pseudoRandomBytes(5000, 7);

const MIXED = crlf([
  'Received: from client.example.com by mx.example.net',
  'From: Sender <sender@example.com>',
  'To: rcpt@example.net',
  'Subject: report',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  'This is the preamble.',
  '--outer',
  'Content-Type: multipart/alternative; boundary=inner',
  '',
  '--inner',
  'Content-Type: text/plain; charset=ISO-8859-1',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Caf=E9 cr=E8me =',
  'br=FBl=E9e=3D',
  '--inner',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>hi</p>',
  '--inner--',
  '',
  '--outer',
  'Content-Type: application/octet-stream; name="data.bin"',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename="data.bin"',
  '',
  base64Lines(ATTACHMENT),
  '--outer--',
  'epilogue',
  '',
]);

test('multipart mixed with nested alternative', async () => {
  const info = await parse(MIXED);

  assert.deepEqual(
    info.parts.map((p) => [p.path, p.contentType]),
    [
      ['1', 'multipart/mixed'],
      ['1.1', 'multipart/alternative'],
      ['1.1.1', 'text/plain'],
      ['1.1.2', 'text/html'],
      ['1.2', 'application/octet-stream'],
    ],
  );
  assert.deepEqual(info.anomalies, []);
  assert.equal(info.size, Buffer.byteLength(MIXED, 'latin1'));
  assert.equal(info.headers.subject, 'report');
  assert.equal(info.headers.received, 1);
  assert.deepEqual(info.from, [{ name: 'Sender', address: 'sender@example.com' }]);
  assert.deepEqual(info.to, [{ address: 'rcpt@example.net' }]);
});

test('base64 attachment size and sha256', async () => {
  const info = await parse(MIXED);
  assert.equal(info.attachments.length, 1);
  const attachment = info.attachments[0];
  assert.equal(attachment.filename, 'data.bin');
  assert.equal(attachment.disposition, 'attachment');
  assert.equal(attachment.transferEncoding, 'base64');
  assert.equal(attachment.size, ATTACHMENT.length);
  assert.equal(attachment.sha256, sha256(ATTACHMENT));
  assert.equal(attachment.isAttachment, true);
});

test('quoted-printable part decoded size and sha256', async () => {
  const info = await parse(MIXED);
  const text = info.parts[2];
  // Decoded by hand: =E9 and =E8 and =FB are latin1 bytes, "=" at a line end is a soft break.
  const decoded = Buffer.from('Caf\xe9 cr\xe8me br\xfbl\xe9e=', 'latin1');
  assert.equal(text.charset, 'iso-8859-1');
  assert.equal(text.transferEncoding, 'quoted-printable');
  assert.equal(text.size, decoded.length);
  assert.equal(text.sha256, sha256(decoded));
  assert.equal(text.isAttachment, false);
});

test('text part excludes the line ending before its delimiter', async () => {
  const info = await parse(MIXED);
  const html = info.parts[3];
  assert.equal(html.size, '<p>hi</p>'.length);
  assert.equal(html.sha256, sha256('<p>hi</p>'));
  assert.equal(info.parts[0].size, 0);
  assert.equal(info.parts[0].sha256, undefined);
});

test('one byte at a time equals all at once', async () => {
  const bytes = Buffer.from(MIXED, 'latin1');
  const whole = await parse(bytes);
  assert.deepEqual(await parseInSteps(bytes, 1), whole);
  assert.deepEqual(await parseInSteps(bytes, 7), whole);
  assert.deepEqual(await parseInSteps(bytes, 1000), whole);
});

test('reused write buffer does not change results', async () => {
  const bytes = Buffer.from(MIXED, 'latin1');
  const parser = new MessageParser();
  const scratch = Buffer.alloc(64);
  for (let i = 0; i < bytes.length; i += scratch.length) {
    const n = bytes.copy(scratch, 0, i, i + scratch.length);
    parser.write(scratch.subarray(0, n));
    scratch.fill(0x41);
  }
  parser.end(true);
  assert.deepEqual(await parser.result, await parse(bytes));
});

test('LF-only line endings', async () => {
  const lf = MIXED.replace(/\r\n/g, '\n');
  const info = await parse(lf);
  assert.equal(info.attachments[0].sha256, sha256(ATTACHMENT));
  assert.equal(info.parts[3].size, '<p>hi</p>'.length);
});

test('delimiter with transport padding', async () => {
  const message = crlf([
    'Content-Type: multipart/mixed; boundary=b',
    '',
    '--b \t',
    '',
    'first',
    '--b--  ',
    '',
  ]);
  const info = await parse(message);
  assert.equal(info.parts.length, 2);
  assert.equal(info.parts[1].sha256, sha256('first'));
});

test('truncated message is flagged', async () => {
  const bytes = Buffer.from(MIXED, 'latin1');
  const cut = bytes.indexOf('base64\r\n') + 1000;
  const parser = new MessageParser();
  parser.write(bytes.subarray(0, cut));
  parser.end(false);
  const info = await parser.result;
  assert.ok(info.anomalies.includes('message_truncated'));
  assert.equal(info.size, cut);
  assert.equal(info.attachments.length, 1);
  assert.ok(info.attachments[0].size < ATTACHMENT.length);
});

test('field over the limit is cut, later fields kept', async () => {
  const message = crlf([
    'Subject: kept',
    `X-Filler: ${'x'.repeat(5000)}`,
    'From: late@example.com',
    '',
    'body',
  ]);
  const info = await parse(message, { maxHeaderBytes: 1024 });
  assert.ok(info.anomalies.includes('mime_header_too_long'));
  assert.equal(info.headers.subject, 'kept');
  assert.equal(info.headers.from, 'late@example.com');
  assert.equal(info.parts[0].sha256, sha256('body'));
});

test('long subject is cut at maxHeaderBytes', async () => {
  // "Subject: " takes 9 of the 1024 bytes, so 1015 bytes of the value remain.
  const message = crlf([`Subject: ${'s'.repeat(3000)}`, 'Date: Mon, 1 Jan 2024 00:00:00 +0000', '', 'body']);
  const info = await parse(message, { maxHeaderBytes: 1024 });
  assert.ok(info.anomalies.includes('mime_header_too_long'));
  assert.equal(info.headers.subject, 's'.repeat(1015));
  assert.equal(info.headers.date, 'Mon, 1 Jan 2024 00:00:00 +0000');
});

test('long subject cut the same in small writes', async () => {
  const message = Buffer.from(crlf([`Subject: ${'s'.repeat(3000)}`, 'From: a@example.com', '', 'body']));
  for (const step of [1, 7, 1000]) {
    const parser = new MessageParser({ maxHeaderBytes: 1024 });
    for (let i = 0; i < message.length; i += step) {
      parser.write(message.subarray(i, i + step));
    }
    parser.end(true);
    const info = await parser.result;
    assert.equal(info.headers.subject, 's'.repeat(1015), `step ${step}`);
    assert.equal(info.headers.from, 'a@example.com', `step ${step}`);
    assert.equal(info.parts[0].sha256, sha256('body'), `step ${step}`);
  }
});

test('repeated To fields kept up to the limit', async () => {
  // Each "To: rNN@example.com\r\n" field is 21 bytes: 10 fit into 210 bytes, the rest do not.
  const lines = [];
  for (let i = 10; i < 30; i++) {
    lines.push(`To: r${i}@example.com`);
  }
  const info = await parse(crlf([...lines, 'From: a@example.com', '', 'body']), { maxHeaderBytes: 210 });
  assert.equal(info.to.length, 10);
  assert.equal(info.to[9].address, 'r19@example.com');
  assert.ok(info.anomalies.includes('mime_header_too_long'));
  assert.equal(info.headers.from, 'a@example.com');
});

test('overlong line without a colon starts the body', async () => {
  // Python's email package also reads a line that is no header field as the first body line.
  const line = 'y'.repeat(5000);
  const message = Buffer.from(crlf(['From: a@example.com', line, 'more']));
  for (const step of [1, 999, message.length]) {
    const parser = new MessageParser({ maxHeaderBytes: 1024 });
    for (let i = 0; i < message.length; i += step) {
      parser.write(message.subarray(i, i + step));
    }
    parser.end(true);
    const info = await parser.result;
    assert.ok(info.anomalies.includes('mime_header_missing_separator'), `step ${step}`);
    assert.equal(info.headers.from, 'a@example.com', `step ${step}`);
    assert.equal(info.parts[0].sha256, sha256(`${line}\r\nmore`), `step ${step}`);
  }
});

test('first occurrence of a single field wins', async () => {
  const message = crlf([
    'Subject: first',
    'Content-Type: text/html; charset=utf-8',
    'Subject: second',
    'Content-Type: text/plain',
    '',
    'body',
  ]);
  const info = await parse(message);
  assert.equal(info.headers.subject, 'first');
  assert.equal(info.parts[0].contentType, 'text/html');
  assert.equal(info.parts[0].charset, 'utf-8');
});

test('field count over maxHeaderFields is flagged', async () => {
  const fields = ['X-A: 1', 'X-B: 2', 'From: a@example.com'];
  const atLimit = await parse(crlf([...fields, '', 'body']), { maxHeaderFields: 3 });
  assert.equal(atLimit.anomalies.includes('mime_too_many_header_fields'), false);
  const overLimit = await parse(crlf(['X-C: 3', ...fields, '', 'body']), { maxHeaderFields: 3 });
  assert.ok(overLimit.anomalies.includes('mime_too_many_header_fields'));
  assert.equal(overLimit.headers.from, 'a@example.com');
});

test('From after 1 MB of junk fields', async () => {
  const junk = [];
  for (let i = 0; junk.length * 64 < 1 << 20; i++) {
    // 64 bytes with the CRLF.
    junk.push(`X-Junk-${String(i).padStart(6, '0')}: ${'j'.repeat(47)}`);
  }
  const message = crlf([...junk, 'From: Hidden <hidden@example.com>', 'Subject: found', '', 'body']);
  assert.ok(message.length > 1 << 20);
  const info = await parse(message);
  assert.deepEqual(info.from, [{ name: 'Hidden', address: 'hidden@example.com' }]);
  assert.equal(info.headers.subject, 'found');
  assert.ok(info.anomalies.includes('mime_too_many_header_fields'));
  assert.equal(info.anomalies.includes('mime_header_too_long'), false);
});

test('From after one 1 MB folded field', async () => {
  const folded = ['X-Junk: start'];
  for (let i = 0; i < 1 << 15; i++) {
    folded.push(` ${'j'.repeat(30)}`);
  }
  const message = crlf([...folded, 'From: hidden@example.com', '', 'body']);
  assert.ok(message.length > 1 << 20);
  const info = await parse(message);
  assert.equal(info.headers.from, 'hidden@example.com');
  assert.ok(info.anomalies.includes('mime_header_too_long'));
});

test('From after one 1 MB line', async () => {
  const message = Buffer.from(crlf([`X-Junk: ${'j'.repeat(1 << 20)}`, 'From: hidden@example.com', '', 'body']));
  for (const step of [1500, message.length]) {
    const parser = new MessageParser();
    for (let i = 0; i < message.length; i += step) {
      parser.write(message.subarray(i, i + step));
    }
    parser.end(true);
    const info = await parser.result;
    assert.equal(info.headers.from, 'hidden@example.com', `step ${step}`);
    assert.ok(info.anomalies.includes('mime_header_too_long'), `step ${step}`);
    assert.equal(info.parts[0].sha256, sha256('body'), `step ${step}`);
  }
});

test('Zeek capture with a 400 KB folded header', async () => {
  // Zeek's own test raises exceeded_mime_max_header_bytes for this message.
  const body = smtpBodyFromCapture('zeek/mime-header-size-limit.pcap');
  assert.equal(body.length, 400074);
  const info = await parse(body);
  assert.ok(info.anomalies.includes('mime_header_too_long'));
  assert.deepEqual(info.from, [{ address: 'exploit@attacker.evil' }]);
  // The field is "Subject: CVE-CANDIDATE\r\n" (24 bytes), then " x\r\n" lines of 4 bytes:
  // 25594 of them fill the 102400 bytes exactly.
  assert.equal(info.headers.subject, `CVE-CANDIDATE${' x'.repeat(25594)}`);
  assert.equal(info.parts[0].sha256, sha256('This is the body.\r\n'));
});

test('parts beyond maxParts are not analysed', async () => {
  const lines = ['Content-Type: multipart/mixed; boundary=p', ''];
  for (let i = 0; i < 10_000; i++) {
    lines.push('--p', 'Content-Type: text/plain', '', `part ${i}`);
  }
  lines.push('--p--', '');
  const message = Buffer.from(crlf(lines));
  const info = await parse(message);
  assert.equal(info.parts.length, 1000);
  assert.ok(info.anomalies.includes('mime_too_many_parts'));
  assert.equal(info.size, message.length);
});

test('nesting beyond maxDepth is not analysed', async () => {
  const levels = 50;
  const lines: string[] = ['Content-Type: multipart/mixed; boundary=b0', ''];
  for (let i = 0; i < levels; i++) {
    lines.push(`--b${i}`, `Content-Type: multipart/mixed; boundary=b${i + 1}`, '');
  }
  lines.push(`--b${levels}`, 'Content-Type: text/plain', '', 'deep');
  for (let i = levels; i > 0; i--) {
    lines.push(`--b${i}--`);
  }
  // A sibling at the top level after the deep branch is still found.
  lines.push('--b0', 'Content-Type: application/pdf', 'Content-Disposition: attachment; filename=a.pdf', '', 'pdf');
  lines.push('--b0--', '');
  const info = await parse(crlf(lines), { maxDepth: 5 });

  assert.ok(info.anomalies.includes('mime_too_deep'));
  // The root and the multiparts at depths 1 to 5, then the sibling attachment.
  assert.equal(info.parts.length, 7);
  assert.equal(info.parts[5].path, '1.1.1.1.1.1');
  assert.equal(info.attachments[0].path, '1.2');
  assert.equal(info.attachments[0].sha256, sha256('pdf'));
});

test('garbage binary input resolves', async () => {
  const garbage = pseudoRandomBytes(1 << 20, 99);
  const parser = new MessageParser();
  for (let i = 0; i < garbage.length; i += 1500) {
    parser.write(garbage.subarray(i, i + 1500));
  }
  parser.end(true);
  const info = await parser.result;
  assert.equal(info.size, garbage.length);
  assert.ok(info.parts.length <= 1);
});

test('garbage after a multipart header resolves', async () => {
  const head = Buffer.from('Content-Type: multipart/mixed; boundary=-\r\n\r\n--\r\n');
  const garbage = pseudoRandomBytes(200_000, 5);
  const info = await parse(Buffer.concat([head, garbage, Buffer.from('\n---\n--\n--')]));
  assert.equal(info.size, head.length + garbage.length + 10);
});

test('empty body gives no parts', async () => {
  const parser = new MessageParser();
  parser.end(true);
  const info = await parser.result;
  assert.deepEqual(info.parts, []);
  assert.equal(info.size, 0);
  assert.deepEqual(info.headers, { received: 0 });
});

test('RFC 2231 filename continuations', async () => {
  // Parameter values from RFC 2231 sections 3 and 4, given here as file names.
  const message = crlf([
    'Content-Type: multipart/mixed; boundary=x',
    '',
    '--x',
    'Content-Type: application/x-stuff',
    "Content-Disposition: attachment; filename*0*=us-ascii'en'This%20is%20even%20more%20;",
    '  filename*1*=%2A%2A%2Afun%2A%2A%2A%20;',
    '  filename*2="isn\'t it!"',
    '',
    'a',
    '--x',
    'Content-Type: application/x-stuff',
    "Content-Disposition: attachment; filename*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
    '',
    'b',
    '--x',
    "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.txt",
    '',
    'c',
    '--x--',
    '',
  ]);
  const info = await parse(message);
  assert.deepEqual(
    info.attachments.map((a) => a.filename),
    ["This is even more ***fun*** isn't it!", 'This is ***fun***', '€ rates.txt'],
  );
});

test('RFC 2231 sections stop at a gap', async () => {
  // RFC 2231 section 3 numbers the sections from 0 without gaps; a mail client shows the
  // sections before a missing number, so the name it shows is the one to report.
  const message = crlf([
    'Content-Type: multipart/mixed; boundary=x',
    '',
    '--x',
    'Content-Type: application/octet-stream',
    'Content-Disposition: attachment; filename*0="invoice"; filename*1=".js"; filename*3=".txt"',
    '',
    'a',
    '--x',
    'Content-Type: application/octet-stream; name*0="report"; name*2=".exe"',
    '',
    'b',
    '--x',
    "Content-Disposition: attachment; filename*0*=utf-8''%C3%A9t%C3%A9; filename*1=\".pdf\"",
    '',
    'c',
    '--x--',
    '',
  ]);
  const info = await parse(message);
  assert.deepEqual(
    info.attachments.map((a) => a.filename),
    ['invoice.js', 'report', 'été.pdf'],
  );
});

test('RFC 2047 encoded Content-Type name', async () => {
  const message = crlf([
    'Content-Type: multipart/mixed; boundary=x',
    '',
    '--x',
    'Content-Type: application/pdf; name="=?ISO-8859-1?Q?r=E9sum=E9.pdf?="',
    '',
    'a',
    '--x',
    'Content-Type: application/pdf; name="r\xc3\xa9sum\xc3\xa9 2.pdf"',
    '',
    'b',
    '--x--',
    '',
  ]);
  const info = await parse(message);
  assert.deepEqual(
    info.attachments.map((a) => [a.filename, a.disposition, a.isAttachment]),
    [
      ['résumé.pdf', undefined, true],
      ['résumé 2.pdf', undefined, true],
    ],
  );
});

test('long file name is cut at 1024 characters', async () => {
  const name = 'n'.repeat(3000) + '.exe';
  const message = crlf([
    'Content-Type: multipart/mixed; boundary=x',
    '',
    '--x',
    `Content-Disposition: attachment; filename="${name}"`,
    '',
    'a',
    '--x--',
  ]);
  const info = await parse(message);
  assert.equal(info.attachments[0].filename, name.slice(0, 1024));
});

/**
 * Extracts the DATA body of the first SMTP transaction from a capture: client-to-server TCP
 * payloads ordered by sequence number, from after "DATA\r\n" to "\r\n.\r\n", dot-unstuffed
 * (RFC 5321 section 4.5.2). Handles classic pcap with Ethernet, IPv4 or IPv6, and no options
 * beyond what the header lengths describe: enough for these small test captures.
 */
function smtpBodyFromCapture(file: string): Buffer {
  const pcap = readFileSync(new URL(file, CAPTURES));
  assert.equal(pcap.readUInt32LE(0), 0xa1b2c3d4, 'little-endian pcap expected');
  const segments = new Map<number, Buffer>();
  for (let at = 24; at + 16 <= pcap.length; ) {
    const length = pcap.readUInt32LE(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + length);
    at += 16 + length;
    const etherType = frame.readUInt16BE(12);
    let tcp: Buffer;
    if (etherType === 0x0800 && frame[23] === 6) {
      tcp = frame.subarray(14 + (frame[14] & 0x0f) * 4, 14 + frame.readUInt16BE(16));
    } else if (etherType === 0x86dd && frame[20] === 6) {
      tcp = frame.subarray(54, 54 + frame.readUInt16BE(18));
    } else {
      continue;
    }
    const payload = tcp.subarray((tcp[12] >> 4) * 4);
    if (tcp.readUInt16BE(2) === 25 && payload.length > 0) {
      segments.set(tcp.readUInt32BE(4), Buffer.from(payload));
    }
  }
  const stream = Buffer.concat([...segments.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]));
  const text = stream.toString('latin1');
  const command = /(?:^|\r\n)DATA\r\n/i.exec(text);
  assert.ok(command !== null, `no DATA command in ${file}`);
  const start = command.index + command[0].length;
  const end = text.indexOf('\r\n.\r\n', start) + 2;
  return Buffer.from(text.slice(start, end).replace(/\r\n\.\./g, '\r\n.'), 'latin1');
}

test('Arkime zip attachment hash', async () => {
  // Arkime's smtp-zip test expects a.zip with this SHA-256; its decoded size is 310 bytes.
  const info = await parse(smtpBodyFromCapture('arkime/smtp-zip.pcap'));
  assert.equal(info.attachments.length, 1);
  assert.equal(info.attachments[0].filename, 'a.zip');
  assert.equal(info.attachments[0].contentType, 'application/zip');
  assert.equal(info.attachments[0].size, 310);
  assert.equal(info.attachments[0].sha256, '61479904e443b354d4427a51b990c696f731e341e4c63328e07c1a92658ba591');
  assert.equal(info.headers.subject, 'zip test');
  assert.equal(info.headers.userAgent, 'Mutt/1.5.20 (2009-12-10)');
});

test('Arkime base64 text part hash', async () => {
  // Arkime's email.sha256 for this capture is the hash of its one base64 text part.
  const info = await parse(smtpBodyFromCapture('arkime/smtp-subject-utf8-q.pcap'));
  assert.equal(info.parts[1].transferEncoding, 'base64');
  assert.equal(info.parts[1].isAttachment, false);
  assert.equal(info.parts[1].sha256, '8d4b2e39ccf34cff2147c7b6896f4bd5ce0a209d0cd87ca75035b4c8243bf865');
  assert.equal(info.headers.subject, 'xxxxxx xxxxxx xx xxxxxxxxx xx-xxxxxxx（ANA）GGL_xxxxxxxxxxxxx_xxxxxx.zip');
});

test('Zeek message/rfc822 attachment is one leaf', async () => {
  const info = await parse(smtpBodyFromCapture('zeek/smtp-attachment-msg.pcap'));
  assert.deepEqual(
    info.parts.map((p) => [p.path, p.contentType]),
    [
      ['1', 'multipart/mixed'],
      ['1.1', 'text/plain'],
      ['1.2', 'message/rfc822'],
    ],
  );
  // Zeek's files.log gives seen_bytes=16 for the text part: "this is the body".
  assert.equal(info.parts[1].size, 16);
  const enclosed = 'From: <attachment@example.com>\r\n\r\n';
  assert.equal(info.attachments[0].filename, 'test.msg');
  assert.equal(info.attachments[0].size, enclosed.length);
  assert.equal(info.attachments[0].sha256, sha256(enclosed));
});

test('Zeek capture with 1800 header fields', async () => {
  // 600 Received, 600 To and 600 CC fields come before From, Subject, Date and Message-ID.
  const body = smtpBodyFromCapture('zeek/smtp-many-addresses.pcap');
  assert.equal(body.length, 116178);
  const info = await parse(body);

  // Values from tshark's follow stream of the capture.
  assert.equal(info.headers.from, 'itzltrab@kmzcztrw.kkk.com');
  assert.equal(info.headers.subject, 'Test message');
  assert.equal(info.headers.date, 'Sat, 11 Jul 2026 20:24:25 +0000');
  assert.equal(info.headers.messageId, '<mcdwvcmqbchnpflp@vqpccynz.udj.com>');
  assert.equal(info.headers.received, 600);
  assert.ok(info.anomalies.includes('mime_too_many_header_fields'));
  assert.equal(info.anomalies.includes('mime_header_too_long'), false);

  // The corpus lists the value of each To and Cc field, as Wireshark's IMF dissector reads them.
  const corpus = JSON.parse(readFileSync(new URL('zeek/expected.json', CAPTURES), 'utf8')) as {
    file: string;
    derived: { transactions: { message: { to: string[]; cc: string[] } }[] }[];
  }[];
  const expected = corpus.find((entry) => entry.file === 'smtp-many-addresses.pcap')!.derived[0].transactions[0]
    .message;
  assert.equal(expected.to.length, 600);
  assert.deepEqual(
    info.to.map((a) => a.address),
    expected.to,
  );
  assert.deepEqual(
    info.cc.map((a) => a.address),
    expected.cc,
  );
  assert.equal(info.headers.to, expected.to.join(', '));
});

test('many header fields in small writes', async () => {
  const body = smtpBodyFromCapture('zeek/smtp-many-addresses.pcap');
  const whole = await parse(body);
  for (const step of [1, 13, 1460]) {
    assert.deepEqual(await parseInSteps(body, step), whole, `step ${step}`);
  }
});

/** Returns V8 heap plus Buffer memory after a full garbage collection. */
function memoryInUse(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

test('50 MB header block keeps memory bounded', async () => {
  // One 64 KB chunk of fields, written again and again: kept From, To and Subject fields, a
  // folded junk field and plain junk fields, and never the blank line that ends the block.
  const fields: string[] = [];
  for (let i = 0; fields.join('\r\n').length < 64 * 1024; i++) {
    fields.push(`To: r${i}@example.com`, `From: f${i}@example.com`, `Subject: s${i}`);
    fields.push(`X-Junk-${i}: ${'j'.repeat(100)}`, ' folded continuation');
  }
  const chunk = Buffer.from(`${fields.join('\r\n')}\r\n`);
  const parser = new MessageParser();
  const before = memoryInUse();
  let peak = 0;
  for (let written = 0; written < 50 * 1024 * 1024; written += chunk.length) {
    parser.write(chunk);
    if (written % (5 * 1024 * 1024) < chunk.length) {
      peak = Math.max(peak, memoryInUse() - before);
    }
  }
  peak = Math.max(peak, memoryInUse() - before);
  // Kept fields are at most 13 x 100 KB; the rest is slack for the runtime.
  assert.ok(peak < 8 * 1024 * 1024, `memory grew by ${peak} bytes`);

  parser.write(Buffer.from('\r\nbody'));
  parser.end(true);
  const info = await parser.result;
  assert.equal(info.headers.subject, 's0');
  assert.equal(info.from[0].address, 'f0@example.com');
  assert.ok(info.to.length > 1000);
  assert.ok(info.anomalies.includes('mime_too_many_header_fields'));
  assert.ok(info.anomalies.includes('mime_header_too_long'));
  assert.equal(info.parts[0].sha256, sha256('body'));
});

test('50 MB header line keeps memory bounded', async () => {
  const chunk = Buffer.alloc(64 * 1024, 'j');
  const parser = new MessageParser();
  parser.write(Buffer.from('From: a@example.com\r\nX-Junk: '));
  const before = memoryInUse();
  for (let written = 0; written < 50 * 1024 * 1024; written += chunk.length) {
    parser.write(chunk);
  }
  const growth = memoryInUse() - before;
  assert.ok(growth < 4 * 1024 * 1024, `memory grew by ${growth} bytes`);
  parser.write(Buffer.from('\r\n\r\nbody'));
  parser.end(true);
  const info = await parser.result;
  assert.equal(info.headers.from, 'a@example.com');
  assert.ok(info.anomalies.includes('mime_header_too_long'));
  assert.equal(info.parts[0].sha256, sha256('body'));
});

test('truncated plain message keeps message_truncated', async () => {
  const parser = new MessageParser();
  parser.write(Buffer.from('Subject: cut\r\n\r\nfirst line of a body that never ends'));
  parser.end(false);
  const info = await parser.result;
  assert.ok(info.anomalies.includes('message_truncated'));
  assert.equal(info.headers.subject, 'cut');
});
