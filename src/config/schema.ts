import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { controlSchema, metricsSchema } from './service.js';
import { captureSchema } from './capture.js';
import { duration, port, size } from './fields.js';
import { parseCidr, parseMac, type Cidr } from './values.js';
import { feedSchema, makeNotifySchema } from './outputs-schema.js';
import { scanSchema } from './scan-schema.js';


const cidr = z.string().transform((text, ctx): Cidr => {
  const parsed = parseCidr(text);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected an IP address or a CIDR network such as 10.0.0.0/8, got "${text}"` });
    return z.NEVER;
  }
  return parsed;
});

const mac = z.string().transform((text, ctx): string => {
  const parsed = parseMac(text);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a MAC address such as 00:1b:78:12:34:56, got "${text}"` });
    return z.NEVER;
  }
  return parsed;
});

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export const DEVICE_TYPES = [
  'printer',
  'scanner',
  'camera',
  'door-access',
  'server',
  'workstation',
  'mail-relay',
  'appliance',
  'other',
] as const;
export const RULE_NAMES = [
  'unauthorized_sender',
  'relay_bypass',
  'volume_spike',
  'new_sender',
  'cleartext_auth',
  'rejected_recipients',
  'risky_attachment',
  'identity_change',
  'virus_found',
  'spam_outbound',
  'spam_rate',
] as const;

const owner = z.strictObject({
  name: z.string().min(1),
  email: z.email().optional(),
  phone: z.string().optional(),
});

const device = z.strictObject({
  label: z.string().min(1),
  mac: mac.optional(),
  ip: z.array(cidr).default([]),
  type: z.enum(DEVICE_TYPES).default('other'),
  owner: owner.optional(),
});

const rule = z.strictObject({
  enabled: z.boolean().default(true),
  severity: z.enum(SEVERITIES).optional(),
});

/** A SHA-256 digest as 64 hex digits, stored in lower case. */
const sha256 = z.string().transform((text, ctx): string => {
  const trimmed = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(trimmed)) {
    ctx.addIssue({ code: 'custom', message: `expected a SHA-256 digest of 64 hex digits, got "${text}"` });
    return z.NEVER;
  }
  return trimmed;
});

/** An allowed sender: a network, a MAC address, or "label:NAME" of a device below. */
export type SenderMatch = { kind: 'network'; cidr: Cidr } | { kind: 'mac'; mac: string } | { kind: 'label'; label: string };

const sender = z.string().transform((text, ctx): SenderMatch => {
  const trimmed = text.trim();
  if (trimmed.startsWith('label:')) return { kind: 'label', label: trimmed.slice(6).trim() };
  const macAddress = parseMac(trimmed);
  if (macAddress !== undefined) return { kind: 'mac', mac: macAddress };
  const network = parseCidr(trimmed);
  if (network !== undefined) return { kind: 'network', cidr: network };
  ctx.addIssue({
    code: 'custom',
    message: `expected a CIDR network, a MAC address or "label:NAME", got "${text}"`,
  });
  return z.NEVER;
});

/**
 * Returns the event store directory of a user without a configured one, after the XDG Base
 * Directory specification: $XDG_STATE_HOME/mailtap, or ~/.local/state/mailtap. The service's
 * configuration (appliance/mailtap.yaml) sets /var/lib/mailtap instead.
 */
export function defaultStorePath(): string {
  const stateHome = process.env.XDG_STATE_HOME;
  // The specification ignores a relative XDG_STATE_HOME.
  const base = stateHome !== undefined && isAbsolute(stateHome) ? stateHome : join(homedir(), '.local', 'state');
  return join(base, 'mailtap');
}

export const configSchema = z
  .strictObject({
    sensor: z.strictObject({ name: z.string().min(1).default('mailtap') }).prefault({}),
    smtp: z
      .strictObject({
        ports: z.array(port).default([25, 587, 2525]),
        implicit_tls_ports: z.array(port).default([465]),
      })
      .prefault({}),
    networks: z
      .strictObject({
        internal: z.array(cidr).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'].map((t) => parseCidr(t) as Cidr)),
        relays: z.array(cidr).default([]),
      })
      .prefault({}),
    senders: z.strictObject({ allowed: z.array(sender).default([]) }).prefault({}),
    devices: z.array(device).default([]),
    thresholds: z
      .strictObject({
        volume_window: duration.default(3600),
        volume_floor_messages: z.number().int().positive().default(50),
        volume_floor_recipients: z.number().int().positive().default(200),
        volume_floor_domains: z.number().int().positive().default(20),
        volume_factor: z.number().positive().default(4),
        rejected_recipients: z.number().int().positive().default(10),
        rejected_window: duration.default(600),
        alert_update_interval: duration.default(300),
        alert_reopen_after: duration.default(86400),
        new_sender_learning: duration.default(86400),
        identity_window: duration.default(86400),
        identity_max_ehlo_names: z.number().int().positive().default(3),
      })
      .prefault({}),
    rules: z.partialRecord(z.enum(RULE_NAMES), rule).default({}),
    store: z
      .strictObject({
        path: z.string().min(1).default(defaultStorePath),
        retention: z
          .strictObject({
            max_age: duration.optional(),
            max_size: size.optional(),
          })
          .prefault({}),
      })
      .prefault({}),
    inventory: z
      .strictObject({
        router_min_ips: z.number().int().min(2).default(4),
      })
      .prefault({}),
    detect: z
      .strictObject({
        blocked_sha256: z.array(sha256).default([]),
        max_devices: z.number().int().positive().default(10000),
        max_alerts: z.number().int().positive().default(10000),
      })
      .prefault({}),
    capture: captureSchema,
    limits: z
      .strictObject({
        max_flows: z.number().int().positive().optional(),
        flow_buffer: size.optional(),
        total_buffer: size.optional(),
        idle_timeout: duration.optional(),
      })
      .prefault({}),
    feed: feedSchema,
    notify: makeNotifySchema(RULE_NAMES),
    scan: scanSchema,
    control: controlSchema,
    metrics: metricsSchema,
  })
  .superRefine((config, ctx) => {
    const labels = new Set<string>();
    config.devices.forEach((entry, index) => {
      if (labels.has(entry.label)) {
        ctx.addIssue({ code: 'custom', path: ['devices', index, 'label'], message: `duplicate device label "${entry.label}"` });
      }
      labels.add(entry.label);
    });
    config.senders.allowed.forEach((match, index) => {
      if (match.kind === 'label' && !labels.has(match.label)) {
        ctx.addIssue({
          code: 'custom',
          path: ['senders', 'allowed', index],
          message: `no device has the label "${match.label}"; add it under devices or fix the name`,
        });
      }
    });
  });

export type Config = z.output<typeof configSchema>;
