import type { EcsEvent } from '../events/ecs.js';
import type { SensorStats } from '../events/consumer.js';
import type { Pipeline } from '../pipeline.js';
import { DashboardModel } from './model.js';
import { Dashboard } from './view.js';

/**
 * `mailtap read FILE --tui`: the pipeline runs in this process and its events reach the
 * dashboard paced by their capture time, `speed` times faster than real time.
 */

/** Maximum number of events the pacer queues before reading waits for it to catch up. */
export const MAX_PACED_EVENTS = 10_000;

/** Returns the capture time an event is released at: its end, or its @timestamp. */
function eventTime(event: EcsEvent): number {
  const end = event.event.end;
  const time = Date.parse(typeof end === 'string' ? end : event['@timestamp']) / 1000;
  return Number.isFinite(time) ? time : NaN;
}

/**
 * Releases events at wall-clock times proportional to their capture times. The pipeline emits
 * an alert after the transaction that raised it but with an earlier @timestamp, so release
 * times follow the highest capture time seen so far and never go backwards.
 */
export class EventPacer {
  private readonly queue: Array<{ due: number; event: EcsEvent }> = [];
  private head = 0;
  private firstCaptureTime = NaN;
  private latestCaptureTime = -Infinity;
  /** Wall-clock milliseconds that correspond to firstCaptureTime. */
  private wallBase = 0;
  private pausedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private roomWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  /** Creates a pacer. speed is capture seconds per wall-clock second, and 0 or Infinity releases every event at once. */
  constructor(
    private readonly speed: number,
    private readonly deliver: (event: EcsEvent) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  get pending(): number {
    return this.queue.length - this.head;
  }

  push(event: EcsEvent): void {
    const time = eventTime(event);
    if (Number.isFinite(time) && time > this.latestCaptureTime) this.latestCaptureTime = time;
    if (!(this.speed > 0) || this.speed === Infinity) {
      this.deliver(event);
      return;
    }
    if (Number.isNaN(this.firstCaptureTime) && Number.isFinite(this.latestCaptureTime)) {
      this.firstCaptureTime = this.latestCaptureTime;
      this.wallBase = this.clock();
    }
    const offset = Number.isFinite(this.latestCaptureTime) ? this.latestCaptureTime - this.firstCaptureTime : 0;
    this.queue.push({ due: this.wallBase + (offset * 1000) / this.speed, event });
    this.schedule();
  }

  /**
   * Returns a promise while MAX_PACED_EVENTS are queued, else undefined. The promise resolves when
   * fewer than half that number are queued.
   */
  waitForRoom(): Promise<void> | undefined {
    if (this.pending < MAX_PACED_EVENTS) return undefined;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves when every queued event was released. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Stops releasing events. resume() continues where it stopped, with the schedule shifted by the pause. */
  pause(): void {
    if (this.pausedAt !== undefined) return;
    this.pausedAt = this.clock();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    if (this.pausedAt === undefined) return;
    const shift = this.clock() - this.pausedAt;
    this.pausedAt = undefined;
    this.wallBase += shift;
    for (let i = this.head; i < this.queue.length; i++) this.queue[i].due += shift;
    this.schedule();
  }

  /** Releases every due event. It is public so that tests can drive the pacer with their own clock. */
  releaseDue(): void {
    this.timer = undefined;
    if (this.pausedAt !== undefined) return;
    const now = this.clock();
    while (this.head < this.queue.length && this.queue[this.head].due <= now) {
      this.deliver(this.queue[this.head++].event);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.pending < MAX_PACED_EVENTS / 2) for (const resolve of this.roomWaiters.splice(0)) resolve();
    if (this.pending === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
    this.schedule();
  }

  /** Cancels the timer and releases the waiters without delivering the rest. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.head = 0;
    for (const resolve of this.roomWaiters.splice(0)) resolve();
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.pausedAt !== undefined || this.pending === 0) return;
    const delay = Math.max(0, this.queue[this.head].due - this.clock());
    this.timer = setTimeout(() => this.releaseDue(), Math.min(delay, 1000));
  }
}

/** Builds the SensorStats of an in-process run from the pipeline's counters. */
export function pipelineStats(
  pipeline: Pipeline,
  files: string[],
  startedAt: number,
  sensor: string,
  version: string,
  previous: SensorStats | undefined,
  packets: number,
  bytes: number,
): SensorStats {
  const now = Date.now();
  const uptimeSeconds = (now - startedAt) / 1000;
  const interval = previous !== undefined ? Math.max(0.001, uptimeSeconds - previous.uptimeSeconds) : Math.max(0.001, uptimeSeconds);
  const flows = pipeline.flows.stats;
  return {
    sensor,
    version,
    sources: files,
    started: new Date(startedAt).toISOString(),
    uptimeSeconds,
    packets,
    bytes,
    packetsPerSecond: (packets - (previous?.packets ?? 0)) / interval,
    bitsPerSecond: ((bytes - (previous?.bytes ?? 0)) * 8) / interval,
    flows: flows.activeFlows,
    sessions: pipeline.counters.sessions,
    transactions: pipeline.counters.transactions,
    alerts: pipeline.counters.alerts,
    lastSequence: 0,
    // A capture file has no acknowledgement-based loss figure here. Gaps are in the summary.
    loss: { ackedUnseenBytes: 0, estimatedRatio: 0, interfaceDrops: 0, kernelPackets: null, kernelDrops: null },
  };
}

export interface ReplayDashboardOptions {
  files: string[];
  /** Capture seconds per wall-clock second, or 0 for as fast as possible. */
  speed: number;
  sensor: string;
  version: string;
}

/** The dashboard of `read --tui`: owns the model, the pacer, the screen and the stats timer. */
export class ReplayDashboard {
  readonly model = new DashboardModel();
  readonly pacer: EventPacer;
  private readonly dashboard: Dashboard;
  private finished = false;
  private quitResolve: (() => void) | undefined;
  private readonly quitPromise: Promise<void>;
  private statsTimer: NodeJS.Timeout | undefined;
  private updateStats: (() => void) | undefined;
  quitRequested = false;

  constructor(private readonly options: ReplayDashboardOptions) {
    this.pacer = new EventPacer(options.speed, (event) => this.model.ingest(event));
    this.quitPromise = new Promise((resolve) => (this.quitResolve = resolve));
    const speedText = options.speed > 0 && options.speed !== Infinity ? `x${options.speed}` : 'at full speed';
    this.dashboard = new Dashboard({
      model: this.model,
      source: `replay ${speedText}`,
      state: () => this.describeState(),
      onQuit: () => this.quit(),
      onPause: (paused) => (paused ? this.pacer.pause() : this.pacer.resume()),
    });
  }

  readonly push = (event: EcsEvent): void => this.pacer.push(event);

  /** Returns the replay state for the header. */
  private describeState(): string {
    if (this.finished) return 'end of capture, q quits';
    if (this.pacer.pending > 0) return `replaying, ${this.pacer.pending} queued`;
    return 'reading';
  }

  /** Refreshes the header's figures about once a second from the pipeline and the reader's counters. */
  watch(pipeline: Pipeline, counts: () => { packets: number; bytes: number }): void {
    const startedAt = Date.now();
    const update = () => {
      const { packets, bytes } = counts();
      this.model.setStats(
        pipelineStats(pipeline, this.options.files, startedAt, this.options.sensor, this.options.version, this.model.stats, packets, bytes),
      );
    };
    update();
    this.updateStats = update;
    this.statsTimer = setInterval(update, 1000);
  }

  /** Waits until the paced events are shown and then for q, and then gives the terminal back. */
  async finish(): Promise<void> {
    await Promise.race([this.pacer.drained(), this.quitPromise]);
    this.finished = true;
    if (this.statsTimer !== undefined) clearInterval(this.statsTimer);
    this.updateStats?.();
    this.dashboard.draw(true);
    await this.quitPromise;
    this.dashboard.destroy();
  }

  /** Stops the replay and ends finish(). q, Ctrl-C and SIGTERM call it. */
  quit(): void {
    this.quitRequested = true;
    this.pacer.stop();
    this.quitResolve?.();
  }

  /** Gives the terminal back at once, for an error path. */
  destroy(): void {
    if (this.statsTimer !== undefined) clearInterval(this.statsTimer);
    this.pacer.stop();
    this.dashboard.destroy();
  }
}
