import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { InterfaceDropCounter, readInterfaceDrops } from '../../src/capture/interface-drops.js';

// A directory laid out like /sys/class/net, with counters written by the test.
const root = mkdtempSync(join(tmpdir(), 'mailtap-sysfs-'));
after(() => rmSync(root, { recursive: true, force: true }));

function setCounters(iface: string, dropped: number | undefined, missed: number | undefined): void {
  const dir = join(root, iface, 'statistics');
  mkdirSync(dir, { recursive: true });
  if (dropped !== undefined) writeFileSync(join(dir, 'rx_dropped'), `${dropped}\n`);
  if (missed !== undefined) writeFileSync(join(dir, 'rx_missed_errors'), `${missed}\n`);
}

describe('readInterfaceDrops', () => {
  it('reads rx_dropped and rx_missed_errors', () => {
    setCounters('eth1', 7, 3);
    assert.deepEqual(readInterfaceDrops('eth1', root), { rxDropped: 7, rxMissed: 3 });
  });

  it('returns undefined for a missing interface or a name with a slash', () => {
    assert.equal(readInterfaceDrops('nothere', root), undefined);
    assert.equal(readInterfaceDrops('../eth1', root), undefined);
  });

  it('reads the real counters of the loopback interface', () => {
    const drops = readInterfaceDrops('lo');
    assert.ok(drops === undefined || (Number.isInteger(drops.rxDropped) && Number.isInteger(drops.rxMissed)));
  });
});

describe('InterfaceDropCounter', () => {
  it('counts drops since it was created, over all interfaces', () => {
    setCounters('mir0', 100, 5);
    setCounters('mir1', 0, 0);
    const counter = new InterfaceDropCounter(['mir0', 'mir1'], root);
    assert.equal(counter.read(), 0);
    setCounters('mir0', 104, 6); // +5
    setCounters('mir1', 2, 0); // +2
    assert.equal(counter.read(), 7);
  });

  it('keeps counting when an interface is recreated and its counters restart at 0', () => {
    setCounters('mir2', 50, 0);
    const counter = new InterfaceDropCounter(['mir2'], root);
    setCounters('mir2', 60, 0); // +10
    assert.equal(counter.read(), 10);
    setCounters('mir2', 3, 0); // recreated: 3 new drops
    assert.equal(counter.read(), 13);
    setCounters('mir2', 5, 0); // +2
    assert.equal(counter.read(), 15);
  });
});
