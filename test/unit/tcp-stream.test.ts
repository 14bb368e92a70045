import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DeliveredRing } from '../../src/tcp/delivered-ring.js';
import { DEFAULT_FLOW_LIMITS } from '../../src/tcp/flow-table.js';
import {
  MAX_PIECES_PER_DIRECTION,
  MAX_PIECES_TOTAL,
  RECENT_SEGMENTS,
  TcpStream,
  type ReassemblyContext,
  type StreamOwner,
} from '../../src/tcp/stream.js';
import type { Anomaly, Direction, FlowLimits, FlowStats } from '../../src/tcp/types.js';

type Event =
  | { kind: 'data'; bytes: string }
  | { kind: 'gap'; length: number }
  | { kind: 'anomaly'; name: string };

/** Owner that records what the stream produces, with data copied as latin1 text. */
class RecordingOwner implements StreamOwner {
  events: Event[] = [];

  deliver(_direction: Direction, data: Buffer): void {
    this.events.push({ kind: 'data', bytes: data.toString('latin1') });
  }

  gap(_direction: Direction, length: number): void {
    this.events.push({ kind: 'gap', length });
  }

  anomaly(anomaly: Anomaly): void {
    this.events.push({ kind: 'anomaly', name: anomaly.name });
  }

  /** The delivered stream as text, with each gap shown as "[gap N]". */
  text(): string {
    let out = '';
    for (const event of this.events) {
      if (event.kind === 'data') out += event.bytes;
      else if (event.kind === 'gap') out += `[gap ${event.length}]`;
    }
    return out;
  }

  anomalies(): string[] {
    return this.events.flatMap((event) => (event.kind === 'anomaly' ? [event.name] : []));
  }
}

function emptyStats(): FlowStats {
  return {
    segments: 0,
    ignoredSegments: 0,
    flowsOpened: 0,
    flowsClosed: 0,
    activeFlows: 0,
    midstreamFlows: 0,
    retransmissions: 0,
    inconsistentRetransmissions: 0,
    outOfOrder: 0,
    gaps: 0,
    gapBytes: 0,
    droppedBytesPerFlowLimit: 0,
    droppedBytesTotalLimit: 0,
    evictedFlows: 0,
    timedOutFlows: 0,
    peakBufferedBytes: 0,
    unmatchedSegments: 0,
    resetsOutOfWindow: 0,
    suppressedAnomalies: 0,
    handlerErrors: 0,
    internalErrors: 0,
    ackedBytes: 0,
    ackedUnseenBytes: 0,
  };
}

function setup(limits: Partial<FlowLimits> = {}) {
  const owner = new RecordingOwner();
  const resolved = { ...DEFAULT_FLOW_LIMITS, ...limits };
  const context: ReassemblyContext = {
    stats: emptyStats(),
    limits: resolved,
    bufferedTotal: 0,
    bufferedPieces: 0,
    deliveredRing: resolved.retransmissionBuffer > 0 ? new DeliveredRing(resolved.retransmissionBuffer) : null,
  };
  const stream = new TcpStream(0, owner, context);
  const add = (seq: number, text: string, ts = 1): void =>
    stream.addSegment(seq >>> 0, Buffer.from(text, 'latin1'), text.length, ts);
  return { owner, context, stats: context.stats, stream, add };
}

describe('TcpStream', () => {
  it('delivers in-order segments as they come', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAtSyn(999); // data starts at 1000
    add(1000, 'HELO ');
    add(1005, 'a.example\r\n');
    assert.deepEqual(owner.events, [
      { kind: 'data', bytes: 'HELO ' },
      { kind: 'data', bytes: 'a.example\r\n' },
    ]);
    assert.equal(stream.nextSeq, 1016);
    assert.equal(stats.outOfOrder, 0);
    assert.equal(stats.retransmissions, 0);
  });

  it('delivers the in-order payload as a view of the packet', () => {
    const { context, stream } = setup();
    let seen: Buffer | undefined;
    const owner: StreamOwner = {
      deliver: (_d, data) => {
        seen = data;
      },
      gap: () => {},
      anomaly: () => {},
    };
    const viewStream = new TcpStream(0, owner, context);
    viewStream.startAt(stream.nextSeq);
    const packet = Buffer.from('xxDATA\r\n');
    const payload = packet.subarray(2);
    viewStream.addSegment(0, payload, payload.length, 1);
    assert.ok(seen !== undefined);
    assert.equal(seen.buffer, packet.buffer);
    assert.equal(seen.byteOffset, packet.byteOffset + 2);
  });

  it('reports a changed delivered byte before new bytes', () => {
    const { owner, stream, add } = setup();
    stream.startAt(100);
    add(100, 'MAIL FROM:<a@b>\r\n');
    // A retransmission that changes the delivered address and carries the next command.
    add(100, 'MAIL FROM:<x@b>\r\nRCPT TO:<c@d>\r\n', 2);
    assert.deepEqual(owner.events, [
      { kind: 'data', bytes: 'MAIL FROM:<a@b>\r\n' },
      { kind: 'anomaly', name: 'retransmission_inconsistency' },
      { kind: 'data', bytes: 'RCPT TO:<c@d>\r\n' },
    ]);
  });

  it('reports a changed buffered byte before new bytes', () => {
    const { owner, stream, add } = setup();
    stream.startAt(100);
    add(102, 'xyz');
    // Covers the hole (100, 101) and the buffered bytes with other content.
    add(100, 'ABcde', 2);
    assert.deepEqual(owner.events, [
      { kind: 'anomaly', name: 'retransmission_inconsistency' },
      { kind: 'data', bytes: 'AB' },
      { kind: 'data', bytes: 'xyz' },
    ]);
  });

  it('reorders segments 1, 3, 2', () => {
    const { owner, stats, context, stream, add } = setup();
    stream.startAt(100);
    add(100, 'AAAA');
    add(108, 'CCCC');
    assert.equal(stream.bufferedBytes, 4);
    assert.equal(context.bufferedTotal, 4);
    add(104, 'BBBB');
    assert.deepEqual(owner.events, [
      { kind: 'data', bytes: 'AAAA' },
      { kind: 'data', bytes: 'BBBB' },
      { kind: 'data', bytes: 'CCCC' },
    ]);
    assert.equal(stats.outOfOrder, 1);
    assert.equal(stream.bufferedBytes, 0);
    assert.equal(context.bufferedTotal, 0);
    assert.equal(stats.peakBufferedBytes, 4);
  });

  it('counts an identical retransmission without an anomaly', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    add(0, 'MAIL FROM:<a@b>\r\n');
    add(0, 'MAIL FROM:<a@b>\r\n');
    assert.equal(owner.text(), 'MAIL FROM:<a@b>\r\n');
    assert.equal(stats.retransmissions, 1);
    assert.equal(stats.inconsistentRetransmissions, 0);
    assert.deepEqual(owner.anomalies(), []);
  });

  it('reports a retransmission of delivered bytes that differ', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    add(0, 'RCPT TO:<x@y>\r\n');
    add(5, 'XX:<x@y>');
    // First data wins: the stream keeps the original bytes.
    assert.equal(owner.text(), 'RCPT TO:<x@y>\r\n');
    assert.equal(stats.retransmissions, 1);
    assert.equal(stats.inconsistentRetransmissions, 1);
    assert.deepEqual(owner.anomalies(), ['retransmission_inconsistency']);
  });

  it('reports a retransmission of buffered bytes that differ', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    add(4, 'efgh');
    add(4, 'efXh');
    add(0, 'abcd');
    assert.equal(owner.text(), 'abcdefgh');
    assert.equal(stats.retransmissions, 1);
    assert.equal(stats.inconsistentRetransmissions, 1);
    assert.deepEqual(owner.anomalies(), ['retransmission_inconsistency']);
  });

  it('compares only copies still in the ring', () => {
    const { owner, stats, stream, add } = setup({ retransmissionBuffer: 8 });
    stream.startAt(0);
    add(0, 'abcdefgh'); // fills the 8-byte ring
    add(8, 'ijkl'); // overwrites "abcd" in the ring, so "abcdefgh" is gone
    add(0, 'XXXXXXXX');
    assert.equal(stats.retransmissions, 1);
    assert.equal(stats.inconsistentRetransmissions, 0);
    add(8, 'ijkX');
    assert.equal(owner.text(), 'abcdefghijkl');
    assert.equal(stats.retransmissions, 2);
    assert.equal(stats.inconsistentRetransmissions, 1);
  });

  it('compares only the last RECENT_SEGMENTS segments', () => {
    const { stats, stream, add } = setup();
    stream.startAt(0);
    const text = 'abcdefgh'.slice(0, RECENT_SEGMENTS + 1);
    for (let i = 0; i < text.length; i++) add(i, text.charAt(i));
    add(0, 'X'); // the oldest segment has no record left
    assert.equal(stats.inconsistentRetransmissions, 0);
    add(1, 'X');
    assert.equal(stats.inconsistentRetransmissions, 1);
  });

  it('compares delivered bytes from before a gap', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    add(0, 'ab');
    add(4, 'ef');
    stream.acknowledge(6, 2);
    add(0, 'XY');
    assert.equal(owner.text(), 'ab[gap 2]ef');
    assert.equal(stats.retransmissions, 1);
    assert.equal(stats.inconsistentRetransmissions, 1);
  });

  it('keeps first data on a partial overlap and delivers only the new bytes', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    add(0, '0123456789');
    add(6, '6789ABCD');
    assert.deepEqual(owner.events, [
      { kind: 'data', bytes: '0123456789' },
      { kind: 'data', bytes: 'ABCD' },
    ]);
    assert.equal(stats.retransmissions, 1);
    assert.equal(stats.inconsistentRetransmissions, 0);
  });

  it('fills only the holes between buffered segments', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    add(2, 'cd');
    add(6, 'gh');
    // Covers both buffered pieces and the holes around them.
    add(0, 'abcdefghij');
    assert.equal(owner.text(), 'abcdefghij');
    assert.equal(stream.bufferedBytes, 0);
    assert.equal(stats.inconsistentRetransmissions, 0);
    assert.equal(stats.retransmissions, 1);
  });

  it('wraps the sequence space past 2^32', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAtSyn(0xfffffffa); // data starts at 0xfffffffb
    add(0xfffffffb, 'abc'); // 0xfffffffb..0xfffffffd
    add(0x00000002, 'ghi'); // after the wrap, buffered
    add(0xfffffffe, 'def'); // 0xfffffffe, 0xffffffff and 0, so nextSeq becomes 1
    assert.equal(stream.bufferedBytes, 3);
    add(0x00000001, 'X');
    assert.equal(owner.text(), 'abcdefXghi');
    assert.equal(stream.nextSeq, 0x00000005);
    assert.equal(stats.gaps, 0);
    assert.equal(stats.outOfOrder, 1);
  });

  it('ignores keep-alives at nextSeq - 1', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(500);
    add(500, 'QUIT\r\n');
    add(505, '\0'); // keep-alive with one garbage byte, seq = nextSeq - 1
    stream.addSegment(505, Buffer.alloc(0), 0, 2); // keep-alive without data
    assert.equal(owner.text(), 'QUIT\r\n');
    assert.equal(stats.retransmissions, 0);
    assert.equal(stats.gaps, 0);
    assert.deepEqual(owner.anomalies(), []);
  });

  it('declares a gap when the peer ACKs beyond a hole', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(1000);
    add(1000, 'aaaa');
    add(1010, 'cccc'); // 1004..1009 lost
    stream.acknowledge(1005, 2); // ACK inside the hole: 1 byte is certainly lost
    stream.acknowledge(1014, 3);
    assert.equal(owner.text(), 'aaaa[gap 1][gap 5]cccc');
    assert.equal(stats.gaps, 2);
    assert.equal(stats.gapBytes, 6);
  });

  it('waits on an ACK beyond nextSeq with nothing buffered', () => {
    const { owner, stats, stream, add } = setup();
    stream.startAt(0);
    stream.acknowledge(4, 1); // the data may come later in the capture
    add(0, 'abcd');
    assert.equal(owner.text(), 'abcd');
    assert.equal(stats.gaps, 0);
  });

  it('declares a gap when the per-direction bound is exceeded', () => {
    const { owner, stats, context, stream, add } = setup({ maxBufferedPerDirection: 8 });
    stream.startAt(0);
    add(2, 'cccc'); // hole 0..1
    add(8, 'iiii'); // hole 6..7, 8 bytes buffered: at the bound
    assert.equal(owner.text(), '');
    add(14, 'oo'); // 10 bytes buffered: the first hole is given up
    assert.equal(owner.text(), '[gap 2]cccc');
    assert.equal(stats.droppedBytesPerFlowLimit, 2);
    assert.equal(stream.bufferedBytes, 6);
    assert.equal(context.bufferedTotal, 6);
    assert.equal(stats.peakBufferedBytes, 10);
  });

  it('declares a gap when the total bound is exceeded', () => {
    const { owner, stats, context, stream, add } = setup({ maxBufferedTotal: 10 });
    context.bufferedTotal = 8; // buffered by other flows
    stream.startAt(0);
    add(3, 'dddd'); // 12 in total: this stream gives up its hole
    assert.equal(owner.text(), '[gap 3]dddd');
    assert.equal(stats.droppedBytesTotalLimit, 3);
    assert.equal(stream.bufferedBytes, 0);
    assert.equal(context.bufferedTotal, 8);
  });

  it('bounds the number of buffered pieces', () => {
    const { owner, stats, context, stream, add } = setup();
    stream.startAt(0);
    // One-byte pieces at odd offsets, each after a one-byte hole.
    for (let i = 0; i <= MAX_PIECES_PER_DIRECTION; i++) add(2 * i + 1, 'x');
    assert.equal(owner.text(), '[gap 1]x');
    assert.equal(stats.droppedBytesPerFlowLimit, 1);
    assert.equal(stream.bufferedBytes, MAX_PIECES_PER_DIRECTION);
    assert.equal(context.bufferedPieces, MAX_PIECES_PER_DIRECTION);
    stream.flush(2);
    assert.equal(context.bufferedPieces, 0);
    assert.equal(stats.gaps, MAX_PIECES_PER_DIRECTION + 1);
  });

  it('bounds the pieces of all streams', () => {
    const { owner, stats, context, stream, add } = setup();
    context.bufferedPieces = MAX_PIECES_TOTAL; // buffered by other flows
    stream.startAt(0);
    add(2, 'cd');
    assert.equal(owner.text(), '[gap 2]cd');
    assert.equal(stats.droppedBytesTotalLimit, 2);
    assert.equal(context.bufferedPieces, MAX_PIECES_TOTAL);
  });

  it('flushes buffered data with gaps up to the FIN', () => {
    const { owner, stream, add } = setup();
    stream.startAt(0);
    add(0, 'ab');
    add(4, 'ef');
    stream.setFin(10); // bytes 6..9 never seen
    stream.flush(5);
    assert.equal(owner.text(), 'ab[gap 2]ef[gap 4]');
  });

  it('drops data after the FIN', () => {
    const { owner, stream, add } = setup();
    stream.startAt(0);
    add(0, 'ab');
    stream.setFin(2);
    add(2, 'zz');
    assert.equal(owner.text(), 'ab');
  });

  it('declares bytes cut by the snap length as a gap', () => {
    const { owner, stats, stream } = setup();
    stream.startAt(0);
    // 10 bytes on the wire, 4 captured.
    stream.addSegment(0, Buffer.from('abcd'), 10, 1);
    stream.addSegment(10, Buffer.from('klm'), 3, 1);
    assert.equal(owner.text(), 'abcd[gap 6]klm');
    assert.equal(stats.gapBytes, 6);
  });

  it('rejects a segment beyond the largest window', () => {
    const { owner, stream, add } = setup();
    stream.startAt(0);
    add(2 ** 30 + 1, 'x');
    assert.deepEqual(owner.anomalies(), ['tcp_segment_out_of_window']);
    assert.equal(stream.bufferedBytes, 0);
  });

  it('matches a model under random reordering and loss', () => {
    // Linear congruential generator (Numerical Recipes constants), so failures reproduce.
    let state = 12345;
    const random = (n: number): number => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state % n;
    };

    for (let trial = 0; trial < 200; trial++) {
      const { owner, stats, stream } = setup();
      const length = 500 + random(2000);
      let original = '';
      for (let i = 0; i < length; i++) original += String.fromCharCode(97 + random(26));
      const isn = (0xffffffff - random(3000)) >>> 0; // the stream often crosses the wrap
      stream.startAt(isn);

      // Segments of 1..100 bytes; with loss, some are left out. Then copies of random ranges.
      const lossy = trial % 2 === 1;
      const segments: [number, number][] = [];
      for (let start = 0; start < length; ) {
        const end = Math.min(length, start + 1 + random(100));
        if (!lossy || random(10) !== 0) segments.push([start, end]);
        start = end;
      }
      const copies = random(20);
      for (let i = 0; i < copies; i++) {
        const start = random(length);
        segments.push([start, Math.min(length, start + 1 + random(200))]);
      }
      // Shuffle by swapping neighbours up to 8 places apart.
      for (let i = 0; i < segments.length; i++) {
        const j = Math.min(segments.length - 1, i + random(8));
        [segments[i], segments[j]] = [segments[j] as [number, number], segments[i] as [number, number]];
      }

      const covered = new Uint8Array(length);
      for (const [start, end] of segments) {
        covered.fill(1, start, end);
        stream.addSegment((isn + start) >>> 0, Buffer.from(original.slice(start, end), 'latin1'), end - start, 1);
      }
      stream.setFin((isn + length) >>> 0);
      stream.flush(2);

      // The model: every uncovered run becomes a gap of its length.
      let expected = '';
      for (let i = 0; i < length; ) {
        let j = i;
        while (j < length && covered[j] === covered[i]) j++;
        expected += covered[i] === 1 ? original.slice(i, j) : `[gap ${j - i}]`;
        i = j;
      }
      assert.equal(owner.text(), expected, `trial ${trial}`);
      assert.deepEqual(owner.anomalies(), [], `trial ${trial}`);
      assert.equal(stream.bufferedBytes, 0, `trial ${trial}`);
      if (!lossy) assert.equal(stats.gaps, 0, `trial ${trial}`);
    }
  });
});
