/**
 * The queue of `redpp serve` on one machine: jobs run in this process, `concurrency` at a time, on one
 * worker pool that they share. Every change of state is written to the store before it is shown, so a
 * restart finds each job where it was: a queued one is queued again, and one that was running (the
 * process died under it) runs again, or fails with INTERRUPTED once it has been started `maxAttempts`
 * times.
 *
 * Memory is bounded by the counts, not by the history: at most `maxQueue` waiting and `concurrency`
 * running jobs are held, with the newest RECENT finished ones; older records are read from the store
 * when asked for.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

import { failureOf, RedppError } from '../errors';
import { WorkerPool } from '../pool';
import { FINISHED, resultKey, type JobView } from './job';
import { RecentDurations, retryAfter, type JobQueue, type QueueCounts } from './queue';
import { runJob } from './run-job';
import type { Store, StoredInput } from './store';

export interface LocalQueueOptions {
  /** Prunes at once. */
  concurrency: number;
  /** Threads of the shared worker pool. */
  threads: number;
  /** Jobs waiting at most; a submit beyond is QUEUE_FULL. */
  maxQueue: number;
  /** Starts of a job before a crash of the process under it (or an internal error) fails it for good. */
  maxAttempts: number;
  /** A job running longer fails with TIMED_OUT. */
  jobTimeoutMs: number;
}

/** Finished jobs kept in memory (for GET /v1/jobs). */
const RECENT = 1000;
/** How long DELETE waits for a running job to stop before it answers. */
const CANCEL_WAIT_MS = 5000;
/** Progress shown at most this often per job (the budget reports hundreds of steps a second). */
const PROGRESS_MS = 100;

export class LocalQueue implements JobQueue {
  readonly kind = 'local';
  private readonly active = new Map<string, JobView>();
  private readonly waiting: string[] = [];
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly recent: JobView[] = [];
  private readonly events = new EventEmitter();
  private readonly finishedCounts = { done: 0, failed: 0, cancelled: 0 };
  private readonly durations = new RecentDurations();
  private readonly pool: WorkerPool;
  private closing = false;

  private constructor(
    private readonly store: Store,
    private readonly options: LocalQueueOptions,
  ) {
    this.pool = new WorkerPool(options.threads);
    this.events.setMaxListeners(0);
  }

  /** The queue over the store's records: unfinished jobs are taken up again. */
  static async open(store: Store, options: LocalQueueOptions): Promise<LocalQueue> {
    const q = new LocalQueue(store, options);
    const records = ((await store.jobs()) as JobView[]).sort((a, b) => a.createdAt - b.createdAt);
    for (const view of records) {
      if (view.state === 'running') {
        view.progress = null;
        if (view.attempts >= options.maxAttempts) {
          Object.assign(view, { state: 'failed', finishedAt: Date.now() });
          view.error = { code: 'INTERRUPTED', message: `the server stopped while the job ran, ${view.attempts} times` };
          await store.saveJob(view.id, view);
        } else {
          view.state = 'queued';
          await store.saveJob(view.id, view);
        }
      }
      if (FINISHED.has(view.state)) q.remember(view);
      else {
        q.active.set(view.id, view);
        q.waiting.push(view.id);
      }
    }
    q.pump();
    return q;
  }

  async checkCapacity(): Promise<void> {
    if (this.waiting.length >= this.options.maxQueue) {
      throw new RedppError('QUEUE_FULL', `the queue holds ${this.waiting.length} jobs, its limit: try again later`);
    }
  }

  async submit(input: StoredInput, options: Record<string, unknown>): Promise<JobView> {
    await this.checkCapacity();
    const view: JobView = { id: randomUUID(), input, options, key: resultKey(input, options), createdAt: Date.now(), state: 'queued', progress: null, attempts: 0 };
    await this.store.saveJob(view.id, view);
    this.active.set(view.id, view);
    this.waiting.push(view.id);
    this.pump();
    return { ...view };
  }

  async get(id: string): Promise<JobView | undefined> {
    const view = this.active.get(id) ?? this.recent.find((v) => v.id === id) ?? ((await this.store.readJob(id)) as JobView | undefined);
    return view && { ...view };
  }

  async list(limit: number): Promise<JobView[]> {
    return [...this.active.values(), ...this.recent]
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit)
      .map((v) => ({ ...v }));
  }

  async cancel(id: string): Promise<JobView | undefined> {
    const run = this.running.get(id);
    if (run) {
      run.controller.abort(new RedppError('CANCELLED', 'cancelled by its client'));
      // It stops within a layer's task, or at the next step of the save: wait that long at most.
      await Promise.race([run.done, new Promise((r) => setTimeout(r, CANCEL_WAIT_MS).unref())]);
    }
    // Waiting (or back in the queue after an internal error while the cancel was on its way).
    const at = this.waiting.indexOf(id);
    const view = this.active.get(id);
    if (at >= 0 && view && view.state === 'queued') {
      this.waiting.splice(at, 1);
      await this.finish(view, 'cancelled', { code: 'CANCELLED', message: 'cancelled by its client before it started' });
    }
    return this.get(id);
  }

  watch(id: string, listener: (view: JobView) => void): () => void {
    this.events.on(id, listener);
    return () => this.events.off(id, listener);
  }

  onFinished(listener: (view: JobView) => void): void {
    this.events.on('finished', listener);
  }

  async counts(): Promise<QueueCounts> {
    return { queued: this.waiting.length, running: this.running.size, ...this.finishedCounts };
  }

  retryAfterSeconds(): number {
    return retryAfter((this.durations.mean() * Math.max(1, this.waiting.length)) / this.options.concurrency);
  }

  async healthy(): Promise<boolean> {
    return !this.closing;
  }

  /**
   * Stops: running jobs are stopped and left queued in the store (they run again at the next start, not
   * counted as an attempt), then the pool closes.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const run of this.running.values()) run.controller.abort(new RedppError('CANCELLED', 'the server is stopping'));
    await Promise.all([...this.running.values()].map((r) => r.done));
    await this.pool.close();
  }

  /** Starts waiting jobs while there is room. */
  private pump(): void {
    while (!this.closing && this.running.size < this.options.concurrency && this.waiting.length) {
      const view = this.active.get(this.waiting.shift()!)!;
      const controller = new AbortController();
      // A failure of the store itself (a full disk) is the job's last word: kept in memory, said on stderr.
      const done = this.start(view, controller).catch((e: unknown) => {
        Object.assign(view, { state: 'failed', finishedAt: Date.now(), error: { code: 'IO_ERROR', message: `the store could not record the job: ${(e as Error).message}` } });
        this.active.delete(view.id);
        this.running.delete(view.id);
        this.remember(view);
        process.emitWarning(`redpp serve: job ${view.id}: ${view.error!.message}`);
        this.pump();
      });
      this.running.set(view.id, { controller, done });
    }
  }

  private async start(view: JobView, controller: AbortController): Promise<void> {
    Object.assign(view, { state: 'running', attempts: view.attempts + 1, startedAt: Date.now(), progress: null });
    let shown = 0;
    try {
      await this.store.saveJob(view.id, view);
      this.events.emit(view.id, { ...view });
      const outputBytes = await runJob(view, {
        store: this.store,
        pool: this.pool,
        signal: controller.signal,
        timeoutMs: this.options.jobTimeoutMs,
        onProgress: (p) => {
          view.progress = { phase: p.phase, done: p.done, total: p.total };
          const now = Date.now();
          if (now - shown >= PROGRESS_MS) {
            shown = now;
            this.events.emit(view.id, { ...view });
          }
        },
      });
      view.outputBytes = outputBytes;
      await this.finish(view, 'done');
    } catch (e) {
      await this.failed(view, e);
    } finally {
      this.running.delete(view.id);
      this.pump();
    }
  }

  private async failed(view: JobView, e: unknown): Promise<void> {
    if (this.closing) {
      // Stopped by a shutdown: queued again for the next start, the attempt not counted.
      Object.assign(view, { state: 'queued', attempts: view.attempts - 1, progress: null });
      await this.store.saveJob(view.id, view);
      return;
    }
    const error = failureOf(e);
    if (error.code === 'INTERNAL' && view.attempts < this.options.maxAttempts) {
      // A bug, perhaps a passing one: the job goes to the back of the queue.
      Object.assign(view, { state: 'queued', progress: null, error });
      await this.store.saveJob(view.id, view);
      this.waiting.push(view.id);
      this.events.emit(view.id, { ...view });
      return;
    }
    await this.finish(view, error.code === 'CANCELLED' ? 'cancelled' : 'failed', error);
  }

  private async finish(view: JobView, state: 'done' | 'failed' | 'cancelled', error?: JobView['error']): Promise<void> {
    Object.assign(view, { state, finishedAt: Date.now() });
    if (error) view.error = error;
    else delete view.error;
    if (state === 'done') view.progress = null;
    await this.store.saveJob(view.id, view);
    this.active.delete(view.id);
    this.remember(view);
    this.durations.add(view);
    this.events.emit(view.id, { ...view });
    this.events.emit('finished', { ...view });
  }

  private remember(view: JobView): void {
    this.finishedCounts[view.state as keyof typeof this.finishedCounts]++;
    this.recent.unshift(view);
    if (this.recent.length > RECENT) this.recent.pop();
  }
}
