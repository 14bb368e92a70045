import { z } from 'zod';
import { duration, size } from './fields.js';

/** Address of clamd: a UNIX socket path, or a TCP host and port. */
export type ClamavAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Parses "/run/clamav/clamd.ctl", "unix:/path", "tcp://host:3310", "host:3310" or "[::1]:3310". */
export function parseClamavAddress(text: string): ClamavAddress | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith('unix:')) return trimmed.length > 5 ? { kind: 'unix', path: trimmed.slice(5) } : undefined;
  if (trimmed.startsWith('/')) return { kind: 'unix', path: trimmed };
  const rest = trimmed.startsWith('tcp://') ? trimmed.slice(6) : trimmed;
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/\s]+)):(\d{1,5})$/.exec(rest);
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { kind: 'tcp', host: (match[1] ?? match[2]) as string, port };
}

const clamavAddress = z.string().transform((text, ctx): ClamavAddress => {
  const parsed = parseClamavAddress(text);
  if (parsed === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a UNIX socket path such as /run/clamav/clamd.ctl or host:port such as 127.0.0.1:3310, got "${text}"`,
    });
    return z.NEVER;
  }
  return parsed;
});

const httpUrl = z.string().transform((text, ctx): string => {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    ctx.addIssue({ code: 'custom', message: `expected an http:// URL such as http://127.0.0.1:11333, got "${text}"` });
    return z.NEVER;
  }
  return url.href.replace(/\/+$/, '');
});



const count = z.number().int().positive();

/**
 * The `scan:` section: virus scanning with clamd and spam rating with rspamd of the messages
 * the sensor reassembles. Scanning is off while neither clamav nor rspamd is set.
 */
export const scanSchema = z
  .strictObject({
    clamav: clamavAddress.optional(),
    rspamd: httpUrl.optional(),
    max_size: size.default(10 * 1024 * 1024),
    max_buffer: size.default(256 * 1024 * 1024),
    queue: count.default(64),
    concurrency: count.default(8),
    timeout: duration.default(10),
    retry_after: duration.default(30),
    spam_score: z.number().default(6),
    spam_rate: z
      .strictObject({
        share: z.number().gt(0).max(1).default(0.2),
        min_messages: count.default(10),
        window: duration.default(3600),
      })
      .prefault({}),
  })
  .prefault({});

export type ScanConfig = z.output<typeof scanSchema>;
