/**
 * `redpp serve` on one machine (the local queue): every endpoint and error, progress events,
 * cancellation, content-addressed results, and a restart with a job in flight. The server runs in
 * this process for the API's tests (on a real port, spoken to over HTTP) and as `redpp serve` for the
 * restarts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { prune } from '../lib/prune';
import { buildServer } from '../lib/serve/http';
import type { JobView } from '../lib/serve/job';
import { LocalQueue, type LocalQueueOptions } from '../lib/serve/local-queue';
import { DirectoryStore } from '../lib/serve/store';
import { OCR_MODELS, tempDir } from './helpers/onnx-builder';
import { client, sleep, startServe } from './helpers/service';

const cls = fs.readFileSync(OCR_MODELS.cls.file);
const det = fs.readFileSync(OCR_MODELS.det.file);
const FAST = { beta: 0.05 };

/** A server in this process over a fresh store. */
async function server(t: { teardown(fn: () => unknown): void }, o: Partial<LocalQueueOptions> & { maxUpload?: number; token?: string } = {}) {
  const dir = tempDir(t);
  const store = new DirectoryStore(dir);
  const queue = await LocalQueue.open(store, { concurrency: 1, threads: 2, maxQueue: 10, maxAttempts: 3, jobTimeoutMs: 600_000, ...o });
  const app = buildServer({ queue, store, maxUpload: o.maxUpload ?? 64 * 1024 ** 2, token: o.token });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await queue.close();
  });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  return { base, dir, store, queue, c: client(base, o.token) };
}

async function submitted(r: Response): Promise<string> {
  if (r.status !== 202) throw new Error(`POST /v1/jobs: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

t.test('a job end to end: 202, progress events, the model identical to prune()\'s, its report, the list, health and metrics', async (t) => {
  const { c } = await server(t);
  const r = await c.submit(cls, FAST);
  t.equal(r.status, 202);
  t.match(r.headers.get('location'), /^\/v1\/jobs\/[0-9a-f-]{36}$/);
  const id = await submitted(r);

  // The event stream: one `job` event per change, the last one done, then the stream ends.
  const events = await (await c.get(`/v1/jobs/${id}/events`)).text();
  const views = [...events.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]) as JobView);
  t.ok(views.length >= 2, `${views.length} events`);
  t.equal(views.at(-1)!.state, 'done', 'the stream ends with the job done');
  t.ok(views.some((v) => v.state === 'running' && v.progress), 'progress while running');

  const view = await c.job(id);
  t.match(view, { id, state: 'done', attempts: 1, input: { bytes: cls.length }, options: FAST });
  const model = Buffer.from(await (await c.get(`/v1/jobs/${id}/model`)).arrayBuffer());
  t.equal(view.outputBytes, model.length);
  const dir = tempDir(t);
  await prune(OCR_MODELS.cls.file, { ...FAST, output: path.join(dir, 'cls.onnx') });
  t.equal(Buffer.compare(model, fs.readFileSync(path.join(dir, 'cls.onnx'))), 0, 'the same bytes as prune() with the same options');

  const report = (await (await c.get(`/v1/jobs/${id}/report`)).json()) as { file: { before: number; after: number }; input: unknown; output: unknown };
  t.same(report.file, { before: cls.length, after: model.length });
  const page = await c.get(`/v1/jobs/${id}/report.html`);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/);
  t.match(await page.text(), new RegExp(`data-file-after="${model.length}"`), 'the report page, of this result');
  t.equal(report.input, null, 'no server path in the report');
  t.equal(report.output, null);

  const list = (await (await c.get('/v1/jobs')).json()) as { jobs: JobView[] };
  t.same(list.jobs.map((j) => j.id), [id]);
  t.same(await (await c.get('/healthz')).json(), { ok: true, queue: 'local' });
  const metrics = await (await c.get('/metrics')).text();
  t.match(metrics, /^redpp_jobs\{state="done"\} 1$/m);
  t.match(metrics, /^redpp_queue_depth 0$/m);
  t.match(metrics, new RegExp(`^redpp_input_bytes_total ${cls.length}$`, 'm'));
  t.match(metrics, new RegExp(`^redpp_output_bytes_total ${model.length}$`, 'm'));
  t.match(metrics, /^redpp_job_duration_seconds_count\{state="done"\} 1$/m);
  t.match(metrics, /^redpp_process_resident_memory_bytes \d+/m);
});

t.test('errors: JSON with the code and a fitting status', async (t) => {
  const { c, base, dir } = await server(t, { maxUpload: 1024 * 1024 });
  const error = async (r: Response) => ({ status: r.status, ...((await r.json()) as { error: { code: string } }).error });

  t.match(await error(await c.submit(cls, { bogus: 1 })), { status: 400, code: 'INVALID_OPTION', message: /options\.bogus/ });
  t.match(await error(await c.submit(cls, { beta: -1 })), { status: 400, code: 'INVALID_OPTION', message: /options\.beta/ });
  t.match(await error(await c.submit(cls, { inputShapes: { x: [1, 3, 8192, 8192] } })), { status: 400, code: 'INVALID_OPTION', message: /at most 16777216/ });
  t.match(await error(await c.submit(cls, { samples: '/etc' })), { status: 400, code: 'INVALID_OPTION', message: /names a folder on the server/ });
  t.match(await error(await c.submit(cls, { output: '/tmp/x.onnx' })), { status: 400, code: 'INVALID_OPTION' });
  t.match(await error(await c.submit(cls, { report: '/tmp/x.html' })), { status: 400, code: 'INVALID_OPTION', message: /options\.report is not accepted/ }, 'no file written where a client says');
  t.match(await error(await c.submit(cls, { threads: 64 })), { status: 400, code: 'INVALID_OPTION', message: /--threads/ });
  t.match(await error(await fetch(`${base}/v1/jobs?options=%7Bnot-json`, { method: 'POST', body: cls })), { status: 400, code: 'INVALID_OPTION', message: /JSON/ });
  t.match(await error(await fetch(`${base}/v1/jobs?options=%5B1%5D`, { method: 'POST', body: cls })), { status: 400, code: 'INVALID_OPTION' });
  t.match(await error(await c.submit(new Uint8Array(0), FAST)), { status: 400, code: 'NOT_ONNX' });

  // Too large: by the declared length (before a byte is read), and counted on a body without one.
  t.match(await error(await c.submit(det, FAST)), { status: 413, code: 'UPLOAD_TOO_LARGE' });
  const chunked = new ReadableStream({
    start(controller) {
      controller.enqueue(det.subarray(0, 800_000));
      controller.enqueue(det.subarray(800_000, 1_600_000));
      controller.close();
    },
  });
  const r = await fetch(`${base}/v1/jobs`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit);
  t.match(await error(r), { status: 413, code: 'UPLOAD_TOO_LARGE' });

  // A bad model is accepted, and its job fails with the code prune() gives it.
  const bad = await submitted(await c.submit(Buffer.from('this is not a model at all'), FAST));
  t.match(await c.waitFor(bad, ['failed']), { state: 'failed', error: { code: 'NOT_ONNX' } });
  t.match(await error(await c.get(`/v1/jobs/${bad}/model`)), { status: 409, code: 'JOB_NOT_DONE' });
  t.match(await error(await c.get(`/v1/jobs/${bad}/report`)), { status: 409, code: 'JOB_NOT_DONE' });

  for (const p of ['/v1/jobs/00000000-0000-0000-0000-000000000000', '/v1/jobs/..%2F..%2Fetc%2Fpasswd', '/v1/jobs/x/model', '/v1/jobs/x/events']) {
    t.match(await error(await c.get(p)), { status: 404, code: 'JOB_NOT_FOUND' }, p);
  }
  t.match(await error(await c.get('/v1/jobs/00000000-0000-0000-0000-000000000000', { method: 'DELETE' })), { status: 404, code: 'JOB_NOT_FOUND' });
  t.match(await error(await c.get('/v1/nothing')), { status: 404, code: 'NOT_FOUND' });
  t.match(await error(await c.get('/v1/jobs?limit=0')), { status: 400, code: 'INVALID_ARGUMENT' });
  t.same(fs.readdirSync(path.join(dir, 'tmp')), [], 'nothing of the refused uploads is left in the store');
  t.equal(fs.readdirSync(path.join(dir, 'inputs')).length, 1, 'the one accepted upload');
});

t.test('a full queue answers 429 with Retry-After, before the upload is read', async (t) => {
  const { c, queue } = await server(t, { maxQueue: 2 });
  // One running (the budget on cls: seconds), two waiting: the queue is full.
  const ids = [await submitted(await c.submit(cls)), await submitted(await c.submit(cls, { maxDeviation: 0.01 })), await submitted(await c.submit(cls, { maxDeviation: 0.03 }))];
  const r = await c.submit(cls, FAST);
  t.equal(r.status, 429);
  t.match(((await r.json()) as { error: object }).error, { code: 'QUEUE_FULL' });
  t.ok(Number(r.headers.get('retry-after')) >= 1, `Retry-After: ${r.headers.get('retry-after')}`);
  t.match(await queue.counts(), { queued: 2, running: 1 });
  for (const id of ids) await c.get(`/v1/jobs/${id}`, { method: 'DELETE' });
});

t.test('a bearer token: 401 without it or with another, /healthz open', async (t) => {
  const { base } = await server(t, { token: 's3cret' });
  const noToken = await fetch(`${base}/v1/jobs`);
  t.equal(noToken.status, 401);
  t.equal(noToken.headers.get('www-authenticate'), 'Bearer');
  t.match(await noToken.json(), { error: { code: 'UNAUTHORIZED' } });
  t.equal((await fetch(`${base}/v1/jobs`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  t.equal((await fetch(`${base}/metrics`)).status, 401);
  t.equal((await fetch(`${base}/v1/jobs`, { method: 'POST', body: cls })).status, 401, 'an upload without the token is refused');
  t.equal((await fetch(`${base}/v1/jobs`, { headers: { authorization: 'Bearer s3cret' } })).status, 200);
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  const page = await fetch(`${base}/`);
  t.equal(page.status, 200, 'the page is served without the token (it holds no data)');
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.match(page.headers.get('content-security-policy'), /default-src 'none'.*connect-src 'self'/);
  t.notMatch(await page.text(), /<script[^>]+src=|<link[^>]+href=|https?:\/\//, 'no external resource');
});

t.test('cancel: a queued job at once, a running one within a layer\'s task; nothing is stored for either', async (t) => {
  const { c, store } = await server(t);
  const running = await submitted(await c.submit(cls));
  const queued = await submitted(await c.submit(cls, FAST));
  await c.waitFor(running, ['running']);
  await sleep(300);
  const t0 = Date.now();
  const r = await c.get(`/v1/jobs/${running}`, { method: 'DELETE' });
  t.match(await r.json(), { state: 'cancelled', error: { code: 'CANCELLED' } });
  t.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  // The queued one may have started meanwhile: cancelled either way.
  const q = (await (await c.get(`/v1/jobs/${queued}`, { method: 'DELETE' })).json()) as JobView;
  t.ok(q.state === 'cancelled' || q.state === 'done', `the second job: ${q.state}`);
  t.notOk(await store.hasResult((await c.job(running)).key), 'no result for the cancelled job');
  t.same(fs.readdirSync(path.join(store.root, 'tmp')), [], 'no staging left behind');
  // A finished job is left as it is.
  t.match(await (await c.get(`/v1/jobs/${running}`, { method: 'DELETE' })).json(), { state: 'cancelled' });

  // Two cancels of one queued job at once cancel it, and only it.
  const busy = await submitted(await c.submit(cls, { maxDeviation: 0.01 }));
  const doomed = await submitted(await c.submit(cls, { beta: 0.07 }));
  const spared = await submitted(await c.submit(cls, { beta: 0.08 }));
  await c.waitFor(busy, ['running']);
  const twice = await Promise.all([c.get(`/v1/jobs/${doomed}`, { method: 'DELETE' }), c.get(`/v1/jobs/${doomed}`, { method: 'DELETE' })]);
  for (const r of twice) t.match(await r.json(), { state: 'cancelled' });
  await c.get(`/v1/jobs/${busy}`, { method: 'DELETE' });
  t.match(await c.waitFor(spared, ['done', 'failed', 'cancelled']), { state: 'done' }, 'the job behind it still runs');
});

t.test('results are content-addressed: the same input and (resolved) options give one result, computed once', async (t) => {
  const { c, store } = await server(t);
  const a = await c.waitFor(await submitted(await c.submit(cls, FAST)), ['done']);
  const b = await c.waitFor(await submitted(await c.submit(cls, { beta: 0.05, center: 'mean', epsilon: 0 })), ['done']);
  t.equal(a.key, b.key, 'the defaults spelled out: the same key');
  t.not(a.id, b.id);
  const other = await c.waitFor(await submitted(await c.submit(cls, { beta: 0.1 })), ['done']);
  t.not(other.key, a.key);
  t.equal(fs.readdirSync(path.join(store.root, 'results')).length, 2);
  t.equal(fs.readdirSync(path.join(store.root, 'inputs')).length, 1, 'the same upload stored once');
});

t.test('restart: a job running when the server was killed runs again; a queued one waits; both finish', async (t) => {
  const store = tempDir(t);
  const first = await startServe(['--store', store, '--threads', '2']);
  const c1 = client(first.url);
  const running = await submitted(await c1.submit(cls));
  const queued = await submitted(await c1.submit(cls, FAST));
  await c1.waitFor(running, ['running']);
  first.proc.kill('SIGKILL');
  await first.exited;

  const second = await startServe(['--store', store, '--threads', '2']);
  t.teardown(() => void second.proc.kill('SIGKILL'));
  const c2 = client(second.url);
  const a = await c2.waitFor(running, ['done', 'failed']);
  t.match(a, { state: 'done', attempts: 2 }, 'the interrupted job ran again');
  t.match(await c2.waitFor(queued, ['done', 'failed']), { state: 'done', attempts: 1 });

  // SIGTERM: the server stops cleanly, a running job is put back (not counted as an attempt).
  const again = await submitted(await c2.submit(cls, { maxDeviation: 0.01 }));
  await c2.waitFor(again, ['running']);
  second.proc.kill('SIGTERM');
  t.equal(await second.exited, 0, 'exit 0 on SIGTERM');
  const record = JSON.parse(fs.readFileSync(path.join(store, 'jobs', `${again}.json`), 'utf8')) as JobView;
  t.match(record, { state: 'queued', attempts: 0 });
  const third = await startServe(['--store', store, '--threads', '2']);
  t.teardown(() => void third.proc.kill('SIGKILL'));
  t.match(await client(third.url).waitFor(again, ['done', 'failed']), { state: 'done', attempts: 1 });
});

t.test('a job that runs past its time limit fails with TIMED_OUT', async (t) => {
  const { c } = await server(t, { jobTimeoutMs: 500 });
  const id = await submitted(await c.submit(cls));
  t.match(await c.waitFor(id, ['failed', 'done']), { state: 'failed', error: { code: 'TIMED_OUT' } });
});
