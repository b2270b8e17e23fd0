/**
 * A piscina pool of worker threads that hashes layers in parallel. Tensors go to a worker and come
 * back by transfer (never copied); the main thread only schedules, so a server that calls prune()
 * keeps serving while the pool works.
 */
import * as path from 'node:path';

import { Piscina } from 'piscina';

import type { HashTask, HashTaskResult } from './pool-worker';

// Under ts-node (tests) this module is pool.ts and its worker pool-worker.ts; built, both are .js.
const WORKER = path.join(__dirname, `pool-worker${path.extname(__filename)}`);

export class HashPool {
  private readonly piscina: Piscina;

  constructor(threads: number) {
    this.piscina = new Piscina({ filename: WORKER, minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
  }

  get threads(): number {
    return this.piscina.threads.length;
  }

  /** Hashes `task.weights` in a worker; the array is transferred (detached here) and comes back hashed. */
  hash(task: HashTask): Promise<HashTaskResult> {
    return this.piscina.run(task, { transferList: [task.weights.buffer as ArrayBuffer] });
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
