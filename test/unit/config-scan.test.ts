import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, defaultConfig, parseConfig } from '../../src/config/load.js';

function errorOf(text: string): string {
  try {
    parseConfig(text, 'site.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('scan config', () => {
  it('is off by default', () => {
    const scan = defaultConfig().scan;
    assert.equal(scan.clamav, undefined);
    assert.equal(scan.rspamd, undefined);
    assert.equal(scan.max_size, 10 * 1024 * 1024);
    assert.equal(scan.timeout, 10);
  });

  it('reads addresses, sizes and durations', () => {
    const scan = parseConfig(
      'scan:\n  clamav: 127.0.0.1:3310\n  rspamd: http://rspamd.corp.example:11333/\n  max_size: 2MiB\n  timeout: 1.5\n',
      'site.yaml',
    ).scan;
    assert.deepEqual(scan.clamav, { kind: 'tcp', host: '127.0.0.1', port: 3310 });
    assert.equal(scan.rspamd, 'http://rspamd.corp.example:11333');
    assert.equal(scan.max_size, 2 * 1024 * 1024);
    assert.equal(scan.timeout, 1.5);
  });

  it('names the key of a bad clamd address', () => {
    assert.match(errorOf('scan:\n  clamav: clamd\n'), /^site\.yaml:2:11: scan\.clamav: expected a UNIX socket path/);
  });

  it('rejects a URL that is not http', () => {
    assert.match(errorOf('scan:\n  rspamd: ftp://x\n'), /scan\.rspamd: expected an http:\/\/ URL/);
  });
});
