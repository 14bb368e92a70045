import type { MessageInfo } from '../mail/types.js';
import type { SmtpReply, SmtpSessionInfo, SmtpTransaction } from '../smtp/types.js';
import type { Anomaly, Endpoint, Flow } from '../tcp/types.js';

/**
 * Event documents in Elastic Common Schema (ECS) field names, so a SIEM maps them without work.
 * What ECS has no field for sits under "smtp.*" and "mailtap.*". docs/events.md lists every field.
 */
export type EcsEvent = {
  '@timestamp': string;
  event: {
    kind: 'event' | 'alert';
    category: string[];
    type: string[];
    dataset: string;
    action: string;
    id: string;
    sequence?: number;
    start?: string;
    end?: string;
    duration?: number;
    outcome?: 'success' | 'failure' | 'unknown';
    severity?: number;
  };
  [field: string]: unknown;
};

export const ECS_VERSION = '8.11.0';

/** Formats a capture timestamp in seconds as ISO 8601 with microseconds. */
export function isoTime(ts: number): string {
  const millis = Math.floor(ts * 1000);
  const micros = Math.round((ts * 1e6) % 1000);
  // Events come in capture order, so most share the second of the previous call: its text
  // "2024-01-01T00:00:00." is kept, which saves a Date and its formatting per call.
  const second = Math.floor(millis / 1000);
  if (second !== lastSecond) {
    const iso = new Date(second * 1000).toISOString(); // 2024-01-01T00:00:00.000Z
    // Years past 9999 come out with a sign and six digits; they take the long way below.
    lastSecondText = iso.length === 24 ? iso.slice(0, 20) : undefined;
    lastSecond = second;
  }
  if (lastSecondText === undefined) {
    return new Date(millis).toISOString().slice(0, 23) + String(micros).padStart(3, '0') + 'Z';
  }
  return lastSecondText + THREE_DIGITS[millis - second * 1000] + String(micros).padStart(3, '0') + 'Z';
}

let lastSecond = NaN;
let lastSecondText: string | undefined;
const THREE_DIGITS: string[] = [];
for (let i = 0; i < 1000; i++) THREE_DIGITS.push(String(i).padStart(3, '0'));

/**
 * Formats a reply as "250 text". A multi-line reply shows its last line, as Zeek's smtp.log
 * does: servers put the outcome and the queue id there ("250- 4404 byte chunk" then "250 OK id=X").
 */
function replyText(reply: SmtpReply | undefined): string | undefined {
  if (!reply) return undefined;
  const lastLine = reply.text.slice(reply.text.lastIndexOf('\n') + 1);
  return lastLine.length > 0 ? `${reply.code} ${lastLine}` : String(reply.code);
}

function networkFields(flow: Flow): Record<string, unknown> {
  const network: Record<string, unknown> = {
    transport: 'tcp',
    type: flow.ipVersion === 4 ? 'ipv4' : 'ipv6',
    protocol: 'smtp',
    direction: 'unknown',
  };
  // ECS puts the outer tag in network.vlan and the next one (802.1ad QinQ) in network.inner.vlan.
  if (flow.vlans.length > 0) network.vlan = { id: String(flow.vlans[0]) };
  if (flow.vlans.length > 1) network.inner = { vlan: { id: String(flow.vlans[1]) } };
  return network;
}

/** ECS MAC text by colon form; a capture shows few MACs, and the map is cleared past 1024. */
const ecsMacs = new Map<string, string>();

/** Formats "aa:bb:cc:dd:ee:ff" as ECS wants it: "AA-BB-CC-DD-EE-FF". */
function ecsMac(mac: string): string {
  let text = ecsMacs.get(mac);
  if (text === undefined) {
    text = mac.toUpperCase().replace(/:/g, '-');
    if (ecsMacs.size >= 1024) ecsMacs.clear();
    ecsMacs.set(mac, text);
  }
  return text;
}

/** Returns the ECS source or destination object of an endpoint: ip, port and the MAC when known. */
function endpointFields(endpoint: Endpoint): Record<string, unknown> {
  const fields: Record<string, unknown> = { ip: endpoint.ip, port: endpoint.port };
  if (endpoint.mac) fields.mac = ecsMac(endpoint.mac);
  return fields;
}

function anomalyFields(anomalies: readonly Anomaly[]): Record<string, unknown>[] | undefined {
  if (anomalies.length === 0) return undefined;
  return anomalies.map((a) => {
    const out: Record<string, unknown> = { name: a.name, '@timestamp': isoTime(a.ts) };
    if (a.detail !== undefined) out.detail = a.detail;
    if (a.direction !== undefined) out.direction = a.direction === 0 ? 'client' : 'server';
    return out;
  });
}

/** Parses an RFC 5322 Date header into ISO 8601, or undefined when it is not a date. */
function originationTime(date: string | undefined): string | undefined {
  if (!date) return undefined;
  // Most dates carry no comment, and the regular expression cannot match without a '('.
  const millis = Date.parse(date.includes('(') ? date.replace(/\s*\([^)]*\)\s*$/, '') : date);
  return Number.isFinite(millis) ? new Date(millis).toISOString() : undefined;
}

function emailFields(tx: SmtpTransaction, message: MessageInfo | undefined): Record<string, unknown> {
  const email: Record<string, unknown> = { direction: 'unknown' };
  const accepted = tx.recipients.filter((r) => r.accepted !== false).map((r) => r.address);
  if (message) {
    const h = message.headers;
    if (message.from.length > 0) email.from = { address: message.from.map((a) => a.address) };
    if (message.to.length > 0) email.to = { address: message.to.map((a) => a.address) };
    if (message.cc.length > 0) email.cc = { address: message.cc.map((a) => a.address) };
    if (h.subject !== undefined) email.subject = h.subject;
    if (h.messageId !== undefined) email.message_id = h.messageId;
    if (h.userAgent !== undefined) email.x_mailer = h.userAgent;
    const origination = originationTime(h.date);
    if (origination) email.origination_timestamp = origination;
    const root = message.parts[0];
    if (root) email.content_type = root.contentType;
    if (message.attachments.length > 0) {
      email.attachments = message.attachments.map((part) => {
        const file: Record<string, unknown> = { mime_type: part.contentType, size: part.size };
        if (part.filename !== undefined) file.name = part.filename;
        const dot = part.filename?.lastIndexOf('.') ?? -1;
        if (part.filename && dot > 0) file.extension = part.filename.slice(dot + 1).toLowerCase();
        if (part.sha256) file.hash = { sha256: part.sha256, sha1: part.sha1, md5: part.md5 };
        return { file };
      });
    }
  } else if (accepted.length > 0) {
    // Without a parsed body the envelope still names the recipients.
    email.to = { address: accepted };
  }
  if (tx.mailFrom !== undefined) email.sender = { address: tx.mailFrom };
  return email;
}

/** Size and SHA-256 of the message as sent: the DATA content after dot-unstuffing, or the BDAT chunks. */
export interface BodyDigest {
  size: number;
  sha256: string;
}

/** Header values as Zeek's smtp.log shows them: unfolded and RFC 2047-decoded, one string each. */
function headerFields(message: MessageInfo): Record<string, unknown> {
  const h = message.headers;
  const out: Record<string, unknown> = {};
  if (h.from !== undefined) out.from = h.from;
  if (h.to !== undefined) out.to = h.to;
  if (h.cc !== undefined) out.cc = h.cc;
  if (h.replyTo !== undefined) out.reply_to = h.replyTo;
  if (h.date !== undefined) out.date = h.date;
  if (h.inReplyTo !== undefined) out.in_reply_to = h.inReplyTo;
  out.received = h.received;
  return out;
}

/** Maximum leaf parts listed in an event; part_count gives the full number. */
export const MAX_PARTS_IN_EVENT = 64;

/** Lists the MIME tree's leaves, text parts with their hashes too, as Zeek's files.log does. */
function mimeFields(message: MessageInfo): Record<string, unknown> {
  const leaves = message.parts.filter((part) => !part.contentType.startsWith('multipart/'));
  return {
    part_count: message.parts.length,
    parts: leaves.slice(0, MAX_PARTS_IN_EVENT).map((part) => {
      const fields: Record<string, unknown> = { path: part.path, content_type: part.contentType, size: part.size };
      if (part.filename !== undefined) fields.filename = part.filename;
      if (part.disposition !== undefined) fields.disposition = part.disposition;
      if (part.sha256 !== undefined) {
        fields.sha256 = part.sha256;
        fields.sha1 = part.sha1;
        fields.md5 = part.md5;
      }
      return fields;
    }),
  };
}

/** Builds the "mailtap.smtp" transaction event. */
export function transactionEvent(
  tx: SmtpTransaction,
  message: MessageInfo | undefined,
  body?: BodyDigest,
): EcsEvent {
  const flow = tx.flow;
  const smtp: Record<string, unknown> = {
    trans_depth: tx.depth,
    status: tx.status,
    tls: tx.tls,
  };
  if (tx.helo !== undefined) smtp.helo = tx.helo;
  if (tx.heloCommand !== undefined) smtp.helo_command = tx.heloCommand;
  if (tx.mailFrom !== undefined) smtp.mail_from = tx.mailFrom;
  if (Object.keys(tx.mailParams).length > 0) smtp.mail_params = tx.mailParams;
  if (tx.mailReply) smtp.mail_reply = replyText(tx.mailReply);
  smtp.rcpt_to = tx.recipients.map((r) => r.address);
  if (tx.unlistedRecipients !== undefined) smtp.rcpt_unlisted = tx.unlistedRecipients;
  // RCPT parameters (DSN's NOTIFY and ORCPT) in the order of rcpt_to, {} for a recipient without any.
  if (tx.recipients.some((r) => Object.keys(r.params).length > 0)) {
    smtp.rcpt_params = tx.recipients.map((r) => r.params);
  }
  const rejected = tx.recipients.filter((r) => r.accepted === false);
  if (rejected.length > 0) {
    smtp.rejected_rcpt = rejected.map((r) => ({ address: r.address, reply: replyText(r.reply) }));
  }
  smtp.rcpt_replies = tx.recipients.map((r) => replyText(r.reply) ?? null);
  if (tx.bodyKind) smtp.body = { kind: tx.bodyKind, bytes: tx.bodyBytes, complete: tx.bodyComplete };
  if (tx.bodyKind === 'bdat') (smtp.body as Record<string, unknown>).chunks = tx.bdatChunks;
  if (tx.lastReply) smtp.last_reply = replyText(tx.lastReply);
  if (tx.queueId !== undefined) smtp.queue_id = tx.queueId;
  if (message) smtp.headers = headerFields(message);
  if (tx.authMechanism !== undefined) {
    smtp.auth = { mechanism: tx.authMechanism, ...(tx.authUser !== undefined ? { user: tx.authUser } : {}) };
  }

  let outcome: 'success' | 'failure' | 'unknown' = 'unknown';
  if (tx.status === 'completed') outcome = 'success';
  else if (tx.status === 'rejected') outcome = 'failure';
  const anomalies = anomalyFields(tx.anomalies);
  // The fields are assigned one by one, not spread from temporary objects, in the order the
  // JSON output has them.
  const mailtap: Record<string, unknown> = { flow_id: flow.id, midstream: flow.midstream };
  if (anomalies) mailtap.anomalies = anomalies;
  if (message && message.anomalies.length > 0) mailtap.message_anomalies = message.anomalies;
  if (body) mailtap.message = { size: body.size, sha256: body.sha256 };
  if (message) mailtap.mime = mimeFields(message);
  const start = isoTime(tx.startTs);
  const event: EcsEvent = {
    '@timestamp': start,
    event: {
      kind: 'event',
      category: ['email', 'network'],
      type: ['info', 'protocol'],
      dataset: 'mailtap.smtp',
      action: 'smtp-transaction',
      id: `${flow.id}-${tx.depth}`,
      start,
      end: isoTime(tx.endTs),
      duration: Math.round((tx.endTs - tx.startTs) * 1e6) * 1000,
      outcome,
    },
    source: endpointFields(flow.client),
    destination: endpointFields(flow.server),
    client: { ip: flow.client.ip, port: flow.client.port },
    server: { ip: flow.server.ip, port: flow.server.port },
    network: networkFields(flow),
    email: emailFields(tx, message),
    smtp,
    mailtap,
    ecs: { version: ECS_VERSION },
  };
  return event;
}

/** Builds the "mailtap.smtp" session event, written for sessions without a transaction. */
export function sessionEvent(session: SmtpSessionInfo): EcsEvent {
  const flow = session.flow;
  const smtp: Record<string, unknown> = {
    tls: session.tls,
    transactions: session.transactions,
    commands: session.commands,
    replies: session.replies,
    client_only: session.clientOnly,
    close_reason: session.closeReason,
  };
  if (session.tlsMode) smtp.tls_mode = session.tlsMode;
  if (session.helo !== undefined) smtp.helo = session.helo;
  if (session.heloCommand !== undefined) smtp.helo_command = session.heloCommand;
  if (session.banner) smtp.banner = replyText(session.banner);
  if (session.lastReply) smtp.last_reply = replyText(session.lastReply);
  if (session.extensions.length > 0) smtp.extensions = session.extensions;
  if (session.authMechanism !== undefined) {
    smtp.auth = {
      mechanism: session.authMechanism,
      ...(session.authUser !== undefined ? { user: session.authUser } : {}),
      ...(session.authSuccess !== undefined ? { success: session.authSuccess } : {}),
    };
  }
  const anomalies = anomalyFields(session.anomalies);
  const mailtap: Record<string, unknown> = {
    flow_id: flow.id,
    midstream: flow.midstream,
    bytes: { client: flow.bytes[0], server: flow.bytes[1] },
    gap_bytes: { client: flow.gapBytes[0], server: flow.gapBytes[1] },
  };
  if (anomalies) mailtap.anomalies = anomalies;
  const start = isoTime(session.startTs);
  return {
    '@timestamp': start,
    event: {
      kind: 'event',
      category: ['email', 'network'],
      type: ['info', 'connection'],
      dataset: 'mailtap.smtp',
      action: 'smtp-session',
      id: `${flow.id}-0`,
      start,
      end: isoTime(session.endTs),
      duration: Math.round((session.endTs - session.startTs) * 1e6) * 1000,
      outcome: 'unknown',
    },
    source: endpointFields(flow.client),
    destination: endpointFields(flow.server),
    client: { ip: flow.client.ip, port: flow.client.port },
    server: { ip: flow.server.ip, port: flow.server.port },
    network: networkFields(flow),
    smtp,
    mailtap,
    ecs: { version: ECS_VERSION },
  };
}
