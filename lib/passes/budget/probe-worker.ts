/**
 * The body of the probe model's worker thread (probe-model.ts starts it): one ProbeSession, and
 * requests in order (lib/runtime-worker.ts): assign values and measure the deviation, or the outputs.
 */
import { workerData } from 'node:worker_threads';

import type { TensorData } from '../../model/dtype';
import { answerRequests } from '../../runtime-worker';
import { ProbeSession, type ProbeSessionSpec } from './probe-session';

/** A measurement: the arrays the worker does not hold yet, and the weights back to their originals. */
export type ProbeRequest = { op: 'deviation' | 'outputDeviations' | 'outputs'; set: [string, TensorData][]; reset: string[] };

const ready = ProbeSession.create(workerData as ProbeSessionSpec);

answerRequests(ready, async (r) => {
  const session = await ready;
  if (r.op === 'release') return session.release();
  const { op, set, reset } = r as ProbeRequest;
  session.assign(new Map(set), reset);
  return op === 'deviation' ? session.deviation() : op === 'outputDeviations' ? session.outputDeviations() : session.outputs();
});
