/**
 * The hash pass (RED++ step 1, the only lossy step): every Conv, ConvTranspose, Gemm and MatMul with
 * constant float weights is hashed per output neuron by the native kernel, one pool task per layer.
 *
 * Layer-adaptive: a neuron with a small fan-in (depthwise convs, the first conv) has few weights, so
 * replacing each by its interval's representative moves its output far more than a wide neuron's;
 * measured on PP-OCRv4 (README, "Defaults"), such layers dominate the damage. They are protected: left
 * as they are below `minFanIn`, or hashed with their own beta through `layerBeta`.
 */
import { DataType, dataTypeName, fromNumbers } from '../model/dtype';
import type { Model } from '../model/model';
import type { Tensor } from '../model/tensor';
import type { WorkerPool } from '../pool';
import type { Center } from '../kernels/hash';
import { newReport, type Pass, type PassReport } from './pass';
import { splitCounts, type SplitCounts } from './splitting';
import { isWeighted, layerIdentity, neuronLayout, type LayerIdentity, type NeuronLayout } from './weight-layout';

const HASHABLE = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

export interface HashPassOptions {
  beta: number;
  center: Center;
  /** Layers whose neurons have fewer weights than this are left alone. */
  minFanIn: number;
  /** Node names (exact) or patterns of layers to leave alone. */
  skip: readonly (string | RegExp)[];
  /** A beta per layer name, overriding `beta` (0 leaves the layer as it is). */
  layerBeta: Readonly<Record<string, number>>;
}

/** What hashing did to one layer. */
export interface HashedLayer extends LayerIdentity {
  beta: number;
  /** Distinct values per neuron after hashing. */
  distinct: { min: number; mean: number; max: number };
  /** RMS of (hashed - original) over the layer, and that relative to the RMS of the weights. */
  rmsError: number;
  relativeError: number;
  /** Bits an index into the neuron's values needs (ceil(log2(max distinct))). */
  indexBits: number;
  /** Input-splitting counts of the hashed weights. */
  split: SplitCounts;
}

export interface HashPassReport extends PassReport {
  layers: HashedLayer[];
}

export interface HashProgress {
  done: number;
  total: number;
  layer: string;
}

/** The hash pass over `pool`; `onLayer` reports each finished layer (for progress bars). */
export function hashPass(options: HashPassOptions, pool: WorkerPool, onLayer?: (p: HashProgress) => void): Pass {
  return {
    name: 'hash',
    exact: false,
    async run(model: Model): Promise<HashPassReport> {
      const report: HashPassReport = { ...newReport('hash'), layers: [] };
      const jobs = planLayers(model, options, report);
      // Largest first: the pool then ends with small tasks and no thread idles behind one big layer.
      jobs.sort((a, b) => b.layout.tensor.size - a.layout.tensor.size);
      let done = 0;
      await Promise.all(
        jobs.map(async ({ layout, beta }) => {
          const layer = await hashLayer(layout, beta, options.center, pool);
          report.layers.push(layer);
          report.changes.push({ node: layer.node, action: `hashed ${layer.neurons} neurons of ${layer.fanIn} weights` });
          onLayer?.({ done: ++done, total: jobs.length, layer: layer.node });
        }),
      );
      // Report in graph order, whatever order the pool finished in.
      const order = new Map(model.graph.nodes.map((n, i) => [n.label, i]));
      report.layers.sort((a, b) => order.get(a.node)! - order.get(b.node)!);
      report.changed = report.layers.length > 0;
      report.stats = {
        layers: report.layers.length,
        skipped: report.skipped.length,
        weights: report.layers.reduce((a, l) => a + l.neurons * l.fanIn, 0),
      };
      return report;
    },
  };
}

interface Job {
  layout: NeuronLayout;
  beta: number;
}

function planLayers(model: Model, o: HashPassOptions, report: PassReport): Job[] {
  const jobs: Job[] = [];
  const claimed = new Map<Tensor, string>();
  for (const node of model.graph.nodes) {
    if (!isWeighted(node)) continue;
    const skip = (reason: string) => report.skipped.push({ node: node.label, reason });
    const layout = neuronLayout(model.graph, node);
    if ('skip' in layout) {
      skip(layout.skip);
      continue;
    }
    const beta = Object.hasOwn(o.layerBeta, node.label) ? o.layerBeta[node.label] : o.beta;
    const owner = claimed.get(layout.tensor);
    if (owner) skip(`shares its weights with '${owner}', hashed there`);
    else if (!HASHABLE.has(layout.tensor.dataType)) skip(`${dataTypeName(layout.tensor.dataType)} weights are left as they are`);
    else if (o.skip.some((p) => (typeof p === 'string' ? p === node.label : p.test(node.label)))) skip('matches options.skip');
    else if (beta === 0) skip('beta is 0 for this layer');
    else if (layout.fanIn < o.minFanIn && !Object.hasOwn(o.layerBeta, node.label)) {
      skip(`fan-in ${layout.fanIn} < minFanIn ${o.minFanIn} (protected)`);
    } else {
      claimed.set(layout.tensor, node.label);
      jobs.push({ layout, beta });
    }
  }
  return jobs;
}

async function hashLayer(layout: NeuronLayout, beta: number, center: Center, pool: WorkerPool): Promise<HashedLayer> {
  const { tensor, neurons, fanIn } = layout;
  const rows = movableRows(layout) ?? layout.toRows(tensor.toFloat32());
  let sumSq = 0;
  for (let i = 0; i < rows.length; i++) sumSq += rows[i] * rows[i];
  const r = await pool.hash({ weights: rows, groupSize: fanIn, beta, center });
  const hashed = layout.fromRows(r.values);
  tensor.setData(tensor.dataType === DataType.FLOAT ? hashed : fromNumbers(hashed, tensor.dataType));

  let errSq = 0;
  let minD = Infinity;
  let maxD = 0;
  let sumD = 0;
  for (let g = 0; g < neurons; g++) {
    errSq += r.rmsError[g] * r.rmsError[g] * fanIn;
    minD = Math.min(minD, r.distinct[g]);
    maxD = Math.max(maxD, r.distinct[g]);
    sumD += r.distinct[g];
  }
  const n = neurons * fanIn;
  const rms = Math.sqrt(errSq / n);
  const weightRms = Math.sqrt(sumSq / n);
  return {
    ...layerIdentity(layout),
    beta,
    distinct: { min: minD, mean: sumD / neurons, max: maxD },
    rmsError: rms,
    relativeError: weightRms > 0 ? rms / weightRms : 0,
    indexBits: Math.ceil(Math.log2(Math.max(1, maxD))),
    split: splitCounts(fanIn, r.distinct, r.zeros),
  };
}

/**
 * The tensor's own float32 array when the pool may take it as the rows (a layout already in rows, that
 * no other tensor and no buffer of the caller's shares), so no copy of the layer is made: in shared
 * memory (a model read from a file) the worker hashes it where it is; in an ArrayBuffer of its own it
 * moves to the worker and back. The tensor gets the hashed array back before anything reads it again.
 */
function movableRows(layout: NeuronLayout): Float32Array | undefined {
  const { tensor } = layout;
  if (!layout.contiguous || tensor.dataType !== DataType.FLOAT || !tensor.editableInPlace) return undefined;
  const d = tensor.mutableData() as Float32Array;
  if (d.buffer instanceof SharedArrayBuffer) return d;
  return d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : undefined;
}
