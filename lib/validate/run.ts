/**
 * The validation itself, in the inference worker (lib/inference-worker.ts; index.ts is its face on the
 * caller's thread): both models' sessions, the same inputs through both, per output how far the
 * changed one drifts, and the latency and session-creation time of both.
 */
import type * as ort from 'onnxruntime-node';

import { RedppError, invalidOption } from '../errors';
import { concreteShape } from '../input-shapes';
import { GraphBuilder } from '../model/builder';
import { encodeModel } from '../model/write';
import type { InputTensor, ResolvedValidateOptions } from '../options/validate';
import { Rng } from '../rng';
import { onnxruntime } from '../runtime';
import { median, timeInterleaved } from '../timing';
import { OutputAccumulator, type OutputComparison } from './metrics';
import { probeTensor } from './probes';

export interface LatencyStats {
  medianMs: number;
  minMs: number;
  runs: number;
}

export interface ValidationReport {
  outputs: OutputComparison[];
  inputs: { name: string; shape: number[]; type: string; source: 'given' | 'probe' }[];
  /** Number of input sets run. */
  inputSets: number;
  /** Worst value of each metric over the outputs compared. */
  worst: { maxAbsError: number; relL2Error: number; cosine: number; argmaxAgreement: number | null };
  latency?: { original: LatencyStats; changed: LatencyStats; /** original median / changed median */ speedup: number };
  /**
   * Time onnxruntime took to create each session, once each, after a throwaway session has paid its
   * one-time set-up: what loading costs (a packed model's chains are folded then).
   */
  sessionMs: { original: number; changed: number };
}


/** `options` as resolved on the caller's thread, the given inputs as plain tensors (an ort.Tensor does not cross to a worker). */
export type ValidationOptions = Omit<ResolvedValidateOptions, 'inputs'> & { inputs: Record<string, PlainInput>[] | undefined };
export type PlainInput = Exclude<InputTensor, ort.Tensor>;

/** Validates the model in the file `changed` against the one in `original` (index.ts's validate()). */
export async function runValidation(original: string, changed: string, opts: ValidationOptions): Promise<ValidationReport> {
  await warmUp();
  const a = await openSession(original, 'original', opts.sessionOptions);
  let opened: Awaited<ReturnType<typeof openSession>> | undefined;
  try {
    const b = (opened = await openSession(changed, 'changed', opts.sessionOptions));
    const sets = inputSets(a, opts);
    const names = opts.outputs ?? [...a.outputNames];
    for (const n of names) {
      if (!a.outputNames.includes(n)) throw invalidOption('options.outputs', `outputs of the original model (${a.outputNames})`, n);
    }
    const acc = new Map(names.map((n) => [n, new OutputAccumulator(n)]));
    const fetchB = names.filter((n) => b.outputNames.includes(n));
    for (const feeds of sets) {
      const ra = await run(a, feeds, names, 'original');
      const rb = await run(b, feeds, fetchB, 'changed');
      for (const n of names) acc.get(n)!.add(ra[n], rb[n]);
    }
    const outputs = names.map((n) => acc.get(n)!.result());
    const report: ValidationReport = {
      outputs,
      inputs: Object.entries(sets[0]).map(([name, t]) => ({
        name,
        shape: [...t.dims],
        type: t.type,
        source: opts.inputs ? 'given' : 'probe',
      })),
      inputSets: sets.length,
      worst: worstOf(outputs),
      sessionMs: { original: a.createMs, changed: b.createMs },
    };
    if (opts.runs > 0) {
      const [la, lb] = await timeBoth(a, b, sets[0], names, fetchB, opts.runs, opts.warmup);
      report.latency = { original: la, changed: lb, speedup: la.medianMs / lb.medianMs };
    }
    return report;
  } finally {
    await Promise.all([a.release(), opened?.release()]);
  }
}

/**
 * The first session of a thread also sets onnxruntime itself up (~30 ms): a one-node model pays for it,
 * once per worker (each validate() has one), so that the sessions timed next compare their models only.
 */
let warmedUp: Promise<void> | undefined;

function warmUp(): Promise<void> {
  warmedUp ??= (async () => {
    const b = new GraphBuilder(13, 1);
    b.output(b.op('Identity', [b.input('x', [1])]), [1]);
    const s = await onnxruntime('validation').InferenceSession.create(encodeModel(b.build()), { logSeverityLevel: 3 });
    await s.release();
  })();
  return warmedUp;
}

async function openSession(file: string, which: string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession & { createMs: number }> {
  try {
    const t0 = performance.now();
    const session = await onnxruntime('validation').InferenceSession.create(file, options);
    return Object.assign(session, { createMs: performance.now() - t0 });
  } catch (e) {
    throw new RedppError('INFERENCE_FAILED', `onnxruntime could not load the ${which} model: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

function inputSets(session: ort.InferenceSession, opts: ValidationOptions): Record<string, ort.Tensor>[] {
  const specs = session.inputMetadata.map((m) => {
    if (!m.isTensor) throw new RedppError('INVALID_ARGUMENT', `validate: input '${m.name}' is not a tensor`);
    return { name: m.name, type: m.type, shape: m.shape };
  });
  if (opts.inputs) {
    return opts.inputs.map((set, i) => {
      for (const s of specs) {
        if (!(s.name in set)) throw invalidOption(`options.inputs[${i}].${s.name}`, 'a tensor for this model input', undefined);
      }
      return Object.fromEntries(specs.map((s) => [s.name, toOrtTensor(set[s.name], `options.inputs[${i}].${s.name}`)]));
    });
  }
  const rng = new Rng(opts.seed);
  return Array.from({ length: opts.probes }, () =>
    Object.fromEntries(specs.map((s) => [s.name, probeTensor(s.type, concreteShape(s, opts.inputShapes, opts.dims), rng, opts.distribution)])),
  );
}

/** A given input (checked for its form by index.ts's plainInput) as onnxruntime's tensor. */
function toOrtTensor(t: PlainInput, what: string): ort.Tensor {
  const data = Array.isArray(t.data) ? Float32Array.from(t.data as number[]) : t.data;
  try {
    return t.type ? new (onnxruntime('validation').Tensor)(t.type, data as Float32Array, t.dims) : new (onnxruntime('validation').Tensor)(data as Float32Array, t.dims);
  } catch (e) {
    throw invalidOption(what, 'data whose length matches dims', `${(e as Error).message}`);
  }
}

async function run(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  outputs: string[],
  which: string,
): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds, outputs);
  } catch (e) {
    throw new RedppError('INFERENCE_FAILED', `onnxruntime failed to run the ${which} model: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** Interleaves the two models' timed runs so that machine load drifts affect both alike. */
async function timeBoth(
  a: ort.InferenceSession,
  b: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  outA: string[],
  outB: string[],
  runs: number,
  warmup: number,
): Promise<[LatencyStats, LatencyStats]> {
  const [ta, tb] = await timeInterleaved([() => run(a, feeds, outA, 'original'), () => run(b, feeds, outB, 'changed')], runs, { warmup });
  return [stats(ta), stats(tb)];
}

function stats(times: number[]): LatencyStats {
  return { medianMs: median(times), minMs: Math.min(...times), runs: times.length };
}

function worstOf(outputs: OutputComparison[]): ValidationReport['worst'] {
  const agreements = outputs.map((o) => o.argmaxAgreement).filter((x): x is number => x !== null);
  return {
    maxAbsError: Math.max(0, ...outputs.map((o) => o.maxAbsError)),
    relL2Error: Math.max(0, ...outputs.map((o) => o.relL2Error)),
    cosine: Math.min(1, ...outputs.map((o) => o.cosine)),
    argmaxAgreement: agreements.length ? Math.min(...agreements) : null,
  };
}
