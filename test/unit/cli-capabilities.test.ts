import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { capabilityMessage, missingCapabilities } from '../../src/cli/capabilities.js';

/** A /proc/PID/status excerpt with the given CapEff mask. */
function status(capEff: string): string {
  return `Name:\tnode\nUmask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t${capEff}\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;
}

describe('missingCapabilities', () => {
  // Bit numbers from linux/capability.h: CAP_NET_ADMIN 12 (0x1000), CAP_NET_RAW 13 (0x2000).
  it('finds nothing missing in the full set of root', () => {
    assert.deepEqual(missingCapabilities(status('000001ffffffffff')), []);
  });

  it('finds nothing missing with exactly CAP_NET_RAW and CAP_NET_ADMIN', () => {
    assert.deepEqual(missingCapabilities(status('0000000000003000')), []);
  });

  it('names CAP_NET_ADMIN when only CAP_NET_RAW is there', () => {
    assert.deepEqual(missingCapabilities(status('0000000000002000')), ['CAP_NET_ADMIN']);
  });

  it('names both for an unprivileged user', () => {
    assert.deepEqual(missingCapabilities(status('0000000000000000')), ['CAP_NET_RAW', 'CAP_NET_ADMIN']);
  });

  it('returns undefined without a CapEff line', () => {
    assert.equal(missingCapabilities('Name:\tnode\n'), undefined);
  });
});

describe('capabilityMessage', () => {
  it('names what is missing and the ways to grant it, not setcap', () => {
    const text = capabilityMessage(['CAP_NET_RAW']);
    assert.match(text, /lacks CAP_NET_RAW\./);
    assert.match(text, /AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN/);
    assert.match(text, /--ambient-caps=\+net_raw,\+net_admin/);
    assert.match(text, /Do not use setcap/);
  });
});
