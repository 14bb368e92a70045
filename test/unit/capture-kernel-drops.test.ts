import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KernelDropCounter, findPacketSockets } from '../../src/capture/kernel-drops.js';

// /proc/net/packet as Linux 6.x prints it (net/packet/af_packet.c, packet_seq_show): the
// columns are sk, RefCnt, Type, Proto, Iface, R, Rmem, User, Inode.
const PACKET_TABLE = [
  'sk               RefCnt Type Proto  Iface R Rmem   User   Inode',
  '000000009d01dea8 3      3    0003   3     1 0      0      1502672',
  '00000000aa01dea8 3      3    0003   4     1 0      0      1502690',
  '00000000bb01dea8 3      3    0003   3     1 0      0      1502700',
  '',
].join('\n');

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Creates a fake /proc/self with the packet table and descriptors of sockets, a file and a pipe. */
function fakeProc(): string {
  const root = mkdtempSync(join(tmpdir(), 'mailtap-proc-'));
  dirs.push(root);
  mkdirSync(join(root, 'net'));
  mkdirSync(join(root, 'fd'));
  writeFileSync(join(root, 'net', 'packet'), PACKET_TABLE);
  symlinkSync('socket:[1502672]', join(root, 'fd', '23'));
  symlinkSync('socket:[1502690]', join(root, 'fd', '24'));
  symlinkSync('/var/lib/mailtap/LOG', join(root, 'fd', '25'));
  symlinkSync('pipe:[1502672]', join(root, 'fd', '26'));
  symlinkSync('socket:[999]', join(root, 'fd', '27'));
  return root;
}

test('finds own packet sockets per interface', () => {
  const root = fakeProc();
  // Socket 1502700 is on interface 3 but belongs to another process: no descriptor here.
  assert.deepEqual(findPacketSockets(new Set([3]), root), [{ fd: 23, inode: '1502672' }]);
  assert.deepEqual(
    findPacketSockets(new Set([3, 4]), root).sort((a, b) => a.fd - b.fd),
    [
      { fd: 23, inode: '1502672' },
      { fd: 24, inode: '1502690' },
    ],
  );
  assert.deepEqual(findPacketSockets(new Set([7]), root), []);
});

test('a missing or malformed packet table finds nothing', () => {
  const root = fakeProc();
  writeFileSync(join(root, 'net', 'packet'), 'no header here\n1 2 3\n');
  assert.deepEqual(findPacketSockets(new Set([3]), root), []);
  assert.deepEqual(findPacketSockets(new Set([3]), join(root, 'missing')), []);
});

test('without a capture socket the counts are unavailable, with the reason', () => {
  const root = fakeProc();
  const sys = mkdtempSync(join(tmpdir(), 'mailtap-sys-'));
  dirs.push(sys);
  mkdirSync(join(sys, 'eth9'));
  writeFileSync(join(sys, 'eth9', 'ifindex'), '9\n');
  const counter = new KernelDropCounter(['eth9'], root, sys);
  assert.match(counter.unavailable ?? '', /no capture socket on eth9/);
  assert.equal(counter.read(), undefined);
});
