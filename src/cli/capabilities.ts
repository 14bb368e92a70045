import { readFileSync } from 'node:fs';

/**
 * Capabilities that live capture needs, with their bit numbers from linux/capability.h.
 * CAP_NET_RAW opens the AF_PACKET socket. CAP_NET_ADMIN is not needed: with libpcap 1.10 on
 * Linux 6, a process with CAP_NET_RAW alone opens a capture with promiscuous mode (a packet
 * socket membership) and a 64 MiB buffer (a TPACKET_V3 ring, not bounded by rmem_max).
 */
export const CAPTURE_CAPABILITIES = [{ name: 'CAP_NET_RAW', bit: 13 }] as const;

/**
 * Returns the names of the capture capabilities missing from the effective set in the text of
 * /proc/PID/status (its CapEff line, a hexadecimal bit mask). Returns undefined when the text
 * has no CapEff line, so that the caller cannot tell and lets the capture try.
 */
export function missingCapabilities(statusText: string): string[] | undefined {
  const match = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (!match) return undefined;
  const effective = BigInt(`0x${match[1] as string}`);
  return CAPTURE_CAPABILITIES.filter((cap) => ((effective >> BigInt(cap.bit)) & 1n) === 0n).map((cap) => cap.name);
}

/** Reads /proc/self/status and returns the missing capture capabilities; undefined off Linux. */
export function missingCaptureCapabilities(): string[] | undefined {
  try {
    return missingCapabilities(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Formats the error for missing capabilities: which ones, and three ways to grant them. */
export function capabilityMessage(missing: readonly string[]): string {
  return [
    `mailtap: error: live capture needs CAP_NET_RAW; this process lacks ${missing.join(' and ')}.`,
    'Grant it in one of these ways:',
    '  - run mailtap as root: sudo mailtap live -i IFACE',
    '  - in a systemd unit: AmbientCapabilities=CAP_NET_RAW',
    '    (and CAP_NET_RAW in CapabilityBoundingSet= when the unit sets one)',
    '  - from a root shell, as another user:',
    '    setpriv --reuid=mailtap --regid=mailtap --init-groups \\',
    '      --inh-caps=+net_raw --ambient-caps=+net_raw mailtap live -i IFACE',
    'Do not use setcap on the node binary: every script that node runs would get the capability.',
  ].join('\n');
}
