import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, type Fields } from './cli.js';
import { spawnLiveSensor, type LiveSensor } from './live-sensor.js';
import { PcapBuilder, TcpConnection } from './pcap-builder.js';

/*
 * Packets the kernel drops because the capture buffer is full. tcpreplay sends a burst of one
 * SMTP connection's segments at top speed from namespace mt5ks through a veth pair to namespace
 * mt5kc. There `mailtap live` captures with the smallest buffer it accepts (64 KiB), so the
 * ring fills and the kernel drops packets. The kernel's counters, read from the capture socket,
 * must account for every packet sent: those cap delivered plus those dropped.
 */

const SENDER_NS = 'mt5ks';
const SENSOR_NS = 'mt5kc';
/** Data segments of the burst. With their ACKs, the capture has twice as many packets plus 7. */
const SEGMENTS = 12000;

const isRoot = process.getuid?.() === 0;
const hasTools = ['ip', 'tcpreplay'].every((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0);
const skip = !(isRoot && hasTools) && 'needs root, iproute2 and tcpreplay';

function run(command: string, ...args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function removeNetwork(): void {
  for (const ns of [SENDER_NS, SENSOR_NS]) spawnSync('ip', ['netns', 'del', ns]);
}

/** Writes the burst: one connection to port 25 whose client sends SEGMENTS full segments. */
function writeBurst(path: string): number {
  const builder = new PcapBuilder();
  const connection = new TcpConnection(
    builder,
    { mac: '02:00:00:5a:00:21', ip: '10.57.0.21', port: 40001 },
    { mac: '02:00:00:5a:00:10', ip: '10.57.0.10', port: 25 },
    1_700_000_000_000_000,
  );
  connection.handshake();
  connection.send(1, '220 relay.corp.example ESMTP\r\n');
  connection.send(0, 'EHLO ws.corp.example\r\n');
  connection.send(0, Buffer.alloc(SEGMENTS * 1460, 'x'));
  writeFileSync(path, builder.toBuffer());
  return builder.packetCount;
}

describe('mailtap live with a capture buffer too small for a burst', { skip }, () => {
  let dir: string;
  let live: LiveSensor | undefined;
  let sent = 0;
  let statusText = '';
  let logs: Fields[] = [];
  let stderrText = '';
  let exitStatus: number | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailtap-kernel-drops-'));
    const burst = join(dir, 'burst.pcap');
    sent = writeBurst(burst);

    removeNetwork();
    for (const ns of [SENDER_NS, SENSOR_NS]) {
      run('ip', 'netns', 'add', ns);
      // No IPv6 on the veth ends: they would send neighbour discovery that the filter passes.
      run('ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    }
    run('ip', 'link', 'add', 'mt5ks0', 'netns', SENDER_NS, 'type', 'veth', 'peer', 'name', 'mt5kc0', 'netns', SENSOR_NS);
    run('ip', '-n', SENDER_NS, 'link', 'set', 'mt5ks0', 'up');
    run('ip', '-n', SENSOR_NS, 'link', 'set', 'mt5kc0', 'up');

    live = spawnLiveSensor(SENSOR_NS, dir, ['-i', 'mt5kc0'], 'capture:\n  buffer_size: 64KiB\n  stats_interval: 1s\n');
    logs = live.logs;
    await live.waitForLog('capture started', 15000);

    run('ip', 'netns', 'exec', SENDER_NS, 'tcpreplay', '--intf1=mt5ks0', '--topspeed', burst);
    // Two stats intervals, so that a stats line covers the burst and its drops.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    statusText = run(process.execPath, CLI, 'status', '--socket', join(dir, 'mailtap.sock'));
    exitStatus = (await live.stop()).code;
    stderrText = live.stderr();
  });

  after(() => {
    if (live && live.child.exitCode === null) live.child.kill('SIGKILL');
    removeNetwork();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('captured plus drops equals sent', (t) => {
    assert.equal(exitStatus, 0, stderrText);
    const stopped = logs.find((entry) => entry.msg === 'capture stopped');
    assert.ok(stopped, stderrText);
    const { packets, loss } = stopped.stats as { packets: number; loss: Fields };
    t.diagnostic(`sent ${sent}, captured ${packets}, loss ${JSON.stringify(loss)}`);
    assert.equal(sent, 2 * SEGMENTS + 7);
    assert.equal(loss.kernelPackets, sent);
    assert.ok(loss.kernelDrops > 0, JSON.stringify(loss));
    assert.equal(packets + loss.kernelDrops, sent);
    // The interface itself dropped nothing: the loss is in the capture socket only.
    assert.equal(loss.interfaceDrops, 0);
  });

  test('status and log report drops', () => {
    const stopped = logs.find((entry) => entry.msg === 'capture stopped');
    const loss = stopped?.stats.loss as Fields;
    const line = statusText.split('\n').find((text) => text.startsWith('kernel drops'));
    assert.equal(line, `kernel drops     ${loss.kernelDrops.toLocaleString('en-US')} of ${sent.toLocaleString('en-US')} packets the filter passed`);
    const warning = logs.find((entry) => entry.level === 40 && String(entry.msg).startsWith('capture loss'));
    assert.ok(warning, stderrText);
    assert.equal(warning.kernelDrops, loss.kernelDrops);
  });
});
