/**
 * The service under load, as test/serve-queue.ts checks it and bench/serve.ts times it: one `redpp
 * serve --queue` and N `redpp worker` processes on loopback, jobs of the bundled PP-OCR models
 * submitted all at once, every result fetched; throughput, latency and each process's peak memory.
 */
import * as fs from 'node:fs';

import { Redis } from 'ioredis';

import { OCR_MODELS } from './onnx-builder';
import { client, peakRss, startServe, startWorker, type Running } from './service';

export type OcrKind = keyof typeof OCR_MODELS;

export interface LoadJob {
  model: OcrKind;
  options: Record<string, unknown>;
}

/**
 * `n` jobs, each a different (model, options) pair: RED++ at a beta of its own, det, rec and cls in
 * turn (about a second each), so none is a cache hit of another.
 */
export function loadJobs(n: number): LoadJob[] {
  const kinds: OcrKind[] = ['det', 'rec', 'cls'];
  return Array.from({ length: n }, (_, i) => ({ model: kinds[i % 3], options: { beta: Math.round((0.02 + 0.004 * Math.floor(i / 3)) * 1000) / 1000 } }));
}

export interface LoadResult {
  jobs: number;
  workers: number;
  wallS: number;
  jobsPerMin: number;
  /** Submission to done, per job. */
  latencyMs: { p50: number; p95: number; max: number };
  /** Peak resident memory of each process (bytes; null where /proc is not there). */
  peakRss: { server: number | null; workers: (number | null)[] };
  states: Record<string, number>;
  results: { job: LoadJob; id: string; attempts: number; model: Buffer }[];
}

export interface Service {
  url: string;
  server: Running;
  workers: Running[];
  stop(): Promise<void>;
}

/** A server and `workers` workers on a clean Redis database and `store`. */
export async function startService(redisUrl: string, store: string, workers: number, workerArgs: string[] = []): Promise<Service> {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  redis.disconnect();
  const server = await startServe(['--queue', redisUrl, '--store', store, '--max-queue', '1000']);
  const ws = await Promise.all(Array.from({ length: workers }, () => startWorker(['--queue', redisUrl, '--store', store, '--threads', '1', ...workerArgs])));
  return {
    url: server.url,
    server,
    workers: ws,
    async stop() {
      for (const p of [server, ...ws]) p.proc.kill('SIGTERM');
      await Promise.all([server, ...ws].map((p) => p.exited));
    },
  };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

export async function runLoad(service: Service, jobs: LoadJob[]): Promise<LoadResult> {
  const c = client(service.url);
  const bytes = Object.fromEntries(Object.entries(OCR_MODELS).map(([k, m]) => [k, fs.readFileSync(m.file)])) as Record<OcrKind, Buffer>;
  const t0 = performance.now();
  const ids = await Promise.all(
    jobs.map(async (job) => {
      const r = await c.submit(bytes[job.model], job.options);
      if (r.status !== 202) throw new Error(`POST /v1/jobs: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { id: string }).id;
    }),
  );
  const views = await Promise.all(ids.map((id) => c.waitFor(id, ['done', 'failed', 'cancelled'], 600_000)));
  const wallS = (performance.now() - t0) / 1000;
  const latencies = views.map((v) => v.finishedAt! - v.createdAt);
  const states: Record<string, number> = {};
  for (const v of views) states[v.state] = (states[v.state] ?? 0) + 1;
  const results = await Promise.all(
    views.map(async (v, i) => ({
      job: jobs[i],
      id: v.id,
      attempts: v.attempts,
      model: v.state === 'done' ? Buffer.from(await (await c.get(`/v1/jobs/${v.id}/model`)).arrayBuffer()) : Buffer.alloc(0),
    })),
  );
  return {
    jobs: jobs.length,
    workers: service.workers.length,
    wallS,
    jobsPerMin: (jobs.length / wallS) * 60,
    latencyMs: { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), max: Math.max(...latencies) },
    peakRss: { server: peakRss(service.server.proc.pid!) ?? null, workers: service.workers.map((w) => peakRss(w.proc.pid!) ?? null) },
    states,
    results,
  };
}
