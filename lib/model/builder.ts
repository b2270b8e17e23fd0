/**
 * Builds ONNX models in code — inputs, outputs, initializers (or Constant nodes) and nodes — for tests
 * and for benchmarks that need standard architectures (bench/models.ts). Models come out through the
 * same writer and reader as users' files.
 */
import { DataType, Model, Tensor, encodeModel, makeAttribute, readModelBytes, type AttributeValue, type TensorData } from '.';
import { createMessage, onnxTypes, tensorValueInfo, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto } from './proto';
import { Rng } from '../rng';

export type Dim = number | string;

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: Tensor[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private count = 0;
  readonly rng: Rng;

  constructor(
    readonly opset = 13,
    seed = 1,
  ) {
    this.rng = new Rng(seed);
  }

  /** A fresh value name. */
  name(base: string): string {
    return `${base}_${this.count++}`;
  }

  input(name: string, shape: readonly Dim[] | undefined, elemType: number = DataType.FLOAT): string {
    this.inputs.push(tensorValueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, shape?: readonly Dim[], elemType: number = DataType.FLOAT): string {
    this.outputs.push(tensorValueInfo(name, elemType, shape));
    return name;
  }

  /** An initializer (or, with asNode, a Constant node) holding `data`. */
  init(base: string, dims: readonly number[], data: TensorData | number[], opts: { asNode?: boolean; dataType?: number } = {}): string {
    const name = this.name(base);
    const dataType = opts.dataType ?? (data instanceof BigInt64Array ? DataType.INT64 : DataType.FLOAT);
    const typed = Array.isArray(data)
      ? dataType === DataType.INT64
        ? BigInt64Array.from(data.map((v) => BigInt(v)))
        : Float32Array.from(data)
      : data;
    const t = Tensor.create(name, dataType, dims, typed);
    if (opts.asNode) this.node('Constant', [], [name], { value: t });
    else this.inits.push(t);
    return name;
  }

  ints(base: string, values: number[]): string {
    return this.init(base, [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Random normal weights. */
  weights(base: string, dims: readonly number[], std = 0.5, asNode = false): string {
    const n = dims.reduce((a, b) => a * b, 1);
    return this.init(base, dims, this.rng.normals(n, std), { asNode });
  }

  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attributes: Record<string, AttributeValue> = {}, floats: string[] = []): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.name(opType.toLowerCase())) : [...outputs];
    this.nodes.push(
      createMessage<NodeProto>(onnxTypes().Node, {
        op_type: opType,
        name: this.name(opType),
        input: [...inputs],
        output: outs,
        attribute: Object.entries(attributes).map(([k, v]) => makeAttribute(k, v, floats.includes(k))),
      }),
    );
    return outs;
  }

  op(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, floats: string[] = []): string {
    return this.node(opType, inputs, 1, attributes, floats)[0];
  }

  /** Conv with random weights; returns the output and the weight/bias names. */
  conv(x: string, cin: number, cout: number, k = 3, opts: { group?: number; bias?: boolean; asNode?: boolean } = {}): { y: string; w: string; b?: string } {
    const group = opts.group ?? 1;
    const w = this.weights('w', [cout, cin / group, k, k], 0.5, opts.asNode);
    const b = opts.bias === false ? undefined : this.weights('b', [cout], 0.5, opts.asNode);
    const y = this.op('Conv', b ? [x, w, b] : [x, w], { kernel_shape: [k, k], pads: [k >> 1, k >> 1, k >> 1, k >> 1], group });
    return { y, w, b };
  }

  /** Conv with He-initialised random weights, a stride and a dilation, as in real CNNs (keeps activations sane); padded to keep the size. */
  convHe(x: string, cin: number, cout: number, k: number, stride = 1, dilation = 1): { y: string; w: string; b: string } {
    const w = this.weights('w', [cout, cin, k, k], Math.sqrt(2 / (cin * k * k)));
    const b = this.weights('b', [cout], 0.01);
    const p = dilation * (k >> 1);
    const dilated: Record<string, AttributeValue> = dilation > 1 ? { dilations: [dilation, dilation] } : {};
    const y = this.op('Conv', [x, w, b], { kernel_shape: [k, k], pads: [p, p, p, p], strides: [stride, stride], ...dilated });
    return { y, w, b };
  }

  /** The model as built, without the encode/decode round trip of build() (for very large models). */
  model(): Model {
    return new Model(this.proto());
  }

  /** The model exactly as a file holding it would load. */
  build(): Model {
    return readModelBytes(encodeModel(this.model()));
  }

  private proto(): ModelProto {
    const graph = createMessage<GraphProto>(onnxTypes().Graph, {
      name: 'model',
      node: this.nodes,
      initializer: this.inits.map((t) => t.proto),
      input: this.inputs,
      output: this.outputs,
    });
    return createMessage<ModelProto>(onnxTypes().Model, {
      ir_version: 8,
      producer_name: 'redpp',
      opset_import: [createMessage(onnxTypes().OperatorSetId, { domain: '', version: this.opset })],
      graph,
    });
  }
}
