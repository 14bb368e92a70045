/**
 * The saved form of the Analyzer's state (device inventory and detector), and its check on
 * load. The store keeps it under `state!analyzer`, and a state that fails the check is ignored.
 */
import { z } from 'zod';
import { RULE_NAMES, SEVERITIES } from './config/schema.js';
import type { DetectorState } from './detect/index.js';
import type { InventoryState } from './devices/inventory.js';

/** Version of the saved form, raised whenever the form changes. A state of another version is ignored on load. */
export const ANALYZER_STATE_VERSION = 1;

export interface AnalyzerState {
  version: typeof ANALYZER_STATE_VERSION;
  /**
   * Newest capture time (seconds) of a transaction or session the state has counted. Input
   * at or before it is taken as counted already: see Analyzer.restore.
   */
  newestTs: number;
  inventory: InventoryState;
  detector: DetectorState;
}

const num = z.number().finite();
const counts = z.object({ messages: num, recipients: num, domains: num });
const owner = z.object({ name: z.string(), email: z.string().optional(), phone: z.string().optional() });

const device = z.object({
  key: z.string().regex(/^(mac|ip):/),
  mac: z.string().optional(),
  vendor: z.string().optional(),
  ips: z.array(z.object({ ip: z.string(), firstSeen: num, lastSeen: num })),
  label: z.string().optional(),
  type: z.string().optional(),
  owner: owner.optional(),
  dhcpHostname: z.string().optional(),
  dhcpVendorClass: z.string().optional(),
  ehloNames: z.array(z.string()),
  firstSeen: num,
  lastSeen: num,
  firstMailSeen: num.optional(),
  counters: z.object({
    sessions: num,
    messages: num,
    transactions: num,
    recipients: num,
    rejectedRecipients: num,
    bytes: num,
  }),
  isRouter: z.boolean(),
});

const volume = z.object({
  windowLength: num,
  window: z.number().int(),
  counts,
  alerted: z.boolean(),
  slots: z.string(),
  slotDays: z.array(z.number().int()),
  domains: z.array(z.number().int()),
});

const alert = z.object({
  id: z.string(),
  rule: z.enum(RULE_NAMES),
  severity: z.enum(SEVERITIES),
  message: z.string(),
  device,
  owner: owner.optional(),
  firstSeen: num,
  lastSeen: num,
  count: num,
  evidence: z.record(z.string(), z.unknown()),
  eventIds: z.array(z.string()),
});

const analyzerState = z.object({
  version: z.literal(ANALYZER_STATE_VERSION),
  newestTs: num,
  inventory: z.object({
    devices: z.array(device),
    routerMacs: z.array(z.string()),
    macClientIps: z.array(z.tuple([z.string(), z.array(z.string())])),
  }),
  detector: z.object({
    firstTs: num.optional(),
    devices: z.array(
      z.tuple([z.string(), z.object({ volume: volume.optional(), rejections: z.array(num).optional() })]),
    ),
    identity: z.object({
      addresses: z.array(
        z.tuple([
          z.string(),
          z.object({ mac: z.string().optional(), macSeen: num, helo: z.string().optional(), heloSeen: num }),
        ]),
      ),
      macNames: z.array(z.tuple([z.string(), z.array(z.string())])),
    }),
    alerts: z.array(z.object({ alert, lastEmitted: num, pending: z.boolean() })),
  }),
});

/**
 * Checks saved data against the form of AnalyzerState. Returns the state, or the reason it
 * cannot be used: another version, or a field of the wrong type.
 */
export function parseAnalyzerState(data: unknown): { state: AnalyzerState } | { error: string } {
  const version = (data as { version?: unknown } | null)?.version;
  if (version !== ANALYZER_STATE_VERSION) {
    return { error: `saved state has version ${JSON.stringify(version) ?? 'none'}, this mailtap reads version ${ANALYZER_STATE_VERSION}` };
  }
  const result = analyzerState.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { error: `saved state is damaged: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` };
  }
  const state: AnalyzerState = result.data;
  return { state };
}
