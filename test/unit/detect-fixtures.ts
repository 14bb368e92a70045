import { configSchema, type Config } from '../../src/config/schema.js';
import type { Device } from '../../src/devices/types.js';
import { Detector } from '../../src/detect/index.js';
import type { Alert, MailObservation, SessionObservation } from '../../src/detect/types.js';

/** 2024-03-04 00:00:00 UTC, a Monday. */
export const DAY0 = 1709510400;
export const HOUR = 3600;
export const DAY = 86400;

export function makeConfig(raw: Record<string, unknown> = {}): Config {
  return configSchema.parse(raw);
}

export function makeDevice(overrides: Partial<Device> = {}): Device {
  const mac = overrides.mac ?? '30:05:5c:00:00:31';
  return {
    key: `mac:${mac}`,
    mac,
    ips: [{ ip: '10.1.2.31', firstSeen: DAY0, lastSeen: DAY0 }],
    ehloNames: [],
    firstSeen: DAY0,
    lastSeen: DAY0,
    counters: { sessions: 0, messages: 0, transactions: 0, recipients: 0, rejectedRecipients: 0, bytes: 0 },
    isRouter: false,
    ...overrides,
  };
}

let nextEvent = 0;

/** Builds a transaction of 10.1.2.31 through the relay 10.1.0.25, with one accepted recipient. */
export function makeMail(overrides: Partial<MailObservation> = {}): MailObservation {
  nextEvent++;
  return {
    ts: DAY0,
    eventId: `flow${nextEvent}-1`,
    device: makeDevice(),
    clientIp: '10.1.2.31',
    serverIp: '10.1.0.25',
    serverPort: 25,
    clientInternal: true,
    serverInternal: true,
    serverIsRelay: true,
    helo: 'printer31.corp.example',
    mailFrom: 'scanner@corp.example',
    recipients: [{ address: 'alice@corp.example', code: 250 }],
    accepted: true,
    tls: false,
    attachments: [],
    ...overrides,
  };
}

/** Builds a session of 10.1.2.31 with the relay 10.1.0.25 and one transaction. */
export function makeSession(overrides: Partial<SessionObservation> = {}): SessionObservation {
  nextEvent++;
  return {
    ts: DAY0,
    eventId: `flow${nextEvent}-0`,
    device: makeDevice(),
    clientIp: '10.1.2.31',
    serverIp: '10.1.0.25',
    serverPort: 25,
    clientInternal: true,
    serverInternal: true,
    serverIsRelay: true,
    helo: 'printer31.corp.example',
    tls: false,
    transactions: 1,
    ...overrides,
  };
}

export interface Emission {
  alert: Alert;
  change: 'opened' | 'updated';
}

/** Builds a detector that collects its emissions in order. */
export function makeDetector(raw: Record<string, unknown> = {}): { detector: Detector; emitted: Emission[] } {
  const emitted: Emission[] = [];
  const detector = new Detector(makeConfig(raw), (alert, change) => emitted.push({ alert, change }));
  return { detector, emitted };
}
