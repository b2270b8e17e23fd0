/**
 * Helpers of the service's tests: a real Redis (REDPP_TEST_REDIS, which .ci/run starts, or a
 * redis-server of our own on a free port), `redpp serve` and `redpp worker` as child processes, and a
 * small client of the HTTP API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { packageRoot } from '../../lib/binding';
import type { JobView } from '../../lib/serve/job';

export const CLI = path.join(packageRoot, 'dist', 'lib', 'cli.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * A Redis URL for the tests, and how to stop what was started for them; undefined without
 * redis-server. `own`: a redis-server of this caller's alone (one it may kill).
 */
export async function testRedis(own = false): Promise<{ url: string; stop: () => void } | undefined> {
  if (process.env.REDPP_TEST_REDIS && !own) {
    return { url: process.env.REDPP_TEST_REDIS, stop: () => undefined };
  }
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-redis-'));
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') break;
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      p.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Running {
  proc: ChildProcess;
  /** stdout and stderr so far. */
  output: () => string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** `redpp <args>` as a child process; resolves once it printed `ready` (a pattern of its first line). */
export async function startCli(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Running & { match: RegExpExecArray }> {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const check = () => {
      const m = ready.exec(out);
      if (m) resolve(m);
    };
    proc.stdout!.on('data', check);
    exited.then((code) => reject(new Error(`redpp ${args[0]} exited (${code}) before it was ready: ${out}`)));
    setTimeout(() => reject(new Error(`redpp ${args[0]} not ready in 30 s: ${out}`)), 30_000).unref();
  });
  return { proc, output: () => out, exited, match };
}

/** `redpp serve` on a free port: its base URL. */
export async function startServe(args: string[], env?: NodeJS.ProcessEnv): Promise<Running & { url: string }> {
  const r = await startCli(['serve', '--port', '0', ...args], /listening on (http:\/\/\S+)/, env);
  return { ...r, url: r.match[1] };
}

export async function startWorker(args: string[]): Promise<Running> {
  return startCli(['worker', ...args], /taking jobs/);
}

/** Peak resident memory of a process in bytes (Linux: VmHWM), undefined elsewhere. */
export function peakRss(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Client {
  submit(model: Uint8Array, options?: object): Promise<Response>;
  job(id: string): Promise<JobView>;
  /** Polls until the job is in one of `states`. */
  waitFor(id: string, states: string[], timeoutMs?: number): Promise<JobView>;
  get(pathname: string, init?: RequestInit): Promise<Response>;
}

export function client(base: string, token?: string): Client {
  const headers = (h: Record<string, string> = {}) => (token ? { ...h, authorization: `Bearer ${token}` } : h);
  const get = (pathname: string, init: RequestInit = {}) => fetch(`${base}${pathname}`, { ...init, headers: headers(init.headers as Record<string, string>) });
  const c: Client = {
    submit: (model, options) =>
      fetch(`${base}/v1/jobs${options ? `?options=${encodeURIComponent(JSON.stringify(options))}` : ''}`, {
        method: 'POST',
        body: model,
        headers: headers({ 'content-type': 'application/octet-stream' }),
      }),
    async job(id) {
      const r = await get(`/v1/jobs/${id}`);
      if (r.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${r.status} ${await r.text()}`);
      return (await r.json()) as JobView;
    },
    async waitFor(id, states, timeoutMs = 120_000) {
      const t0 = Date.now();
      for (;;) {
        const view = await c.job(id);
        if (states.includes(view.state)) return view;
        if (Date.now() - t0 > timeoutMs) throw new Error(`job ${id} still ${view.state} after ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    get,
  };
  return c;
}
