/**
 * Model: a decoded ModelProto with its main graph wrapped for passes. Everything a pass does not touch
 * (opsets, metadata, functions, training info, doc strings) stays in `proto` exactly as read.
 */
import { RedppError } from '../errors';
import { Graph, subgraphProtos } from './graph';
import { toNumber, type GraphProto, type ModelProto, type TensorProto } from './proto';

export class Model {
  readonly proto: ModelProto;
  readonly graph: Graph;
  /** The file it was read from, when read from a file. */
  readonly path: string | undefined;
  /** Directory that external-data locations are relative to, when known. */
  readonly baseDir: string | undefined;
  /** The external-data files its tensors were read from (absolute paths), each once. */
  readonly externalFiles: readonly string[];

  /** `graph`: the main graph already wrapped (and indexed) by whoever checked the proto; it must wrap proto.graph. */
  constructor(proto: ModelProto, source: { path?: string; baseDir?: string; externalFiles?: readonly string[]; graph?: Graph } = {}) {
    if (source.graph && source.graph.proto !== proto.graph) throw new RedppError('INVALID_ARGUMENT', 'Model: source.graph does not wrap proto.graph');
    this.proto = proto;
    this.graph = source.graph ?? new Graph(proto.graph!);
    this.path = source.path;
    this.baseDir = source.baseDir;
    this.externalFiles = source.externalFiles ?? [];
  }

  get irVersion(): number {
    return toNumber(this.proto.ir_version);
  }

  /** The opset version imported for a domain ('' or 'ai.onnx' is the default domain). */
  opsetVersion(domain = ''): number | undefined {
    const d = domain === 'ai.onnx' ? '' : domain;
    const entry = this.proto.opset_import.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d);
    return entry ? toNumber(entry.version) : undefined;
  }

  get opsetImports(): { domain: string; version: number }[] {
    return this.proto.opset_import.map((o) => ({ domain: o.domain, version: toNumber(o.version) }));
  }
}

/** Where a TensorProto sits in the model, for messages and for choosing what may go to external data. */
export interface TensorSite {
  proto: TensorProto;
  /** 'initializer' (dense or sparse) or 'attribute' (a Constant's value or another node's tensor attribute). */
  kind: 'initializer' | 'attribute';
  /** Human-readable location, e.g. "graph 'main' initializer". */
  where: string;
}

/** Every TensorProto in the model: graphs (nested ones too), training info and local functions. */
export function tensorSites(model: ModelProto): TensorSite[] {
  const out: TensorSite[] = [];
  const visitNodes = (nodes: GraphProto['node'], where: string) => {
    for (const n of nodes) {
      for (const a of n.attribute) {
        // Most attributes hold no tensor: nothing is made for those (ISNet's 680: the walk 1.2 -> 0.4 ms).
        if (!a.t && a.tensors.length === 0 && !a.sparse_tensor && a.sparse_tensors.length === 0) continue;
        const at = `${where} node '${n.name || n.op_type}' attribute '${a.name}'`;
        if (a.t) out.push({ proto: a.t, kind: 'attribute', where: at });
        for (const t of a.tensors) out.push({ proto: t, kind: 'attribute', where: at });
        for (const s of [a.sparse_tensor, ...a.sparse_tensors]) {
          if (s?.values) out.push({ proto: s.values, kind: 'attribute', where: at });
          if (s?.indices) out.push({ proto: s.indices, kind: 'attribute', where: at });
        }
      }
      for (const g of subgraphProtos(n)) visitGraph(g, `${where} node '${n.name || n.op_type}' subgraph`);
    }
  };
  const visitGraph = (g: GraphProto, where: string) => {
    const at = `${where} '${g.name}'`;
    for (const t of g.initializer) out.push({ proto: t, kind: 'initializer', where: `${at} initializer` });
    for (const s of g.sparse_initializer) {
      if (s.values) out.push({ proto: s.values, kind: 'initializer', where: `${at} sparse initializer` });
      if (s.indices) out.push({ proto: s.indices, kind: 'initializer', where: `${at} sparse initializer` });
    }
    visitNodes(g.node, at);
  };
  if (model.graph) visitGraph(model.graph, 'graph');
  for (const ti of model.training_info) {
    if (ti.initialization) visitGraph(ti.initialization, 'training initialization graph');
    if (ti.algorithm) visitGraph(ti.algorithm, 'training algorithm graph');
  }
  for (const f of model.functions) visitNodes(f.node, `function '${f.name}'`);
  return out;
}
