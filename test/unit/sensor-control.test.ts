import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SensorNotRunningError,
  SocketInUseError,
  defaultSocketPath,
  requestStatus,
  startControlServer,
} from '../../src/sensor/control.js';
import { sampleStats } from './sensor-fixtures.js';

/** Sends raw text to the socket and returns everything the server writes back before closing. */
function exchange(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path, () => socket.write(text));
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('end', () => resolve(reply));
    socket.on('close', () => resolve(reply));
    socket.on('error', reject);
  });
}

describe('control socket', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mailtap-control-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('status request returns the stats', async () => {
    let calls = 0;
    const server = await startControlServer(join(dir, 'a.sock'), () => {
      calls++;
      return sampleStats({ packets: 1000 + calls });
    });
    try {
      const first = await requestStatus(server.path);
      const second = await requestStatus(server.path);
      assert.deepEqual(first, sampleStats({ packets: 1001 }));
      assert.equal(second.packets, 1002);
    } finally {
      await server.close();
    }
  });

  it('socket file has mode 0660', async () => {
    const server = await startControlServer(join(dir, 'mode.sock'), () => sampleStats());
    try {
      assert.equal(statSync(server.path).mode & 0o777, 0o660);
      assert.ok(statSync(server.path).isSocket());
    } finally {
      await server.close();
    }
  });

  it('close removes the socket file', async () => {
    const server = await startControlServer(join(dir, 'close.sock'), () => sampleStats());
    await server.close();
    assert.equal(existsSync(server.path), false);
  });

  it('reply is one JSON line', async () => {
    const server = await startControlServer(join(dir, 'raw.sock'), () => sampleStats());
    try {
      const reply = await exchange(server.path, 'status\n');
      assert.ok(reply.endsWith('}\n'));
      assert.equal(reply.indexOf('\n'), reply.length - 1);
      assert.deepEqual(JSON.parse(reply), sampleStats());
    } finally {
      await server.close();
    }
  });

  it('unknown request gets an error reply', async () => {
    const server = await startControlServer(join(dir, 'bad.sock'), () => sampleStats());
    try {
      const reply = JSON.parse(await exchange(server.path, 'shutdown\n')) as { error: string };
      assert.equal(reply.error, 'unknown request "shutdown": expected "status"');
    } finally {
      await server.close();
    }
  });

  it('overlong request is disconnected', async () => {
    const server = await startControlServer(join(dir, 'long.sock'), () => sampleStats());
    try {
      const reply = await exchange(server.path, 'x'.repeat(10000));
      assert.equal(reply, '');
      // The server still serves the next client.
      assert.equal((await requestStatus(server.path)).sensor, 'office-1');
    } finally {
      await server.close();
    }
  });

  it('throwing callback gives an error reply', async () => {
    const server = await startControlServer(join(dir, 'throw.sock'), () => {
      throw new Error('not ready');
    });
    try {
      await assert.rejects(requestStatus(server.path), {
        message: `the sensor at ${server.path} replied: reading the sensor's figures failed: not ready`,
      });
    } finally {
      await server.close();
    }
  });

  it('stale socket file is replaced', async () => {
    const path = join(dir, 'stale.sock');
    // A sensor killed with SIGKILL leaves its socket file behind with no process listening on it.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`]);
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok(statSync(path).isSocket());
    const server = await startControlServer(path, () => sampleStats({ sensor: 'new' }));
    try {
      assert.equal((await requestStatus(path)).sensor, 'new');
    } finally {
      await server.close();
    }
  });

  it('live socket is not taken over', async () => {
    const path = join(dir, 'busy.sock');
    const first = await startControlServer(path, () => sampleStats({ sensor: 'first' }));
    try {
      await assert.rejects(startControlServer(path, () => sampleStats()), SocketInUseError);
      assert.equal((await requestStatus(path)).sensor, 'first');
    } finally {
      await first.close();
    }
  });

  it('regular file at the path is kept', async () => {
    const path = join(dir, 'file.sock');
    writeFileSync(path, 'data');
    await assert.rejects(startControlServer(path, () => sampleStats()), {
      message: `${path} exists and is not a socket; remove it or choose another --socket path`,
    });
    assert.equal(statSync(path).size, 4);
  });

  it('missing socket means no sensor', async () => {
    await assert.rejects(requestStatus(join(dir, 'none.sock')), SensorNotRunningError);
  });

  it('missing parent directory is created', async () => {
    const server = await startControlServer(join(dir, 'run', 'mailtap', 'm.sock'), () => sampleStats());
    try {
      assert.equal((await requestStatus(server.path)).transactions, 398);
    } finally {
      await server.close();
    }
  });

  it('default path honours MAILTAP_SOCKET', () => {
    assert.equal(defaultSocketPath({ MAILTAP_SOCKET: '/x/y.sock' }), '/x/y.sock');
  });
});
