/**
 * The inference worker as its callers start it: onnxruntime work other than the budget's (validation,
 * the kernel split's timing), run in inference-worker.ts on a thread of its own (runtime-worker.ts says
 * why). Apart from that script, so that starting it does not import what it runs.
 */
import type { InferenceOps } from './inference-worker';
import { requireOnnxruntimeInstalled } from './runtime';
import { RuntimeWorker } from './runtime-worker';
import { workerScript } from './worker-script';

export type { InferenceOps };

const SCRIPT = workerScript(__filename, 'inference-worker');

/**
 * A worker started for `what`; INFERENCE_UNAVAILABLE naming it where onnxruntime-node is not installed,
 * or fails to load in the worker.
 */
export async function inferenceWorker(what: string): Promise<RuntimeWorker<InferenceOps>> {
  requireOnnxruntimeInstalled(what);
  return RuntimeWorker.start<InferenceOps>(SCRIPT, { what }, what);
}
