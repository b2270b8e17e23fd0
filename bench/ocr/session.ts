/**
 * onnxruntime-node sessions for the OCR models: one input, first output, and latency medians. Inputs and
 * outputs are float32 here; a model converted to float16 (bench/fp16.ts) is fed and read through casts.
 */
import * as ort from 'onnxruntime-node';

import { DataType, float16BitsToNumber, fromNumbers } from '../../lib/model/dtype';
import { median, timeInterleaved } from '../../lib/timing';
import type { InputTensor } from './preprocess';

/** A model as a file path or the bytes of an .onnx file. */
export type ModelSource = string | Uint8Array;

export interface SessionOptions {
  /** intraOpNumThreads; 0 or undefined leaves onnxruntime's default (one thread per core). */
  threads?: number;
}

export async function openSession(model: ModelSource, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all' };
  if (options.threads) {
    opts.intraOpNumThreads = options.threads;
    opts.interOpNumThreads = 1;
  }
  // Two calls because create() is overloaded on path vs bytes and TypeScript will not pick for a union.
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

export interface Output {
  data: Float32Array;
  dims: number[];
}

export async function runSession(session: ort.InferenceSession, input: InputTensor): Promise<Output> {
  const meta = session.inputMetadata[0];
  const half = meta?.isTensor && meta.type === 'float16';
  const tensor = half ? new ort.Tensor('float16', fromNumbers(input.data, DataType.FLOAT16) as Uint16Array, input.dims) : new ort.Tensor('float32', input.data, input.dims);
  const result = await session.run({ [session.inputNames[0]!]: tensor }, [session.outputNames[0]!]);
  const out = result[session.outputNames[0]!]!;
  if (out.type === 'float16') return { data: Float32Array.from(out.data as Uint16Array, float16BitsToNumber), dims: [...out.dims] };
  if (out.type !== 'float32') throw new Error(`expected a float32 or float16 output, got ${out.type}`);
  return { data: out.data as Float32Array, dims: [...out.dims] };
}

export interface LatencyOptions {
  /** Untimed runs first (allocations, caches). Default 2. */
  warmup?: number;
  /** Timed runs; the median is reported. Default 10 (5 for the detector). */
  runs?: number;
}

/** Median wall time of session.run on `input`, in milliseconds. */
export async function measureLatency(session: ort.InferenceSession, input: InputTensor, options: LatencyOptions = {}): Promise<number> {
  const [times] = await timeInterleaved([() => runSession(session, input)], Math.max(1, options.runs ?? 10), { warmup: options.warmup ?? 2 });
  return median(times);
}
