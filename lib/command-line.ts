/**
 * The redpp command line: `redpp prune IN.onnx -o OUT.onnx [options]`. Progress goes to stderr (a bar
 * on a terminal), the summary or the --json object to stdout; bad input ends with one line and exit 1.
 * cli.ts runs it as a process.
 */
import { parseArgs } from 'node:util';

import { packageVersion } from './binding';
import { failureOf, RedppError } from './errors';
import { committedWrites, removePendingWrites } from './model/write';
import { DEFAULT_MAX_DEVIATION, type PruneOptions, type PruneProgress } from './options';
import { closePoolAhead } from './pool';
import { prune, type PruneReport } from './prune';
import { stopRuntimeWorkers } from './runtime-worker';
import { summaryTable, toJsonReport } from './report';

/**
 * The flags of `redpp prune`: the option each one sets, how its text is read, and its help. The option
 * resolver checks the values (lib/options); its messages name the flag.
 */
const FLAGS: Record<string, { option: keyof PruneOptions; read: 'number' | 'text' | 'boolean' | 'negated' | 'list' | 'pattern' | 'shape'; arg?: string; help: string }> = {
  'max-deviation': {
    option: 'maxDeviation',
    read: 'number',
    arg: 'D',
    help: `the fidelity budget: choose each layer's codec for the smallest file whose outputs\nstay within D of the original's (relative L2 at the logits, on probes; default ${DEFAULT_MAX_DEVIATION})`,
  },
  'target-size': { option: 'targetSize', read: 'number', arg: 'F', help: 'instead: the file at most F times the input\'s, outputs as close as that allows' },
  codecs: { option: 'codecs', read: 'list', arg: 'LIST', help: 'codecs the budget may use (default dense,float16,linear,hash)' },
  samples: { option: 'samples', read: 'text', arg: 'DIR', help: 'measure on these inputs (.npy, .raw float32, .png) instead of synthetic probes' },
  beta: { option: 'beta', read: 'number', arg: 'B', help: 'RED++ instead of the budget: hash every layer at bandwidth factor B (0.05 in the paper)' },
  center: { option: 'center', read: 'text', arg: 'mean|mode', help: 'interval representative of the hashing (default mean)' },
  epsilon: { option: 'epsilon', read: 'number', arg: 'E', help: 'also merge neurons within relative distance E (lossy; default 0)' },
  'kernel-split': {
    option: 'kernelSplit',
    read: 'text',
    arg: 'auto|off|force',
    help: 'rewrite k×k convs whose filters share kernels as a grouped conv + 1×1 conv\n(exact; auto: where the calibrated cost model predicts a speed-up; default auto)',
  },
  'min-fan-in': { option: 'minFanIn', read: 'number', arg: 'N', help: 'leave layers whose neurons have fewer weights alone (default 200 with --beta, else 0)' },
  skip: { option: 'skip', read: 'pattern', arg: 'NAME', help: 'leave this layer alone (repeatable; /regex/ for a pattern)' },
  threads: { option: 'threads', read: 'number', arg: 'N', help: 'worker threads (default: number of cores)' },
  'input-shape': { option: 'inputShapes', read: 'shape', arg: 'NAME=DIMS', help: 'concrete shape of an input, e.g. x=1x3x640x640 (repeatable)' },
  validate: { option: 'validate', read: 'boolean', help: 'run both models in onnxruntime-node and compare outputs and latency' },
  'transfer-size': { option: 'transferSize', read: 'boolean', help: 'also report the transfer size (brotli, as a CDN serves it; about 90 MB/s a core)' },
  report: { option: 'report', read: 'text', arg: 'FILE.html', help: 'also write the report as a self-contained HTML page (with the model, atomically)' },
  'no-pack': {
    option: 'pack',
    read: 'negated',
    help: 'write dense tensors of the coded values instead of each codec\'s compact form\n(codebooks, levels, float16: rebuilt by onnxruntime at load, outputs bit-identical)',
  },
};

/** A flag and its help in two columns; a flag too wide for its column has the help below it. */
const helpLine = (flag: string, help: string) => {
  const lines = help.split('\n');
  const indent = ' '.repeat(27);
  const head = flag.length > 23 ? [`  ${flag}`, `${indent}${lines[0]}`] : [`  ${flag.padEnd(23)}  ${lines[0]}`];
  return [...head, ...lines.slice(1).map((l) => `${indent}${l}`)].join('\n');
};

const USAGE = [
  'Usage: redpp prune IN.onnx -o OUT.onnx [options]',
  '       redpp serve [options], redpp worker --queue URL [options]: the service (redpp serve --help)',
  '',
  'Compresses a trained ONNX model without data: a codec per layer (float16, linear, RED++ hashing)',
  "chosen against a fidelity budget, identical neurons merged, each layer stored in its codec's form.",
  '',
  'Options:',
  helpLine('-o, --output FILE', 'where to write the pruned model (required; never the input)'),
  ...Object.entries(FLAGS).map(([flag, f]) => helpLine(`--${flag}${f.arg ? ` ${f.arg}` : ''}`, f.help)),
  helpLine('--json', 'print only a JSON report on stdout'),
  helpLine('-h, --help', 'this help'),
  helpLine('-v, --version', 'the version'),
].join('\n');

class UsageError extends Error {}

/**
 * The arguments with each negative number after a numeric flag joined to it (`--beta -1` as
 * `--beta=-1`), which parseArgs would otherwise take for a flag; the resolver then says why -1 is wrong.
 */
function joinNegativeNumbers(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i].startsWith('--') ? FLAGS[argv[i].slice(2)] : undefined;
    if (flag?.read === 'number' && i + 1 < argv.length && /^-[\d.]/.test(argv[i + 1])) out.push(`${argv[i]}=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

function parse(argv: string[]): { input: string; options: PruneOptions & { output: string }; json: boolean } {
  const { values, positionals } = parseArgs({
    args: joinNegativeNumbers(argv),
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      ...Object.fromEntries(
        Object.entries(FLAGS).map(([flag, f]) => [flag, { type: f.read === 'boolean' || f.read === 'negated' ? 'boolean' : 'string', multiple: f.read === 'pattern' || f.read === 'shape' }]),
      ),
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
  const output = values.output as string | undefined;
  if (!output) throw new UsageError('no output given (-o OUT.onnx)');
  const given = values as Record<string, string | string[] | boolean | undefined>;
  const options: Record<string, unknown> = { output };
  for (const [flag, f] of Object.entries(FLAGS)) {
    const v = given[flag];
    if (v !== undefined) options[f.option] = readFlag(flag, f.read, v);
  }
  return { input, json: given.json === true, options: options as unknown as PruneOptions & { output: string } };
}

/** A flag's text as the option's value (its range is the option resolver's to check). */
function readFlag(flag: string, read: (typeof FLAGS)[string]['read'], v: string | string[] | boolean): unknown {
  switch (read) {
    case 'boolean':
    case 'text':
      return v;
    case 'negated':
      return !v;
    case 'list':
      return (v as string).split(',').map((x) => x.trim()).filter(Boolean);
    case 'number': {
      const n = Number(v);
      if ((v as string).trim() === '' || !Number.isFinite(n)) throw new RedppError('INVALID_OPTION', `--${flag} expects a number, got '${v}'`);
      return n;
    }
    case 'pattern':
      return (v as string[]).map((s) => {
        if (!(s.length > 2 && s.startsWith('/') && s.endsWith('/'))) return s;
        try {
          return new RegExp(s.slice(1, -1));
        } catch (e) {
          throw new RedppError('INVALID_OPTION', `--${flag} '${s}' is not a valid regular expression (${(e as Error).message})`);
        }
      });
    case 'shape':
      return Object.fromEntries((v as string[]).map(parseShape));
  }
}

function parseShape(spec: string): [string, number[]] {
  const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec);
  if (!m) throw new RedppError('INVALID_OPTION', `--input-shape expects NAME=DxDx..., e.g. x=1x3x224x224, got '${spec}'`);
  return [m[1], m[2].split('x').map(Number)];
}

/** An option error as the user typed it: `options.minFanIn` is `--min-fan-in` on the command line. */
function inFlagTerms(e: unknown): unknown {
  if (!(e instanceof RedppError && e.code === 'INVALID_OPTION')) return e;
  let message = e.message;
  for (const [flag, f] of Object.entries(FLAGS)) message = message.replaceAll(`options.${f.option}`, `--${flag}`);
  return message === e.message ? e : new RedppError(e.code, message, { cause: e });
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

/** The commands that run a service until a signal stops them (lib/serve/command.ts). */
const SERVICE_COMMANDS: ReadonlySet<string> = new Set(['serve', 'worker']);

/** Runs the command line `argv`; a pool started ahead (cli.ts) that no prune took is closed when it is done. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } finally {
    await closePoolAhead();
  }
}

async function run(argv: string[]): Promise<number> {
  if (SERVICE_COMMANDS.has(argv[0])) {
    // Loaded only here: `redpp prune` starts without the HTTP server and the queue client.
    const { serveMain } = await import('./serve/command');
    return serveMain(argv[0] as 'serve' | 'worker', argv.slice(1));
  }
  if (argv.includes('-v') || argv.includes('--version')) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    if (e instanceof UsageError && !e.message) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (e instanceof UsageError) throw new RedppError('INVALID_ARGUMENT', `${e.message} (redpp --help lists the options)`);
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new RedppError('INVALID_OPTION', (e as Error).message);
    throw e;
  }
  const bar = parsed.json ? undefined : progressBar(process.stderr);
  // Warnings (the native addon's fallback) as one line each, in redpp's voice, over the progress bar.
  process.removeAllListeners('warning');
  process.on('warning', (w) => process.stderr.write(`${bar ? '\r\x1b[K' : ''}redpp: warning: ${w.message.replace(/^redpp /, '')}\n`));
  let report: PruneReport;
  try {
    ({ report } = await prune(parsed.input, { ...parsed.options, onProgress: bar }));
  } finally {
    if (bar) process.stderr.write('\r\x1b[K');
  }
  process.stdout.write(parsed.json ? `${JSON.stringify(toJsonReport(report), null, 2)}\n` : `${summaryTable(report)}\n`);
  return 0;
}

/** Exit status of a failure: 2 for a command line that cannot run (usage, options), 1 for the rest. */
const USAGE_CODES: ReadonlySet<string> = new Set(['INVALID_OPTION', 'INVALID_ARGUMENT']);

/** The one line a failure prints: `redpp: CODE: message`. Anything but a RedppError is a bug in redpp. */
export function errorLine(e: unknown): { line: string; status: number } {
  const { code, message } = failureOf(e);
  return { line: `redpp: ${code}: ${message}`, status: USAGE_CODES.has(code) ? 2 : 1 };
}

/** Whether a signal was handled (onSignal): the prune's failure that follows is that, said already. */
let interrupted = false;

/**
 * SIGINT or SIGTERM (cli.ts registers this before the package loads): temporary files of a write in
 * progress are removed before redpp exits. A service stops on its own terms (lib/serve/command.ts).
 */
export function onSignal(signal: 'SIGINT' | 'SIGTERM', argv: readonly string[]): void {
  if (SERVICE_COMMANDS.has(argv[0])) {
    // Before the service's own handlers are in, the signal's default action, as if none were registered.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    return;
  }
  // An output already in place: the prune is done, and what is left (the pool's threads ending, the
  // summary) takes milliseconds; a second signal ends redpp at once. Exiting as interrupted here said
  // "nothing was written" beside the written file (test/hostile-api.ts, a signal 1.9 s in).
  if (committedWrites() > 0) return;
  interrupted = true;
  removePendingWrites();
  process.stderr.write(`\nredpp: INTERRUPTED: stopped by ${signal}; nothing was written\n`);
  // onnxruntime's workers (the budget's probes, validation) end between two runs first: exiting
  // during one aborts the process (lib/runtime-worker.ts). At most one run's wait (a second signal
  // ends it at once), in which the prune goes on: what it staged meanwhile is removed too.
  void stopRuntimeWorkers().finally(() => {
    removePendingWrites();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

/** main() as the process: its exit status, and a failure as one line on stderr. */
export function runAsProcess(argv: string[]): void {
  main(argv).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      if (interrupted) return;
      const { line, status } = errorLine(inFlagTerms(e));
      process.stderr.write(`${line}\n`);
      process.exitCode = status;
    },
  );
}
