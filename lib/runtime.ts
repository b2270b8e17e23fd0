/**
 * onnxruntime-node, loaded on first use. It is an optional peer dependency: pruning with `beta` needs
 * none of it, while the fidelity budget, `validate`, `samples` and the kernel split's timing run models
 * in it. Where it is missing, they fail with one line that says how to install it.
 */
import type * as Ort from 'onnxruntime-node';

import { RedppError } from './errors';

let loaded: typeof Ort | undefined;

/** The module, or INFERENCE_UNAVAILABLE naming `what` needed it. */
export function onnxruntime(what = 'this'): typeof Ort {
  if (loaded) return loaded;
  try {
    loaded = require('onnxruntime-node') as typeof Ort;
    return loaded;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /onnxruntime-node/.test((e as Error).message);
    throw new RedppError(
      'INFERENCE_UNAVAILABLE',
      missing
        ? notInstalled(what)
        : `${what} runs the model in onnxruntime-node, which failed to load: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
}

/**
 * INFERENCE_UNAVAILABLE naming `what` where onnxruntime-node is not installed, without loading it: work
 * that runs it in a worker (lib/runtime-worker.ts) checks here, so that the main thread never pays its
 * native library's load (20-60 ms of a stalled event loop). A copy that is installed but fails to load
 * fails where it is loaded, in the worker, with the same code.
 */
export function requireOnnxruntimeInstalled(what: string): void {
  if (loaded) return;
  try {
    require.resolve('onnxruntime-node');
  } catch (e) {
    throw new RedppError('INFERENCE_UNAVAILABLE', notInstalled(what), { cause: e });
  }
}

function notInstalled(what: string): string {
  return (
    `${what} runs the model in onnxruntime-node, which is not installed: \`npm install onnxruntime-node\` ` +
    '(with ONNXRUNTIME_NODE_INSTALL=skip where its GPU download cannot be reached), or prune with --beta, which needs no inference'
  );
}
