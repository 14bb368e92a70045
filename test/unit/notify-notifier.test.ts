import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import type { Logger } from '../../src/feed/server.js';
import { Notifier, alertInfo, formatCef, formatSyslog, type Target } from '../../src/notify/index.js';

function alert(rule: string, deviceKey: string, severity: string, action = 'alert-opened', message = 'printer sent 300 messages'): EcsEvent {
  return {
    '@timestamp': '2026-12-04T18:08:40.000000Z',
    event: { kind: 'alert', category: ['email'], type: ['info'], dataset: 'mailtap.alert', action, id: `${rule}-${deviceKey}` },
    message,
    rule: { id: rule, name: rule },
    source: { ip: '10.98.0.31', mac: '30-05-5C-98-00-31' },
    mailtap: {
      alert: { severity, count: 3, owner: { name: 'Facilities', email: 'facilities@corp.example' } },
      device: { key: deviceKey, label: 'printer-floor-2' },
    },
  };
}

function notifyConfig(notify: Record<string, unknown>): Config {
  return configSchema.parse({ notify });
}

/** Starts a webhook receiver that replies with the given statuses in turn, then 204. */
async function receiver(statuses: number[]): Promise<{ server: Server; url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      response.writeHead(statuses.shift() ?? 204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

describe('notify webhooks', () => {
  test('retries 5xx with backoff until success', async () => {
    const hook = await receiver([503, 500]);
    const notifier = new Notifier({ config: notifyConfig({ webhooks: [{ url: hook.url }] }), retryBaseMs: 10 });
    notifier.event(alert('relay_bypass', 'mac:30:05:5c:98:00:31', 'high'));
    await notifier.idle();
    assert.equal(hook.bodies.length, 3);
    assert.equal(notifier.counters.retries, 2);
    assert.equal(notifier.counters.sent, 1);
    assert.equal((JSON.parse(hook.bodies[2] as string) as EcsEvent).event.id, 'relay_bypass-mac:30:05:5c:98:00:31');
    await notifier.close();
    hook.server.close();
  });

  test('400 is not retried', async () => {
    const hook = await receiver([400]);
    const notifier = new Notifier({ config: notifyConfig({ webhooks: [{ url: hook.url }] }), retryBaseMs: 10 });
    notifier.event(alert('relay_bypass', 'mac:30:05:5c:98:00:31', 'high'));
    await notifier.idle();
    assert.equal(hook.bodies.length, 1);
    assert.equal(notifier.counters.failed, 1);
    assert.equal(notifier.counters.retries, 0);
    await notifier.close();
    hook.server.close();
  });

  test('burst of updates gives one POST per rule and device', async () => {
    const hook = await receiver([]);
    const notifier = new Notifier({ config: notifyConfig({ webhooks: [{ url: hook.url }] }) });
    for (let i = 0; i < 1000; i++) {
      notifier.event(alert('volume_spike', 'mac:30:05:5c:98:00:31', 'high', i === 0 ? 'alert-opened' : 'alert-updated'));
      notifier.event(alert('relay_bypass', 'mac:30:05:5c:98:00:31', 'high', i === 0 ? 'alert-opened' : 'alert-updated'));
    }
    await notifier.idle();
    assert.equal(hook.bodies.length, 2);
    assert.equal(notifier.counters.rateLimited, 1998);
    await notifier.close();
    hook.server.close();
  });

  test('severity and rule filters apply', async () => {
    const hook = await receiver([]);
    const config = notifyConfig({ webhooks: [{ url: hook.url, min_severity: 'high', rules: ['relay_bypass'] }] });
    const notifier = new Notifier({ config });
    notifier.event(alert('relay_bypass', 'ip:10.0.0.1', 'medium'));
    notifier.event(alert('volume_spike', 'ip:10.0.0.2', 'critical'));
    notifier.event(alert('relay_bypass', 'ip:10.0.0.3', 'critical'));
    await notifier.idle();
    assert.deepEqual(hook.bodies.map((body) => (JSON.parse(body) as EcsEvent).event.id), ['relay_bypass-ip:10.0.0.3']);
    await notifier.close();
    hook.server.close();
  });
});

describe('notify queue', () => {
  test('full queue drops and never blocks', async () => {
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const delivered: string[] = [];
    const target: Target = {
      kind: 'webhook',
      name: 'blocked',
      retries: 0,
      minRank: 1,
      rules: new Set(),
      updates: true,
      async deliver(info) {
        await blocked;
        delivered.push(info.id);
      },
    };
    const notifier = new Notifier({ config: notifyConfig({ queue_size: 5 }) }, [target]);
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) notifier.event(alert('volume_spike', `ip:10.0.0.${i}`, 'high'));
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(elapsedMs < 50, `event() took ${elapsedMs} ms`);
    assert.equal(notifier.counters.queued, 5);
    assert.equal(notifier.counters.dropped, 95);
    release();
    await notifier.idle();
    assert.equal(delivered.length, 5);
    await notifier.close();
  });

  test('non-alert events are ignored', () => {
    const notifier = new Notifier({ config: notifyConfig({}) });
    notifier.event({ '@timestamp': 'x', event: { kind: 'event', category: [], type: [], dataset: 'mailtap.smtp', action: 'smtp-transaction', id: 'a' } });
    assert.equal(notifier.counters.alerts, 0);
  });
});

describe('notify syslog', () => {
  test('RFC 5424 header and CEF record', () => {
    const info = alertInfo(alert('relay_bypass', 'mac:30:05:5c:98:00:31', 'high'));
    assert.ok(info);
    const line = formatSyslog(info, '0.1.0', 'sensor1', new Date('2026-12-04T18:09:00.000Z'));
    // local0 (16) * 8 + error (3) = 131; version 1; no structured data ("-").
    assert.equal(
      line,
      `<131>1 2026-12-04T18:09:00.000Z sensor1 mailtap ${process.pid} alert-opened - ` +
        'CEF:0|mailtap|mailtap|0.1.0|relay_bypass|printer sent 300 messages|8|' +
        'rt=1796407720000 act=alert-opened cat=relay_bypass externalId=relay_bypass-mac:30:05:5c:98:00:31 ' +
        'src=10.98.0.31 smac=30-05-5C-98-00-31 cnt=3 cs1Label=device cs1=printer-floor-2 cs2Label=owner ' +
        'cs2=facilities@corp.example msg=printer sent 300 messages',
    );
  });

  test('CEF escapes pipes, equals signs and line breaks', () => {
    const info = alertInfo(alert('new_sender', 'ip:10.0.0.9', 'medium', 'alert-opened', 'a|b=c\\d\ne'));
    assert.ok(info);
    const cef = formatCef(info, '1');
    // Header: backslash and pipe escaped; extension: backslash, equals and newline escaped.
    assert.ok(cef.includes('|new_sender|a\\|b=c\\\\d e|5|'), cef);
    assert.ok(cef.endsWith('msg=a|b\\=c\\\\d\\ne'), cef);
  });

  test('UDP collector receives one datagram per alert', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const received = new Promise<string>((resolve) => socket.once('message', (data) => resolve(data.toString('utf8'))));
    const config = notifyConfig({ syslog: { enabled: true, host: '127.0.0.1', port: socket.address().port } });
    const notifier = new Notifier({ config, version: '0.1.0' });
    notifier.event(alert('cleartext_auth', 'mac:00:40:8c:98:00:41', 'critical'));
    const message = await received;
    assert.match(message, /^<130>1 \S+ \S+ mailtap \d+ alert-opened - CEF:0\|mailtap\|mailtap\|0\.1\.0\|cleartext_auth\|/);
    await notifier.close();
    socket.close();
  });

  test('TCP collector gets octet-counted frames', async () => {
    const chunks: Buffer[] = [];
    const server = createTcpServer((socket) => socket.on('data', (chunk: Buffer) => chunks.push(chunk)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    const config = notifyConfig({ syslog: { enabled: true, host: '127.0.0.1', port, protocol: 'tcp' } });
    const notifier = new Notifier({ config });
    notifier.event(alert('relay_bypass', 'ip:10.0.0.1', 'high'));
    notifier.event(alert('relay_bypass', 'ip:10.0.0.2', 'high'));
    await notifier.idle();
    await notifier.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = Buffer.concat(chunks);
    // Each frame is "LENGTH SP MESSAGE" (RFC 6587 octet counting): parse two of them.
    const frames: string[] = [];
    let offset = 0;
    while (offset < text.length) {
      const space = text.indexOf(0x20, offset);
      const length = Number(text.subarray(offset, space).toString());
      frames.push(text.subarray(space + 1, space + 1 + length).toString('utf8'));
      offset = space + 1 + length;
    }
    assert.equal(frames.length, 2);
    assert.match(frames[1] ?? '', /^<131>1 .*externalId=relay_bypass-ip:10.0.0.2 /);
    server.close();
  });
});

/** Starts an SMTP relay on 127.0.0.1 without STARTTLS that records every login and message it receives. */
async function plainRelay(): Promise<{ server: SMTPServer; port: number; logins: string[]; messages: number }> {
  const relay = { logins: [] as string[], messages: 0 };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, callback) {
      relay.logins.push(`${auth.username ?? ''}:${auth.password ?? ''}`);
      callback(null, { user: auth.username });
    },
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        relay.messages++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return Object.assign(relay, { server, port });
}

/** Returns a logger that keeps the messages of error() calls. */
function errorLog(): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  return { logger: { info() {}, warn() {}, error: (_fields: object, message: string) => errors.push(message) }, errors };
}

describe('notify email', () => {
  const password = 'relay-Secret-42';

  test('never sends the login to a relay without STARTTLS', async () => {
    const relay = await plainRelay();
    const log = errorLog();
    const email = { enabled: true, host: '127.0.0.1', port: relay.port, user: 'mailtap', password, timeout: '5s' };
    const notifier = new Notifier({ config: notifyConfig({ email }), logger: log.logger, retryBaseMs: 10 });
    notifier.event(alert('relay_bypass', 'mac:30:05:5c:98:00:31', 'high'));
    notifier.event(alert('relay_bypass', 'mac:30:05:5c:98:00:32', 'high'));
    await notifier.idle();
    assert.deepEqual(relay.logins, []);
    assert.equal(relay.messages, 0);
    assert.equal(notifier.counters.failed, 2);
    // A STARTTLS failure is permanent, so there are no retries. The second, identical failure is
    // counted but not logged.
    assert.equal(notifier.counters.retries, 0);
    assert.equal(log.errors.length, 1);
    assert.match(log.errors[0] as string, /STARTTLS failed at smtp:\/\/127\.0\.0\.1:\d+/);
    assert.ok(!(log.errors[0] as string).includes(password));
    await notifier.close();
    await new Promise<void>((resolve) => relay.server.close(() => resolve()));
  });

  test('sends without a login to a relay without STARTTLS', async () => {
    const relay = await plainRelay();
    const email = { enabled: true, host: '127.0.0.1', port: relay.port, timeout: '5s' };
    const notifier = new Notifier({ config: notifyConfig({ email }), retryBaseMs: 10 });
    notifier.event(alert('relay_bypass', 'mac:30:05:5c:98:00:31', 'high'));
    await notifier.idle();
    assert.equal(relay.messages, 1);
    assert.equal(notifier.counters.sent, 1);
    await notifier.close();
    await new Promise<void>((resolve) => relay.server.close(() => resolve()));
  });
});
