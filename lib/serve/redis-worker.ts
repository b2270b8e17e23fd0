/**
 * `redpp worker --queue redis://…`: takes jobs from BullMQ and prunes them on one worker pool shared by
 * its `concurrency` jobs, results into the shared store. The prune's work is on the pool's threads, so
 * the event loop stays free to renew the jobs' locks; a worker that dies (SIGKILL, a crash) stops
 * renewing them, and after `stallTimeoutMs` another worker takes the job up again.
 *
 * A typed failure (a bad model, a cancel, a timeout) is final; an internal error is retried with
 * backoff, `attempts` runs in all. On SIGTERM the jobs running are put back in the queue, not failed.
 */
import { UnrecoverableError, WaitingError, Worker } from 'bullmq';

import { failureOf } from '../errors';
import { WorkerPool } from '../pool';
import type { JobSpec } from './job';
import { CANCEL_CHANNEL, cancelKey, connect, QUEUE_NAME, redisConnection, type JobResult } from './redis-queue';
import { runJob } from './run-job';
import type { Store } from './store';

export interface WorkerOptions {
  url: string;
  store: Store;
  concurrency: number;
  threads: number;
  jobTimeoutMs: number;
  /** How long a job's lock lasts without renewal: the time after which a dead worker's job runs again. */
  stallTimeoutMs: number;
}

/** Progress written to Redis at most this often per job. */
const PROGRESS_MS = 250;

export interface QueueWorker {
  /** Stops taking jobs; the ones running go back to the queue. */
  close(): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<QueueWorker> {
  const redis = redisConnection(o.url, true);
  await connect(redis, o.url);
  const subscriber = redisConnection(o.url, true);
  const pool = new WorkerPool(o.threads);
  let stopping = false;

  const worker = new Worker<JobSpec, JobResult>(
    QUEUE_NAME,
    async (job, token, signal) => {
      if (await redis.exists(cancelKey(job.id!))) throw new UnrecoverableError(JSON.stringify({ code: 'CANCELLED', message: 'cancelled by its client before it started' }));
      let shown = 0;
      try {
        const outputBytes = await runJob(job.data, {
          store: o.store,
          pool,
          signal: signal ?? new AbortController().signal,
          timeoutMs: o.jobTimeoutMs,
          onProgress: (p) => {
            const now = Date.now();
            if (now - shown < PROGRESS_MS) return;
            shown = now;
            job.updateProgress({ phase: p.phase, done: p.done, total: p.total }).catch(() => undefined);
          },
        });
        return { outputBytes };
      } catch (e) {
        if (stopping) {
          await job.moveToWait(token);
          throw new WaitingError();
        }
        const error = failureOf(e);
        if (error.code === 'INTERNAL') throw new Error(JSON.stringify(error));
        throw new UnrecoverableError(JSON.stringify(error));
      }
    },
    {
      connection: redis,
      concurrency: o.concurrency,
      lockDuration: o.stallTimeoutMs,
      stalledInterval: o.stallTimeoutMs,
      maxStalledCount: 2,
    },
  );
  // A worker with no 'error' listener would end the process on a Redis hiccup: it reconnects instead.
  worker.on('error', () => undefined);
  await subscriber.subscribe(CANCEL_CHANNEL);
  subscriber.on('message', (_channel, id: string) => worker.cancelJob(id, 'cancelled by its client'));
  await worker.waitUntilReady();

  return {
    async close() {
      stopping = true;
      worker.cancelAllJobs('the worker is stopping');
      await worker.close();
      await pool.close();
      await subscriber.quit().catch(() => undefined);
      await redis.quit().catch(() => undefined);
    },
  };
}
