import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { readCapture } from '../../src/capture/index.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { Pipeline } from '../../src/pipeline.js';

const CAPTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'captures');
// Suricata's smtp-attachment-md5 test: one message with the EICAR test file as an attachment.
const EICAR_CAPTURE = resolve(CAPTURES, 'suricata', 'smtp-attachment-md5.pcap');
// Several transactions with MIME bodies (Suricata's MIME decoder tests).
const MIME_CAPTURES = [
  'mime-dec-parse-full-msg-test01.pcap',
  'mime-dec-parse-full-msg-test02.pcap',
  'mime-dec-parse-long-filename02.pcap',
  'smtp-bdat-multichunk-inspection.pcap',
].map((name) => resolve(CAPTURES, 'suricata', name));

async function readEvents(files: string[], messageWorker: boolean): Promise<EcsEvent[]> {
  const events: EcsEvent[] = [];
  const pipeline = new Pipeline({ messageWorker, onEvent: (event) => events.push(event) });
  for (const file of files) await readCapture(file, pipeline.handlePacket);
  await pipeline.finish();
  return events;
}

test('worker parses the EICAR attachment', async () => {
  const events = await readEvents([EICAR_CAPTURE], true);
  assert.equal(events.length, 1);
  const email = events[0]?.email as { subject?: string; attachments?: { file: { hash: { md5: string } } }[] };
  // Values from Suricata's expected output for this capture.
  assert.equal(email.subject, 'This is a test email');
  assert.equal(email.attachments?.[0]?.file.hash.md5, '44d88612fea8a8f36de82e1278abb02f');
  const mailtap = events[0]?.mailtap as { message: { size: number; sha256: string } };
  assert.equal(mailtap.message.size, 630);
  assert.equal(mailtap.message.sha256, '073c2531e2cc1fe2da968a8c3ffe4ef5859f461bbb1f6d33e51591e3acb82edf');
});

test('worker and in-thread records match', async () => {
  const files = [EICAR_CAPTURE, ...MIME_CAPTURES];
  const inThread = await readEvents(files, false);
  const inWorker = await readEvents(files, true);
  assert.ok(inThread.length >= files.length);
  assert.equal(JSON.stringify(inWorker), JSON.stringify(inThread));
});
