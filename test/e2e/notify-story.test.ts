/**
 * Notifications for captures/story.pcap with captures/story.yaml: a real webhook receiver and a
 * real SMTP server (smtp-server) on 127.0.0.1 get the printer's alerts. captures/README.md lists
 * them: relay_bypass, volume_spike and rejected_recipients for printer-floor-2, whose owner in
 * story.yaml is facilities@corp.example. Updates of an alert within the rate limit's
 * interval must not give another notification.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { parse } from 'yaml';
import { Analyzer } from '../../src/analyze.js';
import { readCapture } from '../../src/capture/index.js';
import { parseConfig } from '../../src/config/load.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { Notifier } from '../../src/notify/index.js';
import { Pipeline } from '../../src/pipeline.js';
import { REPO } from './cli.js';

const STORY = join(REPO, 'captures', 'story.pcap');
const CONFIG = join(REPO, 'captures', 'story.yaml');
const PRINTER_RULES = ['rejected_recipients', 'relay_bypass', 'volume_spike'];

interface Mail {
  from: string;
  to: string[];
  data: string;
}

describe('story alerts notify the printer owner', () => {
  const mails: Mail[] = [];
  const posts: EcsEvent[] = [];
  let smtp: SMTPServer;
  let web: Server;
  let notifier: Notifier;
  let alertEvents = 0;

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          mails.push({
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            data: Buffer.concat(chunks).toString('utf8'),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    web = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as EcsEvent);
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', () => resolve()));

    // The test's own copy of story.yaml, with the notification settings added.
    const raw = parse(readFileSync(CONFIG, 'utf8')) as Record<string, unknown>;
    raw.notify = {
      webhooks: [{ url: `http://127.0.0.1:${(web.address() as AddressInfo).port}/alerts`, min_severity: 'medium' }],
      email: {
        enabled: true,
        host: '127.0.0.1',
        port: (smtp.server.address() as AddressInfo).port,
        from: 'mailtap@corp.example',
        min_severity: 'medium',
      },
    };
    const config = parseConfig(JSON.stringify(raw), 'story-notify.yaml');
    notifier = new Notifier({ config, version: 'test' });
    const analyzer = new Analyzer(config);
    const pipeline = new Pipeline({
      smtpPorts: config.smtp.ports,
      implicitTlsPorts: config.smtp.implicit_tls_ports,
      analyzer,
      messageWorker: false,
      onEvent: (event) => {
        if (event.event.kind === 'alert') alertEvents++;
        notifier.event(event);
      },
    });
    await readCapture(STORY, pipeline.handlePacket);
    await pipeline.finish();
    await notifier.idle();
  });

  after(async () => {
    await notifier.close();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    await new Promise<void>((resolve) => web.close(() => resolve()));
  });

  test('alert updates are rate limited', () => {
    // Eight alerts (captures/README.md), some sent again as alert-updated at the end of the file.
    assert.ok(alertEvents > 8, `${alertEvents} alert events`);
    assert.ok(notifier.counters.rateLimited > 0);
  });

  test('owner gets one e-mail per printer rule', () => {
    const printerMails = mails.filter((mail) => mail.data.includes('printer-floor-2'));
    const subjects = printerMails.map((mail) => /^Subject: (.*)$/m.exec(mail.data)?.[1]).sort();
    assert.deepEqual(subjects, PRINTER_RULES.map((rule) => `[mailtap] ${rule === 'rejected_recipients' ? 'medium' : 'high'}: ${rule} on printer-floor-2`).sort());
    for (const mail of printerMails) {
      assert.deepEqual(mail.to, ['facilities@corp.example']);
      assert.equal(mail.from, 'mailtap@corp.example');
    }
  });

  test('camera owner gets the cleartext_auth e-mail', () => {
    const camera = mails.filter((mail) => mail.to.includes('security@corp.example'));
    assert.equal(camera.length, 1);
    assert.match(camera[0]?.data ?? '', /cleartext_auth on camera-loading-dock/);
  });

  test('laptop without owner gets no e-mail', () => {
    // The laptop is not in the device list, so it has no owner, and fallback_to is empty.
    assert.equal(mails.length, 4);
    assert.ok(notifier.counters.noRecipient > 0);
  });

  test('webhook gets one POST per printer rule', () => {
    const printer = posts.filter((event) => (event.mailtap as { device: { label?: string } }).device.label === 'printer-floor-2');
    const rules = printer.map((event) => (event.rule as { id: string }).id).sort();
    assert.deepEqual(rules, PRINTER_RULES);
    for (const event of printer) {
      assert.equal(event.event.kind, 'alert');
      assert.equal((event.mailtap as { alert: { owner: { email: string } } }).alert.owner.email, 'facilities@corp.example');
    }
  });

  test('webhook gets every rule and device once', () => {
    // captures/README.md: eight alerts, each rule and device once.
    const keys = posts.map((event) => event.event.id).sort();
    assert.equal(keys.length, 8);
    assert.equal(new Set(keys).size, 8);
    assert.equal(notifier.counters.failed, 0);
  });
});
