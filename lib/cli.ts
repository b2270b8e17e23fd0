#!/usr/bin/env node
/**
 * The `redpp` executable: the command line (command-line.ts) as a process. Its signal handlers are
 * registered before the rest of the package loads (0.1 s, seconds on an overloaded machine): a SIGINT in
 * that time is then handled as any other, once the load is done, instead of ending redpp by the signal's
 * default action, with no message and no cleanup. No handler can run before the require below returns.
 */
import type * as CommandLine from './command-line';

if (require.main === module) {
  const argv = process.argv.slice(2);
  let commandLine: typeof CommandLine | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => commandLine?.onSignal(signal, argv));
  commandLine = require('./command-line') as typeof CommandLine;
  commandLine.runAsProcess(argv);
}
