import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { RspamdClient, parseRspamdReply } from '../../src/scan/rspamd.js';
import { ScanFailure } from '../../src/scan/types.js';

/** Shape of a /checkv2 reply as rspamd 3.4 sends it (fields not used by mailtap left out). */
const REPLY = {
  is_skipped: false,
  score: 15.45,
  required_score: 15.0,
  action: 'reject',
  symbols: {
    ARC_NA: { name: 'ARC_NA', score: 0.0, metric_score: 0.0 },
    MISSING_MID: { name: 'MISSING_MID', score: 2.5, metric_score: 2.5 },
    SUBJ_ALL_CAPS: { name: 'SUBJ_ALL_CAPS', score: 1.95, metric_score: 3.0 },
    MIME_GOOD: { name: 'MIME_GOOD', score: -0.1, metric_score: -0.1 },
  },
  messages: {},
};

describe('parseRspamdReply', () => {
  it('keeps score, required score, action and the symbols with a score, highest first', () => {
    assert.deepEqual(parseRspamdReply(JSON.stringify(REPLY)), {
      score: 15.45,
      requiredScore: 15,
      action: 'reject',
      symbols: ['MISSING_MID', 'SUBJ_ALL_CAPS', 'MIME_GOOD'],
    });
  });

  it('turns an error reply or other JSON into a failure', () => {
    const error = parseRspamdReply('{"error":"Message has no content"}');
    assert.ok(error instanceof ScanFailure && error.reason === 'error');
    assert.ok(parseRspamdReply('[]') instanceof ScanFailure);
    assert.ok(parseRspamdReply('<html>') instanceof ScanFailure);
  });
});

describe('RspamdClient', () => {
  const servers: Server[] = [];

  async function serve(handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<string> {
    const server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => handler(req, Buffer.concat(parts), res));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('posts the message to /checkv2 with the envelope in one header per recipient', async () => {
    let seen: { url?: string; raw: string[]; body: Buffer } | undefined;
    const url = await serve((req, body, res) => {
      seen = { url: req.url, raw: req.rawHeaders, body };
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(REPLY));
    });
    const client = new RspamdClient(url, 2000, 'sensor-1');
    const message = Buffer.from('Subject: hi\r\n\r\nbody\r\n');
    const verdict = await client.check(message, {
      mailFrom: 'alice@corp.example',
      recipients: ['carol@partner.example', 'dave@partner.example'],
      clientIp: '10.88.0.21',
      helo: 'ws-alice.corp.example',
    });
    client.close();
    assert.equal(verdict.score, 15.45);
    assert.equal(seen?.url, '/checkv2');
    assert.ok(seen?.body.equals(message));
    const headers: [string, string][] = [];
    for (let i = 0; i < (seen?.raw.length ?? 0); i += 2) headers.push([seen!.raw[i]!, seen!.raw[i + 1]!]);
    assert.deepEqual(
      headers.filter(([name]) => name === 'Rcpt').map(([, value]) => value),
      ['carol@partner.example', 'dave@partner.example'],
    );
    const single = Object.fromEntries(headers.filter(([name]) => ['From', 'IP', 'Helo', 'Hostname'].includes(name)));
    assert.deepEqual(single, { From: 'alice@corp.example', IP: '10.88.0.21', Helo: 'ws-alice.corp.example', Hostname: 'sensor-1' });
  });

  it('fails with reason error on an HTTP error', async () => {
    const url = await serve((_req, _body, res) => {
      res.statusCode = 500;
      res.end('{"error":"internal"}');
    });
    const client = new RspamdClient(url, 2000);
    await assert.rejects(client.check(Buffer.from('x'), { recipients: [], clientIp: '10.0.0.1' }), {
      name: 'ScanFailure',
      reason: 'error',
    });
    client.close();
  });

  it('times out when rspamd does not answer', async () => {
    const url = await serve(() => {});
    const client = new RspamdClient(url, 200);
    await assert.rejects(client.check(Buffer.from('x'), { recipients: [], clientIp: '10.0.0.1' }), {
      name: 'ScanFailure',
      reason: 'timeout',
    });
    client.close();
  });

  it('is unavailable when nothing listens', async () => {
    // Port 9 (discard) on loopback: nothing listens there on a test machine.
    const client = new RspamdClient('http://127.0.0.1:9', 2000);
    await assert.rejects(client.check(Buffer.from('x'), { recipients: [], clientIp: '10.0.0.1' }), {
      name: 'ScanFailure',
      reason: 'unavailable',
    });
    client.close();
  });
});
