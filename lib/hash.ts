/**
 * hashWeights(): adaptive scalar hashing of weight groups (RED++'s first step) on the native kernel —
 * CPU threads with SIMD, or CUDA — or on the TypeScript reference when the addon is missing.
 */
import { CENTER_CODES, DEVICE_CODES, SIMD_LEVELS, native, warnFallback } from './binding';
import { RedppError } from './errors';
import { hashWeightsReference, type HashKernelOutput } from './kernels/hash';
import { largeArray } from './kernels/pages';
import { resolveHashOptions, type HashOptions, type ResolvedHashOptions } from './options';

export type HashBackend = 'cpu' | 'cuda' | 'reference';

export interface HashResult {
  /** The hashed weights, same length and layout as the input. */
  values: Float32Array;
  /** Per group: the number of distinct values after hashing. */
  distinct: Uint32Array;
  /** Per group: root-mean-square of (hashed - original). */
  rmsError: Float64Array;
  /** What computed it. */
  backend: HashBackend;
}

/**
 * Hashes each consecutive group of `groupSize` weights (one output neuron, or a whole layer). The work
 * runs off the event loop; the input is not modified. Same input and options give bit-identical
 * output on any thread count and instruction set.
 */
export async function hashWeights(
  weights: Float32Array,
  groupSize: number,
  options: HashOptions = {},
): Promise<HashResult> {
  if (!(weights instanceof Float32Array)) {
    throw new RedppError('INVALID_ARGUMENT', 'hashWeights: weights must be a Float32Array');
  }
  if (!Number.isSafeInteger(groupSize) || groupSize < 1) {
    throw new RedppError('INVALID_ARGUMENT', `hashWeights: groupSize must be a positive integer, got ${groupSize}`);
  }
  if (weights.length % groupSize !== 0) {
    throw new RedppError(
      'INVALID_ARGUMENT',
      `hashWeights: weights.length (${weights.length}) is not a multiple of groupSize (${groupSize})`,
    );
  }
  const opts = resolveHashOptions(options);
  if (opts.output && opts.output.length !== weights.length) {
    throw new RedppError(
      'INVALID_ARGUMENT',
      `hashWeights: options.output has ${opts.output.length} elements but weights has ${weights.length}`,
    );
  }
  // Always off this thread: a caller's event loop stays free, in a pool worker too.
  const result = await hashResolved(weights, groupSize, opts, false);
  if (result.backend === 'reference') warnFallback();
  return result;
}

/** Whether this thread is one of redpp's pool workers (hashInPoolWorker()). */
let poolWorker = false;

/**
 * Called once by a pool worker (lib/pool-worker.ts) as it starts: its thread is there to run kernels,
 * so hashResolved() runs the native kernel on it, blocking it, where it used to hand each call to a
 * libuv thread and wait (two wake-ups across threads a call, 112 calls for a float16 U-Net). Any other
 * thread, the main one or a caller's own Worker, keeps its event loop free.
 */
export function hashInPoolWorker(): void {
  poolWorker = true;
}

/**
 * hashWeights() with arguments already checked and options already resolved (the passes' tasks); says
 * which backend ran rather than warning about a fallback (the caller does, once). On the calling thread
 * in a pool worker (hashInPoolWorker()), else on a libuv thread.
 */
export async function hashResolved(weights: Float32Array, groupSize: number, opts: ResolvedHashOptions, onThisThread = poolWorker): Promise<HashResult> {
  const backend = chooseBackend(opts);
  const out =
    backend === 'reference'
      ? hashWeightsReference(weights, groupSize, opts, opts.output)
      : await hashNative(weights, groupSize, opts, backend, onThisThread);
  if (out.nonFiniteIndex >= 0) {
    const i = out.nonFiniteIndex;
    throw new RedppError(
      'NON_FINITE_WEIGHT',
      `hashWeights: weights[${i}] is ${weights[i]} (group ${Math.floor(i / groupSize)}); ` +
        'weights must be finite numbers',
    );
  }
  return { values: out.values, distinct: out.distinct, rmsError: out.rmsError, backend };
}

function chooseBackend(opts: ResolvedHashOptions): HashBackend {
  const addon = native();
  if (opts.device === 'cuda') {
    const why = addon ? addon.cudaStatus() : 'the native addon is not loaded';
    if (why) throw new RedppError('CUDA_UNAVAILABLE', `device 'cuda' was requested but ${why}`);
    return 'cuda';
  }
  if (!addon) return 'reference';
  if (opts.simd !== 'auto' && !addon.simdSupported(SIMD_LEVELS[opts.simd])) {
    throw new RedppError('INVALID_OPTION', `options.simd is '${opts.simd}' but this CPU does not support it`);
  }
  return opts.device === 'auto' && addon.cudaStatus() === '' ? 'cuda' : 'cpu';
}

async function hashNative(
  weights: Float32Array,
  groupSize: number,
  opts: ResolvedHashOptions,
  backend: 'cpu' | 'cuda',
  onThisThread: boolean,
): Promise<HashKernelOutput> {
  const groups = weights.length / groupSize;
  const values = opts.output ?? largeArray(Float32Array, weights.length);
  const distinct = new Uint32Array(groups);
  const rmsError = new Float64Array(groups);
  const addon = native()!;
  const args = [weights, groupSize, opts.beta, CENTER_CODES[opts.center], opts.threads, SIMD_LEVELS[opts.simd], DEVICE_CODES[backend], values, distinct, rmsError] as const;
  const nonFiniteIndex = onThisThread ? addon.hashWeightsBlocking(...args) : await addon.hashWeights(...args);
  return { values, distinct, rmsError, nonFiniteIndex };
}

/** What the native CPU kernel can use here, for reports and benchmarks. */
export function hashCapabilities(): { native: boolean; simd: string[]; cuda: string } {
  const addon = native();
  if (!addon) return { native: false, simd: [], cuda: 'the native addon is not loaded' };
  const simd = (Object.keys(SIMD_LEVELS) as (keyof typeof SIMD_LEVELS)[]).filter(
    (k) => k !== 'auto' && addon.simdSupported(SIMD_LEVELS[k]),
  );
  return { native: true, simd, cuda: addon.cudaStatus() || 'available' };
}
