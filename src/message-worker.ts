/**
 * Worker thread that runs the MIME stage (MessageParser) for the pipeline, so that message
 * parsing and the packet stages use two cores. See MessageWorkerClient in pipeline-messages.ts
 * for the batch format and the flow control.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { MessageParser } from './mail/index.js';
import type { MailLimits, MessageInfo } from './mail/types.js';
import {
  RECORD_DATA,
  RECORD_END_COMPLETE,
  RECORD_HEADER_LENGTH,
  type MessageWorkerData,
  type MessageResult,
} from './pipeline-messages.js';

const port = parentPort;
if (port === null) throw new Error('message-worker.js must run in a worker thread');

const { limits, inFlight } = workerData as MessageWorkerData;
const inFlightBytes = new Int32Array(inFlight);
const parsers = new Map<number, MessageParser>();
let results: MessageResult[] = [];
let sendScheduled = false;

port.on('message', (batch: ArrayBuffer) => {
  const bytes = Buffer.from(batch);
  let pos = 0;
  while (pos + RECORD_HEADER_LENGTH <= bytes.length) {
    const type = bytes[pos] as number;
    const id = bytes.readUInt32LE(pos + 1);
    const length = bytes.readUInt32LE(pos + 5);
    pos += RECORD_HEADER_LENGTH;
    if (type === RECORD_DATA) {
      parserFor(id, limits).write(bytes.subarray(pos, pos + length));
      pos += length;
    } else {
      endMessage(id, type === RECORD_END_COMPLETE);
    }
  }
  Atomics.sub(inFlightBytes, 0, bytes.length);
  Atomics.notify(inFlightBytes, 0);
  // While batches keep coming, this thread never reaches the check phase that runs setImmediate,
  // so the results of earlier batches (resolved in the microtasks after each batch) go out here.
  if (results.length > 0) sendResults();
});

function parserFor(id: number, parserLimits: Partial<MailLimits> | undefined): MessageParser {
  let parser = parsers.get(id);
  if (parser === undefined) {
    parser = new MessageParser(parserLimits);
    parsers.set(id, parser);
  }
  return parser;
}

function endMessage(id: number, complete: boolean): void {
  const parser = parserFor(id, limits);
  parsers.delete(id);
  parser.end(complete);
  void parser.result.then((info: MessageInfo) => {
    results.push({ id, info });
    if (!sendScheduled) {
      sendScheduled = true;
      setImmediate(sendResults);
    }
  });
}

function sendResults(): void {
  sendScheduled = false;
  if (results.length === 0) return;
  const batch = results;
  results = [];
  (port as NonNullable<typeof port>).postMessage(batch);
}
