import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { TcpSegment } from '../../src/decode/types.js';
import { FlowIndex, type IndexedFlow } from '../../src/tcp/flow-index.js';
import type { Endpoint, Flow } from '../../src/tcp/types.js';

class Node implements IndexedFlow<Node> {
  hash = 0;
  nextInBucket: Node | null = null;
  constructor(readonly flow: Flow) {}
}

function makeFlow(client: Endpoint, server: Endpoint, vlans: number[] = []): Flow {
  return {
    id: '',
    client,
    server,
    vlans,
    ipVersion: 4,
    startTs: 0,
    lastTs: 0,
    midstream: false,
    bytes: [0, 0],
    gapBytes: [0, 0],
    packets: [0, 0],
  };
}

function segment(source: Endpoint, destination: Endpoint, vlans: number[] = []): TcpSegment {
  return {
    ts: 0,
    vlans,
    ipVersion: 4,
    srcIp: source.ip,
    dstIp: destination.ip,
    srcPort: source.port,
    dstPort: destination.port,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    payload: Buffer.alloc(0),
    payloadLength: 0,
  };
}

const SERVER = { ip: '198.51.100.25', port: 25 };

describe('FlowIndex', () => {
  it('finds a flow from both directions', () => {
    const index = new FlowIndex<Node>();
    const client = { ip: '192.0.2.10', port: 40000 };
    const node = new Node(makeFlow(client, SERVER));
    index.add(node);

    assert.equal(index.get(segment(client, SERVER)), node);
    assert.equal(index.direction, 0);
    assert.equal(index.get(segment(SERVER, client)), node);
    assert.equal(index.direction, 1);
    assert.equal(index.bucketCount, 1);
  });

  it('tells apart ports, addresses and VLANs', () => {
    const index = new FlowIndex<Node>();
    const client = { ip: '192.0.2.10', port: 40000 };
    index.add(new Node(makeFlow(client, SERVER, [10])));

    assert.equal(index.get(segment(client, SERVER)), undefined);
    assert.equal(index.get(segment(client, SERVER, [20])), undefined);
    assert.equal(index.get(segment({ ip: '192.0.2.10', port: 40001 }, SERVER, [10])), undefined);
    assert.equal(index.get(segment({ ip: '192.0.2.11', port: 40000 }, SERVER, [10])), undefined);
    // Source and destination ports swapped without the addresses: another flow.
    assert.equal(index.get(segment({ ip: '192.0.2.10', port: 25 }, { ip: SERVER.ip, port: 40000 }, [10])), undefined);
    assert.ok(index.get(segment(SERVER, client, [10])));
  });

  it('finds and removes many flows', () => {
    const index = new FlowIndex<Node>();
    const nodes: Node[] = [];
    for (let i = 0; i < 5000; i++) {
      const client = { ip: `10.0.${i >> 8}.${i & 255}`, port: 1024 + (i % 7) };
      const node = new Node(makeFlow(client, SERVER));
      nodes.push(node);
      index.add(node);
    }
    for (let i = 0; i < nodes.length; i += 2) index.remove(nodes[i] as Node);

    for (let i = 0; i < nodes.length; i++) {
      const flow = (nodes[i] as Node).flow;
      const expected = i % 2 === 0 ? undefined : nodes[i];
      assert.equal(index.get(segment(flow.client, flow.server)), expected, `flow ${i} client side`);
      assert.equal(index.get(segment(flow.server, flow.client)), expected, `flow ${i} server side`);
    }
    for (let i = 1; i < nodes.length; i += 2) index.remove(nodes[i] as Node);
    assert.equal(index.bucketCount, 0);
  });

  it('finds a flow whose endpoints are equal', () => {
    const index = new FlowIndex<Node>();
    const node = new Node(makeFlow(SERVER, SERVER));
    index.add(node);
    assert.equal(index.get(segment(SERVER, SERVER)), node);
  });
});
