import { Agent, request, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ScanFailure, type RspamdVerdict, type ScanEnvelope } from './types.js';

/** Maximum reply size. A /checkv2 reply is a few KiB, so a larger one is not a reply. */
const MAX_REPLY_BYTES = 1024 * 1024;
/** Maximum symbols kept per message, highest score first. */
export const MAX_SYMBOLS = 64;

/** Extracts the kept fields from a /checkv2 JSON reply, or returns a ScanFailure when it is not one. */
export function parseRspamdReply(text: string): RspamdVerdict | ScanFailure {
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch {
    return new ScanFailure('error', 'rspamd sent a reply that is not JSON');
  }
  if (typeof reply !== 'object' || reply === null) return new ScanFailure('error', 'rspamd sent an unexpected reply');
  const r = reply as Record<string, unknown>;
  if (typeof r.error === 'string') return new ScanFailure('error', `rspamd replied with an error: ${r.error.slice(0, 200)}`);
  if (typeof r.score !== 'number' || typeof r.action !== 'string') {
    return new ScanFailure('error', 'rspamd reply is missing its score or action');
  }
  const symbols: { name: string; score: number }[] = [];
  if (typeof r.symbols === 'object' && r.symbols !== null) {
    for (const [name, value] of Object.entries(r.symbols as Record<string, unknown>)) {
      const score = (value as { score?: unknown } | null)?.score;
      if (typeof score === 'number' && score !== 0) symbols.push({ name, score });
    }
  }
  symbols.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1));
  return {
    score: r.score,
    requiredScore: typeof r.required_score === 'number' ? r.required_score : NaN,
    action: r.action,
    symbols: symbols.slice(0, MAX_SYMBOLS).map((s) => s.name),
  };
}

/**
 * A client of rspamd's /checkv2 endpoint. The envelope goes in rspamd's request headers
 * (From, one Rcpt per recipient, IP, Helo). node:http is used rather than fetch because fetch
 * joins repeated headers into one "a, b" value, and rspamd reads one address per Rcpt header.
 */
export class RspamdClient {
  readonly description: string;
  private readonly url: URL;
  private readonly agent: Agent;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    /** The Hostname header: the sensor's name, as the MTA would give its own. */
    private readonly hostname?: string,
  ) {
    this.url = new URL(url.replace(/\/+$/, '') + '/checkv2');
    this.description = `rspamd at ${url}`;
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new Agent({ keepAlive: true });
  }

  /** Rates one message. Rejects with ScanFailure only. */
  check(message: Buffer, envelope: ScanEnvelope): Promise<RspamdVerdict> {
    const headers: Record<string, string | string[]> = {
      'Content-Length': String(message.length),
      IP: envelope.clientIp,
    };
    if (envelope.mailFrom !== undefined) headers.From = envelope.mailFrom === '' ? '<>' : envelope.mailFrom;
    if (envelope.recipients.length > 0) headers.Rcpt = [...envelope.recipients];
    if (envelope.helo !== undefined) headers.Helo = envelope.helo;
    if (this.hostname !== undefined) headers.Hostname = this.hostname;
    for (const [name, value] of Object.entries(headers)) {
      // Header values come from the wire, and a control character would make the request invalid.
      if (typeof value === 'string') headers[name] = safeHeader(value);
      else headers[name] = value.map(safeHeader);
    }
    const send = this.url.protocol === 'https:' ? httpsRequest : request;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (outcome: RspamdVerdict | ScanFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (outcome instanceof ScanFailure) {
          req.destroy();
          reject(outcome);
        } else {
          resolve(outcome);
        }
      };
      const req = send(this.url, { method: 'POST', headers, agent: this.agent }, (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (data: Buffer) => {
          size += data.length;
          if (size > MAX_REPLY_BYTES) finish(new ScanFailure('error', `${this.description} sent an oversized reply`));
          else parts.push(data);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            finish(new ScanFailure('error', `${this.description} replied with HTTP status ${res.statusCode}`));
            return;
          }
          finish(parseRspamdReply(Buffer.concat(parts).toString('utf8')));
        });
        res.on('error', () => finish(new ScanFailure('unavailable', `${this.description} closed the connection during its reply`)));
      });
      const timer = setTimeout(
        () => finish(new ScanFailure('timeout', `${this.description} did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      req.on('error', (error: NodeJS.ErrnoException) =>
        finish(new ScanFailure('unavailable', `cannot reach ${this.description} (${error.code ?? error.message})`)),
      );
      req.end(message);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Returns a header value whose latin1 text is the value's UTF-8 bytes, because node:http writes
 * header text as latin1. Control characters other than tab become "?".
 */
function safeHeader(value: string): string {
  // eslint-disable-next-line no-control-regex
  return Buffer.from(value, 'utf8').toString('latin1').replace(/[\0-\x08\x0a-\x1f\x7f]/g, '?');
}
