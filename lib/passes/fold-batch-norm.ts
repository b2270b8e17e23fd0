/**
 * foldBatchNorm: folds an inference-mode BatchNormalization, and any per-channel Mul/Add/Sub/Div by a
 * constant, into the layer that feeds it (Conv, ConvTranspose, Gemm: every layer kind with a bias). y = s * (W x + b) + t becomes
 * (s W) x + (s b + t), computed in float64 and stored in the weights' type. Only when the layer's output
 * has no other reader, so nothing else sees the unscaled values. Hashing and merging then work on the
 * weights the model really applies.
 */
import { layerOf, layerTable, scaleNeurons, type Layer } from '../layers';
import { DataType, dataTypeName, isArithmeticFloat } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Model } from '../model/model';
import type { Tensor } from '../model/tensor';
import { addConstant, exclusiveConstant, isConstantNodeValue, removeIfUnused } from './constant-tensors';
import { newReport, type Pass, type PassReport } from './pass';
import { slices } from '../turns';

const SCALES = new Set(['Mul', 'Add', 'Sub', 'Div']);

/** Layers a scale folds into: those with a bias input (it takes the shift). */
const foldsInto = (layer: Layer | undefined): layer is Layer => layer !== undefined && layer.kind.biasInput !== undefined;

export const foldBatchNorm: Pass = {
  name: 'fold-batch-norm',
  exact: true,
  async run(model: Model): Promise<PassReport> {
    const report = newReport(this.name);
    const graph = model.graph;
    const orphans: string[] = [];
    // The folds, made on the weights at once and on the graph after the loop: a layer's new output,
    // the nodes folded away. Until then the graph reads as loaded (the chain's readers are the same),
    // and its index serves every fold (made anew after each, ResNet-50's 53 folds spent 25 ms on it).
    const rewired: { layer: Node; output: string }[] = [];
    const folded: { layer: Node; node: Node }[] = [];
    // Each fold rescales a layer's weights here, in slices (ResNet-50's 53: 50-70 ms in TypeScript).
    const pause = slices();
    for (const table of layerTable(graph)) {
      await pause();
      if (!foldsInto(table)) continue;
      const layer = table.node;
      let output = layer.outputs[0];
      for (;;) {
        const next = soleReader(graph, output);
        if (!next || next.domain !== '') break;
        let affine: Affine | string;
        if (next.opType === 'BatchNormalization') affine = batchNormAffine(graph, next);
        else if (SCALES.has(next.opType)) affine = scaleAffine(graph, table, next, output);
        else break;
        if (typeof affine === 'string') {
          if (next.opType === 'BatchNormalization') report.skipped.push({ node: next.label, reason: affine });
          break;
        }
        const failed = await applyAffine(graph, table, affine, pause);
        if (failed) {
          report.skipped.push({ node: next.label, reason: failed });
          break;
        }
        orphans.push(...next.inputs.filter((v) => v !== output));
        folded.push({ layer, node: next });
        output = next.outputs[0];
      }
      if (output !== layer.outputs[0]) rewired.push({ layer, output });
    }
    for (const { layer, output } of rewired) layer.setOutput(0, output);
    graph.removeNodes(folded.map((f) => f.node));
    // Labels after the rewiring: an unnamed layer's names its new output.
    for (const { layer, node } of folded) {
      report.changes.push({ node: layer.label, action: `folded ${node.opType} '${node.label}' into ${layer.opType}` });
    }
    const batchNorms = folded.filter((f) => f.node.opType === 'BatchNormalization').length;
    const scales = folded.length - batchNorms;
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
  if (!t || !isArithmeticFloat(t.dataType)) return undefined;
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

/** A Mul/Add/Sub/Div of `x` (the layer's output, folds so far applied) by a constant that broadcasts along the channel axis only (or is a scalar). */
function scaleAffine(graph: Graph, table: Layer, op: Node, x: string): Affine | string {
  const layer = table.node;
  const constIndex = op.input(0) === x ? 1 : 0;
  if (op.input(1 - constIndex) !== x || op.inputs.length !== 2) return 'not a binary op on the layer output';
  if (constIndex === 0 && (op.opType === 'Sub' || op.opType === 'Div')) return 'the layer output is the right operand';
  const c = graph.constant(op.input(constIndex));
  const layout = table.layout();
  const values = numbers(c);
  if (!c || !values || 'skip' in layout || c.dataType !== layout.tensor.dataType) return 'the other operand is not a constant of the weights type';
  const channels = layout.neurons;
  const rank = layer.opType === 'Gemm' ? 2 : layout.tensor.dims.length;
  const dims = c.dims;
  if (dims.length > rank) return 'broadcasting would change the output shape';
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

/** Rewrites the layer's weights (in slices, `pause()` between) and bias; returns why it could not, or undefined on success. */
async function applyAffine(graph: Graph, table: Layer, { scale, shift }: Affine, pause: () => Promise<void> | undefined): Promise<string | undefined> {
  const layer = table.node;
  const layout = table.layout();
  if ('skip' in layout) return `the ${layer.opType} weights are not constant`;
  const w0 = layout.tensor;
  if (!isArithmeticFloat(w0.dataType)) return `the ${layer.opType} weights are ${dataTypeName(w0.dataType)}`;
  const channels = layout.neurons;
  if (channels !== scale.length) return `${scale.length} channels do not match the ${layer.opType}'s ${channels}`;
  const biasIndex = table.kind.biasInput!;
  const hasBias = layer.input(biasIndex) !== '';
  const b0 = hasBias ? graph.constant(layer.input(biasIndex)) : undefined;
  if (hasBias && (!b0 || b0.dataType !== w0.dataType)) return `the ${layer.opType} bias is not a constant of the weights type`;
  if (layer.opType === 'Gemm') {
    const why = gemmBiasProblem(layer, b0, channels);
    if (why) return why;
  } else if (b0 && b0.size !== channels) return `the bias has ${b0.size} values for ${channels} channels`;

  const w = exclusiveConstant(graph, layer, table.kind.weightInput)!;
  await scaleNeurons(layout.grid, w.mutableData() as Float32Array | Float64Array, scale, pause);

  // Gemm adds beta * C, so C' = C * s + t / beta keeps beta * C' = (beta * C) * s + t.
  const beta = layer.opType === 'Gemm' ? layer.attrFloat('beta', 1)! : 1;
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
    const asNode = isConstantNodeValue(graph, layer.input(table.kind.weightInput));
    const name = addConstant(graph, `${layer.outputs[0]}_bias`, w.dataType, [channels], values, layer, asNode);
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

function whyNotFoldable(graph: Graph, bn: Node): string {
  const x = bn.input(0);
  const p = graph.producer(x);
  if (!p || !foldsInto(layerOf(p))) return `its input comes from ${p ? p.opType : 'a graph input'}, not Conv/ConvTranspose/Gemm`;
  if (graph.isGraphOutput(x) || graph.consumers(x).length > 1) return `the ${p.opType} output has other readers`;
  return 'not foldable';
}
