import { readFileSync } from 'node:fs';

/** Capabilities that live capture needs, with their bit numbers from linux/capability.h. */
export const CAPTURE_CAPABILITIES = [
  // Opening an AF_PACKET socket.
  { name: 'CAP_NET_RAW', bit: 13 },
  // Promiscuous mode and a kernel buffer beyond net.core.rmem_max.
  { name: 'CAP_NET_ADMIN', bit: 12 },
] as const;

/**
 * Returns the names of the capture capabilities missing from the effective set in the text of
 * /proc/PID/status (its CapEff line, a hexadecimal bit mask). Undefined when the text has no
 * CapEff line, so the caller cannot tell and lets the capture try.
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

/** The message for missing capabilities: which ones, and three ways to grant them. */
export function capabilityMessage(missing: readonly string[]): string {
  return [
    `mailtap: error: live capture needs CAP_NET_RAW and CAP_NET_ADMIN; this process lacks ${missing.join(' and ')}.`,
    'Grant them in one of these ways:',
    '  - run it as root: sudo mailtap live -i IFACE',
    '  - in a systemd unit: AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN',
    '    (and the same in CapabilityBoundingSet=)',
    '  - from a root shell, as another user:',
    '    setpriv --reuid=mailtap --regid=mailtap --init-groups \\',
    '      --inh-caps=+net_raw,+net_admin --ambient-caps=+net_raw,+net_admin mailtap live -i IFACE',
    'Do not use setcap on the node binary: every script node runs would get the capabilities.',
  ].join('\n');
}
