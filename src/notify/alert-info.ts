import type { EcsEvent } from '../events/ecs.js';

/** The fields of an alert event that notifications use. */
export interface AlertInfo {
  id: string;
  action: string;
  rule: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  /** Severity rank from 1 (low) to 4 (critical). */
  rank: number;
  message: string;
  deviceKey: string;
  deviceLabel?: string;
  ip?: string;
  mac?: string;
  ownerName?: string;
  ownerEmail?: string;
  count: number;
  start?: string;
  end?: string;
  timestamp: string;
  event: EcsEvent;
}

export const SEVERITY_RANK = { low: 1, medium: 2, high: 3, critical: 4 } as const;

interface AlertFields {
  message?: unknown;
  rule?: { id?: unknown };
  source?: { ip?: unknown; mac?: unknown };
  mailtap?: {
    alert?: { severity?: unknown; count?: unknown; owner?: { name?: unknown; email?: unknown } };
    device?: { key?: unknown; label?: unknown };
  };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * Extracts the notification fields of an alert event. Returns undefined for other events and for
 * an alert without a known severity.
 */
export function alertInfo(event: EcsEvent): AlertInfo | undefined {
  if (event.event.kind !== 'alert') return undefined;
  const fields = event as unknown as AlertFields;
  const alert = fields.mailtap?.alert;
  const severity = text(alert?.severity);
  if (severity === undefined || !(severity in SEVERITY_RANK)) return undefined;
  const rank = SEVERITY_RANK[severity as keyof typeof SEVERITY_RANK];
  const info: AlertInfo = {
    id: event.event.id,
    action: event.event.action,
    rule: text(fields.rule?.id) ?? 'unknown',
    severity: severity as AlertInfo['severity'],
    rank,
    message: text(fields.message) ?? '',
    deviceKey: text(fields.mailtap?.device?.key) ?? event.event.id,
    count: typeof alert?.count === 'number' ? alert.count : 1,
    timestamp: event['@timestamp'],
    event,
  };
  const optional: Array<[keyof AlertInfo, string | undefined]> = [
    ['deviceLabel', text(fields.mailtap?.device?.label)],
    ['ip', text(fields.source?.ip)],
    ['mac', text(fields.source?.mac)],
    ['ownerName', text(alert?.owner?.name)],
    ['ownerEmail', text(alert?.owner?.email)],
    ['start', text(event.event.start)],
    ['end', text(event.event.end)],
  ];
  for (const [key, value] of optional) if (value !== undefined) (info as unknown as Record<string, unknown>)[key] = value;
  return info;
}

/** Returns the device as people name it: label, else IP, else key. */
export function deviceName(info: AlertInfo): string {
  return info.deviceLabel ?? info.ip ?? info.deviceKey;
}
