/**
 * Helpers for the channel/merge tests: run a model in onnxruntime-node, compare outputs, and plant
 * duplicate or dead neurons into a channel group (in every producer and per-channel parameter, as a
 * real duplicate would be).
 */
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';

import { encodeModel, type Model } from '../../lib/model';
import { axisView, type ChannelGroup, type ChannelSite } from '../../lib/passes/channels';
import { Rng } from '../../lib/rng';

export type Feeds = Record<string, { dims: number[]; data: Float32Array }>;

/** Random inputs for every runtime input; symbolic dims take `dims[name]` or 1 (batch) / 8. */
export function randomFeeds(model: Model, seed = 1, dims: Record<string, number[]> = {}): Feeds {
  const rng = new Rng(seed);
  const feeds: Feeds = {};
  for (const i of model.graph.runtimeInputs) {
    const shape =
      dims[i.name] ??
      (i.type?.tensor_type?.shape?.dim ?? []).map((d, k) => (d.value === 'dim_value' ? Number(d.dim_value) : k === 0 ? 1 : 8));
    feeds[i.name] = { dims: shape, data: rng.normals(shape.reduce((a, b) => a * b, 1), 1) };
  }
  return feeds;
}

export async function runModel(model: Model | Uint8Array, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 2 });
  try {
    const input: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) input[k] = new ort.Tensor('float32', v.data, v.dims);
    const out = await session.run(input);
    const result: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(out)) result[k] = v.data as Float32Array;
    return result;
  } finally {
    await session.release();
  }
}

/** Largest |a - b| over the largest |b|, across every output. */
export function relativeDeviation(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let worst = 0;
  for (const k of Object.keys(b)) {
    const [x, y] = [a[k], b[k]];
    if (!x || x.length !== y.length) return Infinity;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < y.length; i++) {
      scale = Math.max(scale, Math.abs(y[i]));
      const d = Math.abs(x[i] - y[i]);
      diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    }
    worst = Math.max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

/** Visits channel position pairs of a site for channels (from, to) of group g. */
function eachPosition(site: ChannelSite, g: number, channel: number, fn: (position: number) => void): void {
  let at = 0;
  for (const s of site.layout.segments) {
    if (s.group === g && channel >= s.start && channel < s.start + s.length) fn(at + channel - s.start);
    at += s.length;
  }
}

function editSlices(model: Model, site: ChannelSite, edit: (data: Float32Array, index: (p: number) => number[]) => void): void {
  const t = model.graph.constant(site.node.input(site.input))!;
  const data = t.mutableData() as Float32Array;
  const view = axisView(t.dims, site.axis);
  const inner = site.layout.inner;
  edit(data, (p) => {
    const out: number[] = [];
    for (let o = 0; o < view.outer; o++) {
      for (let k = 0; k < inner * view.stride; k++) out.push((o * view.length + p * inner) * view.stride + k);
    }
    return out;
  });
}

/** Makes channel `dup` an exact copy of channel `keep` in every producer and parameter of the group. */
export function plantDuplicate(model: Model, group: ChannelGroup, keep: number, dup: number): void {
  for (const site of [...group.producers, ...group.params]) {
    editSlices(model, site, (data, index) => {
      const from: number[][] = [];
      eachPosition(site, group.id, keep, (p) => from.push(index(p)));
      let k = 0;
      eachPosition(site, group.id, dup, (p) => {
        const src = from[Math.min(k++, from.length - 1)];
        if (!src) return;
        index(p).forEach((i, j) => (data[i] = data[src[j]]));
      });
    });
  }
}

/** Like plantDuplicate, plus a relative perturbation of `noise` on the producer rows (a near duplicate). */
export function plantNearDuplicate(model: Model, group: ChannelGroup, keep: number, dup: number, noise: number, rng: Rng): void {
  plantDuplicate(model, group, keep, dup);
  for (const site of group.producers) {
    editSlices(model, site, (data, index) => {
      eachPosition(site, group.id, dup, (p) => index(p).forEach((i) => (data[i] *= 1 + noise * rng.normal())));
    });
  }
}

/** Zeros channel `c`'s rows (weights and bias) in every producer of the group. */
export function plantDead(model: Model, group: ChannelGroup, c: number): void {
  for (const site of group.producers) {
    editSlices(model, site, (data, index) => eachPosition(site, group.id, c, (p) => index(p).forEach((i) => (data[i] = 0))));
  }
}

/** The length of axis `axis` of the constant a node reads at `input` (after edits). */
export function dimOf(model: Model, nodeName: string, input: number, axis: number): number {
  const node = model.graph.nodes.find((n) => n.name === nodeName)!;
  return model.graph.constant(node.input(input))!.dims[axis];
}

/** The PP-OCR models the package ships for tests, with the input sizes used to run them. */
export const PPOCR = [
  { name: 'det', file: 'ch_PP-OCRv4_det_infer.onnx', input: [1, 3, 64, 96] },
  { name: 'rec', file: 'ch_PP-OCRv4_rec_infer.onnx', input: [1, 3, 48, 96] },
  { name: 'cls', file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', input: [1, 3, 48, 192] },
];
export const PPOCR_ASSETS = path.join(__dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets');

/**
 * Points graph outputs that come out of a Sigmoid at its input instead: PP-OCR det's probability map
 * is saturated at 0 on random inputs, so only the logits show whether two models agree.
 */
export function exposeLogits(model: Model): void {
  for (const out of model.graph.proto.output) {
    const p = model.graph.producer(out.name);
    if (p?.opType !== 'Sigmoid') continue;
    out.name = p.input(0);
    model.graph.removeNode(p);
  }
}
