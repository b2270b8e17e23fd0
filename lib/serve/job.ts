/**
 * A service job: what a client asked (an uploaded model and prune()'s options), what it is doing, and
 * the content address of its result. The two queues (local-queue.ts, redis-queue.ts) hold jobs in
 * their own way and show them to the HTTP layer as the same JobView.
 */
import { createHash } from 'node:crypto';
import { packageVersion } from '../binding';
import { RedppError } from '../errors';
import { PRUNE_OPTION_NAMES, resolvePruneOptions, type PruneOptions, type PruneProgress } from '../options';
import type { StoredInput } from './store';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export const FINISHED: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

/** What a job runs: the same on every machine that takes it. */
export interface JobSpec {
  id: string;
  input: StoredInput;
  /** prune()'s options as the client gave them (JSON), checked by parseJobOptions. */
  options: Record<string, unknown>;
  /** The result's content address: input and resolved options (resultKey). */
  key: string;
  createdAt: number;
}

export interface JobView extends JobSpec {
  state: JobState;
  progress: Pick<PruneProgress, 'phase' | 'done' | 'total'> | null;
  /** Runs started, the one in progress included. */
  attempts: number;
  startedAt?: number;
  finishedAt?: number;
  error?: { code: string; message: string };
  /** Size of the result's model file, once done. */
  outputBytes?: number;
}

/**
 * The options a client may give: what decides the result. Every other option of prune() is the
 * server's (a path on it, a thread count, what JSON cannot carry), so one added to prune() later is
 * refused here until it is added on purpose.
 */
const CLIENT_OPTIONS: ReadonlySet<string> = new Set(['maxDeviation', 'targetSize', 'codecs', 'beta', 'center', 'epsilon', 'kernelSplit', 'minFanIn', 'skip', 'layerBeta', 'inputShapes', 'validate', 'pack', 'transferSize']);

/** Why the server's own options are not taken from a client. */
const SERVER_ONLY: Record<string, string> = {
  samples: 'it names a folder on the server',
  output: 'the server stores the result',
  report: 'GET /v1/jobs/:id/report.html serves the page',
  threads: 'the server sets it (--threads)',
  onProgress: 'the job reports progress',
  signal: 'DELETE /v1/jobs/:id cancels',
};

/**
 * A client's options for a job: a JSON object of prune()'s options, checked by the same resolver the
 * API and the CLI use (its errors are INVALID_OPTION), without the options only the server sets.
 */
export function parseJobOptions(text: string | undefined): Record<string, unknown> {
  let options: unknown = {};
  if (text !== undefined && text !== '') {
    try {
      options = JSON.parse(text);
    } catch (e) {
      throw new RedppError('INVALID_OPTION', `options must be a JSON object (${(e as Error).message})`);
    }
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new RedppError('INVALID_OPTION', 'options must be a JSON object of prune() options');
  // Unknown keys are left to the resolver, which lists the known ones.
  for (const key of Object.keys(options)) {
    if (PRUNE_OPTION_NAMES.includes(key) && !CLIENT_OPTIONS.has(key)) {
      throw new RedppError('INVALID_OPTION', `options.${key} is not accepted by the service: ${SERVER_ONLY[key] ?? 'the server sets it'}`);
    }
  }
  const resolved = resolvePruneOptions(options as PruneOptions);
  for (const [name, dims] of Object.entries(resolved.inputShapes)) {
    const elements = dims.reduce((a, d) => a * d, 1);
    if (elements > MAX_INPUT_ELEMENTS) {
      throw new RedppError('INVALID_OPTION', `options.inputShapes.${name} has ${elements} elements; the service takes at most ${MAX_INPUT_ELEMENTS} per input (its probes and activations are held in memory)`);
    }
  }
  return options as Record<string, unknown>;
}

/**
 * Elements of one input the service accepts (1×3×2048×2048 fits): what a prune holds grows with the
 * input shapes (probes, activations), and a client must not be able to size the server's memory.
 */
export const MAX_INPUT_ELEMENTS = 16 * 1024 * 1024;

const VERSION = packageVersion();

/**
 * The content address of a job's result: the input's digest, the options as prune() resolves them
 * (so `{}` and the defaults spelled out are one result; threads excluded: the output does not depend
 * on them) and redpp's version.
 */
export function resultKey(input: StoredInput, options: Record<string, unknown>): string {
  const { threads: _t, onProgress: _p, signal: _s, output: _o, report: _r, ...resolved } = resolvePruneOptions(options as PruneOptions);
  return createHash('sha256')
    .update(JSON.stringify({ redpp: VERSION, input: input.sha256, options: canonical({ ...resolved, skip: resolved.skip.map(String) }) }))
    .digest('hex');
}

/** A JSON value with every object's keys in order. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}
