// Fixture shared by the smtp-*.test.ts files: a fake flow, a recorder of SMTP events, and a
// driver that feeds a scripted conversation into SmtpSession.
import assert from 'node:assert/strict';

import { SmtpSession } from '../../src/smtp/index.js';
import type { BodySink, SmtpEvents, SmtpLimits, SmtpSessionInfo, SmtpTransaction } from '../../src/smtp/types.js';
import type { Direction, Flow } from '../../src/tcp/types.js';

export function makeFlow(overrides: Partial<Flow> = {}): Flow {
  return {
    id: 'Ctest',
    client: { ip: '192.0.2.10', port: 40000 },
    server: { ip: '192.0.2.25', port: 25 },
    vlans: [],
    ipVersion: 4,
    startTs: 1000,
    lastTs: 1000,
    midstream: false,
    bytes: [0, 0],
    gapBytes: [0, 0],
    packets: [0, 0],
    ...overrides,
  };
}

export interface RecordedBody {
  chunks: Buffer[];
  ended: boolean;
  complete: boolean | undefined;
  endCalls: number;
}

/** Records every event; body chunks are copied because the session passes views. */
export class Recorder implements SmtpEvents {
  transactions: SmtpTransaction[] = [];
  sessions: SmtpSessionInfo[] = [];
  bodies = new Map<number, RecordedBody>();
  /** Set to false to make openBody skip body parsing. */
  wantBody = true;

  openBody(tx: SmtpTransaction): BodySink | undefined {
    assert.ok(!this.bodies.has(tx.depth), `openBody called twice for depth ${tx.depth}`);
    if (!this.wantBody) return undefined;
    const body: RecordedBody = { chunks: [], ended: false, complete: undefined, endCalls: 0 };
    this.bodies.set(tx.depth, body);
    return {
      write: (chunk) => {
        assert.ok(!body.ended, 'write after end');
        body.chunks.push(Buffer.from(chunk));
      },
      end: (complete) => {
        body.endCalls++;
        body.ended = true;
        body.complete = complete;
      },
    };
  }

  transaction(tx: SmtpTransaction): void {
    const body = this.bodies.get(tx.depth);
    if (body !== undefined) assert.ok(body.ended, `body of depth ${tx.depth} not ended before its transaction`);
    this.transactions.push(tx);
  }

  session(info: SmtpSessionInfo): void {
    this.sessions.push(info);
  }

  bodyText(depth: number): string {
    return this.bodyBytes(depth).toString('latin1');
  }

  bodyBytes(depth: number): Buffer {
    const body = this.bodies.get(depth);
    assert.ok(body !== undefined, `no body for depth ${depth}`);
    return Buffer.concat(body.chunks);
  }

  get session0(): SmtpSessionInfo {
    assert.equal(this.sessions.length, 1, 'exactly one session event');
    return this.sessions[0] as SmtpSessionInfo;
  }

  tx(index: number): SmtpTransaction {
    const tx = this.transactions[index];
    assert.ok(tx !== undefined, `no transaction ${index}`);
    return tx;
  }
}

export type Step = [Direction, string | Buffer] | ['gap', Direction, number];

export interface RunOptions {
  flow?: Partial<Flow>;
  implicitTls?: boolean;
  limits?: Partial<SmtpLimits>;
  recorder?: Recorder;
  /** Leave the session open (no onClose). */
  keepOpen?: boolean;
}

/** Feed the steps in order, one onData call per step, then close with reason "fin". */
export function run(steps: Step[], options: RunOptions = {}): { recorder: Recorder; session: SmtpSession } {
  const recorder = options.recorder ?? new Recorder();
  const session = new SmtpSession(makeFlow(options.flow), recorder, {
    implicitTls: options.implicitTls,
    limits: options.limits,
  });
  let ts = 1000;
  for (const step of steps) {
    ts += 1;
    if (step[0] === 'gap') session.onGap(step[1], step[2], ts);
    else session.onData(step[0], typeof step[1] === 'string' ? Buffer.from(step[1], 'latin1') : step[1], ts);
  }
  if (options.keepOpen !== true) session.onClose('fin', ts + 1);
  return { recorder, session };
}

/** Client line(s) with CRLF endings. */
export function c(...lines: string[]): [0, string] {
  return [0, lines.map((line) => line + '\r\n').join('')];
}

/** Server line(s) with CRLF endings. */
export function s(...lines: string[]): [1, string] {
  return [1, lines.map((line) => line + '\r\n').join('')];
}

export function anomalyNames(list: { name: string }[]): string[] {
  return list.map((anomaly) => anomaly.name);
}
