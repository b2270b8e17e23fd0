/**
 * The model as the budget measures it: an onnxruntime session in which the weights of the layers being
 * coded are inputs, so that any assignment of codec values to layers runs without a new session. Each
 * run feeds the probe inputs and the weights, and compares the outputs with the original model's on
 * the same probes. The session lives in a worker thread of its own (probe-session.ts says why), or
 * several alike do, each taking whole measurements; this is their face on the caller's thread, which
 * sends each only the weights that changed since its last run.
 *
 * The deviation (one number for the model): per output, the relative L2 distance to the original's
 * outputs over every probe, sqrt(sum ||y' - y||^2 / sum ||y||^2); over outputs, the root mean square.
 * An output that a Sigmoid or Softmax makes is measured at that op's input (the logits) when asked:
 * probabilities that saturate hide the change that decides a threshold or an argmax.
 */
import type * as ort from 'onnxruntime-node';

import { inSharedMemory } from '../../kernels/pages';
import type { Layer } from '../../layers';
import { DataType, type TensorData } from '../../model/dtype';
import type { Model } from '../../model/model';
import { encodeModel } from '../../model/write';
import { requireOnnxruntimeInstalled } from '../../runtime';
import { RuntimeWorker } from '../../runtime-worker';
import { workerScript } from '../../worker-script';
import type { Changes, ProbeOps } from './probe-worker';
import type { FedWeight, MeasureAt, PlainTensor, ProbeSessionSpec } from './probe-session';

export { deviationBetween, type MeasureAt } from './probe-session';

const ORT_TYPES: Partial<Record<number, ort.Tensor.Type>> = { [DataType.FLOAT]: 'float32', [DataType.FLOAT16]: 'float16' };

const WORKER = workerScript(__filename, 'probe-worker');

export interface ProbeModelOptions {
  /** Where the deviation is measured (see the file comment). */
  at?: MeasureAt;
  /**
   * Sessions, each in a worker of its own, that measure at once: independent measurements (each layer
   * alone) run side by side, each one whole on one session, so every result is the one a single
   * session gives. Each holds a copy of the fed weights and its own activations.
   */
  sessions?: number;
  /** onnxruntime's intra-op threads per session (default: onnxruntime's own choice). */
  threadsPerSession?: number;
}

export class ProbeModel {
  private constructor(
    private readonly workers: readonly ProbeWorker[],
    /** Weight value names fed as inputs. */
    readonly inputs: readonly string[],
  ) {}

  /**
   * The sessions for `model` (left as it is) with the weights of `layers` as inputs, and the original
   * outputs on `probes` as the reference. On the caller's thread the model is encoded once, those
   * weights as inputs and without their values; the values cross as they are (a model read from a
   * file holds them in shared memory).
   */
  static async create(model: Model, layers: readonly Layer[], probes: readonly Record<string, PlainTensor>[], options: ProbeModelOptions = {}): Promise<ProbeModel> {
    // Where onnxruntime-node is missing, the one-line error comes from here, before a worker starts
    // (the workers load it: on this thread its load would stall the event loop).
    requireOnnxruntimeInstalled('the fidelity budget');
    const fed: FedWeight[] = [];
    for (const layer of layers) {
      const name = layer.weightValue;
      const t = model.graph.constant(name);
      const type = t && ORT_TYPES[t.dataType];
      if (!t || !type || fed.some((w) => w.name === name)) continue;
      fed.push({ name, elemType: t.dataType, tensor: { type, data: t.data, dims: t.dims } });
    }
    const spec: ProbeSessionSpec = {
      // In shared memory, as the fed weights are: cloned, a few MB of probe images were a stall of
      // tens of ms as each worker started.
      bytes: inSharedMemory(encodeModel(model, { initializersAsInputs: new Set(fed.map((w) => w.name)) })),
      fed,
      probes: probes.map((p) => Object.fromEntries(Object.entries(p).map(([k, t]) => [k, { type: t.type, data: inSharedMemory(t.data), dims: [...t.dims] }]))),
      at: options.at ?? 'outputs',
      threads: options.threadsPerSession,
    };
    const started = Array.from({ length: Math.max(1, options.sessions ?? 1) }, () => ProbeWorker.start(spec));
    const settled = await Promise.allSettled(started);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const workers = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (failed) {
      await Promise.all(workers.map((w) => w.release()));
      throw failed.reason;
    }
    return new ProbeModel(workers, fed.map((w) => w.name));
  }

  /** How many measurements run at once (see ProbeModelOptions.sessions). */
  get sessions(): number {
    return this.workers.length;
  }

  /** The measured outputs for every probe, with `values` in place of the original weights they name. */
  outputs(values: ReadonlyMap<string, TensorData>): Promise<Float32Array[][]> {
    return this.idlest().call('outputs', values);
  }

  /** The deviation (see the file comment) of the model with `values` in place of the original weights they name. */
  deviation(values: ReadonlyMap<string, TensorData>): Promise<number> {
    return this.idlest().call('deviation', values);
  }

  /** Each output's relative L2 distance over the probes (at the logits where measured there), with `values` in place. */
  outputDeviations(values: ReadonlyMap<string, TensorData>): Promise<{ name: string; measured: number }[]> {
    return this.idlest().call('outputDeviations', values);
  }

  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.release()));
  }

  /** The session with the fewest measurements waiting (the first of those). */
  private idlest(): ProbeWorker {
    return this.workers.reduce((best, w) => (w.waiting < best.waiting ? w : best));
  }
}

/** One session in its worker thread, and what it feeds now. */
class ProbeWorker {
  /** What the worker feeds now, by weight name: the arrays last sent (compared by identity). */
  private readonly sent = new Map<string, TensorData>();

  private constructor(private readonly thread: RuntimeWorker<ProbeOps>) {}

  /** A worker whose session is made, with the reference outputs. */
  static async start(spec: ProbeSessionSpec): Promise<ProbeWorker> {
    return new ProbeWorker(await RuntimeWorker.start<ProbeOps>(WORKER, spec, 'the probe model'));
  }

  /** Requests sent and not answered yet. */
  get waiting(): number {
    return this.thread.waiting;
  }

  /** A measurement with `values` in place of the original weights they name. */
  call<Op extends keyof ProbeOps>(op: Op, values: ReadonlyMap<string, TensorData>): Promise<ProbeOps[Op]['reply']> {
    return this.thread.request(op, this.changes(values));
  }

  release(): Promise<void> {
    return this.thread.release();
  }

  /** What to send for `values` to be fed: the arrays the worker does not hold yet, and the names back to their originals. */
  private changes(values: ReadonlyMap<string, TensorData>): Changes {
    const set: [string, TensorData][] = [];
    const reset: string[] = [];
    for (const [name, data] of values) if (this.sent.get(name) !== data) set.push([name, data]);
    for (const name of this.sent.keys()) if (!values.has(name)) reset.push(name);
    for (const name of reset) this.sent.delete(name);
    for (const [name, data] of set) this.sent.set(name, data);
    return { set, reset };
  }
}
