import type { Flow } from '../tcp/types.js';
import { parseQueueId } from './replies.js';
import type { BodySink, SmtpReply, SmtpTransaction } from './types.js';

/** A transaction as the session tracks it until it is emitted. */
export interface TxState {
  record: SmtpTransaction;
  sink: BodySink | undefined;
  /** The sink was returned and has not been ended yet. */
  sinkOpen: boolean;
  bodyStarted: boolean;
  /** Bytes of the body were lost to a gap. */
  bodyGap: boolean;
  /** The transaction takes no more commands; it is emitted once no reply is outstanding. */
  closed: boolean;
  /** End set by the client: "reset" after RSET or EHLO, "aborted" after a new MAIL. */
  clientEnd: 'reset' | 'aborted' | undefined;
  /** Reply that decides the outcome: to the end of data, to BDAT LAST, or a rejection of DATA or BDAT. */
  endReply: SmtpReply | undefined;
  /** Commands of this transaction still waiting for a reply. */
  outstanding: number;
  emitted: boolean;
  /** RCPT commands beyond maxRecipients. */
  extraRecipients: number;
}

export function createTransaction(flow: Flow, depth: number, ts: number): TxState {
  return {
    record: {
      flow,
      depth,
      startTs: ts,
      endTs: ts,
      mailParams: {},
      recipients: [],
      bodyBytes: 0,
      bdatChunks: 0,
      bodyComplete: false,
      status: 'incomplete',
      tls: false,
      anomalies: [],
    },
    sink: undefined,
    sinkOpen: false,
    bodyStarted: false,
    bodyGap: false,
    closed: false,
    clientEnd: undefined,
    endReply: undefined,
    outstanding: 0,
    emitted: false,
    extraRecipients: 0,
  };
}

/**
 * Set status, lastReply, queueId and endTs from what was seen. The reply to the end of data
 * (or a rejection of DATA or BDAT) decides first, then a rejected MAIL FROM, then the end the
 * client set. Without any of these the transaction is incomplete.
 */
export function settleTransaction(tx: TxState, ts: number): void {
  const record = tx.record;
  const mailRejected = record.mailReply !== undefined && record.mailReply.code >= 400;
  if (tx.endReply !== undefined) {
    record.status = tx.endReply.code < 400 ? 'completed' : 'rejected';
    record.lastReply = tx.endReply;
    const queueId = parseQueueId(tx.endReply);
    if (queueId !== undefined) record.queueId = queueId;
  } else if (mailRejected) {
    record.status = 'rejected';
  } else if (tx.clientEnd !== undefined) {
    record.status = tx.clientEnd;
  } else {
    record.status = 'incomplete';
  }
  record.endTs = ts;
}
