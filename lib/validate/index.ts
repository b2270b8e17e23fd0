/**
 * validate(): runs an original and a changed model in onnxruntime-node on the same inputs and measures,
 * per output, how far the changed one drifts, plus the latency and session-creation time of both. This
 * is how every pass proves what it claims (exact folds: ~1e-6; hashing: a reported error).
 *
 * The runs happen in a worker thread (lib/inference-worker.ts, run.ts): onnxruntime-node creates and
 * runs sessions synchronously, a second and more on VGG-16, which on the caller's thread would freeze a
 * server. Each model reaches the worker as a file: a path as it is; a Model or bytes written first to a
 * staging folder in the temporary directory, on libuv's threads (a copy of VGG-16's 553 MB into memory
 * the worker can read would take the caller's thread 2.5 s on the 2-core machine), removed after, and
 * on SIGINT or SIGTERM by the CLI.
 */
import * as os from 'node:os';
import * as path from 'node:path';

import type * as ort from 'onnxruntime-node';

import { RedppError, invalidOption, throwIfCancelled } from '../errors';
import { Model } from '../model/model';
import { stageFile, stageModel } from '../model/write';
import { resolveValidateOptions, type InputTensor, type ValidateOptions } from '../options/validate';
import { inferenceWorker } from '../inference';
import type { PlainInput, ValidationReport } from './run';

export type { OutputComparison } from './metrics';
export type { InputTensor, ProbeDistribution, ValidateOptions } from '../options/validate';
export type { LatencyStats, ValidationReport } from './run';

/** A model to run: loaded, a path to an .onnx file, or its bytes. */
export type ModelSource = Model | string | Uint8Array;

export async function validate(original: ModelSource, changed: ModelSource, options: ValidateOptions = {}): Promise<ValidationReport> {
  const { inputs, ...opts } = resolveValidateOptions(options);
  const { signal } = options;
  throwIfCancelled(signal);
  const plain = inputs?.map((set, i) => Object.fromEntries(Object.entries(set).map(([name, t]) => [name, plainInput(t, `options.inputs[${i}].${name}`)])));
  const staged: { discard(): Promise<void> }[] = [];
  try {
    const files = [await asFile(original, 'original', staged), await asFile(changed, 'changed', staged)];
    throwIfCancelled(signal);
    const worker = await inferenceWorker('validation');
    // An abort ends the worker between two runs; the request then fails, and the abort is the reason
    // (one that came while the worker started is seen here: the listener would not hear it).
    const stop = () => void worker.stop();
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    try {
      return await worker.request('validate', { original: files[0], changed: files[1], options: { ...opts, inputs: plain } }).catch((e: unknown) => {
        throwIfCancelled(signal);
        // Options that cannot cross to the worker (a function among the session options or the inputs).
        if (e instanceof Error && e.name === 'DataCloneError') throw invalidOption('options.sessionOptions and options.inputs', 'plain data (no functions)', e.message);
        throw e;
      });
    } finally {
      signal?.removeEventListener('abort', stop);
      await worker.release();
    }
  } finally {
    for (const s of staged) await s.discard();
  }
}

/** The path of `source`'s model: a path as it is, else a staged file of it (see the file comment). */
async function asFile(source: ModelSource, which: string, staged: { discard(): Promise<void> }[]): Promise<string> {
  if (typeof source === 'string') return source;
  const target = path.join(os.tmpdir(), `redpp-validate-${which}.onnx`);
  let s: { path: string; discard(): Promise<void> };
  if (source instanceof Model) s = await stageModel(source, target, { externalData: 'auto' });
  else if (source instanceof Uint8Array) s = await stageFile(target, source);
  else throw new RedppError('INVALID_ARGUMENT', `validate: the ${which} model must be a Model, a path or a Buffer`);
  staged.push(s);
  return s.path;
}

/** A given input as plain data (an onnxruntime Tensor does not survive the structured clone to the worker). */
function plainInput(t: InputTensor, what: string): PlainInput {
  if (t === null || typeof t !== 'object' || !('data' in t) || !Array.isArray(t.dims)) {
    throw invalidOption(what, 'an onnxruntime Tensor or { data, dims }', t);
  }
  const { type, data, dims } = t as { type?: ort.Tensor.Type; data: PlainInput['data']; dims: readonly number[] };
  return { ...(type ? { type } : {}), data, dims: [...dims] };
}
