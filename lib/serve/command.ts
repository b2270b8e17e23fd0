/**
 * `redpp serve` and `redpp worker`: their flags, and the processes they run until SIGINT or SIGTERM
 * (then: no new requests or jobs, running jobs put back to be run again, a clean exit).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseArgs } from 'node:util';

import { RedppError } from '../errors';
import { buildServer } from './http';
import { LocalQueue } from './local-queue';
import type { JobQueue } from './queue';
import { RedisQueue } from './redis-queue';
import { startWorker } from './redis-worker';
import { DirectoryStore } from './store';

export const SERVE_USAGE = `Usage: redpp serve [options]      the HTTP API (README, "Serving")
       redpp worker --queue URL [options]   runs the jobs of a queue

serve:
  --port N                 port (default 8080; 0: any free one)
  --host ADDR              address to bind (default 127.0.0.1)
  --store DIR              uploads, results and job records (default ./redpp-store)
  --concurrency N          prunes at once (default 1; local queue)
  --threads N              worker threads shared by the prunes (default: number of cores)
  --max-upload SIZE        largest model accepted, e.g. 512M (default 1G)
  --max-queue N            jobs waiting at most; beyond: 429 (default 100)
  --token-file FILE        require "Authorization: Bearer <the file's content>"
  --job-timeout SECONDS    a job running longer fails with TIMED_OUT (default 3600)
  --attempts N             runs of a job an internal error or a crash may take (default 3)
  --queue URL              BullMQ on this Redis (redis://host:port) instead of the local queue;
                           jobs then run in \`redpp worker\` processes sharing --store
worker:
  --queue URL, --store DIR, --concurrency N, --threads N, --job-timeout SECONDS as above
  --stall-timeout SECONDS  a job whose worker went silent this long runs again elsewhere (default 30)`;

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string' },
  concurrency: { type: 'string' },
  threads: { type: 'string' },
  'max-upload': { type: 'string' },
  'max-queue': { type: 'string' },
  'token-file': { type: 'string' },
  'job-timeout': { type: 'string' },
  attempts: { type: 'string' },
  queue: { type: 'string' },
  'stall-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const WORKER_FLAGS = new Set(['queue', 'store', 'concurrency', 'threads', 'job-timeout', 'stall-timeout', 'help']);
const SERVE_FLAGS = new Set(Object.keys(FLAGS).filter((f) => f !== 'stall-timeout'));

function int(flag: string, v: string | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new RedppError('INVALID_OPTION', `--${flag} expects an integer in [${min}, ${max}], got '${v}'`);
  return n;
}

/** A size as `--max-upload` takes it: bytes, or with k, M, G (powers of 1024). */
export function parseSize(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(v.trim());
  if (!m) throw new RedppError('INVALID_OPTION', `--${flag} expects a size such as 512M or 1G, got '${v}'`);
  const bytes = Math.floor(Number(m[1]) * 1024 ** ' kmg'.indexOf(m[2].toLowerCase() || ' '));
  if (bytes < 1) throw new RedppError('INVALID_OPTION', `--${flag} must be at least one byte, got '${v}'`);
  return bytes;
}

function readToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new RedppError('IO_ERROR', `--token-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!token) throw new RedppError('INVALID_OPTION', `--token-file ${file} is empty`);
  return token;
}

function parse(command: 'serve' | 'worker', argv: string[]): Record<string, string | boolean | undefined> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: FLAGS, allowPositionals: false }));
  } catch (e) {
    throw new RedppError('INVALID_OPTION', `${(e as Error).message} (redpp ${command} --help lists the options)`);
  }
  const allowed = command === 'serve' ? SERVE_FLAGS : WORKER_FLAGS;
  for (const [flag, v] of Object.entries(values)) {
    if (v !== undefined && !allowed.has(flag)) throw new RedppError('INVALID_OPTION', `--${flag} is not an option of redpp ${command}`);
  }
  return values;
}

/** Resolves when the process is asked to stop. */
const stopSignal = () =>
  new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve(s));
  });

export async function serveMain(command: 'serve' | 'worker', argv: string[]): Promise<number> {
  const v = parse(command, argv);
  if (v.help) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const str = (flag: string) => v[flag] as string | undefined;
  const store = new DirectoryStore(str('store') ?? 'redpp-store');
  const threads = int('threads', str('threads'), os.availableParallelism(), 1, 1024);
  const concurrency = int('concurrency', str('concurrency'), 1, 1, 256);
  const jobTimeoutMs = int('job-timeout', str('job-timeout'), 3600, 1, 7 * 24 * 3600) * 1000;
  const stopped = stopSignal();

  if (command === 'worker') {
    const url = str('queue');
    if (!url) throw new RedppError('INVALID_ARGUMENT', 'redpp worker needs --queue redis://HOST:PORT');
    const worker = await startWorker({ url, store, concurrency, threads, jobTimeoutMs, stallTimeoutMs: int('stall-timeout', str('stall-timeout'), 30, 1, 3600) * 1000 });
    process.stdout.write(`redpp worker: taking jobs from ${url} (concurrency ${concurrency}, ${threads} threads, store ${store.root})\n`);
    await stopped;
    await worker.close();
    return 0;
  }

  const maxQueue = int('max-queue', str('max-queue'), 100, 1, 1_000_000);
  const attempts = int('attempts', str('attempts'), 3, 1, 100);
  const maxUpload = parseSize('max-upload', str('max-upload'), 1024 ** 3);
  const token = readToken(str('token-file'));
  const port = int('port', str('port'), 8080, 0, 65535);
  const host = str('host') ?? '127.0.0.1';
  const url = str('queue');
  const queue: JobQueue = url
    ? await RedisQueue.open(url, { maxQueue, attempts, keep: 10_000 })
    : await LocalQueue.open(store, { concurrency, threads, maxQueue, maxAttempts: attempts, jobTimeoutMs });
  const app = buildServer({ queue, store, maxUpload, token });
  try {
    await app.listen({ port, host });
  } catch (e) {
    await queue.close();
    throw new RedppError('IO_ERROR', `cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const address = app.server.address();
  const shown = typeof address === 'object' && address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);
  process.stdout.write(`redpp serve: listening on ${shown} (${url ? `queue ${url}` : `local queue, concurrency ${concurrency}`}, store ${store.root})\n`);
  await stopped;
  await app.close();
  await queue.close();
  return 0;
}
