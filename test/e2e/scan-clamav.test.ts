/**
 * Virus scanning with a real clamd (Debian's clamav-daemon) whose only signature is the MD5 of
 * the EICAR test file, written by the test. captures/scan.pcap carries three messages
 * (captures/README.md); the third has the EICAR file attached as eicar.com.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, runCli, type CliResult, type Fields } from './cli.js';
import { startClamd, writeScanConfig, type Clamd } from './scan-daemons.js';

const CAPTURE = join(REPO, 'captures', 'scan.pcap');

describe('scanning with clamd', () => {
  let clamd: Clamd;
  let dir: string;
  let result: CliResult;
  let transactions: Fields[];
  let alerts: Fields[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mt8-scan-clamav-'));
    clamd = await startClamd('Mailtap.Test.EICAR');
    const config = writeScanConfig(dir, `  clamav: ${clamd.socket}\n`);
    result = runCli(['read', '--config', config, CAPTURE]);
    transactions = result.records.filter((r) => r.event.action === 'smtp-transaction');
    alerts = result.records.filter((r) => r.event.kind === 'alert');
  });

  after(async () => {
    await clamd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('reads the capture and prints three transactions', () => {
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(
      transactions.map((t) => t.email.subject),
      ['Minutes of the Tuesday project meeting', 'YOU HAVE WON $1,000,000!!!', 'Tool for the installation'],
    );
  });

  test('the EICAR message names the signature; clamd adds .UNOFFICIAL to a signature of its own', () => {
    assert.deepEqual(transactions[2]?.mailtap.scan, {
      clamav: { status: 'infected', signatures: ['Mailtap.Test.EICAR.UNOFFICIAL'] },
    });
  });

  test('the other two messages are clean', () => {
    assert.deepEqual(transactions[0]?.mailtap.scan, { clamav: { status: 'clean' } });
    assert.deepEqual(transactions[1]?.mailtap.scan, { clamav: { status: 'clean' } });
  });

  test('a critical virus_found alert names the device, the signature and the transaction', () => {
    const virus = alerts.filter((a) => a.rule.name === 'virus_found');
    assert.equal(virus.length, 1);
    const alert = virus[0] as Fields;
    assert.equal(alert.event.id, 'virus_found-mac:f8:bc:12:00:08:21');
    assert.equal(alert.mailtap.alert.severity, 'critical');
    assert.deepEqual(alert.mailtap.alert.evidence.signatures, ['Mailtap.Test.EICAR.UNOFFICIAL']);
    assert.deepEqual(alert.mailtap.alert.event_ids, [transactions[2]?.event.id]);
  });

  test('the summary counts the scans', () => {
    assert.match(result.stderr, /scan: clamav 3 scanned, 1 infected, 0 not scanned\n/);
  });

  test('max_size skips the message over it', () => {
    // Messages of 575, 477 and 709 bytes (captures/README.md).
    const config = writeScanConfig(dir, `  clamav: ${clamd.socket}\n  max_size: 600\n`);
    const run = runCli(['read', '--config', config, CAPTURE]);
    assert.equal(run.status, 0, run.stderr);
    const scans = run.records.filter((r) => r.event.action === 'smtp-transaction').map((r) => r.mailtap.scan.clamav);
    assert.deepEqual(scans, [{ status: 'clean' }, { status: 'clean' }, { status: 'not_scanned', reason: 'too_large' }]);
    assert.equal(run.records.filter((r) => r.rule?.name === 'virus_found').length, 0);
    assert.match(run.stderr, /clamav 2 scanned, 0 infected, 1 not scanned \(too_large 1\)/);
  });

  test('a STARTTLS session is recorded as not scanned, reason tls', () => {
    // office.pcap: office-3 uses STARTTLS on port 587 (captures/README.md).
    const config = writeScanConfig(dir, `  clamav: ${clamd.socket}\n`);
    const run = runCli(['read', '--config', config, join(REPO, 'captures', 'office.pcap')]);
    assert.equal(run.status, 0, run.stderr);
    const sessions = run.records.filter((r) => r.event.action === 'smtp-session');
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]?.smtp.tls, true);
    assert.deepEqual(sessions[0]?.mailtap.scan, { clamav: { status: 'not_scanned', reason: 'tls' }, skipped_reason: 'tls' });
    // Every transaction with a message in clear text is scanned.
    const transactions = run.records.filter((r) => r.event.action === 'smtp-transaction' && r.mailtap.message);
    assert.equal(transactions.length, 4);
    assert.match(run.stderr, /clamav 4 scanned, 0 infected, 1 not scanned \(tls 1\)/);
  });

  test('max_buffer skips the messages that do not fit', () => {
    const config = writeScanConfig(dir, `  clamav: ${clamd.socket}\n  max_buffer: 500\n`);
    const run = runCli(['read', '--config', config, CAPTURE]);
    assert.equal(run.status, 0, run.stderr);
    const scans = run.records.filter((r) => r.event.action === 'smtp-transaction').map((r) => r.mailtap.scan.clamav);
    assert.deepEqual(scans, [
      { status: 'not_scanned', reason: 'queue_full' },
      { status: 'clean' },
      { status: 'not_scanned', reason: 'queue_full' },
    ]);
  });
});
