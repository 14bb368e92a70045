import type { SensorStats } from '../../src/events/consumer.js';

/** Sensor figures with distinct values, for the control socket, status and metrics tests. */
export function sampleStats(overrides: Partial<SensorStats> = {}): SensorStats {
  return {
    sensor: 'office-1',
    version: '0.1.0',
    sources: ['mt9a'],
    started: '2026-12-04T19:00:00.000Z',
    uptimeSeconds: 3725,
    packets: 123456,
    bytes: 98765432,
    packetsPerSecond: 2000,
    bitsPerSecond: 16000000,
    flows: 17,
    sessions: 420,
    transactions: 398,
    alerts: 3,
    lastSequence: 401,
    loss: { ackedUnseenBytes: 1500, estimatedRatio: 0.0002, interfaceDrops: 4, kernelPackets: 812000, kernelDrops: 7 },
    ...overrides,
  };
}
