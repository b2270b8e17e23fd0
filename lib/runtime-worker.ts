/**
 * Worker threads that run onnxruntime-node: both sides, RuntimeWorker on the caller's thread and
 * answerRequests in the worker. onnxruntime-node creates and runs a session synchronously on the
 * calling thread (a second to create VGG-16's, up to seconds a run on a large CNN), which on the main
 * thread would freeze a server: the budget's probe model, validation and the kernel split's timing run
 * in workers of this kind instead, and onnxruntime-node is never loaded on the main thread.
 *
 * Requests are answered in order, each reply carrying its request's id; a RedppError keeps its code
 * across. A worker is never terminated while it may be inside a run: onnxruntime-node, finding its
 * thread terminating, throws a C++ exception that nothing catches ('terminate called after throwing an
 * instance of Napi::Error', SIGABRT) and the whole process aborts. 'stop' is read between two runs
 * instead (a run starts in a turn of the worker's event loop of its own).
 */
import { Worker, parentPort } from 'node:worker_threads';

import { RedppError, type RedppErrorCode } from './errors';

/** Every worker's own ops (answerRequests answers them): no worker's ops may take their names. */
type OwnOp = 'ready' | 'release' | 'stop';
/**
 * What a worker answers: per op, the arguments its request carries and the value of its reply (a type
 * alias: an interface does not satisfy the index signature).
 */
export type RuntimeOps = Record<string, { args: unknown; reply: unknown }> & { [Op in OwnOp]?: never };
type Request = { id: number; op: string; args?: unknown };
type Reply = { id: number; value?: unknown; error?: { code?: string; name: string; message: string } };

/** The workers that run now (stopRuntimeWorkers ends them). */
const live = new Set<RuntimeWorker<RuntimeOps>>();
/** Set by stopRuntimeWorkers: the process is exiting, and no worker starts any more. */
let stopping = false;

/**
 * Ends every runtime worker, each between two onnxruntime runs (see the file comment): for a process
 * that exits while a budget, a validation or a timing may be running (the CLI on SIGINT or SIGTERM).
 * What waits on them fails.
 */
export async function stopRuntimeWorkers(): Promise<void> {
  stopping = true;
  await Promise.all([...live].map((w) => w.stop()));
}

/** One worker thread running `script` (which calls answerRequests with the same ops), seen from the thread that started it. */
export class RuntimeWorker<Ops extends RuntimeOps> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    /** What the worker is for, as failures name it ('the probe model'). */
    what: string,
  ) {
    worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (!p) return;
      if (r.error) p.reject(r.error.code ? new RedppError(r.error.code as RedppErrorCode, r.error.message) : Object.assign(new Error(r.error.message), { name: r.error.name }));
      else p.resolve(r.value);
    });
    // A worker that dies (out of memory, a crash in onnxruntime) fails what waits on it, and what
    // follows: so does one that ended (a message to it would be dropped, and its reply waited for forever).
    const fail = (why: string) => {
      this.failure ??= new RedppError('INFERENCE_FAILED', `onnxruntime's worker for ${what} ended (${why})`);
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => {
      live.delete(this);
      fail(code !== 0 ? `exit code ${code}` : 'stopped');
    });
    live.add(this);
  }

  /** A worker that has answered 'ready' (its set-up done, or failed with the reason). */
  static async start<Ops extends RuntimeOps>(script: string, workerData: unknown, what: string): Promise<RuntimeWorker<Ops>> {
    if (stopping) throw new RedppError('CANCELLED', `${what} did not start: the process is stopping`);
    // The worker is plain JavaScript: it needs none of the host's loaders (--import, --require).
    const w = new RuntimeWorker<Ops>(new Worker(script, { workerData, execArgv: [] }), what);
    try {
      await w.send('ready');
    } catch (e) {
      await w.worker.terminate();
      throw e;
    }
    return w;
  }

  /** Requests sent and not answered yet. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * The worker's answer to `r`. Arguments cross by structured clone: a typed array on shared memory as
   * it is, any other copied on this thread (the callers send shared memory or small arrays).
   */
  request<Op extends keyof Ops & string>(op: Op, args: Ops[Op]['args']): Promise<Ops[Op]['reply']> {
    return this.send(op, args);
  }

  private send(op: string, args?: unknown): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ id, op, args } satisfies Request);
      } catch (e) {
        // Something that cannot be cloned (a function in options): nothing was sent.
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  /** Lets the worker release what it holds (its 'release'), then ends it. */
  async release(): Promise<void> {
    try {
      if (!this.failure) await this.send('release');
    } finally {
      await this.worker.terminate();
    }
  }

  /** Ends the worker between two runs; what waits on it fails (see the file comment). */
  async stop(): Promise<void> {
    if (!live.has(this)) return;
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage({ id: -1, op: 'stop' satisfies OwnOp } satisfies Request);
    await exited;
  }
}

/** How a worker answers each of its ops, and what it lets go of on 'release'. */
export type RuntimeHandlers<Ops extends RuntimeOps> = { [Op in keyof Ops]: (args: Ops[Op]['args']) => Promise<Ops[Op]['reply']> | Ops[Op]['reply'] } & {
  release?: () => Promise<unknown>;
};

/**
 * The worker's side: answers each request in order with its handler's value (or its failure). 'ready'
 * is answered once `ready` settles (a set-up that fails is the reply to it, and to every request
 * after); 'stop' is not answered: the thread ends as soon as it reads it.
 */
export function answerRequests<Ops extends RuntimeOps>(ready: Promise<unknown>, handlers: RuntimeHandlers<Ops>): void {
  const port = parentPort!;
  ready.catch(() => undefined);
  const answer = (r: Request): unknown => {
    if (r.op === ('ready' satisfies OwnOp)) return undefined;
    if (r.op === ('release' satisfies OwnOp)) return handlers.release?.();
    const handle = Object.hasOwn(handlers, r.op) ? (handlers[r.op] as (args: unknown) => unknown) : undefined;
    if (!handle) throw new Error(`this worker has no op '${r.op}'`);
    return handle(r.args);
  };
  let queue: Promise<unknown> = Promise.resolve();
  port.on('message', (r: Request) => {
    if (r.op === ('stop' satisfies OwnOp)) process.exit(0);
    queue = queue.then(async () => {
      try {
        await ready;
        const value = await answer(r);
        port.postMessage({ id: r.id, value } satisfies Reply);
      } catch (e) {
        // A RedppError keeps its code; anything else stays a plain Error (a bug, not a typed failure).
        const error = e instanceof RedppError ? { code: e.code, name: e.name, message: e.message } : { name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) };
        port.postMessage({ id: r.id, error } satisfies Reply);
      }
    });
  });
}
