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
        ? `${what} runs the model in onnxruntime-node, which is not installed: \`npm install onnxruntime-node\` ` +
            '(with ONNXRUNTIME_NODE_INSTALL=skip where its GPU download cannot be reached), or prune with --beta, which needs no inference'
        : `${what} runs the model in onnxruntime-node, which failed to load: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
}

/** Whether onnxruntime-node can be loaded (for work that is only worth doing with it, such as timing). */
export function onnxruntimeAvailable(): boolean {
  try {
    onnxruntime();
    return true;
  } catch {
    return false;
  }
}
