/**
 * foldWeightTransforms: replaces a Transpose, Reshape, Flatten, Squeeze, Unsqueeze or Identity of a
 * constant that feeds a Conv/ConvTranspose/Gemm/MatMul weight or bias by the constant it computes, under
 * the same value name (the layer table's WEIGHT_TRANSFORMS, for every layer's weight and bias). Exporters
 * emit these (a transposed Linear weight, a reshaped bias); folding them lets the passes that follow see
 * every weight as a plain constant.
 */
import { WEIGHT_TRANSFORMS, layerTable } from '../layers';
import type { TensorData } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Model } from '../model/model';
import { elementCount } from '../model/tensor';
import { addConstant, isConstantNodeValue, removeIfUnused } from './constant-tensors';
import { newReport, type Pass, type PassReport } from './pass';

export const foldWeightTransforms: Pass = {
  name: 'fold-weight-transforms',
  exact: true,
  run(model: Model): PassReport {
    const report = newReport(this.name);
    const graph = model.graph;
    const orphans: string[] = [];
    let folded = 0;
    // Repeat so that chains (Reshape of a Transpose of a constant) fold from the constant outwards.
    for (let progress = true; progress; ) {
      progress = false;
      for (const { node: layer, kind } of layerTable(graph)) {
        for (const index of [kind.weightInput, kind.biasInput]) {
          const value = index === undefined ? '' : layer.input(index);
          const t = value ? graph.producer(value) : undefined;
          if (!t || !WEIGHT_TRANSFORMS.has(t.opType) || t.domain !== '' || t.outputs.length !== 1) continue;
          const source = graph.constant(t.input(0));
          if (!source) continue;
          const result = transformed(graph, t, source.dims, source.data);
          if (typeof result === 'string') {
            report.skipped.push({ node: t.label, reason: result });
            continue;
          }
          // The constant takes the transform's output name, so every reader stays as it is.
          const asNode = isConstantNodeValue(graph, t.input(0));
          graph.removeNode(t);
          addConstant(graph, value, source.dataType, result.dims, result.data, layer, asNode, true);
          orphans.push(...t.inputs);
          report.changes.push({ node: t.label, action: `folded ${t.opType} of a constant feeding ${layer.opType} '${layer.label}'` });
          folded++;
          progress = true;
        }
      }
    }
    const removed = removeIfUnused(graph, orphans);
    graph.pruneValueInfo();
    report.changed = folded > 0;
    report.stats = { transformsFolded: folded, constantsRemoved: removed };
    return report;
  },
};

function transformed(
  graph: Graph,
  node: Node,
  dims: number[],
  data: TensorData,
): { dims: number[]; data: TensorData } | string {
  const copy = () => new (data.constructor as new (src: TensorData) => TensorData)(data);
  const rank = dims.length;
  const norm = (a: number, r: number) => (a < 0 ? a + r : a);
  const intsFrom = (index: number, attr: string): number[] | undefined => {
    if (node.input(index)) {
      const t = graph.constant(node.input(index));
      return t ? Array.from(t.data as BigInt64Array, Number) : undefined;
    }
    return node.attrInts(attr);
  };
  switch (node.opType) {
    case 'Identity':
      return { dims: [...dims], data: copy() };
    case 'Transpose': {
      const perm = node.attrInts('perm') ?? dims.map((_, i) => rank - 1 - i);
      return { dims: perm.map((p) => dims[p]), data: transpose(data, dims, perm) };
    }
    case 'Flatten': {
      const axis = norm(node.attrInt('axis', 1), rank);
      return { dims: [elementCount(dims.slice(0, axis)), elementCount(dims.slice(axis))], data: copy() };
    }
    case 'Reshape': {
      const shape = intsFrom(1, 'shape');
      if (!shape) return 'its target shape is not constant';
      const allowZero = node.attrInt('allowzero', 0) === 1;
      const out = shape.map((d, i) => (d === 0 && !allowZero ? dims[i] : d));
      const at = out.indexOf(-1);
      if (at >= 0) out[at] = elementCount(dims) / elementCount(out.filter((_, i) => i !== at));
      if (elementCount(out) !== elementCount(dims) || !out.every(Number.isInteger)) return `shape [${shape}] does not fit [${dims}]`;
      return { dims: out, data: copy() };
    }
    case 'Squeeze': {
      const axes = intsFrom(1, 'axes')?.map((a) => norm(a, rank)) ?? dims.flatMap((d, i) => (d === 1 ? [i] : []));
      return { dims: dims.filter((_, i) => !axes.includes(i)), data: copy() };
    }
    case 'Unsqueeze': {
      const axes = intsFrom(1, 'axes');
      if (!axes) return 'its axes are not constant';
      const out = [...dims];
      for (const a of axes.map((x) => norm(x, rank + axes.length)).sort((x, y) => x - y)) out.splice(a, 0, 1);
      return { dims: out, data: copy() };
    }
    default:
      return 'not a transform';
  }
}

/** Permutes a row-major tensor's axes. */
export function transpose(data: TensorData, dims: readonly number[], perm: readonly number[]): TensorData {
  const rank = dims.length;
  const out = new (data.constructor as new (n: number) => TensorData)(data.length);
  const outDims = perm.map((p) => dims[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += idx[i] * strides[i];
    (out as Float32Array)[o] = (data as Float32Array)[src];
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < outDims[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}
