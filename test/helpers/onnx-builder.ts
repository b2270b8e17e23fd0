/**
 * Builds small ONNX models in tests through redpp's own IR and writer, and runs them in onnxruntime.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';

import { packageRoot } from '../../lib/binding';
import { DataType, type TensorData } from '../../lib/model/dtype';
import type { AttributeValue } from '../../lib/model/graph';
import { Model } from '../../lib/model/model';
import {
  createMessage,
  onnxTypes,
  type GraphProto,
  type ModelProto,
  type OperatorSetIdProto,
  type TypeProto,
  type ValueInfoProto,
} from '../../lib/model/proto';
import { Rng } from '../../lib/rng';
import { decodeModel } from '../../lib/load';
import { Tensor } from '../../lib/model/tensor';
import { encodeModel } from '../../lib/model/write';

export const MODELS_DIR = path.join(packageRoot, 'node_modules', '@gutenye', 'ocr-models', 'assets');
export const OCR_MODELS = {
  det: { file: path.join(MODELS_DIR, 'ch_PP-OCRv4_det_infer.onnx'), shape: [1, 3, 96, 128] },
  rec: { file: path.join(MODELS_DIR, 'ch_PP-OCRv4_rec_infer.onnx'), shape: [1, 3, 48, 160] },
  cls: { file: path.join(MODELS_DIR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), shape: [1, 3, 48, 192] },
} as const;

export function valueInfo(name: string, elemType = DataType.FLOAT as number, dims?: readonly (number | string)[]): ValueInfoProto {
  const T = onnxTypes();
  const type = createMessage<TypeProto>(T.TypeProto, {
    tensor_type: {
      elem_type: elemType,
      ...(dims
        ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } }
        : {}),
    } as TypeProto['tensor_type'],
  });
  return createMessage<ValueInfoProto>(T.ValueInfo, { name, type });
}

export class ModelBuilder {
  readonly model: Model;

  constructor(opts: { opset?: number; irVersion?: number; opsets?: Record<string, number> } = {}) {
    const T = onnxTypes();
    const opsets = { '': opts.opset ?? 17, ...opts.opsets };
    const proto = createMessage<ModelProto>(T.Model, {
      ir_version: opts.irVersion ?? 8,
      producer_name: 'redpp-test',
      opset_import: Object.entries(opsets).map(([domain, version]) =>
        createMessage<OperatorSetIdProto>(T.OperatorSetId, { domain, version }),
      ),
      graph: createMessage<GraphProto>(T.Graph, { name: 'test' }),
    });
    this.model = new Model(proto);
  }

  input(name: string, dims: readonly (number | string)[], elemType: number = DataType.FLOAT): this {
    this.model.proto.graph!.input.push(valueInfo(name, elemType, dims));
    return this;
  }

  output(name: string, dims?: readonly (number | string)[], elemType: number = DataType.FLOAT): this {
    this.model.proto.graph!.output.push(valueInfo(name, elemType, dims));
    return this;
  }

  initializer(name: string, dims: readonly number[], data: TensorData, dataType: number = DataType.FLOAT): this {
    this.model.graph.addInitializer(Tensor.create(name, dataType, dims, data));
    return this;
  }

  /** A Constant node holding the tensor (the PP-OCR models' way of storing weights). */
  constant(name: string, dims: readonly number[], data: TensorData, dataType: number = DataType.FLOAT): this {
    this.node('Constant', [], [name], { value: Tensor.create('', dataType, dims, data) });
    return this;
  }

  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attributes: Record<string, AttributeValue> = {},
    extra: { name?: string; domain?: string; floats?: string[] } = {},
  ): this {
    this.model.graph.addNode({ opType, inputs, outputs, attributes, ...extra });
    return this;
  }

  /** The encoded model. */
  bytes(): Buffer {
    return encodeModel(this.model);
  }

  /** The model as a file-loaded one would be (decoded from its bytes). */
  build(): Model {
    return decodeModel(this.bytes());
  }
}

/** Deterministic floats in [-1, 1) (or scaled), for weights and inputs. */
export function randomFloats(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const rng = new Rng(seed >>> 0 || 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * scale + offset;
  return out;
}

export async function runModel(
  source: Model | string | Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  const target = source instanceof Model ? encodeModel(source) : source;
  const session =
    typeof target === 'string'
      ? await ort.InferenceSession.create(target, { logSeverityLevel: 3 })
      : await ort.InferenceSession.create(target, { logSeverityLevel: 3 });
  const out = await session.run(feeds);
  await session.release();
  return out;
}

/** Bit-for-bit equality of two tensors' data. */
export function sameBits(a: ort.Tensor, b: ort.Tensor): boolean {
  const x = a.data as ArrayBufferView;
  const y = b.data as ArrayBufferView;
  return (
    a.dims.join() === b.dims.join() &&
    Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))
  );
}

/** A synthetic "document" image: light background with dark horizontal strokes, normalized like PP-OCR. */
export function textImage(shape: readonly number[], seed = 1): ort.Tensor {
  const [n, c, h, w] = shape;
  const noise = randomFloats(n * c * h * w, seed, 0.05);
  const data = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const line = Math.floor(y / 12) % 2 === 1 && x % 9 < 6 && x > 8 && x < w - 8;
          const pixel = line ? 0.1 : 0.9; // in [0, 1]
          const i = ((b * c + ch) * h + y) * w + x;
          data[i] = (pixel - 0.5) / 0.5 + noise[i];
        }
  return new ort.Tensor('float32', data, shape);
}

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
