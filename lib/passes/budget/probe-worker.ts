/**
 * The body of the probe model's worker thread (probe-model.ts starts it): one ProbeSession, and
 * requests in order (lib/runtime-worker.ts): assign values and measure the deviation, or the outputs.
 */
import { workerData } from 'node:worker_threads';

import type { TensorData } from '../../model/dtype';
import { answerRequests } from '../../runtime-worker';
import { ProbeSession, type ProbeSessionSpec } from './probe-session';

/** What a measurement sends: the arrays the worker does not hold yet, and the weights back to their originals. */
export type Changes = { set: [string, TensorData][]; reset: string[] };

/** The worker's ops: each a measurement with the changes assigned first. */
export type ProbeOps = {
  deviation: { args: Changes; reply: number };
  outputDeviations: { args: Changes; reply: { name: string; measured: number }[] };
  outputs: { args: Changes; reply: Float32Array[][] };
};

const ready = ProbeSession.create(workerData as ProbeSessionSpec);

/** The session with `changes` assigned (ready has settled when a request is answered). */
async function assigned({ set, reset }: Changes): Promise<ProbeSession> {
  const session = await ready;
  session.assign(new Map(set), reset);
  return session;
}

answerRequests<ProbeOps>(ready, {
  deviation: async (c) => (await assigned(c)).deviation(),
  outputDeviations: async (c) => (await assigned(c)).outputDeviations(),
  outputs: async (c) => (await assigned(c)).outputs(),
  release: async () => (await ready).release(),
});
