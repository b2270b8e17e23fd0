/**
 * One record per layer, which the passes fill as they go (hashing, merging, the kernel split, packing)
 * and the report reads as it is: every per-layer figure has one place, under one name, and nothing is
 * joined back together by node name at the end.
 */
import type { HashBackend } from '../hash';
import type { TensorData } from '../model/dtype';
import type { UniformExport } from './codecs/encode';
import type { CodecSetting } from './codecs/settings';
import { Layer, layerTable } from '../layers';
import { dataTypeName } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Model } from '../model/model';
import { layerCost, staticShapes, type LayerCost } from '../stats';

/** Which kernel hashed a layer (RED++ at one beta). */
export interface HashRecord {
  /** The native CPU kernel, CUDA, or the TypeScript reference (the addon did not load). */
  backend: HashBackend;
}

/**
 * RED++ input splitting, counted on a layer's weights (per output position, summed over neurons): after
 * hashing, neuron j has u_j distinct values over its n inputs, so it needs u_j multiplications instead
 * of n, and inputs whose weight is 0 drop out of the sums.
 */
export interface InputSplitCounts {
  /** Sum over neurons of the distinct non-zero values (multiplications after splitting). */
  mults: number;
  /** Sum over neurons of (non-zero weights - 1) (additions after splitting). */
  adds: number;
  /** Distinct values per neuron. */
  distinct: { min: number; mean: number; max: number };
}

/** Multiplications and additions of one run: dense before, with input splitting after. */
export interface OpCounts {
  mults: { before: number; after: number };
  adds: { before: number; after: number };
}

/** What merging changed in a layer: its output neurons (as a producer), its input channels (as a consumer). */
export interface MergeRecord {
  outputs?: { before: number; after: number };
  inputs?: { before: number; after: number };
}

/** The kernel-split analysis of one eligible conv (group 1, k×k). */
export interface KernelSplitRecord {
  cin: number;
  cout: number;
  kernel: number[];
  /** Distinct non-zero kernels per input channel (m_c). */
  mc: { min: number; mean: number; max: number };
  /** Zero kernels (of C_out * C_in). */
  zeroKernels: number;
  /** Predicted ms of the dense conv and of the cheapest split form, and their ratio (split / dense); null without shapes. */
  predicted: { denseMs: number; splitMs: number; ratio: number; form: 'padded' | 'buckets'; buckets: number[] } | null;
  split: boolean;
  /** Nodes that replaced the conv, when it was split. */
  replacedBy?: string[];
  /**
   * Measured ms of the layer alone (before: the conv as a one-node model; after: its replacement), one
   * thread, when it was split and measuring was asked: best round median, and median over all runs.
   */
  latencyMs?: { before: number; after: number; medianBefore: number; medianAfter: number };
}

/** How a layer's weights are stored in the file, when not as a dense tensor (codecs/export.ts). */
export interface PackRecord {
  /** palette: a codebook per group and an index per weight; uniform: a level per weight, a scale and zero point per neuron; half: float16. */
  form: 'palette' | 'uniform' | 'half';
  /** palette: codebook entries of the group with the most. */
  codes?: number;
  /** palette, uniform: bits per stored index or level (the narrowest word format that holds them). */
  indexBits?: number;
  /** Bytes in the file: the dense tensor before; after, every constant of the form and its chain's nodes. */
  bytes: { before: number; after: number };
}

/** The weight error of a layer's codec: RMS of (coded - original), and that relative to the RMS of the weights. */
export interface WeightError {
  rms: number;
  relative: number;
}

export interface LayerRecord {
  /** The layer in the model being pruned (not part of the JSON report). */
  readonly layer: Layer;
  node: string;
  op: string;
  /** The weight's value name and element type. */
  weight: string;
  dtype: string;
  /** Set for layers a pass created (the kernel split's convs): the pass. */
  addedBy?: string;
  neurons: { before: number; after: number };
  /** Weights per neuron, before. */
  fanIn: number;
  params: { before: number; after: number };
  macs: { before: number | null; after: number | null };
  /** How the layer's weights are coded (absent: as they are). */
  codec?: CodecSetting;
  /** The codec's weight error (absent for layers left as they are). */
  weightError?: WeightError;
  /** The budget's prediction of the deviation this layer's codec adds to the model's outputs. */
  deviation?: { predicted: number };
  /** Present when the layer was hashed. */
  hash?: HashRecord;
  /** Why the layer was not hashed. */
  skipped?: string;
  /** Present when merging edited the layer. */
  merge?: MergeRecord;
  kernelSplit?: KernelSplitRecord;
  packed?: PackRecord;
  /** Distinct values per neuron of the final weights (before packing). */
  distinctPerNeuron: { min: number; mean: number; max: number };
  /** Input-splitting arithmetic of one run at the input shapes, on the final weights; null when a shape is unknown. */
  ops: OpCounts | null;
  /** Time spent on this layer in the pool's workers, per pass. */
  timingsMs: { hash?: number; pack?: number };
}

/** The records of a model's layers, in graph order, and the layer each belongs to. */
export class LayerPlan {
  readonly records: LayerRecord[] = [];
  /** What the fidelity budget chose, when it ran (budget/index.ts). */
  budget?: BudgetRecord;
  private readonly byNode = new Map<Node, LayerRecord>();
  /** Input splitting per output position, as counted when a pass last set a layer's weights (hashing). */
  private readonly counts = new Map<LayerRecord, InputSplitCounts>();
  /** What a codec left in a layer (the array it set) and the parts its export needs. */
  private readonly encodings = new Map<LayerRecord, { data: TensorData; uniform?: UniformExport }>();

  /**
   * A record for every layer of the model as it is now, with its cost at `inputShapes` as the
   * `before` figures (layers whose weights are not constants, and are not weight transforms of
   * constants, have none: they are not layers anything prunes).
   */
  constructor(model: Model, inputShapes: Record<string, number[]> = {}) {
    const { shapes, shapeOf } = staticShapes(model.graph, inputShapes);
    for (const layer of layerTable(model.graph)) {
      const cost = layerCost(layer, shapes, shapeOf);
      if (cost) this.add(layer, cost);
    }
  }

  /** The record of a layer: its own, or a new one (a layer that a pass created, or that had no constant weights at first). */
  record(layer: Layer, addedBy?: string): LayerRecord {
    return this.byNode.get(layer.node) ?? this.add(layer, { neurons: 0, fanIn: 0, params: 0, macs: 0 }, addedBy);
  }

  /** The record of a node, when it has one. */
  recordOf(node: Node): LayerRecord | undefined {
    return this.byNode.get(node);
  }

  /** Input splitting of a layer's weights as a pass just made them (the hash kernel counts as it goes). */
  setInputSplitting(record: LayerRecord, counts: InputSplitCounts): void {
    this.counts.set(record, counts);
  }

  /** Forgets the counts of a layer whose weights changed since (merging edited its rows). */
  forgetInputSplitting(record: LayerRecord): void {
    this.counts.delete(record);
  }

  inputSplitting(record: LayerRecord): InputSplitCounts | undefined {
    return this.counts.get(record);
  }

  /** Keeps what a codec set as a layer's weights: its export applies only while they are still these. */
  setEncoded(record: LayerRecord, encoding: { data: TensorData; uniform?: UniformExport }): void {
    this.encodings.set(record, encoding);
  }

  encoded(record: LayerRecord): { data: TensorData; uniform?: UniformExport } | undefined {
    return this.encodings.get(record);
  }

  /**
   * The cost of every layer still in the graph as its `after` figures (a layer a rewrite removed costs
   * nothing; what replaced it has records of its own), and its weight's current name.
   */
  measureAfter(graph: Graph, inputShapes: Record<string, number[]>): void {
    const { shapes, shapeOf } = staticShapes(graph, inputShapes);
    for (const r of this.records) {
      const cost = r.layer.present ? layerCost(r.layer, shapes, shapeOf) : undefined;
      r.neurons.after = cost?.neurons ?? 0;
      r.params.after = cost?.params ?? 0;
      r.macs.after = cost ? cost.macs : 0;
      if (r.layer.present) r.weight = r.layer.weightValue;
    }
  }

  private add(layer: Layer, cost: LayerCost, addedBy?: string): LayerRecord {
    const t = layer.weight();
    const record: LayerRecord = {
      layer,
      node: layer.name,
      op: layer.node.opType,
      weight: layer.weightValue,
      dtype: t ? dataTypeName(t.dataType) : 'unknown',
      ...(addedBy ? { addedBy } : {}),
      neurons: { before: cost.neurons, after: cost.neurons },
      fanIn: cost.fanIn,
      params: { before: cost.params, after: cost.params },
      macs: { before: cost.macs, after: cost.macs },
      distinctPerNeuron: { min: 0, mean: 0, max: 0 },
      ops: null,
      timingsMs: {},
    };
    // The layer is not enumerable: the record prints as its figures alone.
    Object.defineProperty(record, 'layer', { enumerable: false });
    this.records.push(record);
    this.byNode.set(layer.node, record);
    return record;
  }
}

/** One point measured on the allocation path. */
export interface Checkpoint {
  /** Bytes of the layers' weights in the file, and the whole file's (estimated). */
  layerBytes: number;
  fileBytes: number;
  predicted: number;
  measured: number;
}

/** What the budget decided, for the report. */
export interface BudgetRecord {
  maxDeviation?: number;
  targetSize?: number;
  /** The predicted and measured deviation of the chosen allocation. */
  predicted: number;
  measured: number;
  /** The checkpoints measured on the path, in order (the trade-off the budget chose on). */
  checkpoints: Checkpoint[];
  /** The one chosen. */
  chosen: number;
  probes: number;
  /** Layers whose prediction a measurement corrected (step 5), and the paths made. */
  corrected: number;
  paths: number;
  /** Each output's relative L2 distance over the probes with the chosen codecs (at the logits before a Sigmoid or Softmax). */
  outputs: { name: string; measured: number }[];
}
