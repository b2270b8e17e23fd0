/**
 * The kernel split (RED's uneven depthwise separation): a k×k Conv (group 1) whose filters share kernels
 * computes each distinct kernel once per input channel and sums the right ones into each output.
 *
 *   y[o] = b[o] + sum_c W[o, c] * x[c]            (dense: C_out * C_in kernels)
 *        = b[o] + sum_c K[c, idx(o, c)] * x[c]    (K[c, j]: the m_c distinct non-zero kernels of channel c)
 *
 * becomes a grouped conv (group = C_in, M kernels per channel) followed by a 1×1 conv of 0/1 selectors
 * that carries the bias (rewrite.ts). Uneven counts m_c are either padded to M = max m_c with zero
 * kernels, or the channels are bucketed by m_c into a few grouped convs (Gather of each bucket's
 * channels, Concat of the results). Which form, and whether to rewrite at all, is decided by a cost model
 * calibrated in onnxruntime-node (cost-model.ts; its data in calibration.ts, made by
 * bench/split-calibration.ts). Exact up to float summation order.
 *
 * Not to be confused with input splitting (../input-splitting.ts), which counts the multiplications a
 * hashed neuron needs and rewrites nothing.
 */
import { layerOf, layerTable, type Layer } from '../../layers';
import { DataType } from '../../model/dtype';
import type { Model } from '../../model/model';
import type { ResolvedKernelSplitOptions } from '../../options';
import { staticShapes } from '../../stats';
import type { KernelSplitRecord, LayerPlan } from '../layer-records';
import { newReport, type Pass, type PassReport } from '../pass';
import { inProcess, type Sharing, type TaskRunner } from '../tasks';
import { SPLIT_COST } from './calibration';
import { bestPlan, denseCost, type ConvShape, type SplitCostModel } from './cost-model';
import { rewrite } from './rewrite';
import { kernelSharing } from './sharing';
import { LayerTiming } from './layer-timing';
import { subgraphBytes } from './timing';

export { kernelSharing, type KernelSharing } from './sharing';
export { bestPlan, denseCost, planCost, type ConvShape, type OpCost, type SplitCostModel, type SplitPlan } from './cost-model';

/** The cost model calibrated on the development machine (calibration.ts). */
export const DEFAULT_COST_MODEL: SplitCostModel = SPLIT_COST.model;

export interface KernelSplitProgress {
  done: number;
  total: number;
  layer: string;
}

/** The eligible convs: group 1, 2-D, more than one tap, constant float32 weights, constant (or no) bias. */
function candidate(layer: Layer): { ok: true; w: Float32Array; dims: number[] } | { ok: false; reason: string } {
  const { node } = layer;
  if (node.opType !== 'Conv' || node.domain !== '') return { ok: false, reason: 'not a Conv' };
  if (node.attrInt('group', 1) !== 1) return { ok: false, reason: 'grouped conv' };
  const t = layer.weight();
  if (!t) return { ok: false, reason: 'weights are not a constant' };
  if (t.dataType !== DataType.FLOAT) return { ok: false, reason: 'weights are not float32' };
  if (t.dims.length !== 4) return { ok: false, reason: `weight of rank ${t.dims.length}` };
  if (t.dims[2] * t.dims[3] < 2) return { ok: false, reason: '1×1 kernel' };
  if (layer.biasValue && !layer.bias()) return { ok: false, reason: 'bias is not a constant' };
  return { ok: true, w: t.data as Float32Array, dims: t.dims };
}

/**
 * The kernel-split pass. `costModel` replaces the calibrated one (calibration, tests); `onLayer` reports
 * each conv as it is looked at (for progress bars); `runner` finds the kernels each conv's filters
 * share (a read of every weight; prune() passes its worker pool).
 */
export function kernelSplitPass(
  options: ResolvedKernelSplitOptions,
  {
    costModel = DEFAULT_COST_MODEL,
    onLayer,
    runner = inProcess,
  }: { costModel?: SplitCostModel; onLayer?: (p: KernelSplitProgress) => void; runner?: TaskRunner } = {},
): Pass {
  return {
    name: 'kernel-split',
    exact: true,
    async run(model: Model, plan: LayerPlan): Promise<PassReport> {
      const report = newReport('kernel-split');
      if (options.mode === 'off') return report;
      const graph = model.graph;
      const { shapeOf } = staticShapes(graph, options.inputShapes);
      // The latency of a split is measured where onnxruntime-node is installed (the decision is the cost
      // model's), in a worker of its own (lib/runtime-worker.ts), started at the first conv split: most
      // prunes split none.
      const timing = new LayerTiming(options.measureRuns);
      const convs = layerTable(graph).filter((l) => l.node.opType === 'Conv');
      const candidates = convs.map(candidate);
      // Every eligible conv's sharing at once, on the runner; rewriting one conv leaves the others' weights as they are.
      const sharings = await Promise.all(
        candidates.map((c, i): Promise<Sharing> | undefined => {
          if (!c.ok) return undefined;
          const [cout, cin, kh, kw] = c.dims;
          return runner.share({ layer: convs[i].node.label, weights: c.w, cout, cin, k: kh * kw });
        }),
      );
      let eligible = 0;
      let split = 0;
      try {
        for (const [i, layer] of convs.entries()) {
          const { node } = layer;
          onLayer?.({ done: i, total: convs.length, layer: node.label });
          const cand = candidates[i];
          if (!cand.ok) {
            if (cand.reason !== 'grouped conv' && cand.reason !== '1×1 kernel') report.skipped.push({ node: node.label, reason: cand.reason });
            continue;
          }
          eligible++;
          const [cout, cin, kh, kw] = cand.dims;
          const sharing = sharings[i]!;
          const x = shapeOf(node.input(0));
          const y = shapeOf(node.outputs[0]);
          const s: ConvShape | null =
            x && y && x.length === 4 && y.length === 4
              ? { batch: x[0], cin, cout, k: kh * kw, inPixels: x[2] * x[3], outPixels: y[2] * y[3] }
              : null;
          let sum = 0;
          for (const m of sharing.counts) sum += m;
          const record: KernelSplitRecord = {
            cin,
            cout,
            kernel: [kh, kw],
            mc: { min: Math.min(...sharing.counts), mean: Number((sum / cin).toPrecision(4)), max: Math.max(...sharing.counts) },
            zeroKernels: sharing.zeroKernels,
            predicted: null,
            split: false,
          };
          plan.record(layer).kernelSplit = record;
          const form = bestPlan(s ?? fallbackShape(cin, cout, kh * kw), sharing.counts, costModel);
          if (s) {
            const denseMs = denseCost(s, costModel);
            const r4 = (v: number) => Number(v.toPrecision(4));
            record.predicted = {
              denseMs: r4(denseMs),
              splitMs: r4(form.cost),
              ratio: r4(form.cost / denseMs),
              form: form.form,
              buckets: form.buckets.map((b) => b.mult),
            };
          }
          const worth = record.predicted !== null && record.predicted.ratio < costModel.threshold;
          if (options.mode === 'auto' && !worth) {
            report.skipped.push({
              node: node.label,
              reason: record.predicted
                ? `predicted ${record.predicted.ratio.toFixed(2)}× the dense cost (m_c mean ${record.mc.mean.toFixed(1)} of ${cout})`
                : 'shapes unknown',
            });
            continue;
          }
          let before: Uint8Array | undefined;
          if (x && (await timing.available())) before = subgraphBytes(graph, [node], node.input(0), x, node.outputs[0]);
          const added = rewrite(graph, node, kernelSharing(cand.w, cout, cin, kh * kw), form);
          record.split = true;
          record.replacedBy = added.filter((n) => layerOf(n)).map((n) => n.label);
          for (const n of added) {
            const l = layerOf(n);
            if (l) plan.record(l, 'kernel-split');
          }
          split++;
          report.changes.push({
            node: node.label,
            action: `split into ${form.buckets.length} grouped conv(s) (×${form.buckets.map((b) => b.mult).join(', ×')}) and a 1×1 conv of ${form.mid} inputs`,
          });
          if (before && x) {
            record.latencyMs = await timing.measure(before, subgraphBytes(graph, added, added[0].input(0), x, added.at(-1)!.outputs[0]), x);
          }
        }
      } finally {
        await timing.release();
      }
      if (convs.length) onLayer?.({ done: convs.length, total: convs.length, layer: '' });
      report.changed = split > 0;
      report.stats = { eligible, split };
      return report;
    },
  };
}

/** A nominal shape (batch 1, 32×32) for the plan when shapes are unknown ('force'). */
function fallbackShape(cin: number, cout: number, k: number): ConvShape {
  return { batch: 1, cin, cout, k, inPixels: 1024, outPixels: 1024 };
}
