import type { EcsEvent } from '../events/ecs.js';
import type { EventStore } from '../store/index.js';

/** Events per store batch; a batch is also written on the next turn of the event loop. */
const BATCH_EVENTS = 500;
/** Batches being written before the reader is asked to wait. */
const MAX_PENDING_BATCHES = 4;

/**
 * Writes events to the store before it prints them, so that whatever reached stdout is stored
 * and carries the sequence number the store assigned.
 */
export class StoredOutput {
  private batch: EcsEvent[] = [];
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private scheduled = false;
  /** The first store error; later batches are neither stored nor printed. */
  error: Error | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly print: (event: EcsEvent) => void,
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
    await this.tail;
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
        for (const event of events) this.print(event);
      })
      .catch((error: unknown) => {
        this.error ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        this.pending--;
      });
  }
}
