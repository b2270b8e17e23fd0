/**
 * The queue of `redpp serve --queue redis://…`: jobs go into BullMQ, and `redpp worker` processes on any
 * machine that mounts the same store take them (lib/serve/redis-worker.ts). BullMQ holds each job's
 * state, progress and attempts; the store holds the bytes.
 *
 * BullMQ runs a job at least once: a worker killed mid-prune leaves its lock to expire, and the job runs
 * again elsewhere; content-addressed results make the second run's output the first's. A job that
 * keeps failing (an internal error, `attempts` times) stays in BullMQ's failed set: the dead letter.
 * Cancelling sets a flag that a worker reads before it starts the job, and is published to the worker
 * running it, which aborts the prune.
 */
import { randomUUID } from 'node:crypto';

import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';

import { RedppError } from '../errors';
import { FINISHED, resultKey, type JobSpec, type JobState, type JobView } from './job';
import { RecentDurations, retryAfter, type JobQueue, type QueueCounts } from './queue';
import type { StoredInput } from './store';

export const QUEUE_NAME = 'redpp';
/** The channel a cancel is published on (the job's id as the message). */
export const CANCEL_CHANNEL = 'redpp:cancel';
/** The flag of a cancelled job, kept a week. */
export const cancelKey = (id: string) => `redpp:cancelled:${id}`;
const CANCEL_TTL_S = 7 * 24 * 3600;

/** What a job's run returns to BullMQ. */
export interface JobResult {
  outputBytes: number;
}

/** Why each connection last failed (ioredis reconnects by itself; its errors are kept, not thrown). */
const lastError = new WeakMap<Redis, Error>();

/**
 * A connection to the Redis of `--queue`. `waitForReconnect`: commands wait while it reconnects (what
 * BullMQ's workers and blocking readers need); otherwise they fail at once, and a request answers 503.
 */
export function redisConnection(url: string, waitForReconnect: boolean): Redis {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RedppError('INVALID_OPTION', `--queue expects a redis:// URL, got '${url}'`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new RedppError('INVALID_OPTION', `--queue expects a redis:// URL, got '${url}'`);
  const redis = new Redis(url, waitForReconnect ? { maxRetriesPerRequest: null, lazyConnect: true } : { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  redis.on('error', (e: Error) => lastError.set(redis, e));
  return redis;
}

/** Connects, or says in one line why it cannot. */
export async function connect(redis: Redis, url: string): Promise<void> {
  try {
    await Promise.race([redis.connect(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 5 s')), 5000).unref())]);
  } catch (e) {
    redis.disconnect();
    throw unavailable(redis, url, e);
  }
}

function unavailable(redis: Redis, url: string, e: unknown): RedppError {
  const why = lastError.get(redis)?.message ?? (e as Error).message;
  return new RedppError('QUEUE_UNAVAILABLE', `cannot reach the Redis server at ${url}: ${why}`);
}

export interface RedisQueueOptions {
  maxQueue: number;
  /** Runs of a job before an internal error fails it for good (a typed error fails it at once). */
  attempts: number;
  /** Finished jobs BullMQ keeps (older ones: 404, their results stay in the store). */
  keep: number;
}

export class RedisQueue implements JobQueue {
  readonly kind = 'redis';
  private readonly watchers = new Map<string, Set<(view: JobView) => void>>();
  private readonly finishedListeners: ((view: JobView) => void)[] = [];
  private readonly durations = new RecentDurations();
  /** Tells this server's watchers of a job that it changed (and, when it `finished`, the finished listeners). */
  private readonly changed: (e: { jobId: string }, finished?: boolean) => Promise<void>;

  private constructor(
    private readonly url: string,
    private readonly redis: Redis,
    private readonly queue: Queue<JobSpec, JobResult>,
    private readonly queueEvents: QueueEvents,
    private readonly options: RedisQueueOptions,
  ) {
    // One read of the job per event, for its watchers and, when it finished, the finished listeners.
    const changed = (this.changed = async ({ jobId }: { jobId: string }, finished = false) => {
      const listeners = this.watchers.get(jobId);
      if (!listeners?.size && !finished) return;
      const view = await this.get(jobId).catch(() => undefined);
      if (!view) return;
      for (const l of listeners ?? []) l(view);
      if (!finished || !FINISHED.has(view.state)) return;
      this.durations.add(view);
      for (const l of this.finishedListeners) l(view);
    });
    for (const event of ['active', 'progress', 'waiting', 'delayed', 'stalled'] as const) queueEvents.on(event, (e: { jobId: string }) => changed(e));
    queueEvents.on('completed', (e) => changed(e, true));
    queueEvents.on('failed', (e) => changed(e, true));
  }

  static async open(url: string, options: RedisQueueOptions): Promise<RedisQueue> {
    const redis = redisConnection(url, false);
    await connect(redis, url);
    const queue = new Queue<JobSpec, JobResult>(QUEUE_NAME, { connection: redis });
    queue.on('error', () => undefined);
    const queueEvents = new QueueEvents(QUEUE_NAME, { connection: redisConnection(url, true) });
    queueEvents.on('error', () => undefined);
    await queueEvents.waitUntilReady();
    return new RedisQueue(url, redis, queue, queueEvents, options);
  }

  /** A Redis call, its failure as QUEUE_UNAVAILABLE (a request then answers 503). */
  private async redisCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (e instanceof RedppError) throw e;
      throw unavailable(this.redis, this.url, e);
    }
  }

  async checkCapacity(): Promise<void> {
    const c = await this.redisCall(() => this.queue.getJobCounts('waiting', 'delayed', 'prioritized'));
    const waiting = c.waiting + c.delayed + c.prioritized;
    if (waiting >= this.options.maxQueue) throw new RedppError('QUEUE_FULL', `the queue holds ${waiting} jobs, its limit: try again later`);
  }

  async submit(input: StoredInput, options: Record<string, unknown>): Promise<JobView> {
    await this.checkCapacity();
    const spec: JobSpec = { id: randomUUID(), input, options, key: resultKey(input, options), createdAt: Date.now() };
    await this.redisCall(() =>
      this.queue.add('prune', spec, {
        jobId: spec.id,
        attempts: this.options.attempts,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { count: this.options.keep },
        removeOnFail: { count: this.options.keep },
      }),
    );
    return { ...spec, state: 'queued', progress: null, attempts: 0 };
  }

  async get(id: string): Promise<JobView | undefined> {
    return this.redisCall(async () => {
      // The state first: BullMQ records why a job failed and moves it to 'failed' in one step, so a
      // job read after its state carries its reason; read the other way round, a job that failed in
      // between was seen failed without it (a typed failure then looked untyped).
      const state = await this.queue.getJobState(id);
      const job = await Job.fromId<JobSpec, JobResult>(this.queue, id);
      return job && this.view(job, state);
    });
  }

  async list(limit: number): Promise<JobView[]> {
    return this.redisCall(async () => {
      const views: JobView[] = [];
      for (const state of ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const) {
        for (const job of await this.queue.getJobs([state], 0, limit - 1)) if (job) views.push(await this.view(job, state));
      }
      return views.sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
    });
  }

  async cancel(id: string): Promise<JobView | undefined> {
    await this.redisCall(async () => {
      await this.redis.set(cancelKey(id), '1', 'EX', CANCEL_TTL_S);
      await this.redis.publish(CANCEL_CHANNEL, id);
    });
    // A running job stops within a layer's task: wait a little for its worker to say so. A queued one
    // is cancelled now (its flag): its watchers hear it, though no worker has taken it yet.
    for (let i = 0; i < 50; i++) {
      const view = await this.get(id);
      if (!view || view.state !== 'running') {
        if (view?.state === 'cancelled') await this.changed({ jobId: id });
        return view;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.get(id);
  }

  watch(id: string, listener: (view: JobView) => void): () => void {
    const set = this.watchers.get(id) ?? new Set();
    this.watchers.set(id, set.add(listener));
    return () => {
      set.delete(listener);
      if (!set.size) this.watchers.delete(id);
    };
  }

  onFinished(listener: (view: JobView) => void): void {
    this.finishedListeners.push(listener);
  }

  async counts(): Promise<QueueCounts> {
    const c = await this.redisCall(() => this.queue.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed'));
    // Cancelled jobs are in BullMQ's failed set: counted there.
    return { queued: c.waiting + c.delayed + c.prioritized, running: c.active, done: c.completed, failed: c.failed, cancelled: 0 };
  }

  retryAfterSeconds(): number {
    return retryAfter(this.durations.mean());
  }

  async healthy(): Promise<boolean> {
    return this.redis
      .ping()
      .then((r) => r === 'PONG')
      .catch(() => false);
  }

  async close(): Promise<void> {
    await this.queueEvents.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async view(job: Job<JobSpec, JobResult>, bullState: string): Promise<JobView> {
    const error = job.failedReason ? parseReason(job.failedReason) : undefined;
    let state: JobState;
    if (bullState === 'active') state = 'running';
    else if (bullState === 'completed') state = 'done';
    else if (bullState === 'failed') state = error?.code === 'CANCELLED' ? 'cancelled' : 'failed';
    else state = (await this.redis.exists(cancelKey(job.id!))) ? 'cancelled' : 'queued';
    const progress = typeof job.progress === 'object' && job.progress && 'phase' in job.progress ? (job.progress as JobView['progress']) : null;
    return {
      ...job.data,
      state,
      progress: state === 'running' || state === 'queued' ? progress : state === 'done' ? null : progress,
      attempts: job.attemptsStarted ?? job.attemptsMade,
      ...(job.processedOn ? { startedAt: job.processedOn } : {}),
      ...(job.finishedOn ? { finishedAt: job.finishedOn } : {}),
      ...(error && state !== 'done' ? { error } : {}),
      ...(state === 'done' && job.returnvalue ? { outputBytes: job.returnvalue.outputBytes } : {}),
    };
  }
}

/** A worker's failure as it threw it (lib/serve/redis-worker.ts: the job error as JSON), or BullMQ's own. */
function parseReason(reason: string): { code: string; message: string } {
  try {
    const e = JSON.parse(reason) as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string' && typeof e.message === 'string') return { code: e.code, message: e.message };
  } catch {
    // BullMQ's own reason (a stalled job, a lock lost): as it is.
  }
  return { code: 'INTERRUPTED', message: reason };
}
