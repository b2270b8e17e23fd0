/**
 * The per-weight work of the passes, as tasks: hashing a layer (RED++ at one beta), encoding a layer at
 * codec settings (the budget's candidates, the chosen codec), coding a layer's palette for the export,
 * counting its input splitting, the fingerprints of its channels (merge), the kernels its filters share
 * (kernel split). Each reads every weight of a layer: on the main thread, a large one held the event
 * loop for a hundred milliseconds and more.
 * Passes hand them to a TaskRunner; the worker pool (lib/pool.ts) runs them in parallel off the main
 * thread, and inProcess runs them here (a pass used on its own, tests).
 */
import { RedppError } from '../errors';
import { nextTurn } from '../turns';
import { hashResolved, type HashBackend } from '../hash';
import type { HashKernelParams } from '../kernels/hash';
import { sharedArray } from '../kernels/pages';
import { sumOfSquares, zerosPerGroup } from '../kernels/weight-stats';
import { fromRows, gridSize, isRowMajor, toRows, type NeuronGrid } from '../layers';
import { DataType, arrayTypeOf, decodeInto, encodeInto, toFloat32, type TensorData } from '../model/dtype';
import { countRows, inputSplitCounts } from './input-splitting';
import type { InputSplitCounts } from './layer-records';
import { kernelSharing, type KernelSharing } from './kernel-split/sharing';
import { channelPrints, type PrintTask } from './merge/prints';
import type { Bits } from './codecs/bits';
import { encodeLayer, type Encoded, type EncodeTask } from './codecs/encode';
import { codeLayer, type CodedLayer } from './codecs/palette-code';

export interface HashTask {
  /** The layer's name, for errors. */
  layer: string;
  /**
   * The layer's weights as its tensor holds them (float32, float64, or float16 / bfloat16 bits), laid
   * out on `grid`; hashed in place. The worker converts them to float32 rows and back: on the main
   * thread, converting a float16 net's 44 M weights held the event loop for seconds.
   */
  data: Float32Array | Float64Array | Uint16Array;
  dataType: number;
  grid: NeuronGrid;
  params: HashKernelParams;
  /** CPU threads to hash it on (a layer that would otherwise keep the others waiting; default 1). */
  threads?: number;
}

export interface HashTaskResult {
  /** The hashed weights: the task's own array (or, with a pool, that array transferred back). */
  data: HashTask['data'];
  distinct: Uint32Array;
  rmsError: Float64Array;
  /** Per neuron: weights that are exactly zero after hashing (input splitting skips their inputs). */
  zeros: Uint32Array;
  /** The sum of the squares of the weights before hashing. */
  sumSq: number;
  backend: HashBackend;
  /** Time the hashing took where it ran. */
  ms: number;
}

export type { EncodeTask, Encoded };

export interface CodeTask {
  /** The layer's name, for errors. */
  layer: string;
  /** The layer's weights as bit patterns, laid out on `grid`. */
  bits: Bits;
  grid: NeuronGrid;
  /** CPU threads to code it on, where the addon is loaded (a layer coded alone; default 1). */
  threads?: number;
}

export interface CodeTaskResult {
  /** The coded layer, or why it cannot be coded. */
  coded: CodedLayer | string;
  ms: number;
}

export interface CountTask {
  /** The layer's name, for errors. */
  layer: string;
  /**
   * The layer's weights as its tensor holds them, laid out on `grid`; read, not changed. The worker
   * converts them: a float16 VGG-16's fc1 converted on the main thread held the event loop for 0.5 s.
   */
  data: TensorData;
  dataType: number;
  grid: NeuronGrid;
}

export interface ShareTask {
  /** The layer's name, for errors. */
  layer: string;
  /** Conv weights [cout, cin, kh, kw], row-major. */
  weights: Float32Array;
  cout: number;
  cin: number;
  /** kh * kw. */
  k: number;
}

/**
 * The kernels a conv's filters share, as the analysis reads them: m_c per input channel and the number
 * of all-zero kernels, counted where the sharing is found (the index of every kernel stays there:
 * counting it on the main thread took ResNet-50's prune 10 ms).
 */
export type Sharing = Pick<KernelSharing, 'counts' | 'cout' | 'cin' | 'k'> & { zeroKernels: number };

export type { PrintTask };

/** What runs the tasks. */
export interface TaskRunner {
  /** The tasks it runs at once (a pool's size; 1 here): a layer that runs alone may take as many CPU threads. */
  readonly threads: number;
  /**
   * Hashes `task.data` in place (an array in shared memory is hashed where it is; with a pool, any
   * other is transferred and comes back hashed as `data`): do not touch it until the promise settles.
   */
  hash(task: HashTask): Promise<HashTaskResult>;
  /** Encodes a layer at codec settings; the weights are read, not changed. */
  encode(task: EncodeTask): Promise<Encoded[]>;
  /** Codes a layer; the weights are read, not changed. */
  code(task: CodeTask): Promise<CodeTaskResult>;
  /** Counts a layer's input splitting from its weights (distinct and zero values per neuron); the weights are read, not changed. */
  count(task: CountTask): Promise<InputSplitCounts>;
  /** Fingerprints a weight's channels (merge/prints.ts); the weights are read, not changed. */
  prints(task: PrintTask): Promise<Uint32Array>;
  /** Finds the kernels a conv's filters share; the weights are read, not changed. */
  share(task: ShareTask): Promise<Sharing>;
}

/** Rows converted at a time: a few MiB that stay in cache, reused, instead of a float32 copy of the layer. */
const CHUNK_WEIGHTS = 1 << 20;

/**
 * Chunk scratch arrays a visit has given back, for the next (one per visit running at once, a thread's
 * pool worker has one): fresh memory is what a chunk's conversion costs. On the 2-core VM a float16
 * chunk converted into a new array took 1.6-3.9 ms, a fault per 4 KiB page, and 0.09 ms into one used
 * before; ISNet's 44 M weights are 42 chunks.
 */
const spareScratch: Float32Array[] = [];
const SPARE_SCRATCH = 2;

/** Runs `use` with a scratch array of at least `length` elements, kept for the next caller after. */
async function withScratch(length: number, use: (scratch: Float32Array) => Promise<void>): Promise<void> {
  const at = spareScratch.findIndex((s) => s.length >= length);
  const scratch = at >= 0 ? spareScratch.splice(at, 1)[0] : new Float32Array(Math.max(length, CHUNK_WEIGHTS));
  try {
    await use(scratch);
  } finally {
    // A row longer than a chunk makes a larger one: not kept.
    if (scratch.length === CHUNK_WEIGHTS && spareScratch.length < SPARE_SCRATCH) spareScratch.push(scratch);
  }
}

/**
 * Visits a layer's weights as float32 rows of `fanIn`, a chunk of whole rows at a time (`first` is the
 * chunk's first neuron): the tensor's own rows where they are float32 and row-major, else converted
 * into a scratch array, and with `writeBack` converted back in place after the visit. A float32 copy
 * of VGG-16's fc1 is 410 MB of fresh memory, which costs more to fault in than the work on it.
 */
async function eachRowChunk(
  task: { data: TensorData; dataType: number; grid: NeuronGrid },
  writeBack: boolean,
  visit: (rows: Float32Array, first: number) => unknown,
): Promise<void> {
  const { data, dataType, grid } = task;
  const { neurons, fanIn } = gridSize(grid);
  if (dataType === DataType.FLOAT && isRowMajor(grid)) {
    await visit(data as Float32Array, 0);
  } else if (isRowMajor(grid)) {
    const per = Math.max(1, Math.floor(CHUNK_WEIGHTS / fanIn));
    await withScratch(Math.min(neurons, per) * fanIn, async (scratch) => {
      for (let first = 0; first < neurons; first += per) {
        const count = Math.min(per, neurons - first);
        const part = data.subarray(first * fanIn, (first + count) * fanIn) as TensorData;
        const rows = scratch.subarray(0, count * fanIn);
        decodeInto(part, dataType, rows);
        await visit(rows, first);
        if (writeBack) encodeInto(rows, dataType, part);
      }
    });
  } else {
    const rows = toRows(grid, toFloat32(data, dataType));
    await visit(rows, 0);
    if (writeBack) encodeInto(fromRows(grid, rows), dataType, data);
  }
}

/** Hashes one layer on `task.threads` CPU threads (one unless the pass asks: the runner supplies the parallelism), in the tensor's own array. */
export async function runHashTask(task: HashTask): Promise<HashTaskResult> {
  const t0 = performance.now();
  const { data, params } = task;
  const { neurons, fanIn } = gridSize(task.grid);
  const distinct = new Uint32Array(neurons);
  const rmsError = new Float64Array(neurons);
  const zeros = new Uint32Array(neurons);
  let sumSq = 0;
  let backend: HashBackend = 'cpu';
  // Rows hashed in place, the sum of squares taken before.
  await eachRowChunk(task, true, async (rows, first) => {
    sumSq += sumOfSquares(rows);
    const r = await hashResolved(rows, fanIn, { ...params, threads: task.threads ?? 1, device: 'cpu', simd: 'auto', output: rows });
    distinct.set(r.distinct, first);
    rmsError.set(r.rmsError, first);
    zeros.set(zerosPerGroup(rows, fanIn), first);
    backend = r.backend;
  });
  return { data, distinct, rmsError, zeros, sumSq, backend, ms: performance.now() - t0 };
}

export function runCodeTask(task: CodeTask): CodeTaskResult {
  const t0 = performance.now();
  const coded = codeLayer(task.bits, task.grid, task.threads);
  return { coded, ms: performance.now() - t0 };
}

/**
 * Encodes a layer at codec settings. The values asked for come back as `data`, in the tensor's element
 * type and in shared memory: they go on to the budget's probe model, whose worker an ArrayBuffer
 * reaches only as a copy made on the main thread (VGG-16's fc1: 410 MB, a stall of a second), and
 * float16 tensors take them as float16 (converting 102 M weights there held the event loop too).
 */
export async function runEncodeTask(task: EncodeTask): Promise<Encoded[]> {
  const encoded = await encodeLayer(task);
  if (!task.values) return encoded;
  return encoded.map(({ values, ...e }) => (values ? { ...e, data: asTensorData(values, task) } : e));
}

function asTensorData(values: Float32Array, task: EncodeTask): TensorData {
  if (task.dataType === DataType.FLOAT && values.buffer instanceof SharedArrayBuffer) return values;
  const Ctor = arrayTypeOf(task.dataType);
  const out = sharedArray(Ctor, values.length);
  encodeInto(values, task.dataType, out);
  return out;
}

export async function runCountTask(task: CountTask): Promise<InputSplitCounts> {
  const { neurons, fanIn } = gridSize(task.grid);
  const distinct = new Uint32Array(neurons);
  const zeros = new Uint32Array(neurons);
  await eachRowChunk(task, false, (rows, first) => countRows(rows, fanIn, distinct.subarray(first), zeros.subarray(first)));
  return inputSplitCounts(fanIn, distinct, zeros);
}

export function runPrintTask(task: PrintTask): Uint32Array {
  return channelPrints(task);
}

export function runShareTask(task: ShareTask): Sharing {
  const { counts, index, cout, cin, k } = kernelSharing(task.weights, task.cout, task.cin, task.k, false);
  let zeroKernels = 0;
  for (let i = 0; i < index.length; i++) if (index[i] < 0) zeroKernels++;
  return { counts, zeroKernels, cout, cin, k };
}

/** Marks the message of an error from a worker that carries a RedppError's code (lib/pool-worker.ts). */
export const WORKER_ERROR = 'redpp-worker-error:';

/** A task's failure as its caller sees it: a RedppError keeps its code and gains the layer's name. */
export function taskError(e: unknown, layer: string): unknown {
  return e instanceof RedppError ? new RedppError(e.code, `layer '${layer}': ${e.message}`, { cause: e }) : e;
}

/** Runs tasks on the calling thread, yielding to the event loop between them. */
export const inProcess: TaskRunner = {
  threads: 1,
  hash: (task) => runHashTask(task).catch((e) => Promise.reject(taskError(e, task.layer))),
  async encode(task) {
    await nextTurn();
    return runEncodeTask(task).catch((e) => Promise.reject(taskError(e, task.layer)));
  },
  async code(task) {
    await nextTurn();
    try {
      return runCodeTask(task);
    } catch (e) {
      throw taskError(e, task.layer);
    }
  },
  async count(task) {
    await nextTurn();
    return runCountTask(task);
  },
  async prints(task) {
    await nextTurn();
    return runPrintTask(task);
  },
  async share(task) {
    await nextTurn();
    return runShareTask(task);
  },
};
