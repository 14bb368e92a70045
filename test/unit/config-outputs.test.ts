import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, defaultConfig, parseConfig } from '../../src/config/load.js';
import { parseListenAddress } from '../../src/config/outputs-schema.js';

function errorOf(text: string): string {
  try {
    parseConfig(text, 'site.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('feed config', () => {
  test('defaults listen on loopback 8025', () => {
    const feed = defaultConfig().feed;
    assert.deepEqual(feed.listen, { host: '127.0.0.1', port: 8025 });
    assert.deepEqual(feed.tokens, []);
    assert.equal(feed.max_payload, 4096);
    assert.equal(feed.max_buffered, 1048576);
  });

  test('listen address forms', () => {
    assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress(':8025'), { host: '0.0.0.0', port: 8025 });
    assert.deepEqual(parseListenAddress('sensor.corp.example:9000'), { host: 'sensor.corp.example', port: 9000 });
    assert.equal(parseListenAddress('127.0.0.1'), undefined);
    assert.equal(parseListenAddress('127.0.0.1:70000'), undefined);
  });

  test('token with a space is rejected', () => {
    assert.match(errorOf('feed:\n  tokens: ["abcdefgh ijklmnopq"]\n'), /feed\.tokens\[0\]: a feed token may contain only the characters/);
  });

  test('short token is rejected', () => {
    assert.match(errorOf('feed:\n  tokens: [abc]\n'), /feed\.tokens\[0\]: a feed token must have at least 16 characters/);
  });

  test('tls needs cert and key', () => {
    assert.match(errorOf('feed:\n  tls:\n    cert: /etc/feed.crt\n'), /feed\.tls: feed\.tls needs both cert and key/);
  });
});

describe('notify config', () => {
  test('unknown rule name is rejected', () => {
    assert.match(
      errorOf('notify:\n  email:\n    rules: [relay_bypas]\n'),
      /^site\.yaml:3:13: notify\.email\.rules\[0\]: unknown rule "relay_bypas"/,
    );
  });

  test('webhook needs an http URL', () => {
    assert.match(errorOf('notify:\n  webhooks:\n    - url: ftp://x.example/\n'), /notify\.webhooks\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/);
  });

  test('e-mail defaults are off and hourly', () => {
    const email = defaultConfig().notify.email;
    assert.equal(email.enabled, false);
    assert.equal(email.interval, 3600);
    assert.equal(email.from, 'mailtap@localhost');
  });
});
