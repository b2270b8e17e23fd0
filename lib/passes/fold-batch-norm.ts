/**
 * foldBatchNorm: folds an inference-mode BatchNormalization, and any per-channel Mul/Add/Sub/Div by a
 * constant, into the Conv, ConvTranspose or Gemm that feeds it. y = s * (W x + b) + t becomes
 * (s W) x + (s b + t), computed in float64 and stored in the weights' type. Only when the layer's output
 * has no other reader, so nothing else sees the unscaled values. Hashing and merging then work on the
 * weights the model really applies.
 */
import { DataType, dataTypeName } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Model } from '../model/model';
import type { Tensor } from '../model/tensor';
import { addConstant, exclusiveConstant, removeIfUnused } from './constants';
import { newReport, type Pass, type PassReport } from './pass';

const LAYERS = new Set(['Conv', 'ConvTranspose', 'Gemm']);
const SCALES = new Set(['Mul', 'Add', 'Sub', 'Div']);
const FOLDABLE_TYPES = new Set<number>([DataType.FLOAT, DataType.DOUBLE]);

export const foldBatchNorm: Pass = {
  name: 'fold-batch-norm',
  exact: true,
  run(model: Model): PassReport {
    const report = newReport(this.name);
    const graph = model.graph;
    const orphans: string[] = [];
    let batchNorms = 0;
    let scales = 0;
    for (const layer of [...graph.nodes]) {
      if (!LAYERS.has(layer.opType) || layer.domain !== '') continue;
      for (;;) {
        const next = soleReader(graph, layer.outputs[0]);
        if (!next || next.domain !== '') break;
        let affine: Affine | string;
        if (next.opType === 'BatchNormalization') affine = batchNormAffine(graph, next);
        else if (SCALES.has(next.opType)) affine = scaleAffine(graph, layer, next);
        else break;
        if (typeof affine === 'string') {
          if (next.opType === 'BatchNormalization') report.skipped.push({ node: next.label, reason: affine });
          break;
        }
        const failed = applyAffine(graph, layer, affine);
        if (failed) {
          report.skipped.push({ node: next.label, reason: failed });
          break;
        }
        orphans.push(...next.inputs.filter((v) => v !== layer.outputs[0]));
        layer.setOutput(0, next.outputs[0]);
        graph.removeNode(next);
        report.changes.push({ node: layer.label, action: `folded ${next.opType} '${next.label}' into ${layer.opType}` });
        if (next.opType === 'BatchNormalization') batchNorms++;
        else scales++;
      }
    }
    for (const bn of graph.nodes) {
      if (bn.opType !== 'BatchNormalization' || bn.domain !== '') continue;
      if (report.skipped.some((s) => s.node === bn.label)) continue;
      report.skipped.push({ node: bn.label, reason: whyNotFoldable(graph, bn) });
    }
    const removed = removeIfUnused(graph, orphans);
    graph.pruneValueInfo();
    report.changed = report.changes.length > 0;
    report.stats = { batchNormsFolded: batchNorms, scalesFolded: scales, constantsRemoved: removed };
    return report;
  },
};

/** Per output channel: y = scale * x + shift. */
interface Affine {
  scale: Float64Array;
  shift: Float64Array;
}

function soleReader(graph: Graph, value: string): Node | undefined {
  if (!value || graph.isGraphOutput(value)) return undefined;
  const readers = graph.consumers(value);
  return readers.length === 1 ? readers[0] : undefined;
}

function numbers(t: Tensor | undefined): Float64Array | undefined {
  if (!t || !FOLDABLE_TYPES.has(t.dataType)) return undefined;
  return Float64Array.from(t.data as Float32Array);
}

function batchNormAffine(graph: Graph, bn: Node): Affine | string {
  if (bn.attrInt('training_mode', 0) === 1) return 'training_mode is set';
  if (bn.outputs.slice(1).some((o) => o && (graph.consumers(o).length > 0 || graph.isGraphOutput(o)))) {
    return 'its running mean/variance outputs are used';
  }
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => numbers(graph.constant(bn.input(i))));
  if (!scale || !bias || !mean || !variance) return 'its scale, bias, mean or variance is not a float constant';
  const n = scale.length;
  if (![bias, mean, variance].every((a) => a.length === n)) return 'its parameters have different lengths';
  const eps = bn.attrFloat('epsilon', 1e-5);
  const s = new Float64Array(n);
  const t = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    s[c] = scale[c] / Math.sqrt(variance[c] + eps);
    t[c] = bias[c] - mean[c] * s[c];
  }
  return { scale: s, shift: t };
}

/** A Mul/Add/Sub/Div by a constant that broadcasts along the channel axis only (or is a scalar). */
function scaleAffine(graph: Graph, layer: Node, op: Node): Affine | string {
  const x = layer.outputs[0];
  const constIndex = op.input(0) === x ? 1 : 0;
  if (op.input(1 - constIndex) !== x || op.inputs.length !== 2) return 'not a binary op on the layer output';
  if (constIndex === 0 && (op.opType === 'Sub' || op.opType === 'Div')) return 'the layer output is the right operand';
  const c = graph.constant(op.input(constIndex));
  const w = graph.constant(layer.input(1));
  const values = numbers(c);
  if (!c || !values || !w || c.dataType !== w.dataType) return 'the other operand is not a constant of the weights type';
  const channels = layerChannels(layer, w);
  const rank = layer.opType === 'Gemm' ? 2 : w.dims.length;
  const dims = c.dims;
  if (channels === undefined || dims.length > rank) return 'broadcasting would change the output shape';
  for (let i = 0; i < dims.length; i++) {
    const axis = rank - dims.length + i;
    if (dims[i] !== 1 && !(axis === 1 && dims[i] === channels)) return 'the constant is not per-channel';
  }
  const at = (ch: number) => values[values.length === 1 ? 0 : ch];
  const scale = new Float64Array(channels).fill(1);
  const shift = new Float64Array(channels);
  for (let ch = 0; ch < channels; ch++) {
    if (op.opType === 'Mul') scale[ch] = at(ch);
    else if (op.opType === 'Div') scale[ch] = 1 / at(ch);
    else if (op.opType === 'Add') shift[ch] = at(ch);
    else shift[ch] = -at(ch);
  }
  return { scale, shift };
}

function layerChannels(layer: Node, w: Tensor): number | undefined {
  const d = w.dims;
  if (layer.opType === 'Conv') return d[0];
  if (layer.opType === 'ConvTranspose') return d[1] * layer.attrInt('group', 1);
  if (d.length !== 2) return undefined;
  return layer.attrInt('transB', 0) ? d[0] : d[1];
}

/** Rewrites the layer's weights and bias; returns why it could not, or undefined on success. */
function applyAffine(graph: Graph, layer: Node, { scale, shift }: Affine): string | undefined {
  const w0 = graph.constant(layer.input(1));
  if (!w0) return `the ${layer.opType} weights are not constant`;
  if (!FOLDABLE_TYPES.has(w0.dataType)) return `the ${layer.opType} weights are ${dataTypeName(w0.dataType)}`;
  const channels = layerChannels(layer, w0);
  if (channels !== scale.length) return `${scale.length} channels do not match the ${layer.opType}'s ${channels}`;
  const biasIndex = 2;
  const hasBias = layer.input(biasIndex) !== '';
  const b0 = hasBias ? graph.constant(layer.input(biasIndex)) : undefined;
  if (hasBias && (!b0 || b0.dataType !== w0.dataType)) return `the ${layer.opType} bias is not a constant of the weights type`;
  if (layer.opType === 'Gemm') {
    const why = gemmBiasProblem(layer, b0, channels);
    if (why) return why;
  } else if (b0 && b0.size !== channels) return `the bias has ${b0.size} values for ${channels} channels`;

  const w = exclusiveConstant(graph, layer, 1)!;
  scaleWeights(layer, w.dims, w.mutableData() as Float32Array | Float64Array, scale);

  // Gemm adds beta * C, so C' = C * s + t / beta keeps beta * C' = (beta * C) * s + t.
  const beta = layer.opType === 'Gemm' ? layer.attrFloat('beta', 1) : 1;
  if (b0) {
    const b = exclusiveConstant(graph, layer, biasIndex)!;
    const bd = b.mutableData() as Float32Array | Float64Array;
    // C is row-major with one value per output column (or per channel for convs): channel = i % channels.
    for (let i = 0; i < bd.length; i++) bd[i] = bd[i] * scale[i % channels] + shift[i % channels] / beta;
  } else {
    if (beta === 0) layer.setAttribute('beta', 1, true);
    const div = beta === 0 ? 1 : beta;
    const values = w.dataType === DataType.FLOAT ? new Float32Array(channels) : new Float64Array(channels);
    for (let c = 0; c < channels; c++) values[c] = shift[c] / div;
    const name = addConstant(graph, `${layer.outputs[0]}_bias`, w.dataType, [channels], values, layer, layer.input(1));
    layer.setInput(biasIndex, name);
  }
  return undefined;
}

/** Gemm's C must hold one value per output column: shape [N], [1, N] or [M, N] (or [1] when N is 1). */
function gemmBiasProblem(layer: Node, c: Tensor | undefined, n: number): string | undefined {
  if (!c) return undefined;
  const d = c.dims;
  const perColumn = (d.length === 1 && d[0] === n) || (d.length === 2 && d[1] === n) || (c.size === 1 && n === 1);
  if (!perColumn) return `Gemm's C has shape [${d}], not one value per output column`;
  if (layer.attrFloat('beta', 1) === 0) return `Gemm's beta is 0 but it has a C input`;
  return undefined;
}

function scaleWeights(layer: Node, dims: number[], w: Float32Array | Float64Array, s: Float64Array): void {
  if (layer.opType === 'Conv') {
    const per = w.length / dims[0];
    for (let o = 0; o < dims[0]; o++) scaleRun(w, o * per, (o + 1) * per, s[o]);
  } else if (layer.opType === 'ConvTranspose') {
    // W is [C_in, C_out / group, k...]; output channel = group(i) * (C_out / group) + j.
    const [cin, coutPerGroup] = dims;
    const group = layer.attrInt('group', 1);
    const cinPerGroup = cin / group;
    const k = w.length / (cin * coutPerGroup);
    for (let i = 0; i < cin; i++) {
      const g = Math.floor(i / cinPerGroup);
      for (let j = 0; j < coutPerGroup; j++) {
        const f = s[g * coutPerGroup + j];
        const base = (i * coutPerGroup + j) * k;
        for (let x = 0; x < k; x++) w[base + x] *= f;
      }
    }
  } else {
    const [rows, cols] = dims;
    const transB = layer.attrInt('transB', 0) === 1;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) w[r * cols + c] *= s[transB ? r : c];
  }
}

/** w[from..to) *= f: the hot loop of a fold (every weight of the layer), kept small for the JIT. */
function scaleRun(w: Float32Array | Float64Array, from: number, to: number, f: number): void {
  for (let i = from; i < to; i++) w[i] *= f;
}

function whyNotFoldable(graph: Graph, bn: Node): string {
  const x = bn.input(0);
  const p = graph.producer(x);
  if (!p || !LAYERS.has(p.opType)) return `its input comes from ${p ? p.opType : 'a graph input'}, not Conv/ConvTranspose/Gemm`;
  if (graph.isGraphOutput(x) || graph.consumers(x).length > 1) return `the ${p.opType} output has other readers`;
  return 'not foldable';
}
