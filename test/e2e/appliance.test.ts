import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { REPO } from './cli.js';

const UNIT = join(REPO, 'appliance', 'mailtap.service');
const INSTALL = join(REPO, 'appliance', 'install-service.sh');

/** Returns the values of KEY= lines in the unit, in order. */
function unitValues(text: string, key: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

describe('systemd unit', () => {
  const text = readFileSync(UNIT, 'utf8');

  it('unit has the required hardening', () => {
    assert.deepEqual(unitValues(text, 'User'), ['mailtap']);
    assert.deepEqual(unitValues(text, 'DynamicUser'), []);
    assert.deepEqual(unitValues(text, 'AmbientCapabilities'), ['CAP_NET_RAW CAP_NET_ADMIN']);
    assert.deepEqual(unitValues(text, 'CapabilityBoundingSet'), ['CAP_NET_RAW CAP_NET_ADMIN']);
    assert.deepEqual(unitValues(text, 'NoNewPrivileges'), ['yes']);
    assert.deepEqual(unitValues(text, 'ProtectSystem'), ['strict']);
    assert.deepEqual(unitValues(text, 'ProtectHome'), ['yes']);
    assert.deepEqual(unitValues(text, 'PrivateTmp'), ['yes']);
    assert.deepEqual(unitValues(text, 'StateDirectory'), ['mailtap']);
    assert.deepEqual(unitValues(text, 'RuntimeDirectory'), ['mailtap']);
    assert.deepEqual(unitValues(text, 'ConfigurationDirectory'), ['mailtap']);
    assert.deepEqual(unitValues(text, 'Restart'), ['on-failure']);
    assert.deepEqual(unitValues(text, 'ExecReload'), ['/bin/kill -HUP $MAINPID']);
  });

  it('unit starts live with the config', () => {
    assert.deepEqual(unitValues(text, 'ExecStart'), [
      '/usr/local/bin/mailtap live --config /etc/mailtap/mailtap.yaml $MAILTAP_OPTIONS',
    ]);
  });
});

describe('install-service.sh', () => {
  let dest: string;
  let firstRun: ReturnType<typeof spawnSync>;

  before(() => {
    dest = mkdtempSync(join(tmpdir(), 'mailtap-service-'));
    firstRun = spawnSync('bash', [INSTALL, '--dest', dest], { encoding: 'utf8' });
  });
  after(() => rmSync(dest, { recursive: true, force: true }));

  it('staged install succeeds', () => {
    assert.equal(firstRun.status, 0, String(firstRun.stderr));
    assert.match(String(firstRun.stdout), /installed \/etc\/mailtap\/mailtap\.yaml with the defaults/);
  });

  it('missing systemd is reported', { skip: existsSync('/run/systemd/system') ? 'systemd is running here' : false }, () => {
    assert.match(String(firstRun.stdout), /systemd is not running on this machine \(no \/run\/systemd\/system\)/);
  });

  it('config is the documented default', () => {
    const installed = join(dest, 'etc', 'mailtap', 'mailtap.yaml');
    assert.equal(readFileSync(installed, 'utf8'), readFileSync(join(REPO, 'appliance', 'mailtap.yaml'), 'utf8'));
    assert.equal(statSync(installed).mode & 0o777, 0o640);
  });

  it('copied application runs', () => {
    const run = spawnSync(process.execPath, [join(dest, 'usr', 'local', 'lib', 'mailtap', 'dist', 'cli', 'main.js'), '--version'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(run.stdout, `mailtap ${version}\n`);
  });

  it('copied native module loads from where the installed code looks for it', () => {
    // dist/capture/kernel-drops.js loads ../../build/Release/capture_native.node.
    const installed = join(dest, 'usr', 'local', 'lib', 'mailtap', 'dist', 'capture', 'kernel-drops.js');
    const script = `import(${JSON.stringify(pathToFileURL(installed).href)}).then((m) => { const c = new m.KernelDropCounter(['lo']); console.log(c.unavailable ?? 'loaded'); })`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    // No capture socket is open in that process, so the module loaded and found none.
    assert.match(run.stdout, /^no capture socket on lo was found/);
  });

  it('second run keeps the admin config', () => {
    const installed = join(dest, 'etc', 'mailtap', 'mailtap.yaml');
    writeFileSync(installed, 'sensor:\n  name: edited-by-admin\n');
    const run = spawnSync('bash', [INSTALL, '--dest', dest], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(installed, 'utf8'), 'sensor:\n  name: edited-by-admin\n');
    assert.match(run.stdout, /kept the existing \/etc\/mailtap\/mailtap\.yaml/);
  });

  it('installed unit passes systemd-analyze verify', () => {
    // verify checks that ExecStart's program exists, so the copy points at the staged command.
    const staged = join(dest, 'etc', 'systemd', 'system', 'mailtap.service');
    const checked = join(dest, 'mailtap.service');
    const command = join(dest, 'usr', 'local', 'bin', 'mailtap');
    writeFileSync(checked, readFileSync(staged, 'utf8').replace('ExecStart=/usr/local/bin/mailtap ', `ExecStart=${command} `));
    const run = spawnSync('systemd-analyze', ['verify', checked], { encoding: 'utf8' });
    assert.equal(run.error, undefined, 'systemd-analyze is missing (Debian package systemd)');
    assert.equal(run.status, 0, run.stderr);
    // An unknown or misspelt key is only a warning with exit status 0, so stderr must be empty.
    assert.equal(run.stderr, '');
  });

  it('verify catches a misspelt key', () => {
    const checked = join(dest, 'typo.service');
    const command = join(dest, 'usr', 'local', 'bin', 'mailtap');
    const text = readFileSync(UNIT, 'utf8')
      .replace('ExecStart=/usr/local/bin/mailtap ', `ExecStart=${command} `)
      .replace('NoNewPrivileges=', 'NoNewPrivilege=');
    writeFileSync(checked, text);
    const run = spawnSync('systemd-analyze', ['verify', checked], { encoding: 'utf8' });
    assert.match(run.stderr, /Unknown key 'NoNewPrivilege'/);
  });
});
