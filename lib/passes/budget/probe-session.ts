/**
 * The onnxruntime side of the budget's probe model (probe-model.ts), run in its own worker thread
 * (probe-worker.ts): onnxruntime-node runs a session synchronously on the calling thread, for tens of
 * milliseconds to seconds per probe on a large CNN, which on the main thread would freeze a server.
 *
 * One session of the model in which the weights of the layers being coded are inputs, so that any
 * assignment of codec values to layers runs without a new session; the original outputs on the probes
 * are the reference every deviation is measured against.
 */
import type * as ort from 'onnxruntime-node';

import { RedppError } from '../../errors';
import { decodeModel } from '../../load';
import { DataType, toFloat32, type TensorData } from '../../model/dtype';
import { createMessage, onnxTypes, tensorValueInfo, type ValueInfoProto } from '../../model/proto';
import { encodeModel } from '../../model/write';
import { onnxruntime } from '../../runtime';

export type MeasureAt = 'outputs' | 'logits';

/** A tensor as it crosses to the worker (an ort.Tensor does not survive structured clone). */
export interface PlainTensor {
  type: ort.Tensor.Type;
  data: TensorData;
  dims: number[];
}

/** A weight the probe model takes as an input: its element type, dims and original values. */
export interface FedWeight {
  name: string;
  elemType: number;
  tensor: PlainTensor;
}

export interface ProbeSessionSpec {
  /** The model with the fed weights that were initializers as graph inputs (encodeModel's initializersAsInputs). */
  bytes: Uint8Array;
  fed: FedWeight[];
  probes: Record<string, PlainTensor>[];
  at: MeasureAt;
  /** onnxruntime's intra-op threads (undefined: its default). */
  threads?: number;
}

export class ProbeSession {
  private reference: Float32Array[][] = [];
  /** The values fed now in place of a weight's original, by weight name. */
  private readonly current = new Map<string, TensorData>();

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly fed: Map<string, PlainTensor>,
    private readonly probes: Record<string, ort.Tensor>[],
    private readonly measured: string[],
    /** The graph outputs each measured value stands for (a Sigmoid's or Softmax's output, measured at its input). */
    private readonly outputNames: string[],
  ) {}

  static async create(spec: ProbeSessionSpec): Promise<ProbeSession> {
    const ort = onnxruntime('the fidelity budget');
    const model = decodeModel(spec.bytes);
    const graph = model.graph;
    const fed = new Map<string, PlainTensor>();
    for (const w of spec.fed) {
      // A weight that a Constant node makes is fed in its place (initializers came as inputs already).
      const p = graph.producer(w.name);
      if (p) {
        graph.removeNode(p);
        graph.proto.input.push(tensorValueInfo(w.name, w.elemType, w.tensor.dims));
      }
      // onnxruntime-node takes no typed array on shared memory (a model read from a file lives there).
      fed.set(w.name, { ...w.tensor, data: unshared(w.tensor.data) });
    }
    const measured: string[] = [];
    // A snapshot: the logits added as outputs below are not outputs to measure again.
    const outputs = [...graph.outputs];
    const names = outputs.map((o) => o.name);
    for (const o of outputs) {
      const p = graph.producer(o.name);
      if (spec.at === 'logits' && p && p.domain === '' && (p.opType === 'Sigmoid' || p.opType === 'Softmax')) {
        measured.push(p.input(0));
        if (!graph.isGraphOutput(p.input(0))) graph.proto.output.push(createMessage<ValueInfoProto>(onnxTypes().ValueInfo, { name: p.input(0) }));
      } else measured.push(o.name);
    }
    graph.invalidate();
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, ...(spec.threads ? { intraOpNumThreads: spec.threads } : {}) });
    } catch (e) {
      throw new RedppError('INFERENCE_FAILED', `onnxruntime could not load the model to measure its deviation: ${(e as Error).message}`, { cause: e });
    }
    const probes = spec.probes.map((p) => Object.fromEntries(Object.entries(p).map(([k, t]) => [k, new ort.Tensor(t.type, unshared(t.data) as Float32Array, t.dims)])));
    const s = new ProbeSession(session, fed, probes, measured, names);
    s.reference = await s.outputs();
    return s;
  }

  /** Feeds `set` in place of the weights it names from now on, and the originals again for `reset`. */
  assign(set: ReadonlyMap<string, TensorData>, reset: readonly string[]): void {
    for (const name of reset) this.current.delete(name);
    for (const [name, data] of set) {
      if (!this.fed.has(name)) throw new RedppError('INVALID_ARGUMENT', `the probe model takes no weight '${name}'`);
      this.current.set(name, unshared(data));
    }
  }

  /** The measured outputs for every probe, with the values assigned now. */
  async outputs(): Promise<Float32Array[][]> {
    const ort = onnxruntime('the fidelity budget');
    const weightFeeds: Record<string, ort.Tensor> = {};
    for (const [name, w] of this.fed) weightFeeds[name] = new ort.Tensor(w.type, (this.current.get(name) ?? w.data) as Float32Array, w.dims);
    const out: Float32Array[][] = [];
    for (const probe of this.probes) {
      let r: ort.InferenceSession.ReturnType;
      try {
        r = await this.session.run({ ...probe, ...weightFeeds }, this.measured);
      } catch (e) {
        throw new RedppError('INFERENCE_FAILED', `onnxruntime failed to run the model to measure its deviation: ${(e as Error).message}`, { cause: e });
      }
      out.push(this.measured.map((name) => outputAsFloat32(r[name])));
    }
    return out;
  }

  /** The deviation (probe-model.ts) of the outputs with the values assigned now. */
  async deviation(): Promise<number> {
    return deviationBetween(this.reference, await this.outputs());
  }

  /** Each output's relative L2 distance (over the probes) with the values assigned now. */
  async outputDeviations(): Promise<{ name: string; measured: number }[]> {
    const per = relativeL2PerOutput(this.reference, await this.outputs());
    return per.map((measured, o) => ({ name: this.outputNames[o], measured }));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The deviation of `changed` from `reference` (per probe, per output): the root mean square over outputs of relativeL2PerOutput. */
export function deviationBetween(reference: Float32Array[][], changed: Float32Array[][]): number {
  const per = relativeL2PerOutput(reference, changed);
  return per.length ? Math.sqrt(per.reduce((a, d) => a + d * d, 0) / per.length) : 0;
}

/** Per output, the relative L2 distance of `changed` from `reference` over all probes. */
export function relativeL2PerOutput(reference: Float32Array[][], changed: Float32Array[][]): number[] {
  const outputs = reference[0]?.length ?? 0;
  const out: number[] = [];
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
    out.push(Math.sqrt(den > 0 ? num / den : num > 0 ? 1 : 0));
  }
  return out;
}

function unshared(d: TensorData): TensorData {
  return d.buffer instanceof SharedArrayBuffer ? (d.slice() as TensorData) : d;
}

function outputAsFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return toFloat32(t.data as Uint16Array, DataType.FLOAT16);
  return Float32Array.from(t.data as ArrayLike<number>);
}
