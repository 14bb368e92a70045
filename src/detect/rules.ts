import type { Config } from '../config/schema.js';
import type { RuleName, Severity } from './types.js';

export interface RuleInfo {
  /** Cause of the rule's alerts in one or two sentences, for ECS rule.description. */
  description: string;
  defaultSeverity: Severity;
}

/**
 * The detection rules. Each one judges clients inside networks.internal only, except
 * cleartext_auth, which judges every client because the password crosses the wire either way.
 * A relay (networks.relays) as a client is judged by volume_spike, cleartext_auth and
 * identity_change only, because the mail it forwards is judged at the devices that sent it.
 */
export const RULES: Record<RuleName, RuleInfo> = {
  unauthorized_sender: {
    description:
      'A device that is not listed in senders.allowed (by network, MAC or device label) sent a MAIL FROM. ' +
      'Relays in networks.relays are always allowed. The rule is inactive while senders.allowed is empty, ' +
      'so a site must list its senders to use it.',
    defaultSeverity: 'high',
  },
  relay_bypass: {
    description:
      'An internal device spoke SMTP (EHLO/HELO, TLS, AUTH or a transaction) straight to an external server ' +
      'instead of one of the relays. Relays themselves are exempt. The rule is inactive while networks.relays ' +
      'is empty, because then direct delivery is the site\'s design.',
    defaultSeverity: 'high',
  },
  volume_spike: {
    description:
      'A device sent more messages, recipients or recipient domains within one volume_window than ' +
      'max(volume_factor x its baseline, the volume_floor_* value). The baseline is the maximum count of ' +
      'the same UTC hour and the hours either side over the previous 7 days.',
    defaultSeverity: 'high',
  },
  new_sender: {
    description:
      'A device sent its first MAIL FROM after the new_sender_learning period that follows the first ' +
      'observation. Relays are exempt.',
    defaultSeverity: 'medium',
  },
  cleartext_auth: {
    description:
      'A client authenticated without TLS with a mechanism that sends a reusable secret in reversible form ' +
      '(PLAIN, LOGIN, or the bearer tokens of XOAUTH2 and OAUTHBEARER). CRAM-MD5, DIGEST-MD5 and SCRAM do not match.',
    defaultSeverity: 'medium',
  },
  rejected_recipients: {
    description:
      'A device received rejected_recipients or more 5xx replies to RCPT TO within rejected_window, ' +
      'as when it sends to guessed or harvested addresses. 4xx replies do not count.',
    defaultSeverity: 'medium',
  },
  risky_attachment: {
    description:
      'A device sent an executable, script, shortcut or disk image, a macro-enabled Office document, a ' +
      'file with a hidden double extension (invoice.pdf.exe), or a file whose SHA-256 is in ' +
      'detect.blocked_sha256. Plain archives (.zip, .rar, .7z) do not match, because the sensor cannot see ' +
      'inside them and everyday mail carries them.',
    defaultSeverity: 'high',
  },
  identity_change: {
    description:
      'An IP address changed its MAC or its EHLO name within identity_window of the previous one, or one ' +
      'MAC used more than identity_max_ehlo_names distinct EHLO names: a device replaced or impersonated.',
    defaultSeverity: 'medium',
  },
  virus_found: {
    description:
      'clamd found a signature in a message a device sent (scan.clamav). The evidence names the signatures.',
    defaultSeverity: 'critical',
  },
  spam_outbound: {
    description:
      'rspamd rated a message a device sent at scan.spam_score or more, or chose the action reject ' +
      '(scan.rspamd): the device sends spam, as a compromised host or a hijacked account does.',
    defaultSeverity: 'high',
  },
  spam_rate: {
    description:
      'Of the messages rspamd rated for one device within scan.spam_rate.window, at least ' +
      'scan.spam_rate.min_messages were rated and a share of scan.spam_rate.share or more was spam ' +
      '(by the spam_outbound measure).',
    defaultSeverity: 'high',
  },
};

/** The enabled flag and severity of every rule, with the config's overrides applied. */
export interface RuleSettings {
  enabled: Record<RuleName, boolean>;
  severity: Record<RuleName, Severity>;
}

export function ruleSettings(config: Config): RuleSettings {
  const enabled = {} as Record<RuleName, boolean>;
  const severity = {} as Record<RuleName, Severity>;
  for (const name of Object.keys(RULES) as RuleName[]) {
    const override = config.rules[name];
    enabled[name] = override?.enabled ?? true;
    severity[name] = override?.severity ?? RULES[name].defaultSeverity;
  }
  return { enabled, severity };
}
