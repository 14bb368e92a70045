import { createHash } from 'node:crypto';

import type { Endpoint } from './types.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Characters after the "C" prefix: 17 base62 digits carry 101 bits, Zeek's uids look alike. */
export const FLOW_ID_DIGITS = 17;

/** Inputs of the flow id: the connection's tuple and the time of its first segment. */
export interface FlowIdInput {
  client: Endpoint;
  server: Endpoint;
  vlans: readonly number[];
  ipVersion: 4 | 6;
  startTs: number;
}

/**
 * Builds the flow id: "C" followed by 17 base62 digits of the SHA-1 of the VLAN ids, the 5-tuple
 * and the first timestamp in microseconds. The same capture gives the same ids on every run.
 */
export function makeFlowId(input: FlowIdInput): string {
  const text =
    `tcp|${input.ipVersion}|${input.vlans.join('.')}|` +
    `${input.client.ip}|${input.client.port}|${input.server.ip}|${input.server.port}|` +
    `${Math.round(input.startTs * 1e6)}`;
  const digest = createHash('sha1').update(text).digest();

  // 13 bytes = 104 bits, enough for 17 base62 digits (62^17 is about 2^101.2).
  let value = 0n;
  for (let i = 0; i < 13; i++) value = (value << 8n) | BigInt(digest[i] as number);

  let id = '';
  for (let i = 0; i < FLOW_ID_DIGITS; i++) {
    id = BASE62[Number(value % 62n)] + id;
    value /= 62n;
  }
  return 'C' + id;
}
