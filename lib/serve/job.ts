/**
 * A service job: what a client asked (an uploaded model and prune()'s options), what it is doing, and
 * the content address of its result. The two queues (local-queue.ts, redis-queue.ts) hold jobs in
 * their own way and show them to the HTTP layer as the same JobView.
 */
import { createHash } from 'node:crypto';
import { packageVersion } from '../binding';
import { RedppError } from '../errors';
import { resolvePruneOptions, type PruneOptions, type PruneProgress } from '../options';
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
 * Options the service does not take from a client: paths on the server (samples, output), what the
 * server decides (threads), and what JSON cannot carry.
 */
const SERVER_ONLY: Record<string, string> = {
  samples: 'it names a folder on the server',
  output: 'the server stores the result',
  threads: 'the server sets it (--threads)',
  onProgress: 'the job reports progress',
  signal: 'DELETE /v1/jobs/:id cancels',
  pool: 'the server shares its pool',
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
  for (const key of Object.keys(options)) {
    if (key in SERVER_ONLY) throw new RedppError('INVALID_OPTION', `options.${key} is not accepted by the service: ${SERVER_ONLY[key]}`);
  }
  resolvePruneOptions(options as PruneOptions);
  return options as Record<string, unknown>;
}

const VERSION = packageVersion();

/**
 * The content address of a job's result: the input's digest, the options as prune() resolves them
 * (so `{}` and the defaults spelled out are one result; threads excluded: the output does not depend
 * on them) and redpp's version.
 */
export function resultKey(input: StoredInput, options: Record<string, unknown>): string {
  const { threads: _t, onProgress: _p, signal: _s, pool: _pool, output: _o, ...resolved } = resolvePruneOptions(options as PruneOptions);
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

/** A failure as a job shows it: a RedppError's code and message, anything else as INTERNAL. */
export function jobError(e: unknown): { code: string; message: string } {
  if (e instanceof RedppError) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: `${e instanceof Error ? e.message : String(e)} (a bug in redpp: please report it)`.split('\n')[0] };
}
