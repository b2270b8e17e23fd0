/**
 * The HTTP API of `redpp serve` (README, "Serving"), on Fastify. A model comes in as the raw body of
 * POST /v1/jobs and streams to the store under the upload limit; options, the queue's room and the
 * declared length are checked before a byte of it is read. Every error is JSON with a code and a
 * fitting status.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

import { failureOf, RedppError } from '../errors';
import type { JsonReport } from '../report';
import { reportPage } from '../report-page';
import { FINISHED, parseJobOptions, type JobView } from './job';
import { serviceMetrics } from './metrics';
import { SERVICE_PAGE } from './page';
import type { JobQueue } from './queue';
import { isJobId, type Store } from './store';

export interface HttpOptions {
  queue: JobQueue;
  store: Store;
  /** Largest upload in bytes. */
  maxUpload: number;
  /** The bearer token every request but GET /healthz must carry; none: no check. */
  token?: string;
}

const STATUS: Partial<Record<string, number>> = {
  INVALID_OPTION: 400,
  INVALID_ARGUMENT: 400,
  NOT_ONNX: 400,
  UNAUTHORIZED: 401,
  JOB_NOT_FOUND: 404,
  NOT_FOUND: 404,
  JOB_NOT_DONE: 409,
  UPLOAD_TOO_LARGE: 413,
  QUEUE_FULL: 429,
  QUEUE_UNAVAILABLE: 503,
};

const notFound = (id: string) => new RedppError('JOB_NOT_FOUND', `no job '${id.slice(0, 64)}'`);

/** Job ids in paths are checked here: a malformed one is simply not found. */
async function jobOf(queue: JobQueue, id: string): Promise<JobView> {
  const view = isJobId(id) ? await queue.get(id) : undefined;
  if (!view) throw notFound(id);
  return view;
}

function doneJob(view: JobView): JobView {
  if (view.state !== 'done') throw new RedppError('JOB_NOT_DONE', `job ${view.id} is ${view.state}${view.error ? ` (${view.error.code})` : ''}, not done`);
  return view;
}

/** The page may talk to this server only, and load nothing. */
const PAGE_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' blob:; img-src 'self' data: blob:; frame-src 'self'";
/** A report: no script at all. */
const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const digest = (s: string) => createHash('sha256').update(s).digest();

export function buildServer({ queue, store, maxUpload, token }: HttpOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: maxUpload, forceCloseConnections: true });
  const metrics = serviceMetrics(queue);

  // The body of a job is read by its route, as a stream; no other body is parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  if (token !== undefined) {
    const expected = digest(token);
    app.addHook('onRequest', async (request) => {
      // The health check, and the page (static: it asks for the token and sends it with every request).
      if (request.url === '/healthz' || request.url === '/') return;
      const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (!given || !timingSafeEqual(digest(given), expected)) throw new RedppError('UNAUTHORIZED', 'a bearer token is required (Authorization: Bearer TOKEN)');
    });
  }

  app.setErrorHandler((e: Error & { statusCode?: number; code?: string }, request, reply) => {
    // A body left unread (an upload refused midway) would be taken for the next request's start.
    if (!request.raw.complete) reply.header('connection', 'close');
    if (e instanceof RedppError) {
      if (e.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
      if (e.code === 'QUEUE_FULL') reply.header('retry-after', String(queue.retryAfterSeconds()));
      return reply.status(STATUS[e.code] ?? 500).send({ error: { code: e.code, message: e.message } });
    }
    // Fastify's own (a malformed request): its status, its code.
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send({ error: { code: e.code ?? 'BAD_REQUEST', message: e.message } });
    return reply.status(500).send({ error: failureOf(e) });
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }));

  app.post('/v1/jobs', async (request: FastifyRequest<{ Querystring: { options?: string } }>, reply) => {
    const options = parseJobOptions(request.query.options);
    const declared = Number(request.headers['content-length']);
    if (declared > maxUpload) throw new RedppError('UPLOAD_TOO_LARGE', `the model (${declared} bytes) is over the server's upload limit of ${maxUpload} bytes`);
    await queue.checkCapacity();
    const input = await store.putInput(request.raw, maxUpload);
    const view = await queue.submit(input, options);
    return reply.status(202).header('location', `/v1/jobs/${view.id}`).send({ id: view.id, state: view.state });
  });

  app.get('/v1/jobs', async (request: FastifyRequest<{ Querystring: { limit?: string } }>) => {
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RedppError('INVALID_ARGUMENT', `limit must be an integer in [1, 1000], got '${request.query.limit}'`);
    return { jobs: await queue.list(limit) };
  });

  app.get('/v1/jobs/:id', async (request: FastifyRequest<{ Params: { id: string } }>) => jobOf(queue, request.params.id));

  app.delete('/v1/jobs/:id', async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const view = await jobOf(queue, request.params.id);
    return FINISHED.has(view.state) ? view : ((await queue.cancel(view.id)) ?? view);
  });

  app.get('/v1/jobs/:id/model', async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const view = doneJob(await jobOf(queue, request.params.id));
    const { file, bytes } = await store.resultModel(view.key);
    return reply
      .type('application/octet-stream')
      .header('content-length', bytes)
      .header('content-disposition', `attachment; filename="${view.id}.onnx"`)
      .send(fs.createReadStream(file));
  });

  app.get('/v1/jobs/:id/report', async (request: FastifyRequest<{ Params: { id: string } }>) => store.resultReport(doneJob(await jobOf(queue, request.params.id)).key));

  app.get('/v1/jobs/:id/report.html', async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const view = doneJob(await jobOf(queue, request.params.id));
    return reply.type('text/html; charset=utf-8').header('content-security-policy', REPORT_CSP).send(reportPage((await store.resultReport(view.key)) as JsonReport, `job ${view.id}`));
  });

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_CSP).send(SERVICE_PAGE));

  app.get('/v1/jobs/:id/events', (request: FastifyRequest<{ Params: { id: string } }>, reply) => events(queue, request.params.id, request, reply));

  app.get('/healthz', async (_request, reply) => {
    const ok = await queue.healthy();
    return reply.status(ok ? 200 : 503).send({ ok, queue: queue.kind });
  });

  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));

  return app;
}

/** GET /v1/jobs/:id/events: server-sent events, one `job` event per change, until the job finishes. */
async function events(queue: JobQueue, id: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!isJobId(id)) throw notFound(id);
  const pending: JobView[] = [];
  let send: (view: JobView) => void = (view) => void pending.push(view);
  // Watched before it is read: no change falls between the two.
  const unwatch = queue.watch(id, (view) => send(view));
  // A client gone while the job is read (a Redis round trip) must not leave the watcher behind.
  let gone = false;
  const onGone = () => {
    gone = true;
    unwatch();
  };
  request.raw.once('close', onGone);
  let view: JobView;
  try {
    view = await jobOf(queue, id);
  } catch (e) {
    unwatch();
    throw e;
  }
  if (gone) return;
  request.raw.off('close', onGone);
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  const end = () => {
    clearInterval(heartbeat);
    unwatch();
    res.end();
  };
  send = (v) => {
    res.write(`event: job\ndata: ${JSON.stringify(v)}\n\n`);
    if (FINISHED.has(v.state)) end();
  };
  request.raw.on('close', end);
  send(view);
  for (const v of pending) if (!res.writableEnded) send(v);
}
