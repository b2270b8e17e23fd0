/**
 * What the HTTP layer needs of a queue. Two implementations: LocalQueue (jobs run in this process,
 * records in the store) and RedisQueue (BullMQ: `redpp worker` processes anywhere run them).
 */
import type { JobView } from './job';
import type { StoredInput } from './store';

export interface QueueCounts {
  queued: number;
  running: number;
  done: number;
  failed: number;
  cancelled: number;
}

export interface JobQueue {
  readonly kind: 'local' | 'redis';
  /** Enqueues a job; RedppError QUEUE_FULL when `--max-queue` jobs are waiting already. */
  submit(input: StoredInput, options: Record<string, unknown>): Promise<JobView>;
  /** Throws QUEUE_FULL when a submit now would be refused (checked before an upload is read). */
  checkCapacity(): Promise<void>;
  get(id: string): Promise<JobView | undefined>;
  /** The newest jobs first. */
  list(limit: number): Promise<JobView[]>;
  /** Cancels a queued or running job (a running one stops within a layer's task); a finished one is left as it is. */
  cancel(id: string): Promise<JobView | undefined>;
  /** Calls `listener` with the job's view on every change (state, progress); returns the unsubscribe. */
  watch(id: string, listener: (view: JobView) => void): () => void;
  /** Calls `listener` once per job that finishes (for the metrics). */
  onFinished(listener: (view: JobView) => void): void;
  counts(): Promise<QueueCounts>;
  /** Seconds a client refused with QUEUE_FULL should wait before trying again. */
  retryAfterSeconds(): number;
  /** Reachable and working (GET /healthz). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

/** The run times of the last jobs done (what a queue's Retry-After is estimated from). */
export class RecentDurations {
  private readonly seconds: number[] = [];

  /** Counts a job if it is done (started and finished). */
  add(view: JobView): void {
    if (view.state !== 'done' || !view.startedAt || !view.finishedAt) return;
    this.seconds.push((view.finishedAt - view.startedAt) / 1000);
    if (this.seconds.length > 50) this.seconds.shift();
  }

  /** Their mean in seconds; 10 before any job is done. */
  mean(): number {
    return this.seconds.length ? this.seconds.reduce((a, b) => a + b, 0) / this.seconds.length : 10;
  }
}

/** Retry-After for a refused submit: `seconds` rounded up, between 1 s and 10 min. */
export const retryAfter = (seconds: number) => Math.min(600, Math.max(1, Math.ceil(seconds)));
