/**
 * The body of the inference worker (inference.ts starts it): onnxruntime work
 * that is not the budget's, each a request: a validation (validate/run.ts) and the kernel split's
 * timing of one layer (passes/kernel-split/timing.ts).
 */
import { workerData } from 'node:worker_threads';

import { measureLayer, type LayerTimes } from './passes/kernel-split/timing';
import { onnxruntime } from './runtime';
import { answerRequests } from './runtime-worker';
import { runValidation, type ValidationOptions, type ValidationReport } from './validate/run';

/** The worker's ops: a validation of two model files, and the times of a layer before and after a split. */
export type InferenceOps = {
  validate: { args: { original: string; changed: string; options: ValidationOptions }; reply: ValidationReport };
  timeLayer: { args: { before: Uint8Array; after: Uint8Array; shape: number[]; runs: number }; reply: LayerTimes };
};

const { what } = workerData as { what: string };

// onnxruntime-node loads first: where it cannot, the reply to 'ready' says so.
answerRequests<InferenceOps>(Promise.resolve().then(() => onnxruntime(what)), {
  validate: ({ original, changed, options }) => runValidation(original, changed, options),
  timeLayer: ({ before, after, shape, runs }) => measureLayer(before, after, shape, runs),
});
