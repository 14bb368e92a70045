import { createRequire } from 'node:module';

let registry: Record<string, string> | undefined;

/**
 * Returns the organisation that owns the MAC's OUI in the IEEE registry (the oui-data package,
 * loaded on first use: about 5 MB of JSON), "locally administered" for addresses with the U/L
 * bit set (randomised phone and laptop MACs), or undefined when the OUI is not registered.
 */
export function vendorOf(mac: string): string | undefined {
  const first = parseInt(mac.slice(0, 2), 16);
  if (Number.isNaN(first)) return undefined;
  if ((first & 0x02) !== 0) return 'locally administered';
  if (registry === undefined) {
    const require = createRequire(import.meta.url);
    registry = require('oui-data') as Record<string, string>;
  }
  const entry = registry[mac.slice(0, 8).replace(/:/g, '').toUpperCase()];
  // Each entry is the organisation's name, then its postal address, one line each.
  return entry === undefined ? undefined : entry.split('\n', 1)[0];
}
