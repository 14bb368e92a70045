import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scanSchema } from '../../src/config/scan-schema.js';
import { Scanner, scanFields } from '../../src/scan/index.js';
import { ScanFailure, type ClamavVerdict } from '../../src/scan/types.js';

const ENVELOPE = { recipients: ['carol@partner.example'], clientIp: '10.88.0.21' };

/** A clamd stand-in whose replies the test releases one by one. */
class FakeClamav {
  readonly description = 'clamd at fake';
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;
  private pending: { resolve(v: ClamavVerdict): void; reject(e: Error): void }[] = [];
  /** When set, every call fails at once with this failure. */
  failWith: ScanFailure | undefined;

  scan(): Promise<ClamavVerdict> {
    this.calls++;
    if (this.failWith) return Promise.reject(this.failWith);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  /** Resolves the oldest outstanding call with a verdict. */
  reply(signatures: string[] = []): void {
    const next = this.pending.shift();
    assert.ok(next, 'no outstanding call');
    this.inFlight--;
    next.resolve({ signatures });
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function makeScanner(raw: Record<string, unknown>, wait: boolean, clamav: FakeClamav, now = () => 0) {
  const lines: string[] = [];
  const config = scanSchema.parse({ clamav: '/fake.sock', ...raw });
  const scanner = new Scanner({ config, wait, log: (line) => lines.push(line), clamav, now });
  return { scanner, lines };
}

describe('Scanner', () => {
  it('runs at most scan.concurrency messages at once', async () => {
    const clamav = new FakeClamav();
    const { scanner } = makeScanner({ concurrency: 2, queue: 10 }, true, clamav);
    const results = [1, 2, 3, 4, 5].map(() => scanner.scan(Buffer.from('m'), ENVELOPE));
    await settle();
    assert.equal(clamav.inFlight, 2);
    assert.equal(scanner.queued, 3);
    for (let i = 0; i < 5; i++) {
      clamav.reply(i === 4 ? ['X'] : []);
      await settle();
    }
    const done = await Promise.all(results);
    assert.equal(clamav.maxInFlight, 2);
    assert.deepEqual(scanFields(done[4]!), { clamav: { status: 'infected', signatures: ['X'] } });
    assert.deepEqual(scanner.counters.clamav, {
      scanned: 5,
      flagged: 1,
      notScanned: { too_large: 0, tls: 0, queue_full: 0, timeout: 0, unavailable: 0, error: 0 },
    });
  });

  it('live capture drops on full queue', async () => {
    const clamav = new FakeClamav();
    const { scanner } = makeScanner({ concurrency: 1, queue: 2 }, false, clamav);
    const results = [1, 2, 3, 4].map(() => scanner.scan(Buffer.from('m'), ENVELOPE));
    // One running, two waiting, the fourth dropped at once.
    assert.deepEqual(scanFields(await results[3]!), {
      clamav: { status: 'not_scanned', reason: 'queue_full' },
      skipped_reason: 'queue_full',
    });
    assert.equal(scanner.counters.clamav?.notScanned.queue_full, 1);
    for (let i = 0; i < 3; i++) {
      clamav.reply();
      await settle();
    }
    await Promise.all(results);
  });

  it('busy() blocks file reader until drained', async () => {
    const clamav = new FakeClamav();
    const { scanner } = makeScanner({ concurrency: 1, queue: 2 }, true, clamav);
    const results = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(() => scanner.scan(Buffer.from('m'), ENVELOPE));
    await settle();
    // Nothing dropped: nine wait behind the running one, past scan.queue.
    assert.equal(scanner.queued, 9);
    for (let i = 0; i < 6; i++) {
      clamav.reply();
      await settle();
    }
    assert.equal(scanner.queued, 3);
    let released = false;
    void scanner.busy()?.then(() => (released = true));
    clamav.reply();
    await settle();
    assert.equal(released, false, 'two still waiting');
    clamav.reply();
    await settle();
    assert.equal(released, true);
    assert.equal(scanner.busy(), undefined);
    clamav.reply();
    await settle();
    clamav.reply();
    await Promise.all(results);
    assert.equal(scanner.counters.clamav?.notScanned.queue_full, 0);
    assert.equal(scanner.counters.clamav?.scanned, 10);
  });

  it('message over max_size not scanned', async () => {
    const clamav = new FakeClamav();
    const { scanner } = makeScanner({ max_size: 10 }, true, clamav);
    const result = await scanner.scan(Buffer.alloc(11), ENVELOPE);
    assert.deepEqual(result, { clamav: { status: 'not_scanned', reason: 'too_large' } });
    assert.equal(clamav.calls, 0);
  });

  it('down scanner logged, skipped and retried', async () => {
    const clamav = new FakeClamav();
    let now = 1_000_000;
    const { scanner, lines } = makeScanner({ retry_after: 30 }, true, clamav, () => now);
    clamav.failWith = new ScanFailure('unavailable', 'cannot reach clamd at fake (ECONNREFUSED)');
    const first = await scanner.scan(Buffer.from('m'), ENVELOPE);
    assert.deepEqual(first, { clamav: { status: 'not_scanned', reason: 'unavailable' } });
    for (let i = 0; i < 20; i++) await scanner.scan(Buffer.from('m'), ENVELOPE);
    // Only the first message reached the client, and the others skipped it.
    assert.equal(clamav.calls, 1);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^error: cannot reach clamd at fake \(ECONNREFUSED\)/);

    // After retry_after one message tries again and still fails. No new line within a minute.
    now += 30_000;
    await scanner.scan(Buffer.from('m'), ENVELOPE);
    assert.equal(clamav.calls, 2);
    assert.equal(lines.length, 1);

    // A minute after the first line a failed retry logs a reminder.
    now += 30_000;
    await scanner.scan(Buffer.from('m'), ENVELOPE);
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /still down/);

    // Back up.
    clamav.failWith = undefined;
    now += 30_000;
    const back = scanner.scan(Buffer.from('m'), ENVELOPE);
    await settle();
    clamav.reply();
    assert.deepEqual(await back, { clamav: { status: 'scanned', verdict: { signatures: [] } } });
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /^clamd at fake is back up\. 23 message\(s\) were not scanned/);
    assert.equal(scanner.counters.clamav?.notScanned.unavailable, 23);
  });

  it('error reply affects one message', async () => {
    const clamav = new FakeClamav();
    const { scanner, lines } = makeScanner({}, true, clamav);
    clamav.failWith = new ScanFailure('error', 'clamd replied: INSTREAM size limit exceeded. ERROR');
    await scanner.scan(Buffer.from('m'), ENVELOPE);
    await scanner.scan(Buffer.from('m'), ENVELOPE);
    assert.equal(clamav.calls, 2);
    assert.equal(lines.length, 0);
    assert.equal(scanner.counters.clamav?.notScanned.error, 2);
  });

  it('skip() records reason per scanner', () => {
    const clamav = new FakeClamav();
    const { scanner } = makeScanner({ rspamd: 'http://127.0.0.1:9' }, true, clamav);
    assert.deepEqual(scanFields(scanner.skip('tls')), {
      clamav: { status: 'not_scanned', reason: 'tls' },
      rspamd: { status: 'not_scanned', reason: 'tls' },
      skipped_reason: 'tls',
    });
    scanner.close();
  });
});
