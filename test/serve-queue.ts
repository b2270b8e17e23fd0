/**
 * The service beyond one machine: `redpp serve --queue` and `redpp worker` processes over a real Redis
 * (.ci/run starts one and sets REDPP_TEST_REDIS; elsewhere a redis-server on PATH is started here).
 * A load test (50 jobs at once, 2 workers, every result byte-identical to the CLI's), a fault test (a
 * worker killed with SIGKILL mid-job: every job done once, the killed one retried), cancellation and
 * failures in queue mode.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import t from 'tap';

import { OCR_MODELS, tempDir } from './helpers/onnx-builder';
import { CLI, client, sleep, testRedis } from './helpers/service';
import { loadJobs, runLoad, startService, type LoadJob } from './helpers/service-load';

const run = promisify(execFile);
const redisServer = spawnSync('redis-server', ['--version']).status === 0;

/** What `redpp prune` writes for each job, two at a time. */
async function cliOutputs(dir: string, jobs: LoadJob[]): Promise<Buffer[]> {
  const out: Buffer[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < jobs.length; i = next++) {
      const file = path.join(dir, `cli-${i}.onnx`);
      await run(process.execPath, [CLI, 'prune', OCR_MODELS[jobs[i].model].file, '-o', file, '--beta', String(jobs[i].options.beta), '--json']);
      out[i] = fs.readFileSync(file);
    }
  };
  await Promise.all([lane(), lane()]);
  return out;
}

const MiB = 1024 ** 2;

t.test('queue mode', async (t) => {
  const redis = await testRedis();
  if (!redis) {
    t.skip('no Redis: set REDPP_TEST_REDIS or put redis-server on PATH');
    return;
  }
  t.teardown(redis.stop);

  t.test('load: 50 jobs at once, 2 workers; all done, each identical to the CLI\'s output, memory within its bound', async (t) => {
    const store = tempDir(t);
    const service = await startService(redis.url, store, 2);
    t.teardown(() => service.stop());
    const jobs = loadJobs(50);
    const r = await runLoad(service, jobs);
    t.same(r.states, { done: 50 }, 'every job done');
    t.comment(`50 jobs in ${r.wallS.toFixed(1)} s (${r.jobsPerMin.toFixed(0)} jobs/min), latency p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms`);
    t.comment(`peak RSS: server ${((r.peakRss.server ?? 0) / MiB).toFixed(0)} MiB, workers ${r.peakRss.workers.map((w) => ((w ?? 0) / MiB).toFixed(0)).join(', ')} MiB`);
    // The bounds of the README ("Serving", limits): the server streams uploads to disk and holds job
    // records only; a worker, its base and at most 64× the model per prune it runs at once.
    const largest = Math.max(...Object.values(OCR_MODELS).map((m) => fs.statSync(m.file).size));
    if (r.peakRss.server !== null) t.ok(r.peakRss.server < 256 * MiB, `server peak ${(r.peakRss.server / MiB).toFixed(0)} MiB < 256 MiB`);
    for (const w of r.peakRss.workers) if (w !== null) t.ok(w < 192 * MiB + 64 * largest, `worker peak ${(w / MiB).toFixed(0)} MiB < 192 MiB + 64 × ${(largest / MiB).toFixed(1)} MiB`);

    const expected = await cliOutputs(tempDir(t), jobs);
    const different = r.results.filter((x, i) => Buffer.compare(x.model, expected[i]) !== 0).map((x) => `${x.job.model} ${JSON.stringify(x.job.options)}`);
    t.same(different, [], 'every result byte-identical to redpp prune with the same input and options');
    t.equal(fs.readdirSync(path.join(store, 'results')).length, 50, 'one result per job in the store');
  });

  t.test('fault: a worker killed with SIGKILL mid-job; every job completes once, the killed one retried', async (t) => {
    const store = tempDir(t);
    const service = await startService(redis.url, store, 2, ['--stall-timeout', '2']);
    t.teardown(() => service.stop());
    // The budget on cls (seconds each) first, so that both workers are mid-job when one is killed.
    const jobs: LoadJob[] = [
      ...[0.01, 0.015].map((d) => ({ model: 'cls' as const, options: { maxDeviation: d } })),
      ...loadJobs(18),
    ];
    const c = client(service.url);
    const ids: string[] = [];
    for (const job of jobs) {
      const r = await c.submit(fs.readFileSync(OCR_MODELS[job.model].file), job.options);
      ids.push(((await r.json()) as { id: string }).id);
    }
    // Both workers busy: kill one.
    for (let i = 0; i < 200; i++) {
      const running = (await Promise.all(ids.slice(0, 2).map((id) => c.job(id)))).filter((v) => v.state === 'running');
      if (running.length >= 2) break;
      await sleep(50);
    }
    const victim = service.workers[0];
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const views = await Promise.all(ids.map((id) => c.waitFor(id, ['done', 'failed', 'cancelled'], 300_000)));
    t.same(
      views.map((v) => v.state),
      jobs.map(() => 'done'),
      'every job done',
    );
    const retried = views.filter((v) => v.attempts > 1);
    t.ok(retried.length >= 1, `${retried.length} job(s) ran again after the kill`);
    const results = fs.readdirSync(path.join(store, 'results'));
    t.equal(results.length, new Set(views.map((v) => v.key)).size, 'one result per job');
    for (const key of results) t.same(fs.readdirSync(path.join(store, 'results', key)).sort(), ['model.onnx', 'report.json'], `result ${key.slice(0, 8)} whole`);
    // The retried job's bytes are the CLI's.
    const dir = tempDir(t);
    for (const v of retried) {
      const file = path.join(dir, `${v.id}.onnx`);
      const opts = Object.entries(v.options).flatMap(([k, x]) => [k === 'maxDeviation' ? '--max-deviation' : `--${k}`, String(x)]);
      const kind = jobs[ids.indexOf(v.id)].model;
      await run(process.execPath, [CLI, 'prune', OCR_MODELS[kind].file, '-o', file, ...opts]);
      const served = Buffer.from(await (await c.get(`/v1/jobs/${v.id}/model`)).arrayBuffer());
      t.equal(Buffer.compare(served, fs.readFileSync(file)), 0, `the retried job ${kind} ${JSON.stringify(v.options)}: the CLI's bytes`);
    }
  });

  t.test('cancel, typed failures (not retried), health', async (t) => {
    const store = tempDir(t);
    const service = await startService(redis.url, store, 1);
    t.teardown(() => service.stop());
    const c = client(service.url);
    const cls = fs.readFileSync(OCR_MODELS.cls.file);
    const running = ((await (await c.submit(cls)).json()) as { id: string }).id;
    const queued = ((await (await c.submit(cls, { maxDeviation: 0.01 })).json()) as { id: string }).id;
    await c.waitFor(running, ['running']);
    await sleep(300);
    t.match(await (await c.get(`/v1/jobs/${queued}`, { method: 'DELETE' })).json(), { state: 'cancelled' }, 'a queued job: cancelled at once');
    const t0 = Date.now();
    t.match(await (await c.get(`/v1/jobs/${running}`, { method: 'DELETE' })).json(), { state: 'cancelled', error: { code: 'CANCELLED' } });
    t.ok(Date.now() - t0 < 5000, `the running job stopped in ${Date.now() - t0} ms`);
    // The cancelled queued job is never run.
    const next = ((await (await c.submit(cls, { beta: 0.05 })).json()) as { id: string }).id;
    await c.waitFor(next, ['done']);
    const never = await c.job(queued);
    t.match(never, { state: 'cancelled', error: { code: 'CANCELLED', message: /before it started/ } }, 'never run');
    t.notOk(fs.existsSync(path.join(store, 'results', never.key)), 'no result for it');

    const bad = ((await (await c.submit(Buffer.from('not a model'), { beta: 0.05 })).json()) as { id: string }).id;
    t.match(await c.waitFor(bad, ['failed']), { state: 'failed', attempts: 1, error: { code: 'NOT_ONNX' } }, 'a typed failure is final');
    t.same(await (await c.get('/healthz')).json(), { ok: true, queue: 'redis' });
    const list = (await (await c.get('/v1/jobs')).json()) as { jobs: { id: string }[] };
    t.same(new Set(list.jobs.map((j) => j.id)), new Set([running, queued, next, bad]));
  });

  t.test('Redis gone: /healthz 503, requests 503 QUEUE_UNAVAILABLE in one line, not a hang', { skip: redisServer ? false : 'no redis-server on PATH' }, async (t) => {
    const own = (await testRedis(true))!;
    t.teardown(own.stop);
    const service = await startService(own.url, tempDir(t), 0);
    t.teardown(() => service.stop());
    const c = client(service.url);
    t.equal((await c.get('/healthz')).status, 200);
    own.stop();
    await sleep(200);
    const health = await c.get('/healthz');
    t.equal(health.status, 503);
    t.same(await health.json(), { ok: false, queue: 'redis' });
    const t0 = Date.now();
    const r = await c.get('/v1/jobs');
    t.equal(r.status, 503);
    t.match(await r.json(), { error: { code: 'QUEUE_UNAVAILABLE', message: /cannot reach the Redis server/ } });
    t.ok(Date.now() - t0 < 5000, `answered in ${Date.now() - t0} ms`);
  });
});
