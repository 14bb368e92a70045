import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddressList } from '../../src/mail/index.js';

// Cases from RFC 5322 Appendix A.

test('address list A.1.1 simple name-addr', () => {
  assert.deepEqual(parseAddressList('John Doe <jdoe@machine.example>'), [
    { name: 'John Doe', address: 'jdoe@machine.example' },
  ]);
});

test('address list A.1.2 mixed forms', () => {
  assert.deepEqual(parseAddressList('Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>'), [
    { name: 'Mary Smith', address: 'mary@x.test' },
    { address: 'jdoe@example.org' },
    { name: 'Who?', address: 'one@y.test' },
  ]);
  assert.deepEqual(parseAddressList('<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>'), [
    { address: 'boss@nil.test' },
    { name: 'Giant; "Big" Box', address: 'sysservices@example.net' },
  ]);
  assert.deepEqual(parseAddressList('"Joe Q. Public" <john.q.public@example.com>'), [
    { name: 'Joe Q. Public', address: 'john.q.public@example.com' },
  ]);
});

test('address list A.1.3 groups', () => {
  assert.deepEqual(parseAddressList('A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;'), [
    { name: 'Ed Jones', address: 'c@a.test' },
    { address: 'joe@where.test' },
    { name: 'John', address: 'jdoe@one.test' },
  ]);
  assert.deepEqual(parseAddressList('Undisclosed recipients:;'), []);
});

test('address list A.5 comments', () => {
  assert.deepEqual(parseAddressList('Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>'), [
    { name: 'Pete', address: 'pete@silly.test' },
  ]);
  assert.deepEqual(
    parseAddressList(
      'A Group(Some people)\r\n     :Chris Jones <c@(Chris\'s host.)public.example>,\r\n' +
        '         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)',
    ),
    [
      { name: 'Chris Jones', address: 'c@public.example' },
      { address: 'joe@example.org' },
      { name: 'John', address: 'jdoe@one.test' },
    ],
  );
});

test('address list encoded display name', () => {
  assert.deepEqual(parseAddressList('=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>'), [
    { name: 'Keld Jørn Simonsen', address: 'keld@dkuug.dk' },
  ]);
  // Encoded words inside quotes break RFC 2047 section 5 but are common; they are decoded.
  assert.deepEqual(parseAddressList('"=?utf-8?B?4oKsIHJhdGVz?=" <r@example.com>'), [
    { name: '€ rates', address: 'r@example.com' },
  ]);
});

test('address list legacy and malformed forms', () => {
  assert.deepEqual(parseAddressList('jdoe@example.org (John Doe)'), [
    { name: 'John Doe', address: 'jdoe@example.org' },
  ]);
  assert.deepEqual(parseAddressList('John Doe jdoe@example.org'), [
    { name: 'John Doe', address: 'jdoe@example.org' },
  ]);
  assert.deepEqual(parseAddressList('<@relay.test:user@example.org>'), [{ address: 'user@example.org' }]);
  assert.deepEqual(parseAddressList('postmaster'), [{ address: 'postmaster' }]);
  assert.deepEqual(parseAddressList(' , ,'), []);
  assert.deepEqual(parseAddressList('"unterminated <a@b'), [{ name: 'unterminated <a@b', address: '' }]);
});
