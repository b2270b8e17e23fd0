/**
 * One job's prune, as the local queue and a queue worker both run it: the input from the store, the
 * result staged and committed under its content address (a result already there is the answer: the
 * same input and options give the same bytes), on the process's shared worker pool.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { RedppError } from '../errors';
import type { PruneOptions, PruneProgress } from '../options';
import type { WorkerPool } from '../pool';
import { prune } from '../prune';
import { toJsonReport } from '../report';
import type { JobSpec } from './job';
import type { Store } from './store';

export interface RunContext {
  store: Store;
  pool: WorkerPool;
  /** Cancels the job (its reason: the error the job ends with). */
  signal: AbortSignal;
  /** The job fails with TIMED_OUT after this long. */
  timeoutMs: number;
  onProgress: (p: PruneProgress) => void;
}

/** Runs the job unless its result is in the store already; resolves to the size of the result's model. */
export async function runJob(spec: JobSpec, { store, pool, signal: cancel, timeoutMs, onProgress }: RunContext): Promise<number> {
  // One controller for both ends (AbortSignal.any over AbortSignal.timeout can lose the timeout to the
  // garbage collector on Node 20), the timer cleared when the job ends.
  const controller = new AbortController();
  const stop = () => controller.abort(cancel.reason);
  cancel.addEventListener('abort', stop, { once: true });
  if (cancel.aborted) stop();
  const timer = setTimeout(() => controller.abort(new RedppError('TIMED_OUT', `the job ran past its time limit of ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    return await pruneInto(spec, store, pool, controller.signal, onProgress);
  } finally {
    clearTimeout(timer);
    cancel.removeEventListener('abort', stop);
  }
}

async function pruneInto(spec: JobSpec, store: Store, pool: WorkerPool, signal: AbortSignal, onProgress: (p: PruneProgress) => void): Promise<number> {
  if (!(await store.hasResult(spec.key))) {
    const staged = await store.stagingDir();
    try {
      const output = path.join(staged, 'model.onnx');
      const { report } = await prune(await store.inputFile(spec.input.sha256), { ...(spec.options as PruneOptions), output, pool, signal, onProgress });
      // The report says nothing of the server's paths.
      const json = { ...toJsonReport(report), input: null, output: null };
      await fs.promises.writeFile(path.join(staged, 'report.json'), JSON.stringify(json, null, 2));
      await store.commitResult(spec.key, staged);
    } catch (e) {
      await store.discard(staged);
      throw e;
    }
  }
  return (await store.resultModel(spec.key)).bytes;
}
