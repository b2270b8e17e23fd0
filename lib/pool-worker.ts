/**
 * The body of a pool worker: the passes' tasks (passes/tasks.ts), with their results handed back by
 * transfer. The default task hashes a layer, `encode` encodes one at codec settings, `code` codes one's
 * palette for the export, `count` counts its input splitting, `prints` fingerprints its channels,
 * `share` finds the kernels its filters share.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';

import { RedppError } from './errors';
import { hashInPoolWorker } from './hash';
import {
  WORKER_ERROR,
  runCodeTask,
  runCountTask,
  runEncodeTask,
  runHashTask,
  runPrintTask,
  runShareTask,
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
} from './passes/tasks';

hashInPoolWorker();

/** Marks `value` for transfer of `buffers` (piscina's Transferable protocol); shared memory stays shared. */
function transfer<T extends object>(value: T, buffers: ArrayBufferLike[]): T {
  return move({
    [transferableSymbol]: buffers.filter((b) => !(b instanceof SharedArrayBuffer)),
    [valueSymbol]: value,
  }) as unknown as T;
}

/**
 * Errors leave a worker by structured clone, which keeps only an Error's message: a RedppError's code
 * travels in it, for the pool to rebuild the error (lib/pool.ts: fromWorker).
 */
async function carryingCode<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof RedppError) throw new Error(`${WORKER_ERROR}${JSON.stringify({ code: e.code, message: e.message })}`);
    throw e;
  }
}

export default async function hash(task: HashTask): Promise<HashTaskResult> {
  const r = await carryingCode(() => runHashTask(task));
  // Weights in shared memory were hashed in place and go back as a view.
  return transfer(r, [r.data.buffer, r.distinct.buffer, r.rmsError.buffer, r.zeros.buffer]);
}

export async function encode(task: EncodeTask): Promise<Encoded[]> {
  const r = await carryingCode(() => runEncodeTask(task));
  const buffers = r.flatMap((e) => [e.values?.buffer, e.uniform?.words.buffer, e.uniform?.zeroPoint.buffer, e.uniform?.scale.buffer]);
  // The values of a dense setting are the task's own weights: they stay where they were sent from.
  return transfer(r, [...new Set(buffers.filter((b): b is ArrayBufferLike => b !== undefined && b !== task.weights.buffer))]);
}

export async function code(task: CodeTask): Promise<CodeTaskResult> {
  const r = await carryingCode(() => runCodeTask(task));
  if (typeof r.coded === 'string') return r;
  return transfer(r, [r.coded.codebook.buffer, r.coded.offsets.buffer, r.coded.words.buffer]);
}

export async function count(task: CountTask): Promise<Awaited<ReturnType<typeof runCountTask>>> {
  return carryingCode(() => runCountTask(task));
}

export async function prints(task: PrintTask): Promise<Uint32Array> {
  const r = await carryingCode(() => runPrintTask(task));
  return transfer(r, [r.buffer]);
}

export async function share(task: ShareTask): Promise<Sharing> {
  const r = await carryingCode(() => runShareTask(task));
  return transfer(r, [r.counts.buffer]);
}
