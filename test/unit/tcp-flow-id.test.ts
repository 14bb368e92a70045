import assert from 'node:assert/strict';
import { test } from 'node:test';

import { makeFlowId } from '../../src/tcp/flow-id.js';

// Expected ids computed with Python's hashlib: the first 13 bytes of the SHA-1 of the tuple text
// as a big-endian integer, written as 17 base62 digits.

test('flow id of an IPv4 flow', () => {
  // sha1("tcp|4||192.0.2.10|49152|198.51.100.25|25|1700000000123456") = edf8c03c18bb...
  const id = makeFlowId({
    client: { ip: '192.0.2.10', port: 49152 },
    server: { ip: '198.51.100.25', port: 25 },
    vlans: [],
    ipVersion: 4,
    startTs: 1700000000.123456,
  });
  assert.equal(id, 'CNUVhs4QB8yRmYrENt');
});

test('flow id of a tagged IPv6 flow', () => {
  // sha1("tcp|6|100.7|2001:db8::1|40000|2001:db8::25|587|1700000001000000") = 79c756dde7ee...
  const id = makeFlowId({
    client: { ip: '2001:db8::1', port: 40000 },
    server: { ip: '2001:db8::25', port: 587 },
    vlans: [100, 7],
    ipVersion: 6,
    startTs: 1700000001,
  });
  assert.equal(id, 'CGO1i4xTXEzeQco0zX');
});

test('flow id differs per start time', () => {
  const base = {
    client: { ip: '192.0.2.10', port: 49152 },
    server: { ip: '198.51.100.25', port: 25 },
    vlans: [],
    ipVersion: 4 as const,
  };
  const first = makeFlowId({ ...base, startTs: 1700000000.123456 });
  const second = makeFlowId({ ...base, startTs: 1700000000.123457 });
  assert.notEqual(first, second);
  assert.match(second, /^C[0-9A-Za-z]{17}$/);
});
