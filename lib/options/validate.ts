/** Options of validate(): the inputs both models run on, and how they are timed. */
import type * as ort from 'onnxruntime-node';

import { invalidOption } from '../errors';
import { inputShapes, integer, oneOf, userOptions } from './check';

/** An input tensor: an onnxruntime Tensor, or typed data with dims (float32 when data is a number[]). */
export type InputTensor = ort.Tensor | { data: ort.Tensor.DataType | number[]; dims: readonly number[]; type?: ort.Tensor.Type };

export type ProbeDistribution = 'normal' | 'uniform';

export interface ValidateOptions {
  /** Inputs to feed both models (one set or several). Without them, seeded random probes are made. */
  inputs?: Record<string, InputTensor> | Record<string, InputTensor>[];
  /** Probe shapes by input name, e.g. { x: [1, 3, 224, 224] }. */
  inputShapes?: Record<string, number[]>;
  /** Values of symbolic dims by name, e.g. { batch: 2 }. Unnamed ones default to 1 (batch), 3 (channels), 224. */
  dims?: Record<string, number>;
  /** Number of probe input sets. Default 1. */
  probes?: number;
  /** Seed of the probe RNG. Default 0. */
  seed?: number;
  /** Float probes: standard 'normal' (default) or 'uniform' in [0, 1). Integer inputs get values 0..9. */
  distribution?: ProbeDistribution;
  /** Timed runs per model after warm-up; the report gives the median. Default 10; 0 skips timing. */
  runs?: number;
  /** Untimed runs per model before timing. Default 2. */
  warmup?: number;
  /** onnxruntime session options for both models (default: CPU, logs at warning level and above hidden). */
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Outputs to compare. Default: every output of the original. */
  outputs?: string[];
  /**
   * Stops the validation when aborted, at most one onnxruntime run later: it rejects with RedppError
   * CANCELLED (TIMED_OUT for AbortSignal.timeout(), or the abort's reason where that is a RedppError).
   */
  signal?: AbortSignal;
}

export interface ResolvedValidateOptions {
  inputs: Record<string, InputTensor>[] | undefined;
  inputShapes: Record<string, number[]>;
  dims: Record<string, number>;
  probes: number;
  seed: number;
  distribution: ProbeDistribution;
  runs: number;
  warmup: number;
  sessionOptions: ort.InferenceSession.SessionOptions;
  outputs: string[] | undefined;
}

const KNOWN = ['inputs', 'inputShapes', 'dims', 'probes', 'seed', 'distribution', 'runs', 'warmup', 'sessionOptions', 'outputs', 'signal'];

export function resolveValidateOptions(options?: ValidateOptions): ResolvedValidateOptions {
  const o = userOptions(options, KNOWN);
  const inputs = o.inputs === undefined ? undefined : Array.isArray(o.inputs) ? o.inputs : [o.inputs];
  if (inputs && inputs.length === 0) throw invalidOption('options.inputs', 'at least one input set', '[]');
  const dims = o.dims ?? {};
  for (const [k, v] of Object.entries(dims)) integer(`options.dims.${k}`, v, 0);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidOption('options.signal', 'an AbortSignal', o.signal);
  if (o.outputs !== undefined && (!Array.isArray(o.outputs) || !o.outputs.every((n) => typeof n === 'string'))) {
    throw invalidOption('options.outputs', 'an array of output names', o.outputs);
  }
  return {
    inputs,
    inputShapes: inputShapes('options.inputShapes', o.inputShapes ?? {}),
    dims,
    probes: integer('options.probes', o.probes ?? 1, 1),
    seed: integer('options.seed', o.seed ?? 0, 0),
    distribution: oneOf('options.distribution', ['normal', 'uniform'] as const, o.distribution ?? 'normal'),
    runs: integer('options.runs', o.runs ?? 10, 0),
    warmup: integer('options.warmup', o.warmup ?? 2, 0),
    sessionOptions: { logSeverityLevel: 3, ...o.sessionOptions },
    outputs: o.outputs,
  };
}
