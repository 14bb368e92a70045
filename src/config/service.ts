import { isIP } from 'node:net';
import { z } from 'zod';

/** A TCP listen address: host and port, from "127.0.0.1:9187", "[::1]:9187" or "localhost:9187". */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses "HOST:PORT" with an IPv4 address, a bracketed IPv6 address or a host name; undefined if invalid. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const host = match[1] ?? (match[2] as string);
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  if (match[2] !== undefined && isIP(host) !== 4 && !/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(host)) return undefined;
  return { host, port };
}

const LISTEN_MESSAGE = 'expected HOST:PORT such as 127.0.0.1:9187 or [::1]:9187';

const listenAddress = z.string({ message: LISTEN_MESSAGE }).transform((text, ctx): ListenAddress => {
  const parsed = parseListenAddress(text);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `${LISTEN_MESSAGE}, got "${text}"` });
    return z.NEVER;
  }
  return parsed;
});

/** The control socket that `mailtap status` queries; unset takes the built-in default path. */
export const controlSchema = z.strictObject({ socket: z.string().min(1).optional() }).prefault({});

/** The Prometheus endpoint: off unless listen is set. */
export const metricsSchema = z.strictObject({ listen: listenAddress.optional() }).prefault({});
