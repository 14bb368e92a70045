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

  it('finds nothing missing with CAP_NET_RAW alone', () => {
    assert.deepEqual(missingCapabilities(status('0000000000002000')), []);
  });

  it('names CAP_NET_RAW when only CAP_NET_ADMIN is there', () => {
    assert.deepEqual(missingCapabilities(status('0000000000001000')), ['CAP_NET_RAW']);
  });

  it('names CAP_NET_RAW for an unprivileged user', () => {
    assert.deepEqual(missingCapabilities(status('0000000000000000')), ['CAP_NET_RAW']);
  });

  it('returns undefined without a CapEff line', () => {
    assert.equal(missingCapabilities('Name:\tnode\n'), undefined);
  });
});

describe('capabilityMessage', () => {
  it('names the missing capability and ways to grant it', () => {
    const text = capabilityMessage(['CAP_NET_RAW']);
    assert.match(text, /lacks CAP_NET_RAW\./);
    assert.match(text, /AmbientCapabilities=CAP_NET_RAW/);
    assert.match(text, /--ambient-caps=\+net_raw/);
    assert.match(text, /Do not use setcap/);
  });
});
