/** StoredOutput: events are stored before they are printed, and the state goes in the same batch. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { StoredOutput } from '../../src/cli/stored-output.js';
import type { EcsEvent } from '../../src/events/ecs.js';
import { EventStore } from '../../src/store/index.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function event(id: string, second: number): EcsEvent {
  return {
    '@timestamp': `2024-01-01T00:00:${String(second).padStart(2, '0')}.000000Z`,
    event: { kind: 'event', category: ['email'], type: ['info'], dataset: 'mailtap.smtp', action: 'smtp-transaction', id },
    source: { ip: '10.0.0.5' },
  };
}

test('prints each event after it is stored, with the state of that moment', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mailtap-output-'));
  dirs.push(dir);
  const store = await EventStore.open(dir);
  let counter = 0;
  const printed: { id: string | undefined; text: string }[] = [];
  const output = new StoredOutput(
    store,
    (object, text) => printed.push({ id: object?.event.id, text }),
    { state: () => [{ key: 'state!test', value: { counter } }], stateIntervalMs: 0 },
  );
  output.add(event('a', 1));
  counter = 1;
  output.add(event('b', 2));
  await new Promise((resolve) => setImmediate(resolve));
  counter = 2;
  output.add(event('c', 3));
  await output.drain();

  assert.deepEqual(printed.map((p) => (JSON.parse(p.text) as EcsEvent).event.sequence), [1, 2, 3]);
  assert.equal(printed[0]?.id, undefined, 'without keepEvents print gets no object');
  assert.deepEqual(await store.getState('test'), { counter: 2 });
  for (const line of printed) {
    const stored = await store.get((JSON.parse(line.text) as EcsEvent).event.id as string);
    assert.equal(JSON.stringify(stored), line.text);
  }
  // drain() saves the state also when no event is waiting.
  counter = 3;
  await output.drain();
  assert.deepEqual(await store.getState('test'), { counter: 3 });
  await store.close();
});

test('keepEvents hands the event object with its sequence to print', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mailtap-output-'));
  dirs.push(dir);
  const store = await EventStore.open(dir);
  const objects: (EcsEvent | undefined)[] = [];
  const output = new StoredOutput(store, (object) => objects.push(object), { keepEvents: true });
  output.add(event('a', 1));
  output.add(event('a', 1));
  await output.drain();
  // The second add is the same event again: the store keeps one and both get its sequence.
  assert.deepEqual(objects.map((o) => o?.event.sequence), [1, 1]);
  await store.close();
});
