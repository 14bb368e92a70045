import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, FragmentReassembler } from '../../src/decode/index.js';
import { LINKTYPE } from '../../src/decode/types.js';
import { ethernet, ipv4, ipv6, ipv6Fragment, packet, tcp } from './decode-frames.js';

const PAYLOAD = Buffer.from('MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'.repeat(2));
const SEGMENT = tcp({ srcPort: 40001, dstPort: 25, seq: 7, payload: PAYLOAD });

/** IPv4 fragments of SEGMENT cut at the given byte offsets (multiples of 8). */
function v4Fragments(cuts: number[], id = 77, src = [10, 0, 0, 1]): Buffer[] {
  const bounds = [0, ...cuts, SEGMENT.length];
  const frames: Buffer[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const body = SEGMENT.subarray(bounds[i], bounds[i + 1]);
    const more = i + 2 < bounds.length;
    frames.push(ethernet(ipv4(body, { id, src, fragmentOffset: bounds[i], moreFragments: more }), 0x0800));
  }
  return frames;
}

function feed(decoder: Decoder, frames: Buffer[], seconds = 100) {
  return frames.map((frame) => decoder.decode(packet(frame, LINKTYPE.ETHERNET, { seconds })));
}

test('IPv4 fragments in order', () => {
  const decoder = new Decoder();
  const results = feed(decoder, v4Fragments([48, 96]));
  assert.equal(results[0], undefined);
  assert.equal(results[1], undefined);
  const segment = results[2];
  assert.ok(segment);
  assert.equal(segment.srcPort, 40001);
  assert.equal(segment.seq, 7);
  assert.deepEqual(segment.payload, PAYLOAD);
  assert.equal(segment.payloadLength, PAYLOAD.length);
  assert.equal(segment.srcIp, '10.0.0.1');
  assert.equal(decoder.stats.fragments, 3);
  assert.equal(decoder.stats.reassembled, 1);
  assert.equal(decoder.stats.tcp, 1);
  assert.equal(decoder.stats.fragmentsDropped, 0);
  assert.equal(decoder.pendingFragmentedDatagrams, 0);
});

test('IPv4 fragments out of order', () => {
  const decoder = new Decoder();
  const [a, b, c, d] = v4Fragments([40, 80, 120]);
  const results = feed(decoder, [d, b, c, a]);
  assert.deepEqual(results.slice(0, 3), [undefined, undefined, undefined]);
  assert.deepEqual(results[3]?.payload, PAYLOAD);
  assert.equal(decoder.stats.reassembled, 1);
});

test('IPv4 duplicate fragment', () => {
  const decoder = new Decoder();
  const [a, b, c] = v4Fragments([48, 96]);
  const results = feed(decoder, [a, b, b, c]);
  assert.deepEqual(results[3]?.payload, PAYLOAD);
  assert.equal(decoder.stats.fragments, 4);
  assert.equal(decoder.stats.fragmentsDropped, 1);
  assert.equal(decoder.stats.reassembled, 1);
});

test('IPv4 overlapping fragment first wins', () => {
  const decoder = new Decoder();
  const [a, b, c] = v4Fragments([48, 96]);
  // Bytes 40..64 sent again with different content, straddling the a/b boundary.
  const forged = Buffer.alloc(24, 0x58);
  const overlap = ethernet(ipv4(forged, { id: 77, fragmentOffset: 40, moreFragments: true }), 0x0800);
  const results = feed(decoder, [a, overlap, b, c]);
  // a contains 0..48, so the forged fragment adds only 48..64; b then adds only 64..96.
  const expected = Buffer.from(SEGMENT);
  forged.copy(expected, 48, 8);
  assert.deepEqual(results[3]?.payload, expected.subarray(20));
  assert.equal(decoder.stats.fragmentsDropped, 2); // the forged fragment and b overlapped
  assert.equal(decoder.stats.reassembled, 1);

  // Arriving after a, b and c, the forged bytes change nothing.
  const second = new Decoder();
  const late = feed(second, [a, b, overlap, c]);
  assert.deepEqual(late[3]?.payload, PAYLOAD);
  assert.equal(second.stats.fragmentsDropped, 1);
  assert.equal(second.stats.reassembled, 1);
});

test('IPv4 fragments kept apart by key', () => {
  const decoder = new Decoder();
  const [a1, b1] = v4Fragments([64], 5, [10, 0, 0, 1]);
  const [a2, b2] = v4Fragments([64], 5, [10, 0, 0, 9]);
  const results = feed(decoder, [a1, a2, b2, b1]);
  assert.equal(results[2]?.srcIp, '10.0.0.9');
  assert.equal(results[3]?.srcIp, '10.0.0.1');
  assert.equal(decoder.stats.reassembled, 2);
});

test('IPv4 incomplete fragments time out', () => {
  const decoder = new Decoder({ fragmentTimeout: 30 });
  const [a, b, c] = v4Fragments([48, 96]);
  feed(decoder, [a, b], 100);
  assert.equal(decoder.pendingFragmentedDatagrams, 1);

  // 29 seconds later the datagram is still held and completes.
  assert.deepEqual(feed(decoder, [c], 129)[0]?.payload, PAYLOAD);

  feed(decoder, [a, b], 200);
  const unrelated = ethernet(ipv4(tcp()), 0x0800);
  feed(decoder, [unrelated], 230); // packet time, not wall clock, expires the datagram
  assert.equal(decoder.pendingFragmentedDatagrams, 0);
  assert.equal(decoder.stats.fragmentsDropped, 2);
  assert.equal(feed(decoder, [c], 231)[0], undefined); // starts a new datagram
  assert.equal(decoder.pendingFragmentedDatagrams, 1);
});

test('IPv4 invalid fragments', () => {
  const decoder = new Decoder();
  // Not the last fragment, but 12 bytes long: lengths must be multiples of 8.
  const odd = ethernet(ipv4(Buffer.alloc(12), { id: 1, moreFragments: true }), 0x0800);
  // Offset 65528 plus 16 bytes passes the 65535-byte datagram limit.
  const huge = ethernet(ipv4(Buffer.alloc(16), { id: 2, fragmentOffset: 65528 }), 0x0800);
  feed(decoder, [odd, huge]);
  assert.equal(decoder.stats.fragments, 2);
  assert.equal(decoder.stats.errors, 2);
  assert.equal(decoder.pendingFragmentedDatagrams, 0);
});

test('IPv4 conflicting ends discard the datagram', () => {
  const decoder = new Decoder();
  const [a, b] = v4Fragments([48]);
  const earlyEnd = ethernet(ipv4(Buffer.alloc(8), { id: 77, fragmentOffset: 16 }), 0x0800);
  feed(decoder, [a, earlyEnd, b]);
  assert.equal(decoder.stats.reassembled, 0);
  assert.equal(decoder.stats.fragmentsDropped, 2); // a and the early end
  assert.equal(decoder.pendingFragmentedDatagrams, 1); // b started a new datagram
});

test('fragment memory bound', () => {
  const decoder = new Decoder({ maxFragmentBytes: 4096 });
  const frames: Buffer[] = [];
  for (let id = 0; id < 50; id++) {
    frames.push(ethernet(ipv4(Buffer.alloc(400), { id, moreFragments: true }), 0x0800));
  }
  feed(decoder, frames);
  assert.ok(decoder.pendingFragmentedDatagrams < 50);
  assert.ok(decoder.pendingFragmentedDatagrams > 0);
  assert.equal(decoder.stats.fragmentsDropped, 50 - decoder.pendingFragmentedDatagrams);

  // A fragment that alone exceeds the bound is dropped.
  const big = ethernet(ipv4(Buffer.alloc(8000), { id: 999, moreFragments: true }), 0x0800);
  const droppedBefore = decoder.stats.fragmentsDropped;
  feed(decoder, [big]);
  assert.equal(decoder.stats.fragmentsDropped, droppedBefore + 1);
});

test('reassembler held bytes stay bounded', () => {
  const counters = { reassembled: 0, fragmentsDropped: 0, errors: 0 };
  const maxBytes = 20000;
  const reassembler = new FragmentReassembler({ timeout: 30, maxBytes, maxFragmentsPerDatagram: 16 }, counters);
  let seed = 99;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (let i = 0; i < 20000; i++) {
    const offset = random(200) * 8;
    const more = random(4) !== 0;
    const length = more ? (random(60) + 1) * 8 : random(500);
    reassembler.add(`k${random(40)}`, offset, Buffer.alloc(length), more, i / 100);
    assert.ok(reassembler.heldBytes <= maxBytes, `held ${reassembler.heldBytes}`);
    assert.ok(reassembler.heldBytes >= 0);
  }
  assert.ok(counters.reassembled > 0);
  assert.ok(counters.fragmentsDropped > 0);
});

test('fragments per datagram bound', () => {
  const decoder = new Decoder({ maxFragmentsPerDatagram: 4 });
  const cuts = [8, 16, 24, 32, 40, 48];
  const results = feed(decoder, v4Fragments(cuts));
  assert.equal(results.every((r) => r === undefined), true);
  assert.equal(decoder.stats.fragmentsDropped, 3);
  assert.equal(decoder.stats.reassembled, 0);
});

test('fragment cut by snap length dropped', () => {
  const decoder = new Decoder();
  const [a] = v4Fragments([64]);
  const cut = a.subarray(0, 50);
  decoder.decode(packet(cut, LINKTYPE.ETHERNET, { originalLength: a.length }));
  assert.equal(decoder.stats.fragments, 1);
  assert.equal(decoder.stats.fragmentsDropped, 1);
  assert.equal(decoder.stats.snapTruncated, 0);
  assert.equal(decoder.pendingFragmentedDatagrams, 0);
});

test('IPv6 fragments out of order', () => {
  const decoder = new Decoder();
  const dstOpts = Buffer.from([0x06, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00]); // next TCP, PadN
  const fragmentable = Buffer.concat([dstOpts, SEGMENT]);
  const cuts = [0, 56, 112, fragmentable.length];
  const frames: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    const header = ipv6Fragment(60, cuts[i], i < 2, 0xdeadbeef);
    const body = Buffer.concat([header, fragmentable.subarray(cuts[i], cuts[i + 1])]);
    frames.push(ethernet(ipv6(body, 44), 0x86dd, [[0x8100, 30]]));
  }
  const results = feed(decoder, [frames[2], frames[0], frames[1]]);
  assert.equal(results[0], undefined);
  assert.equal(results[1], undefined);
  const segment = results[2];
  assert.ok(segment);
  assert.equal(segment.ipVersion, 6);
  assert.equal(segment.srcIp, '2001:db8::1');
  assert.deepEqual(segment.vlans, [30]);
  assert.deepEqual(segment.payload, PAYLOAD);
  assert.equal(decoder.stats.fragments, 3);
  assert.equal(decoder.stats.reassembled, 1);
});

test('IPv6 hop-by-hop before fragment header', () => {
  const decoder = new Decoder();
  const hopByHop = Buffer.from([44, 0, 1, 4, 0, 0, 0, 0]); // next fragment, PadN
  const first = ipv6(Buffer.concat([hopByHop, ipv6Fragment(6, 0, true, 1), SEGMENT.subarray(0, 64)]), 0);
  const last = ipv6(Buffer.concat([hopByHop, ipv6Fragment(6, 64, false, 1), SEGMENT.subarray(64)]), 0);
  assert.equal(decoder.decode(packet(first, LINKTYPE.RAW)), undefined);
  assert.deepEqual(decoder.decode(packet(last, LINKTYPE.RAW))?.payload, PAYLOAD);
});

test('IPv6 atomic fragment decoded directly', () => {
  const decoder = new Decoder();
  const frame = ipv6(Buffer.concat([ipv6Fragment(6, 0, false, 3), SEGMENT]), 44);
  assert.deepEqual(decoder.decode(packet(frame, LINKTYPE.RAW))?.payload, PAYLOAD);
  assert.equal(decoder.stats.fragments, 0);
});
