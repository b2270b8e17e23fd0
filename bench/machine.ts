import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { hashCapabilities } from '../lib/hash';

/** One line naming the machine a benchmark ran on. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const caps = hashCapabilities();
  const simd = caps.native ? caps.simd.join('/') : 'no native addon';
  return `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, SIMD ${simd}`;
}

export { median } from '../lib/timing';

/** A Markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  simd: string;
  /** os.loadavg() when the figures were taken (1, 5, 15 minutes): timings are only trustworthy when it is below the cores. */
  loadavg: number[];
}

export function machineInfo(): MachineInfo {
  const caps = hashCapabilities();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.availableParallelism(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    simd: caps.native ? caps.simd.join('/') : 'no native addon',
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/**
 * Whether a 1-minute load average means other jobs competed for the cores: above the core count plus
 * one (the benchmark's own process accounts for about one).
 */
export function isBusy(load1: number, cores = os.availableParallelism()): boolean {
  return load1 > cores + 1;
}

/** "load average 1.2 / 3.4 / 5.6" (1, 5, 15 minutes), with a warning when the machine is busy (isBusy). */
export function loadLine(loadavg = os.loadavg()): string {
  const busy = isBusy(loadavg[0]) ? ' (busy: timings may be inflated)' : '';
  return `load average ${loadavg.map((x) => x.toFixed(2)).join(' / ')}${busy}`;
}

/** bench/results in the source tree (the compiled benches live in dist/bench). */
export function resultsDir(): string {
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes `bench/results/<name>.json` with the date, the machine and the load average around `data`. */
export function writeResult(name: string, data: object, dir = resultsDir()): string {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: machineInfo(), ...data }, null, 2) + '\n');
  return file;
}

/**
 * A bench script's command line, checked before anything runs: `--help` prints the script's options
 * and exits, and an option it does not take, or one without its value, is refused with them (ignored,
 * a mistyped option ran the whole bench at its defaults, minutes, and wrote its results over the last
 * run's). `values`: the options that take a value, each with what the value is; `switches`: the others.
 */
export function checkArgs(script: string, { values = {}, switches = [] }: { values?: Record<string, string>; switches?: readonly string[] }, argv = process.argv.slice(2)): void {
  const usage = `usage: node dist/bench/${script}.js ${[...Object.entries(values).map(([k, v]) => `[--${k} ${v}]`), ...switches.map((k) => `[--${k}]`)].join(' ')}`;
  const refuse = (why: string): never => {
    process.stderr.write(`${why}\n${usage}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : undefined;
    if (name === 'help' || argv[i] === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    if (name !== undefined && switches.includes(name)) continue;
    if (name === undefined || !Object.hasOwn(values, name)) refuse(`unknown argument '${argv[i]}'`);
    if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) refuse(`${argv[i]} needs a value (${values[name!]})`);
    i++;
  }
}

/** `--name value` from argv, as a number. */
export function numberArg(name: string, fallback: number, argv = process.argv): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}

/** `--name a,b,c` from argv. */
export function listArg(name: string, fallback: string[], argv = process.argv): string[] {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1].split(',') : fallback;
}
