/**
 * Timing of single layers in onnxruntime-node for the kernel split and its calibration
 * (bench/split-calibration.ts): a few nodes cut out of a graph as a model of their own, run on one
 * thread, medians of interleaved runs. The split times them through LayerTiming (layer-timing.ts), in
 * the inference worker (lib/runtime-worker.ts says why); the calibration, a benchmark, on its own thread.
 */
import type * as ort from 'onnxruntime-node';

import type { Graph, Node } from '../../model/graph';
import { Model } from '../../model/model';
import { createMessage, onnxTypes, type GraphProto, type ModelProto, type ValueInfoProto } from '../../model/proto';
import { Tensor } from '../../model/tensor';
import { encodeModel } from '../../model/write';
import { Rng } from '../../rng';
import { onnxruntime } from '../../runtime';
import { median, timeInterleaved } from '../../timing';

/** One thread, sequential: the cost model is per core, as on a busy server or a phone core. */
export const TIMING_SESSION: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  logSeverityLevel: 3,
};

/** `nodes` of `graph` as a model reading x (float, `shape`) and giving y; their constant inputs become initializers. */
export function subgraphBytes(graph: Graph, nodes: readonly Node[], x: string, shape: readonly number[], y: string): Uint8Array {
  const inits = new Map<string, Tensor>();
  for (const n of nodes) {
    for (const v of n.inputs) {
      if (!v || v === x || inits.has(v)) continue;
      const t = graph.constant(v);
      if (t) inits.set(v, Tensor.create(v, t.dataType, t.dims, t.data));
    }
  }
  const info = (name: string, dims?: readonly number[]) =>
    createMessage<ValueInfoProto>(onnxTypes().ValueInfo, {
      name,
      type: { tensor_type: { elem_type: 1, ...(dims ? { shape: { dim: dims.map((d) => ({ dim_value: d })) } } : {}) } } as ValueInfoProto['type'],
    });
  const g = createMessage<GraphProto>(onnxTypes().Graph, {
    name: 'layer',
    node: nodes.map((n) => n.proto),
    initializer: [...inits.values()].map((t) => t.proto),
    input: [info(x, shape)],
    output: [info(y)],
  });
  const proto = createMessage<ModelProto>(onnxTypes().Model, {
    ir_version: 8,
    producer_name: 'redpp',
    opset_import: [createMessage(onnxTypes().OperatorSetId, { domain: '', version: 13 })],
    graph: g,
  });
  return encodeModel(new Model(proto));
}

/** A deterministic pseudo-random float tensor, uniform in [-1, 1). */
export function randomInput(shape: readonly number[], seed = 7): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = 2 * rng.next() - 1;
  return new (onnxruntime('the kernel split\'s timing').Tensor)('float32', data, [...shape]);
}

/**
 * Times models on the same input, their runs interleaved so that load drifts hit all alike; returns each
 * one's per-run times (ms) after at least `warmup` untimed runs and 200 ms.
 */
export async function timeModels(models: readonly Uint8Array[], input: ort.Tensor, runs: number, warmup = 3): Promise<number[][]> {
  const sessions = await Promise.all(models.map((m) => onnxruntime('the kernel split\'s timing').InferenceSession.create(m, TIMING_SESSION)));
  try {
    const fns = sessions.map((s) => {
      const feeds = { [s.inputNames[0]]: input };
      return () => s.run(feeds);
    });
    return await timeInterleaved(fns, runs, { warmup, warmupMs: warmup ? 200 : 0 });
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

export interface RobustTime {
  /** Median over all runs. */
  median: number;
  /** Lowest of the per-round medians: a round hit by a burst of load from other processes does not count. */
  best: number;
}

/**
 * Times models in `rounds` rounds of `runs` interleaved runs, with a pause between rounds; each model's
 * median over all runs and its best round median. On a shared machine, load comes in bursts that can
 * slow a whole round tenfold; the best round median is the figure that repeats.
 */
export async function timeRobust(models: readonly Uint8Array[], input: ort.Tensor, runs: number, rounds = 3): Promise<RobustTime[]> {
  const all = models.map(() => [] as number[]);
  const best = models.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    if (r) await new Promise((res) => setTimeout(res, 50));
    const t = await timeModels(models, input, runs, r ? 1 : 3);
    t.forEach((times, j) => {
      all[j].push(...times);
      best[j] = Math.min(best[j], median(times));
    });
  }
  return all.map((times, j) => ({ median: median(times), best: best[j] }));
}

/** Times (ms) of one layer before and after a rewrite, timed alone on one thread (see timeRobust). */
export async function measureLayer(
  before: Uint8Array,
  after: Uint8Array,
  shape: readonly number[],
  runs: number,
): Promise<{ before: number; after: number; medianBefore: number; medianAfter: number }> {
  const [a, b] = await timeRobust([before, after], randomInput(shape), Math.max(1, Math.ceil(runs / 3)), 3);
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { before: r(a.best), after: r(b.best), medianBefore: r(a.median), medianAfter: r(b.median) };
}

export type LayerTimes = Awaited<ReturnType<typeof measureLayer>>;
