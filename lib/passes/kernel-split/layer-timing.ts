/**
 * LayerTiming: the kernel split's timing of a split layer (timing.ts's measureLayer), asked from the
 * pass's thread and run in the inference worker (lib/inference.ts).
 */
import { RedppError } from '../../errors';
import { inferenceWorker, type InferenceOps } from '../../inference';
import type { RuntimeWorker } from '../../runtime-worker';
import type { LayerTimes } from './timing';

/**
 * The kernel split's timing of layers, before and after (measureLayer), in an inference worker started
 * at the first layer timed and ended by release(). Where onnxruntime-node is not installed or cannot
 * load, nothing is timed: the cost model decides a split either way.
 */
export class LayerTiming {
  private worker: Promise<RuntimeWorker<InferenceOps> | undefined> | undefined;

  constructor(private readonly runs: number) {}

  /** Whether layers are timed (the worker starts at the first call). */
  async available(): Promise<boolean> {
    if (this.runs <= 0) return false;
    this.worker ??= inferenceWorker("the kernel split's timing").catch((e: unknown) => {
      if (e instanceof RedppError && e.code === 'INFERENCE_UNAVAILABLE') return undefined;
      throw e;
    });
    return (await this.worker) !== undefined;
  }

  /** The times of the models `before` and `after` on a random input of `shape` (after available() said yes). */
  async measure(before: Uint8Array, after: Uint8Array, shape: readonly number[]): Promise<LayerTimes> {
    const worker = await this.worker;
    if (!worker) throw new Error('LayerTiming.measure without a worker: ask available() first');
    return worker.request('timeLayer', { before, after, shape: [...shape], runs: this.runs });
  }

  async release(): Promise<void> {
    const worker = await this.worker?.catch(() => undefined);
    this.worker = undefined;
    await worker?.release();
  }
}
