#!/usr/bin/env node
/**
 * The redpp command line: `redpp prune IN.onnx -o OUT.onnx [options]`. Progress goes to stderr (a bar
 * on a terminal), the summary or the --json object to stdout; bad input ends with one line and exit 1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { packageRoot } from './binding';
import { RedppError } from './errors';
import type { PruneOptions, PruneProgress } from './options';
import { prune, type PruneReport } from './prune';
import { summaryTable, toJsonReport } from './report';

const USAGE = `Usage: redpp prune IN.onnx -o OUT.onnx [options]

Prunes a trained ONNX model without data (RED++: hashing, then merging of identical neurons).

Options:
  -o, --output FILE        where to write the pruned model (required; never the input)
  --beta B                 hashing bandwidth factor (default 0.05; larger prunes more, 0 = no hashing)
  --center mean|mode       interval representative (default mean)
  --epsilon E              also merge neurons within relative distance E (lossy; default 0)
  --split auto|off|force   rewrite k×k convs whose filters share kernels as a grouped conv + 1×1 conv
                           (exact; auto: where the calibrated cost model predicts a speed-up; default auto)
  --min-fan-in N           leave layers whose neurons have fewer weights alone (default 200)
  --skip NAME              leave this layer alone (repeatable; /regex/ for a pattern)
  --threads N              worker threads (default: number of cores)
  --input-shape NAME=DIMS  concrete shape of an input, e.g. x=1x3x640x640 (repeatable)
  --validate               run both models in onnxruntime-node and compare outputs and latency
  --pack                   store hashed weights as per-neuron codebooks + 1- to 16-bit indices
                           (smaller file; onnxruntime rebuilds them at load, outputs bit-identical)
  --json                   print only a JSON report on stdout
  -h, --help               this help
  -v, --version            the version`;

class UsageError extends Error {}

function parse(argv: string[]): { input: string; options: PruneOptions & { output: string }; json: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      beta: { type: 'string' },
      center: { type: 'string' },
      epsilon: { type: 'string' },
      split: { type: 'string' },
      'min-fan-in': { type: 'string' },
      skip: { type: 'string', multiple: true },
      threads: { type: 'string' },
      'input-shape': { type: 'string', multiple: true },
      validate: { type: 'boolean' },
      pack: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help) throw new UsageError('');
  const [command, input, ...extra] = positionals;
  if (command !== 'prune') throw new UsageError(command ? `unknown command '${command}'` : 'no command given');
  if (!input) throw new UsageError('no input model given');
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (!values.output) throw new UsageError('no output given (-o OUT.onnx)');
  if (path.resolve(values.output) === path.resolve(input)) {
    throw new RedppError('INVALID_ARGUMENT', 'the output must not be the input file (redpp never modifies its input)');
  }
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new RedppError('INVALID_OPTION', `--${name} expects a number, got '${v}'`);
    return n;
  };
  return {
    input,
    json: values.json ?? false,
    options: {
      output: values.output,
      beta: num('beta', values.beta),
      center: values.center as PruneOptions['center'],
      epsilon: num('epsilon', values.epsilon),
      split: values.split as PruneOptions['split'],
      minFanIn: num('min-fan-in', values['min-fan-in']),
      threads: num('threads', values.threads),
      skip: (values.skip ?? []).map((s) => (s.length > 2 && s.startsWith('/') && s.endsWith('/') ? new RegExp(s.slice(1, -1)) : s)),
      inputShapes: Object.fromEntries((values['input-shape'] ?? []).map(parseShape)),
      validate: values.validate ?? false,
      pack: values.pack ?? false,
    },
  };
}

function parseShape(spec: string): [string, number[]] {
  const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec);
  if (!m) throw new RedppError('INVALID_OPTION', `--input-shape expects NAME=DxDx..., e.g. x=1x3x224x224, got '${spec}'`);
  return [m[1], m[2].split('x').map(Number)];
}

/** A one-line progress bar on a terminal, nothing elsewhere. */
function progressBar(stream: NodeJS.WriteStream): ((e: PruneProgress) => void) | undefined {
  if (!stream.isTTY) return undefined;
  return (e) => {
    const width = 30;
    const filled = e.total ? Math.round((e.done / e.total) * width) : 0;
    const bar = e.total > 1 ? ` [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${e.done}/${e.total}` : '';
    const line = `${e.phase}${bar}${e.detail ? ` ${e.detail}` : ''}`;
    stream.write(`\r\x1b[K${line.slice(0, (stream.columns || 80) - 1)}`);
  };
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('-v') || argv.includes('--version')) {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      const out = e.message ? process.stderr : process.stdout;
      if (e.message) out.write(`redpp: ${e.message}\n\n`);
      out.write(`${USAGE}\n`);
      return e.message ? 2 : 0;
    }
    if (e instanceof RedppError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`redpp: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  const bar = parsed.json ? undefined : progressBar(process.stderr);
  let report: PruneReport;
  try {
    ({ report } = await prune(parsed.input, { ...parsed.options, onProgress: bar }));
  } finally {
    if (bar) process.stderr.write('\r\x1b[K');
  }
  process.stdout.write(parsed.json ? `${JSON.stringify(toJsonReport(report), null, 2)}\n` : `${summaryTable(report)}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      // Bad input is a RedppError with a message made for the user; anything else is a bug, said in one line too.
      const msg = e instanceof RedppError ? e.message : `internal error: ${(e as Error)?.stack ?? String(e)}`;
      process.stderr.write(`redpp: ${msg.split('\n')[0]}\n`);
      process.exitCode = 1;
    },
  );
}
