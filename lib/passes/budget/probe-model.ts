/**
 * The model as the budget measures it: one onnxruntime session in which the weights of the layers being
 * coded are inputs, so that any assignment of codec values to layers runs without a new session. Each
 * run feeds the probe inputs and the weights, and compares the outputs with the original model's on
 * the same probes.
 *
 * The deviation (one number for the model): per output, the relative L2 distance to the original's
 * outputs over every probe, sqrt(sum ||y' - y||^2 / sum ||y||^2); over outputs, the root mean square.
 * An output that a Sigmoid or Softmax makes is measured at that op's input (the logits) when asked:
 * probabilities that saturate hide the change that decides a threshold or an argmax.
 */
import type * as ort from 'onnxruntime-node';

import { RedppError } from '../../errors';
import type { Layer } from '../../layers';
import { decodeModel } from '../../load';
import { DataType, float16BitsToNumber, type TensorData } from '../../model/dtype';
import type { Model } from '../../model/model';
import { createMessage, onnxTypes, type ValueInfoProto } from '../../model/proto';
import { encodeModel } from '../../model/write';
import { onnxruntime } from '../../runtime';

export type MeasureAt = 'outputs' | 'logits';

const ORT_TYPES: Partial<Record<number, ort.Tensor.Type>> = { [DataType.FLOAT]: 'float32', [DataType.FLOAT16]: 'float16' };

export class ProbeModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Weight value names fed as inputs, with their element type and dims. */
    private readonly weights: Map<string, { type: ort.Tensor.Type; dims: number[]; original: TensorData }>,
    private readonly probes: Record<string, ort.Tensor>[],
    private readonly measured: string[],
    private reference: Float32Array[][] = [],
  ) {}

  /**
   * The session for `model` (left as it is) with the weights of `layers` as inputs, and the original
   * outputs on `probes` as the reference.
   */
  static async create(model: Model, layers: readonly Layer[], probes: Record<string, ort.Tensor>[], at: MeasureAt = 'outputs'): Promise<ProbeModel> {
    const copy = decodeModel(encodeModel(model));
    const graph = copy.graph;
    const weights = new Map<string, { type: ort.Tensor.Type; dims: number[]; original: TensorData }>();
    for (const layer of layers) {
      const value = layer.weightValue;
      const t = model.graph.constant(value);
      const type = t && ORT_TYPES[t.dataType];
      if (!t || !type || weights.has(value)) continue;
      weights.set(value, { type, dims: t.dims, original: t.data });
      const p = graph.producer(value);
      if (p) graph.removeNode(p);
      else graph.removeInitializer(value);
      graph.proto.input.push(valueInfo(value, t.dataType, t.dims));
    }
    const measured: string[] = [];
    for (const o of graph.outputs) {
      const p = graph.producer(o.name);
      if (at === 'logits' && p && p.domain === '' && (p.opType === 'Sigmoid' || p.opType === 'Softmax')) {
        measured.push(p.input(0));
        if (!graph.isGraphOutput(p.input(0))) graph.proto.output.push(createMessage<ValueInfoProto>(onnxTypes().ValueInfo, { name: p.input(0) }));
      } else measured.push(o.name);
    }
    graph.invalidate();
    let session: ort.InferenceSession;
    try {
      session = await onnxruntime('the fidelity budget').InferenceSession.create(encodeModel(copy), { logSeverityLevel: 3 });
    } catch (e) {
      throw new RedppError('INFERENCE_FAILED', `onnxruntime could not load the model to measure its deviation: ${(e as Error).message}`, { cause: e });
    }
    const pm = new ProbeModel(session, weights, probes, measured);
    pm.reference = await pm.outputs(new Map());
    return pm;
  }

  /** The weight value names this model takes as inputs. */
  get inputs(): string[] {
    return [...this.weights.keys()];
  }

  /** The measured outputs for every probe, with `values` in place of the original weights they name. */
  async outputs(values: ReadonlyMap<string, TensorData>): Promise<Float32Array[][]> {
    const weightFeeds: Record<string, ort.Tensor> = {};
    for (const [name, w] of this.weights) weightFeeds[name] = new (onnxruntime('the fidelity budget').Tensor)(w.type, unshared(values.get(name) ?? w.original) as Float32Array, w.dims);
    const out: Float32Array[][] = [];
    for (const probe of this.probes) {
      let r: ort.InferenceSession.ReturnType;
      try {
        r = await this.session.run({ ...probe, ...weightFeeds }, this.measured);
      } catch (e) {
        throw new RedppError('INFERENCE_FAILED', `onnxruntime failed to run the model to measure its deviation: ${(e as Error).message}`, { cause: e });
      }
      out.push(this.measured.map((name) => toFloat32(r[name])));
    }
    return out;
  }

  /** The deviation (see the file comment) of the model with `values` in place of the original weights they name. */
  async deviation(values: ReadonlyMap<string, TensorData>): Promise<number> {
    return deviationBetween(this.reference, await this.outputs(values));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The deviation of `changed` from `reference` (per probe, per output). */
export function deviationBetween(reference: Float32Array[][], changed: Float32Array[][]): number {
  const outputs = reference[0]?.length ?? 0;
  if (outputs === 0) return 0;
  let sum = 0;
  for (let o = 0; o < outputs; o++) {
    let num = 0;
    let den = 0;
    for (let p = 0; p < reference.length; p++) {
      const [a, b] = [reference[p][o], changed[p][o]];
      for (let i = 0; i < a.length; i++) {
        const d = b[i] - a[i];
        num += d * d;
        den += a[i] * a[i];
      }
    }
    sum += den > 0 ? num / den : num > 0 ? 1 : 0;
  }
  return Math.sqrt(sum / outputs);
}

/** onnxruntime-node takes no typed array on shared memory (a model read from a file lives there): a copy. */
function unshared(d: TensorData): TensorData {
  return d.buffer instanceof SharedArrayBuffer ? (d.slice() as TensorData) : d;
}

function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, float16BitsToNumber);
  return Float32Array.from(t.data as ArrayLike<number>);
}

function valueInfo(name: string, elemType: number, dims: readonly number[]): ValueInfoProto {
  return createMessage<ValueInfoProto>(onnxTypes().ValueInfo, {
    name,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } as ValueInfoProto['type'],
  });
}
