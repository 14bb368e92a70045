/**
 * Spam rating with a real rspamd (Debian's rspamd 3.4, stock rules, offline). In
 * captures/scan.pcap (captures/README.md) the first message is a normal business message with
 * Date and Message-ID, the second an obvious spam message: no Date or Message-ID, a base64
 * subject in capitals with money in it, an HTML-only body linking to a bare IP address.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, runCli, type CliResult, type Fields } from './cli.js';
import { startRspamd, writeScanConfig, type Rspamd } from './scan-daemons.js';

const CAPTURE = join(REPO, 'captures', 'scan.pcap');
/** rspamd's stock score for "add header", the level this test configures as spam. */
const SPAM_SCORE = 6;

describe('rating with rspamd', { timeout: 58_000 }, () => {
  let rspamd: Rspamd;
  let dir: string;
  let result: CliResult;
  let normal: Fields;
  let spam: Fields;
  let alerts: Fields[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mt8-scan-rspamd-'));
    rspamd = await startRspamd();
    const config = writeScanConfig(dir, `  rspamd: ${rspamd.url}\n  spam_score: ${SPAM_SCORE}\n`);
    result = runCli(['read', '--config', config, CAPTURE]);
    const transactions = result.records.filter((r) => r.event.action === 'smtp-transaction');
    normal = transactions[0] as Fields;
    spam = transactions[1] as Fields;
    alerts = result.records.filter((r) => r.event.kind === 'alert');
  });

  after(async () => {
    await rspamd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('reads the capture', () => {
    assert.equal(result.status, 0, result.stderr);
    assert.equal(normal.email.subject, 'Minutes of the Tuesday project meeting');
    assert.equal(spam.email.subject, 'YOU HAVE WON $1,000,000!!!');
  });

  test('both messages are rated, with the stock reject level as required_score', () => {
    for (const record of [normal, spam]) {
      assert.equal(record.mailtap.scan.rspamd.status, 'scanned');
      // /etc/rspamd/actions.conf: reject = 15.
      assert.equal(record.mailtap.scan.rspamd.required_score, 15);
    }
  });

  test('the spam message scores higher than the normal one, and over the threshold', () => {
    const spamScore = spam.mailtap.scan.rspamd.score as number;
    const normalScore = normal.mailtap.scan.rspamd.score as number;
    assert.ok(spamScore > normalScore, `spam ${spamScore} vs normal ${normalScore}`);
    assert.ok(spamScore >= SPAM_SCORE, `spam ${spamScore}`);
    assert.ok(normalScore < SPAM_SCORE, `normal ${normalScore}`);
    assert.equal(normal.mailtap.scan.rspamd.action, 'no action');
  });

  test('the symbols name the traits of the spam message', () => {
    const symbols = spam.mailtap.scan.rspamd.symbols as string[];
    // Symbol names from rspamd's stock rules for the traits listed above.
    for (const name of ['MISSING_MID', 'MISSING_DATE', 'SUBJ_ALL_CAPS', 'MIME_HTML_ONLY', 'HTTP_TO_IP']) {
      assert.ok(symbols.includes(name), `${name} missing from ${symbols.join(' ')}`);
    }
  });

  test('spam_outbound fires once, for the spam message', () => {
    const outbound = alerts.filter((a) => a.rule.name === 'spam_outbound');
    assert.equal(outbound.length, 1);
    const alert = outbound[0] as Fields;
    assert.deepEqual(alert.mailtap.alert.event_ids, [spam.event.id]);
    assert.equal(alert.mailtap.alert.evidence.score, spam.mailtap.scan.rspamd.score);
    assert.equal(alert.mailtap.alert.severity, 'high');
  });

  test('the summary counts one spam message of three', () => {
    assert.match(result.stderr, /scan: rspamd 3 scanned, 1 spam, 0 not scanned\n/);
  });
});
