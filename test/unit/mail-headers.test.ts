import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  decodeEncodedWords,
  decodeHeaderValue,
  decodeRawHeaderText,
  readMessageHeaders,
} from '../../src/mail/index.js';

const ARKIME = new URL('../../../shared/captures/arkime/', import.meta.url);

/** Builds the raw-line list mailsplit's Headers.getList() returns, one char per byte. */
function rawLines(block: string): { key: string; line: string }[] {
  return block
    .split(/\r\n(?![ \t])/)
    .filter((line) => line !== '')
    .map((line) => ({ key: line.slice(0, line.indexOf(':')).trim().toLowerCase(), line }));
}

test('RFC 2047 section 8 display examples', () => {
  // The table of encoded text and how it is displayed, from RFC 2047 section 8.
  const table: [string, string][] = [
    ['(=?ISO-8859-1?Q?a?=)', '(a)'],
    ['(=?ISO-8859-1?Q?a?= b)', '(a b)'],
    ['(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)', '(ab)'],
    ['(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)', '(ab)'],
    ['(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)', '(ab)'],
    ['(=?ISO-8859-1?Q?a_b?=)', '(a b)'],
    ['(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)', '(a b)'],
  ];
  for (const [encoded, displayed] of table) {
    assert.equal(decodeHeaderValue(`Subject: ${encoded}`), displayed, encoded);
  }
});

test('RFC 2047 section 8 header examples', () => {
  const block = [
    'From: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>',
    'To: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>',
    'CC: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>',
    'Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=',
    '    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=',
  ].join('\r\n');
  const { headers, from, to, cc } = readMessageHeaders(rawLines(block));

  assert.equal(headers.subject, 'If you can read this you understand the example.');
  assert.equal(headers.from, 'Keith Moore <moore@cs.utk.edu>');
  assert.deepEqual(from, [{ name: 'Keith Moore', address: 'moore@cs.utk.edu' }]);
  assert.deepEqual(to, [{ name: 'Keld Jørn Simonsen', address: 'keld@dkuug.dk' }]);
  assert.deepEqual(cc, [{ name: 'André Pirard', address: 'PIRARD@vm1.ulg.ac.be' }]);
});

test('encoded words in utf-8 and windows-1252', () => {
  assert.equal(decodeEncodedWords('=?utf-8?B?4oKsIHJhdGVz?='), '€ rates');
  assert.equal(decodeEncodedWords('=?UTF-8?Q?caf=C3=A9?='), 'café');
  // 0x92 is the right single quotation mark in windows-1252 (U+2019).
  assert.equal(decodeEncodedWords('=?windows-1252?Q?What=92s?='), 'What\u2019s');
});

test('empty encoded word between adjacent words', () => {
  assert.equal(decodeEncodedWords('=?ISO-8859-1?Q?a?==?ISO-8859-1?Q??==?ISO-8859-1?Q?b?='), 'ab');
});

test('raw 8-bit header text is utf-8 or windows-1252', () => {
  assert.equal(decodeRawHeaderText(Buffer.from('café', 'utf8').toString('latin1')), 'café');
  assert.equal(decodeRawHeaderText('What\x92s'), 'What\u2019s');
  assert.equal(decodeRawHeaderText('plain'), 'plain');
});

test('message header fields and counts', () => {
  const block = [
    'Received: from a by b',
    'Received: from c',
    '  by d',
    'Date:  Fri, 06 Dec 2013 08:48:53 -0500 ',
    'Message-ID: <x.y@example.com>',
    'In-Reply-To: <parent@example.com>',
    'Reply-To: Help <help@example.com>',
    'User-Agent: Mutt/1.5.20 (2009-12-10)',
    'To: a@example.com',
    'To: b@example.com',
  ].join('\r\n');
  const { headers, to } = readMessageHeaders(rawLines(block));

  assert.equal(headers.received, 2);
  assert.equal(headers.date, 'Fri, 06 Dec 2013 08:48:53 -0500');
  assert.equal(headers.messageId, '<x.y@example.com>');
  assert.equal(headers.inReplyTo, '<parent@example.com>');
  assert.equal(headers.replyTo, 'Help <help@example.com>');
  assert.equal(headers.userAgent, 'Mutt/1.5.20 (2009-12-10)');
  assert.equal(headers.to, 'a@example.com, b@example.com');
  assert.deepEqual(to, [{ address: 'a@example.com' }, { address: 'b@example.com' }]);
  assert.equal(headers.subject, undefined);
  assert.equal('subject' in headers, false);
});

test('Received count given by the caller', () => {
  const block = 'Received: from a by b\r\nTo: a@example.com';
  assert.equal(readMessageHeaders(rawLines(block)).headers.received, 1);
  assert.equal(readMessageHeaders(rawLines(block), 600).headers.received, 600);
});

test('X-Mailer takes precedence over User-Agent', () => {
  const block = 'User-Agent: agent/1\r\nX-Mailer: Microsoft Outlook 16.0';
  assert.equal(readMessageHeaders(rawLines(block)).headers.userAgent, 'Microsoft Outlook 16.0');
});

/** Returns the raw Subject field of the message inside a capture, with its folding. */
function subjectFromCapture(file: string): string {
  const bytes = readFileSync(new URL(file, ARKIME));
  const start = bytes.indexOf('\r\nSubject:') + 2;
  let end = start;
  for (;;) {
    end = bytes.indexOf('\r\n', end);
    if (bytes[end + 2] !== 0x20 && bytes[end + 2] !== 0x09) {
      break;
    }
    end += 2;
  }
  return bytes.subarray(start, end).toString('latin1');
}

test('Arkime encoded subjects decode as Arkime expects', () => {
  const expected = JSON.parse(readFileSync(new URL('expected.json', ARKIME), 'utf8')) as {
    file: string;
    anchor: Record<string, { 'email.subject'?: string[] }[]>;
  }[];
  const files = [
    'smtp-subject-8859-b.pcap',
    'smtp-subject-8859-q.pcap',
    'smtp-subject-encoded-empty.pcap',
    'smtp-subject-utf8-mixed.pcap',
    'smtp-subject-utf8-q.pcap',
    'smtp-subject-windows.pcap',
    'smtp-zip.pcap',
  ];
  for (const file of files) {
    const entry = expected.find((e) => e.file === file);
    const want = entry?.anchor['arkime tests/pcap/*.test']?.[0]['email.subject']?.[0];
    assert.ok(want !== undefined, `no expected subject for ${file}`);
    assert.equal(decodeHeaderValue(subjectFromCapture(file)), want, file);
  }
});

test('adjacent encoded words across folds follow RFC 2047', () => {
  // Arkime keeps the folding whitespace between these encoded words and expects
  // "xxéxxxxxxx  xx". Per RFC 2047 section 6.2, whitespace between adjacent encoded words
  // is not displayed, and libmime drops it.
  const raw = subjectFromCapture('smtp-subject-multi-nospace.pcap');
  assert.equal(
    decodeHeaderValue(raw),
    'xxxxxxxxxxxxx: xxxxêxx xxéxxxxxxxxx xxx xxx xxxxxxxxxxx xx xxxxxxxxxxxxxxx - xxxx',
  );
});
