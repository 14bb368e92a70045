import { createRequire } from 'node:module';

let registry: Record<string, string> | undefined;

/**
 * Returns the organisation that owns the MAC's OUI in the IEEE registry, or undefined when the
 * OUI is not registered. Addresses with the U/L bit set (randomised phone and laptop MACs) give
 * "locally administered". The registry is the oui-data package, about 5 MB of JSON, loaded on
 * first use.
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
