import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, type TcpSegment } from '../../src/decode/types.js';
import { FlowTable } from '../../src/tcp/index.js';

// The expected counts are worked out by hand from the sequence numbers in each test. Every
// advance of a receiver's ACK is acknowledged sequence space, where the SYN and the FIN count
// one each. The part of it that no captured segment of the sender covered is unseen.

const CLIENT = { ip: '192.0.2.10', port: 40000 };
const SERVER = { ip: '198.51.100.25', port: 25 };
const PA = TCP_PSH | TCP_ACK;

function makeTable(): FlowTable {
  return new FlowTable({
    serverPorts: new Set([25]),
    onFlow: () => ({ onData() {}, onGap() {}, onAnomaly() {}, onClose() {} }),
  });
}

function segment(from: 'client' | 'server', seq: number, ack: number, flags: number, data = ''): TcpSegment {
  const [src, dst] = from === 'client' ? [CLIENT, SERVER] : [SERVER, CLIENT];
  const payload = Buffer.from(data, 'latin1');
  return {
    ts: 1,
    vlans: [],
    ipVersion: 4,
    srcIp: src.ip,
    dstIp: dst.ip,
    srcPort: src.port,
    dstPort: dst.port,
    seq: seq >>> 0,
    ack: ack >>> 0,
    flags,
    window: 65535,
    payload,
    payloadLength: payload.length,
  };
}

/** Client ISN c, server ISN s: client data starts at c + 1, server data at s + 1. */
function handshake(table: FlowTable, c: number, s: number): void {
  table.process(segment('client', c, 0, TCP_SYN));
  table.process(segment('server', s, c + 1, TCP_SYN | TCP_ACK));
  table.process(segment('client', c + 1, s + 1, TCP_ACK));
}

describe('capture-loss estimate', () => {
  it('counts no loss for a complete capture', () => {
    const table = makeTable();
    handshake(table, 1000, 5000);
    table.process(segment('server', 5001, 1001, PA, '220 mx ESMTP\r\n')); // 14 bytes
    table.process(segment('client', 1001, 5015, PA, 'EHLO a\r\n')); // 8 bytes
    table.process(segment('server', 5015, 1009, PA, '250 ok\r\n'));
    // SYN 1 + SYN 1 + 14 + 8.
    assert.equal(table.stats.ackedBytes, 24);
    assert.equal(table.stats.ackedUnseenBytes, 0);
  });

  it('counts a missed segment once', () => {
    const table = makeTable();
    handshake(table, 1000, 5000);
    // Client segment 1001..1017 ("MAIL FROM:<a@b>\r\n", 17 bytes) is not captured.
    table.process(segment('server', 5001, 1018, PA, '250 ok\r\n'));
    assert.equal(table.stats.ackedUnseenBytes, 17);
    // A duplicate ACK and the late retransmission change nothing.
    table.process(segment('server', 5009, 1018, TCP_ACK));
    table.process(segment('client', 1001, 5009, PA, 'MAIL FROM:<a@b>\r\n'));
    table.process(segment('client', 1018, 5009, PA, 'RCPT TO:<c@d>\r\n')); // 15 bytes, seen
    table.process(segment('server', 5009, 1033, PA, '250 ok\r\n'));
    assert.equal(table.stats.ackedUnseenBytes, 17);
    // SYN 1 + SYN 1 + 17 + 8 + 15 + 8 (the client's last ACK is not sent here).
    assert.equal(table.stats.ackedBytes, 1 + 1 + 17 + 8 + 15);
  });

  it('counts only the unseen tail of an ACK', () => {
    const table = makeTable();
    handshake(table, 1000, 5000);
    table.process(segment('client', 1001, 5001, PA, 'DATA\r\n')); // 1001..1006, seen
    // 1007..1106 (100 bytes) missed; the ACK covers both.
    table.process(segment('server', 5001, 1107, TCP_ACK));
    assert.equal(table.stats.ackedUnseenBytes, 100);
    assert.equal(table.stats.ackedBytes, 1 + 1 + 106);
  });

  it('handles sequence number wraparound', () => {
    const table = makeTable();
    const isn = 0xfffffff0;
    handshake(table, isn, 7000);
    // Client data starts at 0xfffffff1: 10 bytes seen up to 0xfffffffb, then 20 bytes missed
    // that run from 0xfffffffb across the wrap to 0x0000000f.
    table.process(segment('client', 0xfffffff1, 7001, PA, '0123456789'));
    table.process(segment('server', 7001, 0x0000000f, TCP_ACK));
    assert.equal(table.stats.ackedUnseenBytes, 20);
    assert.equal(table.stats.ackedBytes, 1 + 1 + 30);
  });

  it('counts a FIN as one byte, seen or not', () => {
    const table = makeTable();
    handshake(table, 1000, 5000);
    table.process(segment('client', 1001, 5001, PA | TCP_FIN, 'QUIT\r\n')); // data 1001..1006, FIN 1007
    table.process(segment('server', 5001, 1008, TCP_ACK));
    assert.equal(table.stats.ackedUnseenBytes, 0);
    assert.equal(table.stats.ackedBytes, 1 + 1 + 7);
    // The server's FIN at 5001 is not captured; the client's ACK of it is.
    table.process(segment('client', 1008, 5002, TCP_ACK));
    assert.equal(table.stats.ackedUnseenBytes, 1);
  });

  it('starts mid-stream flows at their first ACK', () => {
    const table = makeTable();
    // No handshake: the first segment is server data acknowledging client bytes up to 3000.
    table.process(segment('server', 9000, 3000, PA, '354 go ahead\r\n')); // 14 bytes
    assert.equal(table.stats.ackedBytes, 0);
    table.process(segment('client', 3000, 9014, PA, 'Subject: x\r\n')); // 12 bytes
    table.process(segment('server', 9014, 3012, TCP_ACK));
    // Each direction's first ACK is its base: 3000 for the client's bytes, 9014 for the
    // server's, so only the client's 12 bytes count.
    assert.equal(table.stats.ackedBytes, 12);
    assert.equal(table.stats.ackedUnseenBytes, 0);
    // 50 client bytes at 3012 are missed.
    table.process(segment('server', 9014, 3062, TCP_ACK));
    assert.equal(table.stats.ackedUnseenBytes, 50);
  });

  it('starts at the first ACK after a missed SYN-ACK', () => {
    const table = makeTable();
    table.process(segment('client', 1000, 0, TCP_SYN));
    // The SYN-ACK (server ISN 5000) is missed; the client's ACK of it is seen.
    table.process(segment('client', 1001, 5001, TCP_ACK));
    table.process(segment('server', 5001, 1001, PA, '220 mx\r\n'));
    table.process(segment('client', 1001, 5009, TCP_ACK));
    // The server's first ACK is the base of the client direction (its SYN was seen: 1 byte).
    // The server direction starts counting at the client's first ACK, 5001: 8 bytes seen.
    assert.equal(table.stats.ackedBytes, 1 + 8);
    assert.equal(table.stats.ackedUnseenBytes, 0);
  });

  it('ignores an ACK jump beyond 2^30', () => {
    const table = makeTable();
    handshake(table, 1000, 5000);
    table.process(segment('server', 5001, 1001 + 2 ** 30 + 5, TCP_ACK));
    assert.equal(table.stats.ackedBytes, 2);
    assert.equal(table.stats.ackedUnseenBytes, 0);
  });
});
