/**
 * validate(): runs an original and a changed model in onnxruntime-node on the same inputs and measures,
 * per output, how far the changed one drifts, plus the latency and session-creation time of both. This is how every pass proves
 * what it claims (exact folds: ~1e-6; hashing: a reported error).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type * as ort from 'onnxruntime-node';

import { RedppError, invalidOption } from '../errors';
import { concreteShape } from '../input-shapes';
import { GraphBuilder } from '../model/builder';
import { Model } from '../model/model';
import { encodeModel, saveModel } from '../model/write';
import { resolveValidateOptions, type InputTensor, type ResolvedValidateOptions, type ValidateOptions } from '../options/validate';
import { Rng } from '../rng';
import { median, timeInterleaved } from '../timing';
import { OutputAccumulator, type OutputComparison } from './metrics';
import { probeTensor } from './probes';
import { onnxruntime } from '../runtime';

export type { OutputComparison } from './metrics';
export type { InputTensor, ProbeDistribution, ValidateOptions } from '../options/validate';

/** A model to run: loaded, a path to an .onnx file, or its bytes. */
export type ModelSource = Model | string | Uint8Array;

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


export async function validate(
  original: ModelSource,
  changed: ModelSource,
  options: ValidateOptions = {},
): Promise<ValidationReport> {
  const opts = resolveValidateOptions(options);
  const cleanup: string[] = [];
  try {
    await warmUp();
    const a = await openSession(original, 'original', opts.sessionOptions, cleanup);
    const b = await openSession(changed, 'changed', opts.sessionOptions, cleanup);
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
    await Promise.all([a.release(), b.release()]);
    return report;
  } finally {
    for (const dir of cleanup) await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The first session of a process also sets onnxruntime itself up (~30 ms): a one-node model pays for it,
 * once per process, so that the sessions timed next compare their models only.
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

async function openSession(
  source: ModelSource,
  which: string,
  options: ort.InferenceSession.SessionOptions,
  cleanup: string[],
): Promise<ort.InferenceSession & { createMs: number }> {
  let target: string | Uint8Array;
  if (source instanceof Model) {
    try {
      target = encodeModel(source);
    } catch (e) {
      if (!(e instanceof RedppError && e.code === 'MODEL_TOO_LARGE')) throw e;
      // Over 2 GiB inline: onnxruntime reads it from a file with external data instead.
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redpp-validate-'));
      cleanup.push(dir);
      target = path.join(dir, `${which}.onnx`);
      await saveModel(source, target, { externalData: 'auto' });
    }
  } else if (typeof source === 'string' || source instanceof Uint8Array) {
    target = source;
  } else {
    throw new RedppError('INVALID_ARGUMENT', `validate: the ${which} model must be a Model, a path or a Buffer`);
  }
  try {
    const t0 = performance.now();
    const session =
      typeof target === 'string' ? await onnxruntime('validation').InferenceSession.create(target, options) : await onnxruntime('validation').InferenceSession.create(target, options);
    return Object.assign(session, { createMs: performance.now() - t0 });
  } catch (e) {
    throw new RedppError('INFERENCE_FAILED', `onnxruntime could not load the ${which} model: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

function inputSets(session: ort.InferenceSession, opts: ResolvedValidateOptions): Record<string, ort.Tensor>[] {
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

function toOrtTensor(t: InputTensor, what: string): ort.Tensor {
  if (t instanceof onnxruntime('validation').Tensor) return t;
  if (t === null || typeof t !== 'object' || !('dims' in t) || !('data' in t)) {
    throw invalidOption(what, 'an onnxruntime Tensor or { data, dims }', t);
  }
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
