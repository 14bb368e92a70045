import type { Device } from '../devices/types.js';

/**
 * Names a device for an alert message: its configured label, else its vendor and MAC, else
 * its MAC, each followed by the client IP address in brackets. A device without a MAC of its
 * own is named by its IP address. Every part comes from the config, the OUI registry or the
 * packet headers, never from text the device sent, so the message stays one trustworthy line.
 */
export function deviceName(device: Device, ip: string): string {
  if (device.label !== undefined) return `${oneLine(device.label)} (${ip})`;
  const mac = device.isRouter ? undefined : device.mac;
  if (mac === undefined) return ip;
  if (device.vendor !== undefined) return `${oneLine(device.vendor)} ${mac} (${ip})`;
  return `${mac} (${ip})`;
}

/** Replaces control characters, such as a line break in a quoted YAML label, with spaces. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/** Writes seconds as the config does: "10m", "1h", "2d", or "90s" when no larger unit divides. */
export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
