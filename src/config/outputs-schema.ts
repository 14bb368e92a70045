/**
 * Config sections `feed:` (the WebSocket event feed) and `notify:` (webhooks, e-mail to device
 * owners, syslog), included by schema.ts. It takes the rule names as a parameter,
 * because importing schema.ts from here would be circular.
 */
import { z } from 'zod';
import { duration, port, size } from './fields.js';

const SEVERITY_NAMES = ['low', 'medium', 'high', 'critical'] as const;



/** Characters a feed token may contain: they must survive an HTTP header and a subprotocol name. */
export const TOKEN_PATTERN = /^[A-Za-z0-9._~-]+$/;

const token = z
  .string()
  .min(16, 'a feed token must have at least 16 characters')
  .regex(TOKEN_PATTERN, 'a feed token may contain only the characters A-Z a-z 0-9 . _ ~ -');

/** "HOST:PORT", "[IPv6]:PORT" or ":PORT"; port 0 picks a free port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses "127.0.0.1:8025", "[::1]:8025" or ":8025" (all interfaces); undefined if invalid. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const portNumber = Number(match[3]);
  if (portNumber > 65535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port: portNumber };
}

const listen = z.string().transform((text, ctx): ListenAddress => {
  const parsed = parseListenAddress(text);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT such as 127.0.0.1:8025 or [::1]:8025, got "${text}"` });
    return z.NEVER;
  }
  return parsed;
});

/** Builds the filter of the alerts a notification target receives. */
function alertFilter(ruleNames: readonly string[]) {
  const ruleName = z.string().superRefine((name, ctx) => {
    if (!ruleNames.includes(name)) {
      ctx.addIssue({ code: 'custom', message: `unknown rule "${name}": expected one of ${ruleNames.join(', ')}` });
    }
  });
  return {
    /** Alerts below this severity are not sent. */
    min_severity: z.enum(SEVERITY_NAMES).default('medium'),
    /** Rule names to send; empty sends every rule. */
    rules: z.array(ruleName).default([]),
  };
}

export const feedSchema = z
  .strictObject({
    listen: listen.default({ host: '127.0.0.1', port: 8025 }),
    tokens: z.array(token).default([]),
    tls: z
      .strictObject({
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      })
      .prefault({})
      .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), {
        message: 'feed.tls needs both cert and key (PEM files), or neither',
      }),
    max_clients: z.number().int().positive().default(256),
    max_buffered: size.default(1024 * 1024),
    max_payload: size.default(4096),
    heartbeat: duration.default(30),
    stats_interval: duration.default(1),
  })
  .prefault({});

/** Builds the `notify:` section; `ruleNames` are the detection rules that filters may name. */
export function makeNotifySchema(ruleNames: readonly string[]) {
  const webhook = z.strictObject({
    url: z.url({ protocol: /^https?$/, message: 'expected an http:// or https:// URL' }),
    headers: z.record(z.string(), z.string()).default({}),
    ...alertFilter(ruleNames),
    timeout: duration.default(5),
    retries: z.number().int().min(0).default(5),
    /** Per rule and device: at most one POST per this interval; later updates are counted, not sent. */
    interval: duration.default(3600),
  });

  return z
    .strictObject({
      queue_size: z.number().int().positive().default(1000),
      webhooks: z.array(webhook).default([]),
      email: z
        .strictObject({
          enabled: z.boolean().default(false),
          host: z.string().min(1).default('localhost'),
          port: port.default(25),
          secure: z.boolean().default(false),
          user: z.string().optional(),
          password: z.string().optional(),
          // A bare host name is allowed (mailtap@localhost), which z.email() would reject.
          from: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'expected an e-mail address such as mailtap@corp.example').default('mailtap@localhost'),
          /** Recipients for alerts about a device without an owner e-mail; empty sends none. */
          fallback_to: z.array(z.email()).default([]),
          ...alertFilter(ruleNames),
          interval: duration.default(3600),
          timeout: duration.default(10),
          retries: z.number().int().min(0).default(3),
        })
        .prefault({}),
      syslog: z
        .strictObject({
          enabled: z.boolean().default(false),
          host: z.string().min(1).default('127.0.0.1'),
          port: port.default(514),
          protocol: z.enum(['udp', 'tcp']).default('udp'),
          ...alertFilter(ruleNames),
          min_severity: z.enum(SEVERITY_NAMES).default('low'),
          /** Sends alert updates too; false sends only alert-opened. */
          updates: z.boolean().default(true),
        })
        .prefault({}),
    })
    .prefault({});
}

export type FeedConfig = z.output<typeof feedSchema>;
export type NotifyConfig = z.output<ReturnType<typeof makeNotifySchema>>;
export type WebhookConfig = NotifyConfig['webhooks'][number];
