import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseClamavAddress } from '../../src/config/scan-schema.js';
import { ClamavClient, parseClamavReply } from '../../src/scan/clamav.js';
import { ScanFailure } from '../../src/scan/types.js';

describe('parseClamavReply', () => {
  // Reply forms from clamd(8), section COMMANDS, and clamd's replies seen with clamd 1.4.
  it('reads OK as clean', () => {
    assert.deepEqual(parseClamavReply('stream: OK\0'), { signatures: [] });
  });

  it('reads FOUND lines as signatures', () => {
    assert.deepEqual(parseClamavReply('stream: Eicar-Test-Signature FOUND\0'), {
      signatures: ['Eicar-Test-Signature'],
    });
    assert.deepEqual(parseClamavReply('stream: A FOUND\nstream: B FOUND\n'), { signatures: ['A', 'B'] });
  });

  it('turns ERROR into a failure with reason error', () => {
    const reply = parseClamavReply('INSTREAM size limit exceeded. ERROR\0');
    assert.ok(reply instanceof ScanFailure);
    assert.equal(reply.reason, 'error');
  });

  it('turns an empty reply into a failure', () => {
    assert.ok(parseClamavReply('') instanceof ScanFailure);
  });
});

describe('parseClamavAddress', () => {
  it('takes socket paths and host:port', () => {
    assert.deepEqual(parseClamavAddress('/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
    assert.deepEqual(parseClamavAddress('unix:/tmp/c.sock'), { kind: 'unix', path: '/tmp/c.sock' });
    assert.deepEqual(parseClamavAddress('127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
    assert.deepEqual(parseClamavAddress('tcp://clamd.corp.example:3310'), { kind: 'tcp', host: 'clamd.corp.example', port: 3310 });
    assert.deepEqual(parseClamavAddress('[::1]:3310'), { kind: 'tcp', host: '::1', port: 3310 });
    assert.equal(parseClamavAddress('clamd'), undefined);
    assert.equal(parseClamavAddress('host:70000'), undefined);
  });
});

/** Starts a stand-in for clamd that passes everything received so far to `reply`. */
function fakeClamd(path: string, reply: (received: Buffer, socket: Socket) => void): Promise<Server> {
  const server = createServer((socket) => {
    const parts: Buffer[] = [];
    socket.on('data', (data: Buffer) => {
      parts.push(data);
      reply(Buffer.concat(parts), socket);
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

/** Splits an INSTREAM request into its chunks, or returns undefined while the terminator is missing. */
function chunksOf(request: Buffer): Buffer[] | undefined {
  const command = 'zINSTREAM\0';
  if (request.length < command.length) return undefined;
  assert.equal(request.subarray(0, command.length).toString('latin1'), command);
  const chunks: Buffer[] = [];
  let pos = command.length;
  while (pos + 4 <= request.length) {
    const length = request.readUInt32BE(pos);
    if (length === 0) return chunks;
    if (pos + 4 + length > request.length) return undefined;
    chunks.push(request.subarray(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  return undefined;
}

describe('ClamavClient', () => {
  let dir: string;
  const servers: Server[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mt8-clamav-unit-'));
  });

  after(async () => {
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the message in length-prefixed 64 KiB chunks and a zero-length end', async () => {
    const path = join(dir, 'chunks.sock');
    let seen: Buffer[] | undefined;
    servers.push(
      await fakeClamd(path, (received, socket) => {
        seen = chunksOf(received);
        if (seen !== undefined) socket.end('stream: OK\0');
      }),
    );
    const message = Buffer.alloc(150_000, 0x61);
    message.write('From: a@example.com\r\n');
    const verdict = await new ClamavClient({ kind: 'unix', path }, 2000).scan(message);
    assert.deepEqual(verdict, { signatures: [] });
    assert.deepEqual(seen?.map((c) => c.length), [65536, 65536, 150_000 - 131072]);
    assert.ok(Buffer.concat(seen ?? []).equals(message));
  });

  it('reports a found signature', async () => {
    const path = join(dir, 'found.sock');
    servers.push(
      await fakeClamd(path, (received, socket) => {
        if (chunksOf(received) !== undefined) socket.end('stream: Win.Test.EICAR_HDB-1 FOUND\0');
      }),
    );
    assert.deepEqual(await new ClamavClient({ kind: 'unix', path }, 2000).scan(Buffer.from('x')), {
      signatures: ['Win.Test.EICAR_HDB-1'],
    });
  });

  it('keeps the size-limit error even when clamd closes during the upload', async () => {
    const path = join(dir, 'limit.sock');
    servers.push(
      await fakeClamd(path, (_received, socket) => {
        socket.end('INSTREAM size limit exceeded. ERROR\0');
        socket.destroy();
      }),
    );
    await assert.rejects(new ClamavClient({ kind: 'unix', path }, 2000).scan(Buffer.alloc(4 * 1024 * 1024)), {
      name: 'ScanFailure',
      reason: 'error',
    });
  });

  it('times out when clamd never replies', async () => {
    const path = join(dir, 'silent.sock');
    servers.push(await fakeClamd(path, () => {}));
    const started = Date.now();
    await assert.rejects(new ClamavClient({ kind: 'unix', path }, 200).scan(Buffer.from('x')), {
      name: 'ScanFailure',
      reason: 'timeout',
    });
    assert.ok(Date.now() - started < 2000);
  });

  it('is unavailable without a socket', async () => {
    await assert.rejects(new ClamavClient({ kind: 'unix', path: join(dir, 'missing.sock') }, 2000).scan(Buffer.from('x')), {
      name: 'ScanFailure',
      reason: 'unavailable',
    });
  });
});
