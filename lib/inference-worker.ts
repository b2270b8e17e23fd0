/**
 * The body of the inference worker (runtime-worker.ts's inferenceWorker starts it): onnxruntime work
 * that is not the budget's, each a request: a validation (validate/run.ts) and the kernel split's
 * timing of one layer (passes/kernel-split/timing.ts).
 */
import { workerData } from 'node:worker_threads';

import { measureLayer } from './passes/kernel-split/timing';
import { onnxruntime } from './runtime';
import { answerRequests } from './runtime-worker';
import { runValidation, type ValidationOptions } from './validate/run';

export type ValidationRequest = { op: 'validate'; original: string; changed: string; options: ValidationOptions };
export type LayerTimingRequest = { op: 'timeLayer'; before: Uint8Array; after: Uint8Array; shape: number[]; runs: number };

const { what } = workerData as { what: string };

// onnxruntime-node loads first: where it cannot, the reply to 'ready' says so.
answerRequests(Promise.resolve().then(() => onnxruntime(what)), async (r) => {
  if (r.op === 'validate') {
    const v = r as ValidationRequest;
    return runValidation(v.original, v.changed, v.options);
  }
  if (r.op === 'timeLayer') {
    const l = r as LayerTimingRequest;
    return measureLayer(l.before, l.after, l.shape, l.runs);
  }
  if (r.op === 'release') return undefined;
  throw new Error(`the inference worker has no op '${r.op}'`);
});
