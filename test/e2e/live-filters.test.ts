import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, type Fields } from './cli.js';
import { spawnLiveSensor, type LiveSensor } from './live-sensor.js';
import { PcapBuilder, TcpConnection } from './pcap-builder.js';

/*
 * Capture filters on links other than Ethernet, and reloads with filters that do not compile.
 * Namespace mt5fl has its loopback up, a veth pair mt5fl0/mt5fl1 (Ethernet) and a tun device
 * mt5fltun (raw IP, no link-layer header), on which libpcap rejects `vlan` and `ether`.
 */

const NS = 'mt5fl';

const isRoot = process.getuid?.() === 0;
const hasIp = spawnSync('sh', ['-c', 'command -v ip']).status === 0;
const skip = !(isRoot && hasIp) && 'needs root and iproute2';

function run(command: string, ...args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** Returns the interface indexes of the packet sockets that process pid has open. */
function packetSocketInterfaces(pid: number): number[] {
  const fds = run('ls', '-l', `/proc/${pid}/fd`);
  const inodes = new Set([...fds.matchAll(/socket:\[(\d+)\]/g)].map((match) => match[1]));
  const table = readFileSync(`/proc/${pid}/net/packet`, 'ascii').trim().split('\n').slice(1);
  return table
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => inodes.has(fields[8]))
    .map((fields) => Number(fields[4]))
    .sort((a, b) => a - b);
}

function ifindex(iface: string): number {
  return Number(run('ip', 'netns', 'exec', NS, 'cat', `/sys/class/net/${iface}/ifindex`).trim());
}

/** Starts a sensor in the namespace and waits until it captures. */
async function startSensor(dir: string, args: string[], configText = ''): Promise<LiveSensor> {
  const sensor = spawnLiveSensor(NS, dir, args, configText);
  await sensor.waitForLog('capture started', 15000);
  return sensor;
}

describe('mailtap live filters on other link types', { skip }, () => {
  let dir: string;
  const sensors: LiveSensor[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailtap-filters-'));
    spawnSync('ip', ['netns', 'del', NS]);
    run('ip', 'netns', 'add', NS);
    run('ip', '-n', NS, 'link', 'set', 'lo', 'up');
    run('ip', '-n', NS, 'link', 'add', 'mt5fl0', 'type', 'veth', 'peer', 'name', 'mt5fl1');
    run('ip', '-n', NS, 'link', 'set', 'mt5fl0', 'up');
    run('ip', 'netns', 'exec', NS, 'ethtool', '-K', 'mt5fl0', 'gro', 'off', 'gso', 'off', 'tso', 'off');
    run('ip', '-n', NS, 'link', 'set', 'mt5fl1', 'up');
    run('ip', '-n', NS, 'tuntap', 'add', 'mt5fltun', 'mode', 'tun');
    run('ip', '-n', NS, 'link', 'set', 'mt5fltun', 'up');
  });

  after(() => {
    for (const sensor of sensors) if (sensor.child.exitCode === null) sensor.child.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', NS]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('"any" takes the default filter without VLAN', async () => {
    const runDir = mkdtempSync(join(dir, 'any-'));
    const sensor = await startSensor(runDir, ['-i', 'any']);
    sensors.push(sensor);
    const note = await sensor.waitForLog((entry) => entry.msg === 'interfaces without VLAN tags use the default filter without its VLAN part', 1000);
    assert.deepEqual(note.interfaces, ['any']);
    assert.doesNotMatch(String(note.filter), /vlan/);
    // A connection to a closed port on loopback: SYN and RST, both on port 25.
    spawnSync('ip', ['netns', 'exec', NS, 'bash', '-c', 'echo > /dev/tcp/127.0.0.1/25'], { stdio: 'ignore' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const status = JSON.parse(run(process.execPath, CLI, 'status', '--json', '--socket', join(runDir, 'mailtap.sock'))) as Fields;
    assert.ok(status.packets >= 2, JSON.stringify(status));
    assert.equal((await sensor.stop()).code, 0, sensor.stderr());
  });

  test('offloads on: small capture buffer warned', async () => {
    run('ip', 'netns', 'exec', NS, 'ethtool', '-K', 'mt5fl1', 'gro', 'on');
    const sensor = await startSensor(mkdtempSync(join(dir, 'gro-')), ['-i', 'mt5fl1']);
    sensors.push(sensor);
    const warning = await sensor.waitForLog((entry) => String(entry.msg).startsWith('the capture buffer of mt5fl1 has room for'), 1000);
    assert.equal(warning.level, 40);
    assert.ok(warning.slotBytes >= 65536, JSON.stringify(warning));
    assert.ok(warning.slots < 1100, JSON.stringify(warning));
    assert.equal((await sensor.stop()).code, 0, sensor.stderr());
  });

  test('bad reload filter opens no socket', async () => {
    const runDir = mkdtempSync(join(dir, 'reload-'));
    const sensor = await startSensor(runDir, ['-i', 'mt5fl0', '-i', 'mt5fltun'], 'capture:\n  filter: ip or arp\n');
    sensors.push(sensor);
    const pid = sensor.child.pid!;
    const both = [ifindex('mt5fl0'), ifindex('mt5fltun')].sort((a, b) => a - b);
    assert.deepEqual(packetSocketInterfaces(pid), both);

    // Invalid everywhere, then valid on Ethernet only: both rejected, nothing reopened.
    const config = join(runDir, 'site.yaml');
    for (const filter of ['ip or bogus', 'ether multicast or ip']) {
      writeFileSync(config, readFileSync(config, 'utf8').replace(/filter: .*/, `filter: ${filter}`));
      const before = sensor.logs.length;
      sensor.child.kill('SIGHUP');
      const rejected = await sensor.waitForLog(
        (entry) => sensor.logs.indexOf(entry) >= before && entry.msg === 'SIGHUP: the new filter is invalid; keeping the previous configuration',
        5000,
      );
      assert.equal(rejected.filter, filter);
      assert.deepEqual(packetSocketInterfaces(pid), both);
    }
    assert.equal(sensor.logs.filter((entry) => entry.msg === 'configuration reloaded').length, 0);
    assert.equal((await sensor.stop()).code, 0, sensor.stderr());
  });

  test('reloads count only filtered packets', async (t) => {
    // Web traffic only: no packet passes either filter, before or after a reload.
    const builder = new PcapBuilder();
    const web = new TcpConnection(
      builder,
      { mac: '02:00:00:5f:00:21', ip: '10.58.0.21', port: 40100 },
      { mac: '02:00:00:5f:00:80', ip: '10.58.0.80', port: 80 },
      1_700_000_000_000_000,
    );
    web.handshake();
    web.send(0, Buffer.alloc(100 * 1460, 'w'));
    const pcap = join(dir, 'web.pcap');
    writeFileSync(pcap, builder.toBuffer());

    const runDir = mkdtempSync(join(dir, 'count-'));
    const sensor = await startSensor(runDir, ['-i', 'mt5fl0'], 'capture:\n  filter: tcp port 25\n');
    sensors.push(sensor);
    const replay = spawn('ip', ['netns', 'exec', NS, 'tcpreplay', '--intf1=mt5fl1', '--pps=100000', '--loop=1000', pcap], { stdio: 'ignore' });
    const config = join(runDir, 'site.yaml');
    for (const filter of ['tcp port 587', 'tcp port 25', 'tcp port 587']) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      writeFileSync(config, readFileSync(config, 'utf8').replace(/filter: .*/, `filter: ${filter}`));
      sensor.child.kill('SIGHUP');
    }
    await new Promise<void>((resolve) => replay.once('exit', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const status = JSON.parse(run(process.execPath, CLI, 'status', '--json', '--socket', join(runDir, 'mailtap.sock'))) as Fields;
    t.diagnostic(JSON.stringify(status.loss));
    assert.equal(sensor.logs.filter((entry) => entry.msg === 'configuration reloaded').length, 3);
    assert.equal(status.packets, 0);
    assert.equal(status.loss.kernelPackets, 0);
    assert.equal(status.loss.kernelDrops, 0);
    assert.equal((await sensor.stop()).code, 0, sensor.stderr());
  });

  test('reload warns about restart-only settings', async () => {
    const runDir = mkdtempSync(join(dir, 'ports-'));
    const sensor = await startSensor(runDir, ['-i', 'mt5fl0']);
    sensors.push(sensor);
    // With offloads off (see before()), libpcap sizes the ring's slots for 1500-byte frames.
    const ring = await sensor.waitForLog((entry) => entry.msg === 'capture buffer', 1000);
    assert.equal(ring.interface, 'mt5fl0');
    assert.ok(ring.slotBytes < 2048, JSON.stringify(ring));
    assert.ok(ring.slots > 30000, JSON.stringify(ring));
    const config = join(runDir, 'site.yaml');
    writeFileSync(config, readFileSync(config, 'utf8') + 'smtp:\n  ports: [25, 587, 2525, 2600]\n');
    sensor.child.kill('SIGHUP');
    const warning = await sensor.waitForLog((entry) => String(entry.msg).startsWith('SIGHUP: smtp changed'), 5000);
    assert.deepEqual(warning.sections, ['smtp']);
    assert.equal((await sensor.stop()).code, 0, sensor.stderr());
  });
});
