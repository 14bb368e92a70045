/** Value types shared by the sections of the configuration schema. */
import { z } from 'zod';
import { parseDuration, parseSize } from './values.js';

const PORT_MESSAGE = 'expected a port number from 1 to 65535';

/** A TCP or UDP port number, 1 to 65535. */
export const port = z.number({ message: PORT_MESSAGE }).int(PORT_MESSAGE).min(1, PORT_MESSAGE).max(65535, PORT_MESSAGE);

/** Seconds, written as "90s", "15m", "1h", "30d" or "2w", or as a number of seconds. */
export const duration = z.union([z.number().positive(), z.string()]).transform((value, ctx): number => {
  const seconds = typeof value === 'number' ? value : parseDuration(value);
  if (seconds === undefined || seconds <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 90s, 15m, 1h or 30d, got "${value}"` });
    return z.NEVER;
  }
  return seconds;
});

/** Bytes, written as "512MiB", "10GB" or a number of bytes. */
export const size = z.union([z.number().int().positive(), z.string()]).transform((value, ctx): number => {
  const bytes = typeof value === 'number' ? value : parseSize(value);
  if (bytes === undefined || bytes <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 64MiB or 10GB, got "${value}"` });
    return z.NEVER;
  }
  return bytes;
});
