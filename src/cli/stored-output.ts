import type { EcsEvent } from '../events/ecs.js';
import type { EventStore, SweepLimits } from '../store/index.js';

/** Events per store batch; a batch is also written on the next turn of the event loop. */
const BATCH_EVENTS = 500;
/** Batches being written before the reader is asked to wait. */
const MAX_PENDING_BATCHES = 4;
/** Batches between two retention sweeps; drain() sweeps once more at the end. */
const BATCHES_PER_SWEEP = 50;

/**
 * Writes events to the store before it prints them, so that whatever reached stdout is stored
 * and carries the sequence number the store assigned.
 */
export class StoredOutput {
  private batch: EcsEvent[] = [];
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private scheduled = false;
  private batchesSinceSweep = 0;
  /** Newest capture time written, in seconds: retention counts back from it. */
  private newestTs = 0;
  /** The first store error; later batches are neither stored nor printed. */
  error: Error | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly print: (event: EcsEvent) => void,
    private readonly retention: SweepLimits = {},
  ) {}

  add(event: EcsEvent): void {
    this.batch.push(event);
    if (this.batch.length >= BATCH_EVENTS) {
      this.writeBatch();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.writeBatch();
      });
    }
  }

  /** Returns a promise while too many batches are being written, for the reader to wait on. */
  busy(): Promise<void> | undefined {
    return this.pending > MAX_PENDING_BATCHES ? this.tail : undefined;
  }

  /** Writes and prints everything added so far. */
  async drain(): Promise<void> {
    this.writeBatch();
    this.sweep();
    await this.tail;
  }

  /** Queues a retention sweep after the batches already queued, when limits are set. */
  private sweep(): void {
    if (this.retention.maxAgeSeconds === undefined && this.retention.maxBytes === undefined) return;
    this.batchesSinceSweep = 0;
    this.tail = this.tail
      .then(async () => {
        if (this.error) return;
        await this.store.sweep(this.retention, this.newestTs);
      })
      .catch((error: unknown) => {
        this.error ??= error instanceof Error ? error : new Error(String(error));
      });
  }

  private writeBatch(): void {
    if (this.batch.length === 0) return;
    const events = this.batch;
    this.batch = [];
    this.pending++;
    this.tail = this.tail
      .then(async () => {
        if (this.error) return;
        await this.store.append(events);
        for (const event of events) {
          const ts = Date.parse(event['@timestamp']) / 1000;
          if (ts > this.newestTs) this.newestTs = ts;
          this.print(event);
        }
      })
      .catch((error: unknown) => {
        this.error ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        this.pending--;
      });
    if (++this.batchesSinceSweep >= BATCHES_PER_SWEEP) this.sweep();
  }
}
