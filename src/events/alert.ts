import type { Alert, Severity } from '../detect/types.js';
import { RULES } from '../detect/rules.js';
import type { Device } from '../devices/types.js';
import { ECS_VERSION, isoTime, type EcsEvent } from './ecs.js';

/**
 * ECS event.severity values per severity. They follow the bands of Elastic's detection rules
 * (low 21, medium 47, high 73, critical 99), so a SIEM can sort and filter without a table.
 */
export const SEVERITY_SCORE: Record<Severity, number> = { low: 21, medium: 47, high: 73, critical: 99 };

/** Builds the device fields that events carry under mailtap.device. */
export function deviceFields(device: Device): Record<string, unknown> {
  const fields: Record<string, unknown> = { key: device.key };
  if (device.label !== undefined) fields.label = device.label;
  if (device.type !== undefined) fields.type = device.type;
  if (device.mac !== undefined) fields.mac = device.mac.toUpperCase().replace(/:/g, '-');
  if (device.vendor !== undefined) fields.vendor = device.vendor;
  fields.ips = device.ips.map((entry) => entry.ip);
  if (device.dhcpHostname !== undefined) fields.dhcp_hostname = device.dhcpHostname;
  if (device.dhcpVendorClass !== undefined) fields.dhcp_vendor_class = device.dhcpVendorClass;
  if (device.ehloNames.length > 0) fields.ehlo_names = device.ehloNames;
  if (device.isRouter) fields.router = true;
  return fields;
}

/** Builds the "mailtap.alert" event for an alert that was opened or updated. */
export function alertEvent(alert: Alert, change: 'opened' | 'updated'): EcsEvent {
  const device = alert.device;
  const lastIp = device.ips.at(-1)?.ip;
  const source: Record<string, unknown> = {};
  if (lastIp !== undefined) source.ip = lastIp;
  if (device.mac !== undefined) source.mac = device.mac.toUpperCase().replace(/:/g, '-');
  const owner = alert.owner;
  return {
    '@timestamp': isoTime(alert.lastSeen),
    event: {
      kind: 'alert',
      category: ['email', 'network'],
      type: ['info'],
      dataset: 'mailtap.alert',
      action: change === 'opened' ? 'alert-opened' : 'alert-updated',
      id: alert.id,
      start: isoTime(alert.firstSeen),
      end: isoTime(alert.lastSeen),
      severity: SEVERITY_SCORE[alert.severity],
    },
    message: alert.message,
    rule: {
      id: alert.rule,
      name: alert.rule,
      description: RULES[alert.rule].description,
      category: 'email',
      ruleset: 'mailtap',
    },
    ...(Object.keys(source).length > 0 ? { source } : {}),
    related: { ip: device.ips.map((entry) => entry.ip) },
    mailtap: {
      alert: {
        severity: alert.severity,
        count: alert.count,
        evidence: alert.evidence,
        event_ids: alert.eventIds,
        ...(owner !== undefined
          ? { owner: { name: owner.name, ...(owner.email ? { email: owner.email } : {}), ...(owner.phone ? { phone: owner.phone } : {}) } }
          : {}),
      },
      device: deviceFields(device),
    },
    ecs: { version: ECS_VERSION },
  };
}
