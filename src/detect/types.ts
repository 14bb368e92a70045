import type { RULE_NAMES, SEVERITIES } from '../config/schema.js';
import type { Device, Owner } from '../devices/types.js';
import type { ScanResult } from '../scan/types.js';

export type RuleName = (typeof RULE_NAMES)[number];
export type Severity = (typeof SEVERITIES)[number];

export interface RecipientObservation {
  address: string;
  /** Reply code to RCPT TO; undefined when no reply was seen. */
  code?: number;
}

export interface AttachmentObservation {
  name?: string;
  mimeType: string;
  size: number;
  sha256?: string;
}

/** Fields that transaction and session observations share: the endpoints, EHLO, TLS and AUTH. */
export interface SmtpObservationBase {
  ts: number;
  device: Device;
  clientIp: string;
  serverIp: string;
  serverPort: number;
  clientInternal: boolean;
  serverInternal: boolean;
  /** The server is one of the configured relays. */
  serverIsRelay: boolean;
  helo?: string;
  tls: boolean;
  authMechanism?: string;
  authUser?: string;
}

/** Detector input for one SMTP transaction, with the sending device resolved. */
export interface MailObservation extends SmtpObservationBase {
  /** event.id of the transaction event, kept as evidence. */
  eventId: string;
  mailFrom?: string;
  recipients: RecipientObservation[];
  /** Recipients beyond the SMTP stage's list bound: they count towards the volume, without domains. */
  unlistedRecipients?: number;
  /** The server accepted the message (2xx after the body). */
  accepted: boolean;
  attachments: AttachmentObservation[];
  /**
   * The MIME parser stopped describing parts (nesting past its depth bound, or too many parts),
   * so attachments past that point were not checked.
   */
  partsUnchecked?: boolean;
  /** Verdicts of clamd and rspamd on the message. Undefined when scanning is off or there was no message. */
  scan?: ScanResult;
}

/** Detector input for one SMTP session, also one without a transaction. */
export interface SessionObservation extends SmtpObservationBase {
  /** event.id of the session ("<flow id>-0"). */
  eventId: string;
  authSuccess?: boolean;
  transactions: number;
}

/**
 * One alert, deduplicated per device and rule: later matches update its count, last time and
 * evidence instead of raising a new alert.
 */
export interface Alert {
  /** Stable id: "<rule>-<device key>", so that a consumer replaces the earlier version. */
  id: string;
  rule: RuleName;
  severity: Severity;
  /** One line for people, naming the device and what it did. */
  message: string;
  device: Device;
  /** The device's owner from the config, who must act. */
  owner?: Owner;
  firstSeen: number;
  lastSeen: number;
  /** Matches folded into this alert. */
  count: number;
  /** Rule-specific counts and values (messages per window, baseline, domains, user name...). */
  evidence: Record<string, unknown>;
  /** event.id of the transactions or sessions behind the alert, newest last; bounded. */
  eventIds: string[];
}
