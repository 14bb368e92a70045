/**
 * The places alerts are sent to: webhooks (HTTP POST of the ECS JSON), e-mail to the device's
 * owner through an SMTP relay (nodemailer), and syslog.
 */
import { createTransport, type Transporter } from 'nodemailer';
import type { NotifyConfig, WebhookConfig } from '../config/outputs-schema.js';
import { deviceName, type AlertInfo } from './alert-info.js';
import { SyslogSender, formatSyslog } from './syslog.js';

/** A failure that a retry cannot fix, such as HTTP 400 or SMTP 550. */
export class PermanentError extends Error {}

export interface Target {
  kind: 'webhook' | 'email' | 'syslog';
  /** Name for logs: the URL, relay or collector, without credentials. */
  name: string;
  retries: number;
  minRank: number;
  /** Rule ids that are sent. An empty set sends every rule. */
  rules: ReadonlySet<string>;
  /** Minimum seconds between two notifications of one rule and device, or undefined for no limit. */
  interval?: number;
  /** True when alert-updated events are sent (rate limits still apply). */
  updates: boolean;
  /** Returns false when the alert has no recipient (an e-mail about a device without an owner). */
  hasRecipient?(info: AlertInfo): boolean;
  deliver(info: AlertInfo): Promise<void>;
  close?(): void;
}

const RANK = { low: 1, medium: 2, high: 3, critical: 4 } as const;

/** Builds the webhook target of one `notify.webhooks` entry. */
export function webhookTarget(config: WebhookConfig, version: string): Target {
  const url = new URL(config.url);
  return {
    kind: 'webhook',
    name: `${url.protocol}//${url.host}${url.pathname}`,
    retries: config.retries,
    minRank: RANK[config.min_severity],
    rules: new Set(config.rules),
    interval: config.interval,
    updates: true,
    async deliver(info) {
      const response = await fetch(config.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `mailtap/${version}`, ...config.headers },
        body: JSON.stringify(info.event),
        signal: AbortSignal.timeout(config.timeout * 1000),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return;
      const message = `HTTP ${response.status} from the webhook`;
      // 408 and 429 ask the client to try again later. Other 4xx replies will not change on a retry.
      if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
        throw new PermanentError(message);
      }
      throw new Error(message);
    },
  };
}

/** Builds the e-mail target. The recipient is the device's owner, else the `fallback_to` addresses. */
export function emailTarget(config: NotifyConfig['email'], version: string): Target {
  const name = `smtp://${config.host}:${config.port}`;
  // With a login configured and no TLS from the start, STARTTLS is required, so a relay that
  // does not offer it never receives the password in clear text.
  const login = config.user !== undefined;
  const transporter: Transporter = createTransport({
    host: config.host,
    port: config.port,
    secure: config.secure,
    requireTLS: login && !config.secure,
    ...(login ? { auth: { user: config.user, pass: config.password ?? '' } } : {}),
    connectionTimeout: config.timeout * 1000,
    greetingTimeout: config.timeout * 1000,
    socketTimeout: config.timeout * 1000,
  });
  return {
    kind: 'email',
    name,
    retries: config.retries,
    minRank: RANK[config.min_severity],
    rules: new Set(config.rules),
    interval: config.interval,
    updates: true,
    hasRecipient: (info) => info.ownerEmail !== undefined || config.fallback_to.length > 0,
    async deliver(info) {
      const to = info.ownerEmail !== undefined ? [info.ownerEmail] : config.fallback_to;
      try {
        await transporter.sendMail({
          from: config.from,
          to,
          subject: emailSubject(info),
          text: emailText(info),
          headers: { 'X-Mailtap-Alert-Id': info.id, 'X-Mailtap-Version': version },
        });
      } catch (error) {
        if ((error as { code?: string }).code === 'ETLS') {
          // Retrying would fail the same way until the relay or the config changes.
          throw new PermanentError(
            `STARTTLS failed at ${name} (${(error as Error).message}). The login is sent over TLS only, ` +
              'so use a relay that offers STARTTLS or set secure: true for a TLS port',
          );
        }
        const code = (error as { responseCode?: number }).responseCode;
        if (code !== undefined && code >= 500) throw new PermanentError((error as Error).message);
        throw error;
      }
    },
    close() {
      transporter.close();
    },
  };
}

export function emailSubject(info: AlertInfo): string {
  return `[mailtap] ${info.severity}: ${info.rule} on ${deviceName(info)}`;
}

function emailText(info: AlertInfo): string {
  const lines = [
    info.ownerName !== undefined ? `Hello ${info.ownerName},` : 'Hello,',
    '',
    `mailtap raised a ${info.severity} alert about a device you are responsible for:`,
    '',
    `  ${info.message}`,
    '',
    `Rule:        ${info.rule}`,
    `Device:      ${deviceName(info)}${info.deviceLabel !== undefined && info.ip !== undefined ? ` (${info.ip})` : ''}`,
    ...(info.mac !== undefined ? [`MAC:         ${info.mac}`] : []),
    `First seen:  ${info.start ?? info.timestamp}`,
    `Last seen:   ${info.end ?? info.timestamp}`,
    `Matches:     ${info.count}`,
    `Alert id:    ${info.id}`,
    '',
    'Further updates of this alert within the notification interval are not mailed.',
    'The event feed and the store have every version. The alert as ECS JSON:',
    '',
    JSON.stringify(info.event, null, 2),
    '',
  ];
  return lines.join('\n');
}

/** Builds the syslog target. It has no rate limit, because a SIEM expects every update. */
export function syslogTarget(config: NotifyConfig['syslog'], version: string): Target {
  const sender = new SyslogSender({ host: config.host, port: config.port, protocol: config.protocol });
  return {
    kind: 'syslog',
    name: `syslog+${config.protocol}://${config.host}:${config.port}`,
    retries: config.protocol === 'tcp' ? 2 : 0,
    minRank: RANK[config.min_severity],
    rules: new Set(config.rules),
    updates: config.updates,
    deliver: (info) => sender.send(formatSyslog(info, version)),
    close: () => sender.close(),
  };
}
