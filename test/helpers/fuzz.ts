/**
 * The fuzz harness: lays out a case (hostile-models.ts, or a mutation of a real model), runs the CLI on
 * it in a child process (so a signal or a hang is seen, not suffered) and checks what redpp promises:
 * - the process ends by itself within the time limit, with no signal;
 * - exit 0 and an output that onnxruntime loads (where it loads the input), or exit 1/2 with exactly
 *   one line on stderr, `redpp: CODE: message`, printable, and no output or temporary file left;
 * - the files of the input are unchanged, and nothing outside the case's folder is written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import * as protobuf from 'protobufjs';

import { packageRoot } from '../../lib/binding';
import { onnxTypes, type ModelProto } from '../../lib/model/proto';
import { Rng } from '../../lib/rng';
import { encodeRaw, INPUT, OUTPUT, type HostileCase } from './hostile-models';

/** The compiled CLI (`npm test` compiles first), from test/helpers/ or dist/test/helpers/ alike. */
export const CLI = path.join(packageRoot, 'dist', 'lib', 'cli.js');

export interface Outcome {
  name: string;
  /** pruned: exit 0 and a loadable output; refused: a typed error; violation: a broken promise. */
  kind: 'pruned' | 'refused' | 'violation';
  code?: string;
  detail: string;
  ms: number;
}

/** Runs one case in its own folder under `root` (removed afterwards). */
export async function runCase(c: HostileCase, root: string, timeoutMs: number): Promise<Outcome> {
  const dir = fs.mkdtempSync(path.join(root, 'case-'));
  try {
    layOut(c, dir);
    const before = snapshot(dir);
    const t0 = performance.now();
    const run = await runCli(c.args, dir, timeoutMs);
    const ms = Math.round(performance.now() - t0);
    const result = await judge(c, dir, before, run);
    return { name: c.name, ms, ...result };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function layOut(c: HostileCase, dir: string): void {
  fs.mkdirSync(path.join(dir, 'model'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'out'), { recursive: true });
  for (const [rel, bytes] of Object.entries(c.files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), bytes);
  }
  for (const [rel, target] of Object.entries(c.links ?? {})) fs.symlinkSync(target, path.join(dir, rel));
  for (const [rel, existing] of Object.entries(c.hardLinks ?? {})) fs.linkSync(path.join(dir, existing), path.join(dir, rel));
  for (const rel of c.fifos ?? []) {
    if (spawnSync('mkfifo', [path.join(dir, rel)]).status !== 0) throw new Error(`mkfifo ${rel} failed`);
  }
}

/** Every entry of the folder (lstat: links not followed) with the hash of each regular file. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else if (e.isFile()) {
        out.set(r, createHash('sha256').update(fs.readFileSync(path.join(dir, r))).digest('hex'));
      } else out.set(r, e.isSymbolicLink() ? `link:${fs.readlinkSync(path.join(dir, r))}` : 'special');
    }
  };
  walk('.');
  return out;
}

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  timedOut: boolean;
}

function runCli(args: string[], cwd: string, timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'prune', ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, timedOut });
    });
  });
}

/** One line, no control characters (printable Unicode is fine: names may be in any script). */
const ERROR_LINE = /^redpp: ([A-Z][A-Z_]+): [^\x00-\x1f\x7f-\x9f]+$/u;

async function judge(c: HostileCase, dir: string, before: Map<string, string>, run: CliRun): Promise<Omit<Outcome, 'name' | 'ms'>> {
  const violation = (detail: string) => ({ kind: 'violation' as const, detail });
  if (run.timedOut) return violation('hang: killed after the time limit');
  if (run.signal) return violation(`ended by ${run.signal}: ${firstLine(run.stderr)}`);
  const after = snapshot(dir);
  const changed = [...before].filter(([rel, hash]) => after.get(rel) !== hash).map(([rel]) => rel);
  // A hard link to the input shares its content: a change to either is a change to the input.
  if (changed.length) return violation(`changed input files: ${changed.join(', ')}`);
  const added = [...after.keys()].filter((rel) => !before.has(rel));
  const outputs = new Set([OUTPUT, `${OUTPUT}.data`]);
  if (run.code === 0) {
    const stray = added.filter((rel) => !outputs.has(rel));
    if (stray.length) return violation(`files left beside the output: ${stray.join(', ')}`);
    if (typeof c.expect === 'object') {
      return violation(`pruned, but a ${c.expect.error === true ? 'typed error' : c.expect.error} was expected`);
    }
    const output = path.join(dir, c.args[c.args.indexOf('-o') + 1]);
    const loaded = await loads(output);
    if (loaded !== true && (await loads(path.join(dir, INPUT))) === true) {
      return violation(`the output does not load in onnxruntime (the input does): ${loaded}`);
    }
    return { kind: 'pruned', detail: loaded === true ? 'output loads' : 'input and output both rejected by onnxruntime' };
  }
  if (run.code !== 1 && run.code !== 2) return violation(`exit code ${run.code}: ${firstLine(run.stderr)}`);
  const lines = run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('redpp: warning: '));
  if (lines.length !== 1) return violation(`${lines.length} lines on stderr: ${JSON.stringify(run.stderr.slice(0, 300))}`);
  const m = ERROR_LINE.exec(lines[0]);
  if (!m) return violation(`not one printable 'redpp: CODE: message' line: ${JSON.stringify(lines[0].slice(0, 300))}`);
  if (m[1] === 'INTERNAL') return violation(lines[0].slice(0, 300));
  if (added.length) return violation(`files left after an error: ${added.join(', ')}`);
  if (c.expect === 'loads') return violation(`refused a model that should prune: ${lines[0]}`);
  if (typeof c.expect === 'object' && c.expect.error !== true && c.expect.error !== m[1]) {
    return violation(`expected ${c.expect.error}, got ${lines[0]}`);
  }
  return { kind: 'refused', code: m[1], detail: lines[0] };
}

function firstLine(s: string): string {
  return JSON.stringify(s.split('\n').find((l) => l.trim()) ?? '');
}

async function loads(file: string): Promise<true | string> {
  try {
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
    await session.release();
    return true;
  } catch (e) {
    return String((e as Error).message).split('\n')[0].slice(0, 200);
  }
}

/** Runs cases `concurrency` at a time until they run out or the deadline passes. */
export async function runCases(
  cases: Iterable<HostileCase>,
  o: { root: string; concurrency: number; timeoutMs: number; deadline?: number; onOutcome?: (o: Outcome) => void },
): Promise<Outcome[]> {
  const it = cases[Symbol.iterator]();
  const out: Outcome[] = [];
  const lane = async () => {
    for (;;) {
      if (o.deadline !== undefined && Date.now() > o.deadline) return;
      const next = it.next();
      if (next.done) return;
      const outcome = await runCase(next.value, o.root, o.timeoutMs);
      out.push(outcome);
      o.onOutcome?.(outcome);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  return out;
}

// ---- mutations of real models -------------------------------------------------------------------

export type MutationKind = 'flip' | 'truncate' | 'length' | 'field';
export const MUTATION_KINDS: readonly MutationKind[] = ['flip', 'truncate', 'length', 'field'];

/** Endless seeded mutations of the base models, taking the kinds in turn. */
export function* mutations(bases: { name: string; bytes: Uint8Array }[], seed: number): Generator<HostileCase> {
  const rng = new Rng(seed);
  for (let i = 0; ; i++) {
    const base = bases[Math.floor(rng.next() * bases.length)];
    const kind = MUTATION_KINDS[i % MUTATION_KINDS.length];
    const { bytes, what } = mutate(base.bytes, kind, rng);
    yield {
      name: `mutation ${i} of ${base.name}: ${kind} ${what}`,
      files: { [INPUT]: bytes },
      args: [INPUT, '-o', OUTPUT, '--beta', '0.05', '--kernel-split', 'off'],
      expect: 'either',
    };
  }
}

export function mutate(bytes: Uint8Array, kind: MutationKind, rng: Rng): { bytes: Uint8Array; what: string } {
  const int = (n: number) => Math.floor(rng.next() * n);
  switch (kind) {
    case 'flip': {
      const out = Uint8Array.from(bytes);
      const n = 1 + int(8);
      for (let k = 0; k < n; k++) out[int(out.length)] ^= 1 + int(255);
      return { bytes: out, what: `${n} bytes` };
    }
    case 'truncate': {
      const keep = int(bytes.length);
      return { bytes: bytes.slice(0, keep), what: `to ${keep} bytes` };
    }
    case 'length': {
      const sites = lengthPrefixes(bytes, 0, bytes.length, 0);
      const site = sites[int(sites.length)];
      const choices = [0, 1, site.length - 1, site.length + 1, site.length * 2, 0x7fffffff, 2 ** 32 - 1];
      const length = Math.max(0, choices[int(choices.length)]);
      const out = Buffer.concat([bytes.subarray(0, site.at), varint(length), bytes.subarray(site.at + site.size)]);
      return { bytes: out, what: `prefix at ${site.at}: ${site.length} → ${length}` };
    }
    case 'field':
      return editField(bytes, rng);
  }
}

/** Where the length-delimited fields are (recursing into those that parse as messages), up to depth 4. */
function lengthPrefixes(bytes: Uint8Array, start: number, end: number, depth: number): { at: number; size: number; length: number }[] {
  const out: { at: number; size: number; length: number }[] = [];
  const reader = protobuf.Reader.create(bytes.subarray(start, end));
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === 0) return out;
      if ((tag & 7) !== 2) {
        reader.skipType(tag & 7);
        continue;
      }
      const at = start + reader.pos;
      const length = reader.uint32();
      const body = start + reader.pos;
      out.push({ at, size: body - at, length });
      if (depth < 4 && length > 1) out.push(...lengthPrefixes(bytes, body, body + length, depth + 1));
      reader.skip(length);
    }
  } catch {
    // not a message: its bytes were a string or raw data
  }
  return out;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

/** One semantic edit of the decoded model: a dim, a type, an attribute, a name, a node or a tensor's data. */
function editField(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } {
  const int = (n: number) => Math.floor(rng.next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const m = onnxTypes().Model.decode(bytes) as unknown as ModelProto;
  const g = m.graph!;
  const weights = g.initializer.length ? g.initializer : [];
  const nodes = g.node;
  const edits: (() => string)[] = [
    () => {
      const n = pick(nodes);
      const a = n.attribute.length ? pick(n.attribute) : undefined;
      if (!a) return 'nothing';
      const v = pick([0, -1, 3, 2 ** 31 - 1, -(2 ** 31)]);
      if (a.ints?.length) a.ints[int(a.ints.length)] = v;
      else a.i = v;
      return `attribute ${a.name} of ${n.name} = ${v}`;
    },
    () => {
      const n = pick(nodes);
      n.op_type = pick(['Conv', 'Gemm', 'MatMul', 'Relu', 'Add', 'Identity', 'ConvTranspose', 'BatchNormalization', '']);
      return `op of ${n.name} → ${n.op_type}`;
    },
    () => {
      const n = pick(nodes);
      if (!n.input.length) return 'nothing';
      const from = pick(nodes);
      const v = pick([...from.output, ...n.output, 'nowhere', '']);
      n.input[int(n.input.length)] = v;
      return `an input of ${n.name} → '${v}'`;
    },
    () => {
      const i = int(nodes.length);
      nodes.splice(i, 1);
      return `node ${i} dropped`;
    },
  ];
  const constants = nodes.filter((n) => n.op_type === 'Constant' && n.attribute[0]?.t);
  const tensors = [...weights, ...constants.map((n) => n.attribute[0].t!)];
  if (tensors.length) {
    edits.push(
      () => {
        const t = pick(tensors);
        if (!t.dims.length) return 'nothing';
        const v = pick([0, 1, 2 ** 31, 2 ** 40, -1, Number(t.dims[0]) * 2]);
        t.dims[int(t.dims.length)] = v;
        return `a dim of ${t.name} = ${v}`;
      },
      () => {
        const t = pick(tensors);
        t.data_type = pick([0, 2, 6, 7, 8, 10, 11, 16, 30, 99]);
        return `type of ${t.name} = ${t.data_type}`;
      },
      () => {
        const t = pick(tensors);
        if (!t.raw_data?.byteLength) return 'nothing';
        t.raw_data = t.raw_data.slice(0, int(t.raw_data.byteLength));
        return `raw data of ${t.name} cut to ${t.raw_data.byteLength}`;
      },
    );
  }
  const what = pick(edits)();
  return { bytes: encodeRaw(m), what };
}
