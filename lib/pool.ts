/**
 * A piscina pool of worker threads that runs the passes' tasks (passes/tasks.ts) layer by layer, in
 * parallel: hashing (the native kernel) and coding layers for the packed export. Tensors go to a worker
 * and come back by transfer, or stay where they are in shared memory (never copied); the main thread
 * only schedules, so a server that calls prune() keeps serving while the pool works.
 */
import * as fs from 'node:fs';

import { Piscina } from 'piscina';

import { RedppError, cancellation, throwIfCancelled, type RedppErrorCode } from './errors';
import type { TensorData } from './model/dtype';
import type { InputSplitCounts } from './passes/layer-records';
import {
  taskError,
  WORKER_ERROR,
  type CodeTask,
  type CodeTaskResult,
  type CountTask,
  type Encoded,
  type EncodeTask,
  type HashTask,
  type HashTaskResult,
  type PrintTask,
  type ShareTask,
  type Sharing,
  type TaskRunner,
} from './passes/tasks';
import { workerScript } from './worker-script';

/** A worker's error as it was thrown there: a RedppError with its code (lib/pool-worker.ts sends it). */
function fromWorker(e: unknown): unknown {
  const message = e instanceof Error ? e.message : '';
  if (!message.startsWith(WORKER_ERROR)) return e;
  const { code, message: text } = JSON.parse(message.slice(WORKER_ERROR.length)) as { code: RedppErrorCode; message: string };
  return new RedppError(code, text);
}

const WORKER = workerScript(__filename, 'pool-worker');

/**
 * An array a task reads, as it goes to a worker: in shared memory it is read where it is; any other is
 * copied and the copy transferred (the caller's array stays as it is).
 */
function forWorker<T extends TensorData>(array: T): { array: T; transferList: ArrayBuffer[] } {
  if (array.buffer instanceof SharedArrayBuffer) return { array, transferList: [] };
  const copy = array.slice() as T;
  return { array: copy, transferList: [copy.buffer as ArrayBuffer] };
}

/**
 * The worker threads. One pool can serve many prunes at once (a server shares one between its jobs):
 * each caller runs its tasks through its own `tasks()`, which it can wait for and cancel alone.
 */
export class WorkerPool {
  private readonly piscina: Piscina;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(threads: number) {
    if (!fs.existsSync(WORKER)) {
      throw new RedppError('NATIVE_UNAVAILABLE', `the pool worker ${WORKER} is missing: build the package (npm run build:ts)`);
    }
    this.piscina = new Piscina({
      filename: WORKER,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 1000,
      // The worker is plain JavaScript: it needs none of the host's loaders (--import, --require),
      // which can take seconds per thread to start (a TypeScript loader under a test runner).
      execArgv: [],
      // Piscina's run- and wait-time histograms, which redpp never reads: a record per task on the main
      // thread (some 5 ms of a float16 U-Net's prune).
      recordTiming: false,
    });
  }

  get threads(): number {
    return this.piscina.threads.length;
  }

  /** The threads the pool was made with: how many tasks of one caller it runs at once. */
  get capacity(): number {
    return this.piscina.options.maxThreads;
  }

  /** A runner of one caller's tasks on this pool: once `signal` is aborted it refuses new tasks (RedppError CANCELLED). */
  tasks(signal?: AbortSignal): PoolTasks {
    return new PoolTasks(this, signal);
  }

  /** Runs a task, counted until it settles; its failure comes back as the RedppError it was. */
  run<T>(task: object, layer: string, options: Parameters<Piscina['run']>[1]): Promise<T> {
    const p = this.piscina.run(task, options).catch((e: unknown) => Promise.reject(taskError(fromWorker(e), layer)));
    track(this.inFlight, p);
    return p as Promise<T>;
  }

  /**
   * Waits for the tasks still running (after one failed, its siblings may be mid-kernel: terminating
   * a worker then would tear its addon down under a native call), then stops the workers.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.piscina.destroy();
  }
}

/** A pool started ahead of its prune (startPoolAhead()), until a prune takes it. */
let ahead: WorkerPool | undefined;

/**
 * Starts a pool of `threads` ahead of the prune that will run on it: the command line does so before it
 * loads the rest of the package (lib/cli.ts), so that the workers boot meanwhile.
 */
export function startPoolAhead(threads: number): void {
  ahead ??= new WorkerPool(threads);
}

/**
 * A pool of `threads` for one prune, which closes it: the one started ahead where it has as many
 * threads (taken), else a new one.
 */
export function poolFor(threads: number): WorkerPool {
  const pool = ahead?.capacity === threads ? ahead : new WorkerPool(threads);
  if (pool === ahead) ahead = undefined;
  return pool;
}

/** Closes the pool started ahead where no prune took it (the command line, when it is done). */
export async function closePoolAhead(): Promise<void> {
  const pool = ahead;
  ahead = undefined;
  await pool?.close();
}

/** Counts a promise in `set` until it settles. */
function track(set: Set<Promise<unknown>>, p: Promise<unknown>): void {
  set.add(p);
  const done = () => set.delete(p);
  p.then(done, done);
}

/**
 * One caller's tasks on a pool. A task already running is left to finish (a kernel is not interrupted);
 * cancelling stops what has not started, so a cancelled prune ends within one layer's task. So that
 * "not started" means something, a caller has at most as many tasks in the pool as it has threads: the
 * rest wait here, and are refused on cancellation (handed to the pool at once, a pass's tasks for every
 * layer ran to the end after an abort: 4 s of a cancelled budget on the classifier).
 */
export class PoolTasks implements TaskRunner {
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Places in the pool this caller holds, and the tasks waiting for one. */
  private running = 0;
  private readonly waiting: { take: () => void; refuse: (e: unknown) => void }[] = [];

  constructor(
    private readonly pool: WorkerPool,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Refuses every task waiting for a place: the signal's listener while any waits. */
  private readonly refuseWaiting = (): void => {
    const e = cancellation(this.signal);
    for (const w of this.waiting.splice(0)) w.refuse(e);
  };

  get threads(): number {
    return this.pool.capacity;
  }

  /**
   * Hashes `task.data` in a worker: an array in shared memory is hashed where it is (do not touch it
   * until the promise settles); any other is transferred (detached here) and comes back hashed.
   */
  hash(task: HashTask): Promise<HashTaskResult> {
    const buffer = task.data.buffer;
    return this.run(task, task.layer, { transferList: buffer instanceof SharedArrayBuffer ? [] : [buffer] });
  }

  /**
   * Encodes a layer at codec settings in a worker. Weights in shared memory are read where they are;
   * any other are copied for the worker (the caller's array stays as it is).
   */
  encode(task: EncodeTask): Promise<Encoded[]> {
    const { array: weights, transferList } = forWorker(task.weights);
    return this.run({ ...task, weights }, task.layer, { name: 'encode', transferList });
  }

  /**
   * Codes a layer for the packed export in a worker. Weights in shared memory are read where they are;
   * any other are copied for the worker (the caller's array stays as it is).
   */
  code(task: CodeTask): Promise<CodeTaskResult> {
    const { array: bits, transferList } = forWorker(task.bits);
    return this.run({ ...task, bits }, task.layer, { name: 'code', transferList });
  }

  /** Counts a layer's input splitting in a worker (weights in shared memory are read where they are, others copied). */
  count(task: CountTask): Promise<InputSplitCounts> {
    const { array: data, transferList } = forWorker(task.data);
    return this.run({ ...task, data }, task.layer, { name: 'count', transferList });
  }

  /** Fingerprints a weight's channels in a worker (weights in shared memory are read where they are, others copied). */
  prints(task: PrintTask): Promise<Uint32Array> {
    const { array: data, transferList } = forWorker(task.data);
    return this.run({ ...task, data }, task.layer, { name: 'prints', transferList });
  }

  /** Finds the kernels a conv's filters share in a worker (weights in shared memory are read where they are, others copied). */
  share(task: ShareTask): Promise<Sharing> {
    const { array: weights, transferList } = forWorker(task.weights);
    return this.run({ ...task, weights }, task.layer, { name: 'share', transferList });
  }

  /** Throws RedppError CANCELLED once the signal is aborted. */
  throwIfCancelled(): void {
    throwIfCancelled(this.signal);
  }

  /** Waits until every task of this caller has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  private run<T>(task: object, layer: string, options: Parameters<Piscina['run']>[1]): Promise<T> {
    const p = this.runPlaced<T>(task, layer, options);
    track(this.inFlight, p);
    return p;
  }

  private async runPlaced<T>(task: object, layer: string, options: Parameters<Piscina['run']>[1]): Promise<T> {
    this.throwIfCancelled();
    await this.place();
    try {
      return await this.pool.run<T>(task, layer, options);
    } finally {
      // The place goes to the next task waiting, or is given up.
      const next = this.waiting.shift();
      if (this.waiting.length === 0) this.signal?.removeEventListener('abort', this.refuseWaiting);
      if (next) next.take();
      else this.running--;
    }
  }

  /** Takes one of this caller's places in the pool, at once or when one frees; rejects (CANCELLED) on cancellation. */
  private place(): Promise<void> {
    if (this.running < this.pool.capacity) {
      this.running++;
      return Promise.resolve();
    }
    // Listened to only while tasks wait: a signal that outlives many prunes (a server's) gathers no listeners.
    if (this.waiting.length === 0) this.signal?.addEventListener('abort', this.refuseWaiting, { once: true });
    return new Promise((take, refuse) => this.waiting.push({ take, refuse }));
  }
}
