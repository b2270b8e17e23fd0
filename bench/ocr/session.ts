/** onnxruntime-node sessions for the OCR models: one input, first output, float32, and latency medians. */
import * as ort from 'onnxruntime-node';

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
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input.data, input.dims) };
  const result = await session.run(feeds, [session.outputNames[0]!]);
  const out = result[session.outputNames[0]!]!;
  if (out.type !== 'float32') throw new Error(`expected a float32 output, got ${out.type}`);
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
