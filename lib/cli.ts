#!/usr/bin/env node
/**
 * The `redpp` executable: the command line (command-line.ts) as a process. Two things come before the
 * rest of the package loads (0.1 s on one core; seconds on an overloaded machine):
 * - its signal handlers: a SIGINT in that time is then handled as any other, once the load is done,
 *   instead of ending redpp by the signal's default action, with no message and no cleanup (no handler
 *   can run before the require below returns);
 * - a prune's worker pool (startEarly()): its threads boot on the other core while this one loads the
 *   package, where they booted beside the model's read, which waited for the cores.
 */
import type * as CommandLine from './command-line';
import { PRUNE_DEFAULTS } from './options/prune';
import { startPoolAhead } from './pool';

/**
 * Starts the pool that a `redpp prune` command line asks for (--threads N, else the default), for the
 * prune to take (pool.ts: poolFor()); nothing for any other command, or where --threads is not a plain
 * count (the prune then starts its own, or the command line says what is wrong).
 */
function startEarly(argv: readonly string[]): void {
  if (argv[0] !== 'prune' || argv.includes('-h') || argv.includes('--help')) return;
  let threads = PRUNE_DEFAULTS.threads;
  for (let i = 1; i < argv.length; i++) {
    const given = argv[i] === '--threads' ? argv[i + 1] : argv[i].startsWith('--threads=') ? argv[i].slice('--threads='.length) : undefined;
    if (given !== undefined) threads = /^\d{1,4}$/.test(given) ? Number(given) : NaN;
  }
  if (!(threads >= 1 && threads <= 1024)) return;
  try {
    startPoolAhead(threads);
  } catch {
    // The prune meets the same failure, and says it.
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  let commandLine: typeof CommandLine | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => commandLine?.onSignal(signal, argv));
  startEarly(argv);
  commandLine = require('./command-line') as typeof CommandLine;
  commandLine.runAsProcess(argv);
}
