import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRingSizes } from '../../src/capture/ring.js';

// `ss -0 -e -H` (iproute2 6.1) on Linux 6.x with two capture sockets: one on a veth with
// offloads off at MTU 1500, one with GRO on, whose slots libpcap sizes for 64 KiB frames.
const SS_OUTPUT = [
  'p_raw 0      0                  *:mt9lc0             *     ino:1502672 sk:13',
  '\tver:2 cpy_thresh:0 flags( running auxdata ) ring_rx(blk_size:4096,blk_nr:20972,frm_size:1600,frm_nr:41944,tmo:0,features:0x0) skmem:(r0,rb212992,t0,tb212992,f0,w0,o9216,bl0,d0)',
  'p_raw 0      0                  *:mt9lc1             *     ino:1502690 sk:14',
  '\tver:2 cpy_thresh:0 flags( running auxdata ) ring_rx(blk_size:65536,blk_nr:1023,frm_size:65616,frm_nr:1023,tmo:0,features:0x0)',
  'p_dgr 0      0                  *:eth0               *     ino:1502700 sk:15',
  '',
].join('\n');

test('ring sizes by socket inode', () => {
  const rings = parseRingSizes(SS_OUTPUT);
  assert.deepEqual(rings.get('1502672'), { slotBytes: 1600, slots: 41944 });
  assert.deepEqual(rings.get('1502690'), { slotBytes: 65616, slots: 1023 });
  // A socket without a ring (not a capture socket) has no entry.
  assert.equal(rings.has('1502700'), false);
  assert.equal(rings.size, 2);
});

test('ring sizes of empty or foreign text', () => {
  assert.equal(parseRingSizes('').size, 0);
  assert.equal(parseRingSizes('ring_rx(frm_size:1600,frm_nr:10)\n').size, 0);
});
