import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { EcsEvent } from '../../src/events/ecs.js';
import { Pipeline } from '../../src/pipeline.js';
import { ethernet, ipv4, packet, tcp } from './decode-frames.js';

const SYN = 0x02;
const ACK = 0x10;
const PSH_ACK = 0x18;

/** A frame from the client (10.0.0.1:40000) or the server (10.0.0.2:25) at `seconds`. */
function frame(fromClient: boolean, seq: number, ack: number, flags: number, text: string, seconds: number) {
  const payload = Buffer.from(text, 'latin1');
  const ports = fromClient ? { srcPort: 40000, dstPort: 25 } : { srcPort: 25, dstPort: 40000 };
  const addresses = fromClient ? { src: [10, 0, 0, 1], dst: [10, 0, 0, 2] } : { src: [10, 0, 0, 2], dst: [10, 0, 0, 1] };
  return packet(ethernet(ipv4(tcp({ ...ports, seq, ack, flags, payload }), addresses), 0x0800), 1, { seconds });
}

/** Waits until the pipeline's promise chain has delivered what it holds. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

describe('Pipeline.tick', () => {
  it('reports an idle session without a packet to drive the time', async () => {
    const events: EcsEvent[] = [];
    const pipeline = new Pipeline({ messageWorker: false, flowLimits: { idleTimeout: 30 }, onEvent: (event) => events.push(event) });
    const t0 = 1_700_000_000;
    pipeline.handlePacket(frame(true, 1000, 0, SYN, '', t0));
    pipeline.handlePacket(frame(false, 5000, 1001, SYN | ACK, '', t0));
    pipeline.handlePacket(frame(true, 1001, 5001, ACK, '', t0));
    pipeline.handlePacket(frame(false, 5001, 1001, PSH_ACK, '220 mx ESMTP\r\n', t0));
    pipeline.handlePacket(frame(true, 1001, 5015, PSH_ACK, 'EHLO ws\r\n', t0 + 1));
    pipeline.handlePacket(frame(false, 5015, 1010, PSH_ACK, '250 mx\r\n', t0 + 1));

    // The connection stays open: nothing is reported before the idle timeout.
    pipeline.tick(t0 + 30);
    await settle();
    assert.equal(events.length, 0);
    assert.equal(pipeline.flows.stats.activeFlows, 1);

    // 30 s after its last packet (t0 + 1) the flow times out, and its session is reported.
    pipeline.tick(t0 + 32);
    await settle();
    assert.equal(pipeline.flows.stats.timedOutFlows, 1);
    assert.equal(pipeline.flows.stats.activeFlows, 0);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.event.action, 'smtp-session');
    await pipeline.finish();
    assert.equal(events.length, 1);
  });

  it('ignores a time before the last packet', async () => {
    const events: EcsEvent[] = [];
    const pipeline = new Pipeline({ messageWorker: false, flowLimits: { idleTimeout: 30 }, onEvent: (event) => events.push(event) });
    const t0 = 1_700_000_000;
    pipeline.handlePacket(frame(false, 5001, 1001, PSH_ACK, '220 mx ESMTP\r\n', t0));
    pipeline.tick(t0 - 100);
    await settle();
    assert.equal(pipeline.flows.stats.activeFlows, 1);
    await pipeline.finish();
  });
});
