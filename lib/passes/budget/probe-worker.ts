/**
 * The body of the probe model's worker thread (probe-model.ts starts it): one ProbeSession, and
 * requests in order: assign values and measure the deviation, or the outputs. Replies carry the
 * request's id; a RedppError keeps its code across.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { RedppError } from '../../errors';
import type { TensorData } from '../../model/dtype';
import { ProbeSession, type ProbeSessionSpec } from './probe-session';

/**
 * A request without its id; 'ready' is answered once the session is made (or with why it could not be).
 * 'stop' is not answered: the thread ends as soon as it reads it, between two runs (probe-model.ts's
 * stopProbeModels says why).
 */
export type ProbeRequestBody = { op: 'deviation' | 'outputDeviations' | 'outputs'; set: [string, TensorData][]; reset: string[] } | { op: 'ready' | 'release' | 'stop' };
export type ProbeRequest = ProbeRequestBody & { id: number };
export type ProbeReply = { id: number; value?: unknown; error?: { code?: string; message: string } };

const port = parentPort!;
const ready = ProbeSession.create(workerData as ProbeSessionSpec);
// A failure to create is the reply to the first request (probe-model.ts sends 'ready' first); the
// others fail the same way.
ready.catch(() => undefined);

let queue: Promise<unknown> = Promise.resolve();
port.on('message', (r: ProbeRequest) => {
  if (r.op === 'stop') process.exit(0);
  queue = queue.then(() => answer(r));
});

async function answer(r: ProbeRequest): Promise<void> {
  try {
    const session = await ready;
    let value: unknown;
    if (r.op === 'release') value = await session.release();
    else if (r.op === 'deviation' || r.op === 'outputDeviations' || r.op === 'outputs') {
      session.assign(new Map(r.set), r.reset);
      value = r.op === 'deviation' ? await session.deviation() : r.op === 'outputDeviations' ? await session.outputDeviations() : await session.outputs();
    }
    port.postMessage({ id: r.id, value } satisfies ProbeReply);
  } catch (e) {
    const error = e instanceof RedppError ? { code: e.code, message: e.message } : { message: e instanceof Error ? e.message : String(e) };
    port.postMessage({ id: r.id, error } satisfies ProbeReply);
  }
}
