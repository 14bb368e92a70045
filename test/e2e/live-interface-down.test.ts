import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnLiveSensor, type LiveSensor } from './live-sensor.js';

/*
 * `mailtap live` on an interface that is down, in namespace mt5dn on veth mt5dn0 (peer mt5dn1).
 * The sensor waits for the interface instead of failing, and a sensor whose interface goes down
 * while it captures ends with a failure status, so that the service manager restarts it.
 */

const NS = 'mt5dn';

const isRoot = process.getuid?.() === 0;
const hasIp = spawnSync('sh', ['-c', 'command -v ip']).status === 0;
const skip = !(isRoot && hasIp) && 'needs root and iproute2';

function run(command: string, ...args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
}

function setLink(state: 'up' | 'down'): void {
  run('ip', '-n', NS, 'link', 'set', 'mt5dn0', state);
}

function startSensor(dir: string): LiveSensor {
  return spawnLiveSensor(NS, dir, ['-i', 'mt5dn0']);
}

describe('mailtap live on an interface that is down', { skip }, () => {
  let dir: string;
  const sensors: LiveSensor[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailtap-iface-down-'));
    spawnSync('ip', ['netns', 'del', NS]);
    run('ip', 'netns', 'add', NS);
    run('ip', '-n', NS, 'link', 'add', 'mt5dn0', 'type', 'veth', 'peer', 'name', 'mt5dn1');
    run('ip', '-n', NS, 'link', 'set', 'mt5dn1', 'up');
  });

  after(() => {
    for (const sensor of sensors) if (sensor.child.exitCode === null) sensor.child.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', NS]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('waits, then captures once the interface is up', async () => {
    setLink('down');
    const sensor = startSensor(dir);
    sensors.push(sensor);
    const waiting = await sensor.waitForLog('interface down: waiting for it to come up (ip link set IFACE up)', 15000);
    assert.deepEqual(waiting.interfaces, ['mt5dn0']);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(sensor.logs.find((entry) => entry.msg === 'capture started'), undefined);

    setLink('up');
    await sensor.waitForLog('capture started', 10000);
    sensor.child.kill('SIGTERM');
    const exit = await sensor.exit;
    assert.equal(exit.code, 0, `${JSON.stringify(exit)}\n${sensor.stderr()}`);
  });

  test('SIGHUP while waiting reloads after start', async () => {
    setLink('down');
    const sensor = startSensor(mkdtempSync(join(dir, 'hup-')));
    sensors.push(sensor);
    await sensor.waitForLog('interface down: waiting for it to come up (ip link set IFACE up)', 15000);
    sensor.child.kill('SIGHUP');
    await sensor.waitForLog('SIGHUP before the capture started: reloading once it runs', 5000);
    setLink('up');
    await sensor.waitForLog('capture started', 10000);
    await sensor.waitForLog('configuration reloaded', 5000);
    sensor.child.kill('SIGTERM');
    const exit = await sensor.exit;
    assert.equal(exit.code, 0, `${JSON.stringify(exit)}\n${sensor.stderr()}`);
  });

  test('SIGTERM while waiting exits 0', async () => {
    setLink('down');
    const sensor = startSensor(mkdtempSync(join(dir, 'term-')));
    sensors.push(sensor);
    await sensor.waitForLog('interface down: waiting for it to come up (ip link set IFACE up)', 15000);
    sensor.child.kill('SIGTERM');
    const { code } = await sensor.exit;
    assert.equal(code, 0, sensor.stderr());
    const stopped = await sensor.waitForLog('stopped while waiting for the interface', 1000);
    assert.equal(stopped.signal, 'SIGTERM');
  });

  test('link down fails, restart waits', async () => {
    setLink('up');
    const runDir = mkdtempSync(join(dir, 'flap-'));
    const first = startSensor(runDir);
    sensors.push(first);
    await first.waitForLog('capture started', 15000);
    setLink('down');
    const ended = await first.exit;
    // cap 0.2.1 aborts (SIGABRT). Any failure status makes Restart=on-failure restart the unit.
    assert.ok(ended.code !== 0, `${JSON.stringify(ended)}\n${first.stderr()}`);

    const second = startSensor(runDir);
    sensors.push(second);
    await second.waitForLog('interface down: waiting for it to come up (ip link set IFACE up)', 15000);
    setLink('up');
    await second.waitForLog('capture started', 10000);
    second.child.kill('SIGTERM');
    const secondExit = await second.exit;
    assert.equal(secondExit.code, 0, `${JSON.stringify(secondExit)}\n${second.stderr()}`);
  });
});
