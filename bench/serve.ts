/**
 * The service under load: `redpp serve --queue` with 1 and 2 `redpp worker` processes (one thread
 * each) on loopback, N jobs of the bundled PP-OCR models (RED++ at a beta of their own: no cache hits)
 * submitted at once, in `--rounds` rounds on the same processes (so memory that grows from round to
 * round shows). Throughput, latency from submission to done, and each process's peak RSS. Needs
 * redis-server on PATH (or --redis URL).
 *
 *   npm run bench:serve [-- --jobs 50] [--rounds 2] [--workers 1,2] [--redis redis://127.0.0.1:6379]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { testRedis } from '../test/helpers/service';
import { loadJobs, runLoad, startService, type LoadResult } from '../test/helpers/service-load';
import { checkArgs, listArg, loadLine, machineLine, numberArg, table, writeResult } from './machine';

const MiB = 1024 ** 2;

async function main(): Promise<void> {
  checkArgs('serve', { values: { jobs: 'N', rounds: 'N', workers: 'N,N', redis: 'URL' } });
  const jobs = numberArg('jobs', 50);
  const rounds = numberArg('rounds', 2);
  const workerCounts = listArg('workers', ['1', '2']).map(Number);
  const ri = process.argv.indexOf('--redis');
  const redis = ri >= 0 ? { url: process.argv[ri + 1], stop: () => undefined } : await testRedis();
  if (!redis) throw new Error('bench:serve needs redis-server on PATH, or --redis URL');
  const rows: (LoadResult & { round: number; load: string })[] = [];
  try {
    for (const workers of workerCounts) {
      const store = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-serve-'));
      const service = await startService(redis.url, store, workers);
      try {
        for (let round = 0; round < rounds; round++) {
          const load = loadLine();
          // Each round's betas are new: every job is computed, none served from the store.
          const batch = loadJobs(jobs).map((j) => ({ ...j, options: { beta: Math.round(((j.options.beta as number) + round * 0.25) * 1000) / 1000 } }));
          const r = await runLoad(service, batch);
          rows.push({ ...r, round: round + 1, load });
          process.stderr.write(`[serve] ${workers} worker(s), round ${round + 1}: ${r.wallS.toFixed(1)} s\n`);
        }
      } finally {
        await service.stop();
        fs.rmSync(store, { recursive: true, force: true });
      }
    }
  } finally {
    redis.stop();
  }
  const mib = (b: number | null) => (b === null ? '—' : (b / MiB).toFixed(0));
  console.log(`\n## The service under load (${machineLine()})\n`);
  console.log(
    table(
      ['workers', 'round', 'jobs', 'done', 'wall', 'jobs/min', 'latency p50', 'p95', 'server peak RSS', 'worker peak RSS', 'load before'],
      rows.map((r) => [
        r.workers,
        r.round,
        r.jobs,
        r.states.done ?? 0,
        `${r.wallS.toFixed(1)} s`,
        r.jobsPerMin.toFixed(0),
        `${(r.latencyMs.p50 / 1000).toFixed(1)} s`,
        `${(r.latencyMs.p95 / 1000).toFixed(1)} s`,
        `${mib(r.peakRss.server)} MiB`,
        `${r.peakRss.workers.map(mib).join(', ')} MiB`,
        r.load,
      ]),
    ),
  );
  writeResult('serve', { machine: machineLine(), rows: rows.map(({ results: _r, ...row }) => row) });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
