import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, defaultConfig, loadConfig, parseConfig } from '../../src/config/load.js';
import { cidrContains, parseCidr, parseDuration, parseMac, parseSize } from '../../src/config/values.js';

function errorOf(text: string): string {
  try {
    parseConfig(text, 'site.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('config defaults', () => {
  it('documented default file equals the built-in defaults', () => {
    const file = new URL('../../appliance/mailtap.yaml', import.meta.url);
    const documented = parseConfig(readFileSync(file, 'utf8'), 'appliance/mailtap.yaml');
    // The one exception: the service keeps its store in /var/lib/mailtap, while the built-in
    // default is a folder of the user who runs mailtap.
    assert.equal(documented.store.path, '/var/lib/mailtap');
    assert.deepEqual({ ...documented, store: { ...documented.store, path: defaultConfig().store.path } }, defaultConfig());
  });

  it('default store path follows XDG_STATE_HOME, else ~/.local/state', () => {
    const saved = process.env.XDG_STATE_HOME;
    try {
      process.env.XDG_STATE_HOME = '/srv/state';
      assert.equal(defaultConfig().store.path, '/srv/state/mailtap');
      process.env.XDG_STATE_HOME = 'relative/state';
      assert.equal(defaultConfig().store.path, join(homedir(), '.local', 'state', 'mailtap'));
      delete process.env.XDG_STATE_HOME;
      assert.equal(defaultConfig().store.path, join(homedir(), '.local', 'state', 'mailtap'));
    } finally {
      if (saved === undefined) delete process.env.XDG_STATE_HOME;
      else process.env.XDG_STATE_HOME = saved;
    }
  });

  it('empty file gives the defaults', () => {
    assert.deepEqual(parseConfig('', 'empty.yaml'), defaultConfig());
    assert.deepEqual(defaultConfig().smtp.ports, [25, 587, 2525]);
    assert.deepEqual(defaultConfig().smtp.implicit_tls_ports, [465]);
    assert.equal(defaultConfig().thresholds.volume_window, 3600);
  });

  it('key without a value means not set', () => {
    assert.deepEqual(parseConfig('networks:\n  relays:\nlimits:\n', 'x.yaml'), defaultConfig());
  });
});

describe('config errors', () => {
  it('names file, line, column and key of a bad port', () => {
    assert.equal(errorOf('smtp:\n  ports: [25, 70000]\n'), 'site.yaml:2:15: smtp.ports[1]: expected a port number from 1 to 65535');
  });

  it('rejects capture buffer sizes out of range', () => {
    // pcap_set_buffer_size takes a signed 32-bit int, so 2GiB (2^31) is one byte too many.
    const message = (value: string): string => `expected a size from 64KiB to 2047MiB such as 64MiB, got "${value}"`;
    assert.equal(errorOf('capture:\n  buffer_size: 2GiB\n'), `site.yaml:2:16: capture.buffer_size: ${message('2GiB')}`);
    assert.equal(errorOf('capture:\n  buffer_size: 0\n'), `site.yaml:2:16: capture.buffer_size: ${message('0')}`);
    assert.equal(errorOf('capture:\n  buffer_size: 65535\n'), `site.yaml:2:16: capture.buffer_size: ${message('65535')}`);
    assert.equal(parseConfig('capture:\n  buffer_size: 2047MiB\n', 'site.yaml').capture.buffer_size, 2047 * 1024 * 1024);
    assert.equal(parseConfig('capture:\n  buffer_size: 64KiB\n', 'site.yaml').capture.buffer_size, 65536);
  });

  it('points at a misspelt key', () => {
    assert.equal(
      errorOf('sensor:\n  name: a\nsmtp:\n  portz: [25]\n'),
      'site.yaml:4:3: smtp.portz: unknown key "portz"; check the spelling against appliance/mailtap.yaml',
    );
  });

  it('rejects a network with a prefix too long', () => {
    assert.equal(
      errorOf('networks:\n  internal:\n    - 10.0.0.0/33\n'),
      'site.yaml:3:7: networks.internal[0]: expected an IP address or a CIDR network such as 10.0.0.0/8, got "10.0.0.0/33"',
    );
  });

  it('rejects an allowed sender label without a device', () => {
    assert.equal(
      errorOf('senders:\n  allowed:\n    - label:printer\n'),
      'site.yaml:3:7: senders.allowed[0]: no device has the label "printer"; add it under devices or fix the name',
    );
  });

  it('rejects duplicate device labels', () => {
    const message = errorOf('devices:\n  - label: cam\n  - label: cam\n');
    assert.equal(message, 'site.yaml:3:12: devices[1].label: duplicate device label "cam"');
  });

  it('rejects a bad MAC, duration and owner e-mail together', () => {
    const message = errorOf(
      'devices:\n  - label: p\n    mac: zz:zz\n    owner:\n      name: Facilities\n      email: not-an-address\nthresholds:\n  volume_window: 5 parsecs\n',
    );
    const lines = message.split('\n');
    assert.equal(lines.length, 3);
    assert.equal(lines[0], 'site.yaml:3:10: devices[0].mac: expected a MAC address such as 00:1b:78:12:34:56, got "zz:zz"');
    assert.match(lines[1] as string, /^site\.yaml:6:14: devices\[0\]\.owner\.email: /);
    assert.equal(lines[2], 'site.yaml:8:18: thresholds.volume_window: expected a duration such as 90s, 15m, 1h or 30d, got "5 parsecs"');
  });

  it('reports YAML syntax errors with their line', () => {
    assert.match(errorOf('smtp:\n  ports: [25\n'), /^site\.yaml:\d+:\d+: invalid YAML: /);
  });

  it('rejects a duplicate key', () => {
    assert.match(errorOf('smtp:\n  ports: [25]\n  ports: [587]\n'), /^site\.yaml:3:3: invalid YAML: /);
  });

  it('rejects an alias that contains itself with one located message', () => {
    // The alias *x sits at line 1, column 8, inside the list that &x names.
    assert.equal(errorOf('a: &x [*x]\n'), 'site.yaml:1:8: a[0]: an alias refers to the node that contains it');
  });

  it('rejects an alias bomb', () => {
    // Ten levels of ten aliases each would expand to 10^10 items.
    const levels = ['x0: &a0 [1,1,1,1,1,1,1,1,1,1]'];
    for (let i = 1; i < 10; i++) levels.push(`x${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(',')}]`);
    const message = errorOf(levels.join('\n') + '\n');
    assert.equal(message.split('\n').length, 1);
    assert.match(message, /^site\.yaml: invalid YAML: Excessive alias count/);
  });

  it('rejects 100000 unclosed brackets in a short message', () => {
    const message = errorOf(`a: ${'['.repeat(100_000)}\n`);
    const lines = message.split('\n');
    assert.ok(lines.length <= 4, `${lines.length} lines`);
    assert.ok(message.length < 1000, `${message.length} characters`);
    assert.match(lines[0]!, /^site\.yaml:1:\d+: invalid YAML: /);
  });

  it('rejects lists nested deeper than 64 levels and accepts 60', () => {
    assert.match(errorOf(`a: ${'['.repeat(70)}${']'.repeat(70)}\n`), /^site\.yaml:1:\d+: a(\[0\])+: nested deeper than 64 levels$/);
    // 60 levels pass the walk and reach the schema, which names the unknown key.
    assert.match(errorOf(`a: ${'['.repeat(60)}${']'.repeat(60)}\n`), /unknown key "a"/);
  });

  it('reports a missing file by name', () => {
    assert.throws(() => loadConfig('/nonexistent/mailtap.yaml'), {
      name: 'ConfigError',
      message: '/nonexistent/mailtap.yaml: cannot read the config: file not found',
    });
  });
});

describe('config values', () => {
  it('parses senders of each kind', () => {
    const config = parseConfig(
      'devices:\n  - label: crm\nsenders:\n  allowed:\n    - 10.1.0.0/24\n    - 30-05-5C-00-00-31\n    - label:crm\n',
      'x.yaml',
    );
    assert.deepEqual(
      config.senders.allowed.map((s) => s.kind),
      ['network', 'mac', 'label'],
    );
    assert.deepEqual(config.senders.allowed[1], { kind: 'mac', mac: '30:05:5c:00:00:31' });
  });

  it('matches IPv4 and IPv6 networks', () => {
    const v4 = parseCidr('192.168.0.0/16');
    const v6 = parseCidr('fc00::/7');
    const host = parseCidr('2001:db8::1');
    assert.ok(v4);
    assert.ok(v6);
    assert.ok(host);
    assert.equal(cidrContains(v4, '192.168.200.1'), true);
    assert.equal(cidrContains(v4, '192.169.0.1'), false);
    assert.equal(cidrContains(v4, 'fd00::1'), false);
    assert.equal(cidrContains(v6, 'fd12:3456::1'), true);
    assert.equal(cidrContains(v6, 'fe80::1'), false);
    assert.equal(cidrContains(host, '2001:db8:0:0::1'), true);
    assert.equal(cidrContains(host, '2001:db8::2'), false);
    assert.equal(parseCidr('::ffff:10.0.0.1/128')?.network, 0xffff0a000001n);
    assert.equal(parseCidr('10.0.0.0/8/1'), undefined);
    assert.equal(parseCidr('10.0.0.0/x'), undefined);
  });

  it('parses MACs, durations and sizes', () => {
    assert.equal(parseMac('00:1B:78:12:34:56'), '00:1b:78:12:34:56');
    assert.equal(parseMac('00:1b-78:12:34:56'), undefined);
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration('2w'), 1209600);
    assert.equal(parseDuration('1y'), undefined);
    assert.equal(parseSize('64MiB'), 67108864);
    assert.equal(parseSize('10GB'), 10e9);
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('12 parsecs'), undefined);
  });
});
