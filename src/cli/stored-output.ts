import type { Analyzer } from '../analyze.js';
import type { EcsEvent } from '../events/ecs.js';
import {
  deviceKey,
  prepareEvent,
  stateKey,
  type EventStore,
  type ExtraPuts,
  type PreparedEvent,
  type SweepLimits,
} from '../store/index.js';

/** Name of the analyzer's state in the store: key `state!analyzer`. */
export const ANALYZER_STATE = 'analyzer';

/**
 * Returns the keys that save an analyzer: its state, and a device record per device of its
 * inventory for the query commands. Pass it as StoredOutputOptions.state.
 */
export function analyzerStatePuts(analyzer: Analyzer): ExtraPuts {
  const state = analyzer.snapshot();
  return [
    { key: stateKey(ANALYZER_STATE), value: state },
    ...state.inventory.devices.map((device) => ({ key: deviceKey(device.key), value: device })),
  ];
}

/**
 * Restores the analyzer from the state saved in the store, if there is one. Returns a warning
 * for the user when a saved state could not be used; the analyzer then starts empty.
 */
export async function restoreAnalyzer(store: EventStore, analyzer: Analyzer): Promise<string | undefined> {
  let saved: unknown;
  try {
    saved = await store.getState(ANALYZER_STATE);
  } catch (error) {
    return `the saved analyzer state cannot be read (${(error as Error).message}); starting without it`;
  }
  if (saved === undefined) return undefined;
  const problem = analyzer.restore(saved);
  return problem === undefined ? undefined : `${problem}; starting without the saved analyzer state`;
}

/**
 * Events per store batch. A batch is also written BATCH_DELAY_MS after its first event: live
 * capture adds a few events per turn of the event loop, and a LevelDB write per turn cost more
 * than the rest of the store's work at 60,000 packets/s.
 */
const BATCH_EVENTS = 2000;
const BATCH_DELAY_MS = 5;
/** Batches being written before the reader is asked to wait. */
const MAX_PENDING_BATCHES = 4;
/** Batches between two retention sweeps; drain() sweeps once more at the end. */
const BATCHES_PER_SWEEP = 50;
/** Milliseconds between two saves of the extra keys (the analyzer state); drain() saves too. */
export const STATE_INTERVAL_MS = 10_000;

export interface StoredOutputOptions {
  retention?: SweepLimits;
  /**
   * Returns keys to write in the same batch as the events, such as the analyzer state and the
   * device records. It is called when a batch is cut, at most every STATE_INTERVAL_MS, and by
   * drain(), so the state saved matches the events stored with it.
   */
  state?: () => ExtraPuts;
  stateIntervalMs?: number;
  /**
   * Keep each event object for print(). Without it print gets undefined and the JSON text
   * only, and the object can be collected as soon as add() returns.
   */
  keepEvents?: boolean;
}

/**
 * Writes events to the store before it prints them, so that whatever reached stdout is stored
 * and carries the sequence number the store assigned. `print` gets the event and its JSON text
 * as stored, so a JSON printer does not serialize the event again.
 */
export class StoredOutput {
  private batch: PreparedEvent[] = [];
  /** The event objects of the batch, when options.keepEvents is set. */
  private batchEvents: EcsEvent[] = [];
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private scheduled = false;
  private batchesSinceSweep = 0;
  private stateSavedAt = Date.now();
  /** Newest capture time written, in seconds: retention counts back from it. */
  private newestTs = 0;
  private readonly retention: SweepLimits;
  /** The first store error; later batches are neither stored nor printed. */
  error: Error | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly print: (event: EcsEvent | undefined, text: string) => void,
    private readonly options: StoredOutputOptions = {},
  ) {
    this.retention = options.retention ?? {};
  }

  add(event: EcsEvent): void {
    this.batch.push(prepareEvent(event));
    if (this.options.keepEvents === true) this.batchEvents.push(event);
    if (this.batch.length >= BATCH_EVENTS) {
      this.writeBatch(false);
    } else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        this.writeBatch(false);
      }, BATCH_DELAY_MS);
    }
  }

  /** Returns a promise while too many batches are being written, for the reader to wait on. */
  busy(): Promise<void> | undefined {
    return this.pending > MAX_PENDING_BATCHES ? this.tail : undefined;
  }

  /** Writes and prints everything added so far, with the state, then sweeps. */
  async drain(): Promise<void> {
    this.writeBatch(true);
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

  private writeBatch(withState: boolean): void {
    const state = this.options.state;
    const interval = this.options.stateIntervalMs ?? STATE_INTERVAL_MS;
    const saveState = state !== undefined && (withState || Date.now() - this.stateSavedAt >= interval);
    if (this.batch.length === 0 && !saveState) return;
    const events = this.batch;
    const objects = this.batchEvents;
    this.batch = [];
    this.batchEvents = [];
    // Taken now, when the batch is cut: the state then reflects exactly the events added so far.
    const extra = saveState ? state() : [];
    if (saveState) this.stateSavedAt = Date.now();
    this.pending++;
    this.tail = this.tail
      .then(async () => {
        if (this.error) return;
        const { sequences, texts } = await this.store.appendPrepared(events, extra);
        // @timestamp has one fixed ISO form, so text order is time order.
        let newest = '';
        for (let i = 0; i < events.length; i++) {
          const timestamp = (events[i] as PreparedEvent).timestamp;
          if (timestamp > newest) newest = timestamp;
          const object = objects[i];
          if (object !== undefined) object.event.sequence = sequences[i];
          this.print(object, texts[i] as string);
        }
        const ts = newest === '' ? 0 : Date.parse(newest) / 1000;
        if (ts > this.newestTs) this.newestTs = ts;
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
