// Writes the three messages of scan.pcap to OUTDIR as .eml
// files with CRLF line ends: a normal business message, an obvious spam message, and a message
// with the EICAR anti-virus test file as an attachment. The output is the same on every run.
//
// Usage: node captures/make-scan-messages.mjs OUTDIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (out === undefined) {
  process.stderr.write('usage: node captures/make-scan-messages.mjs OUTDIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const crlf = (lines) => lines.join('\r\n') + '\r\n';

const normal = crlf([
  'From: Alice Example <alice@corp.example>',
  'To: Carol Partner <carol@partner.example>',
  'Subject: Minutes of the Tuesday project meeting',
  'Date: Tue, 05 Mar 2024 10:15:00 +0100',
  'Message-ID: <20240305101500.minutes@ws-alice.corp.example>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 7bit',
  '',
  'Hello Carol,',
  '',
  'thank you for the meeting on Tuesday. As agreed, we deliver the first',
  'batch of sensors in week 12 and the second batch in week 15. Could you',
  'send me the updated floor plan for the installation by Friday?',
  '',
  'Kind regards,',
  'Alice',
]);

// Traits that rspamd's stock rules score: no Message-ID and no Date, a subject in capitals
// that is needlessly base64-encoded, an HTML-only body, a link to a bare IP address whose
// text names another site, money and urgency words, and an undisclosed recipient list.
const spam = crlf([
  'From: "Lottery Winner Department" <winner@lottery-prize.example>',
  'To: undisclosed-recipients:;',
  'Subject: =?utf-8?B?WU9VIEhBVkUgV09OICQxLDAwMCwwMDAhISE=?=',
  'MIME-Version: 1.0',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<html><body><font size=7>CLICK HERE NOW!!! You have WON $1,000,000 USD.',
  'Cheap pills, no prescription. Send your bank account details today to claim',
  'your prize. 100% FREE!!! <a href="http://192.0.2.7/claim">http://paypal.com/verify</a>',
  '</font></body></html>',
]);

// The EICAR test file (68 bytes, eicar.org), written in two pieces so that this script is not
// itself taken for the test file by a scanner.
const eicar = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR' + '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
if (eicar.length !== 68) throw new Error('EICAR string must be 68 bytes');
const eicarBase64 = Buffer.from(eicar, 'latin1').toString('base64');
const withVirus = crlf([
  'From: Bob Example <bob@corp.example>',
  'To: Dave Partner <dave@partner.example>',
  'Subject: Tool for the installation',
  'Date: Tue, 05 Mar 2024 10:20:00 +0100',
  'Message-ID: <20240305102000.tool@ws-bob.corp.example>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="----=_mailtap_scan_1"',
  '',
  '------=_mailtap_scan_1',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hi Dave, here is the small tool we talked about.',
  '',
  '------=_mailtap_scan_1',
  'Content-Type: application/octet-stream; name="eicar.com"',
  'Content-Disposition: attachment; filename="eicar.com"',
  'Content-Transfer-Encoding: base64',
  '',
  eicarBase64,
  '',
  '------=_mailtap_scan_1--',
]);

writeFileSync(join(out, 'scan-1-normal.eml'), normal);
writeFileSync(join(out, 'scan-2-spam.eml'), spam);
writeFileSync(join(out, 'scan-3-eicar.eml'), withVirus);
