import type { EcsEvent } from './ecs.js';

/**
 * Figures a running sensor publishes about itself, about once a second: `mailtap status`, the
 * feed's `stats` messages, the dashboard's header and the Prometheus endpoint all read this.
 * Counters are totals since the sensor started; rates are over the last interval.
 */
export interface SensorStats {
  sensor: string;
  version: string;
  /** Interfaces for `live`, capture files for `read`. */
  sources: string[];
  /** When the sensor started, ISO 8601. */
  started: string;
  uptimeSeconds: number;
  packets: number;
  bytes: number;
  packetsPerSecond: number;
  bitsPerSecond: number;
  /** TCP flows in the flow table now. */
  flows: number;
  sessions: number;
  transactions: number;
  alerts: number;
  /** The newest sequence number the store assigned; 0 before the first or without a store. */
  lastSequence: number;
  loss: {
    /** Bytes the receiver acknowledged that the capture never saw (as Zeek's capture-loss). */
    ackedUnseenBytes: number;
    /** ackedUnseenBytes over all acknowledged bytes, 0 to 1. */
    estimatedRatio: number;
    /** Drops the kernel or the interfaces reported (rx_dropped and rx_missed_errors). */
    interfaceDrops: number;
    /**
     * Packets that passed the capture filter, as the kernel counts them in the capture sockets
     * (pcap_stats' ps_recv). Null when the sensor cannot read those counters or reads a file.
     */
    kernelPackets: number | null;
    /** Of kernelPackets, those the kernel dropped because the capture buffer was full (ps_drop). */
    kernelDrops: number | null;
  };
}

/**
 * Something that receives the sensor's events after the store has written them (the feed, the
 * dashboard, notifications, stdout). `event.event.sequence` is set when there is a store.
 * Implementations must not throw and must not block: a slow consumer queues or drops on its
 * own, the capture never waits for it.
 */
export interface EventConsumer {
  event(event: EcsEvent): void;
  stats?(stats: SensorStats): void;
  /** Flushes and releases what the consumer holds; called once on shutdown. */
  close?(): Promise<void>;
}
