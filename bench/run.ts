/**
 * `npm run bench`: every benchmark in one run — kernel throughput (bench/hash.ts), whole-model
 * pruning time and memory (bench/prune-speed.ts), compression vs fidelity with the baselines side by
 * side (bench/compare.ts), the size/fidelity frontier of the budget against float16, int8 and k-means
 * (bench/frontier.ts), the packed export's size and load cost (bench/pack.ts) — printed as Markdown, saved as bench/results/*.json, and drawn in the
 * self-contained bench/results/report.html. `--quick` (what CI runs) does a small version of each and
 * writes under bench/results/quick/ instead.
 *
 *   npm run bench [-- --quick] [--only hash,prune,compare,frontier,pack] [--out DIR]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { REDPP, compareTable, headlineTable, runCompare } from './compare';
import { frontierTable, runFrontier, spearmanTable } from './frontier';
import { runHashBench } from './hash';
import { checkArgs, listArg, loadLine, machineInfo, resultsDir, writeResult } from './machine';
import { runPackBench } from './pack';
import { runPruneSpeed } from './prune-speed';
import { machineText, renderReport, type BenchResults } from './report';

/** The sections: their --only name and their key in BenchResults. */
const SECTIONS = [
  ['compare', 'compare'],
  ['frontier', 'frontier'],
  ['hash', 'hash'],
  ['prune', 'pruneSpeed'],
  ['pack', 'pack'],
] as const;

async function main(): Promise<void> {
  checkArgs('run', { values: { only: 'hash,prune,compare,frontier,pack', out: 'DIR' }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const only = new Set(listArg('only', ['hash', 'prune', 'compare', 'frontier', 'pack']));
  const oi = process.argv.indexOf('--out');
  const dir = oi >= 0 ? path.resolve(process.argv[oi + 1]) : quick ? path.join(resultsDir(), 'quick') : resultsDir();
  fs.mkdirSync(dir, { recursive: true });
  const results: BenchResults = { date: new Date().toISOString(), quick, machine: machineInfo(), load: {}, seconds: {} };
  // With --only, the sections not run keep their last results (bench.json), so the report stays whole.
  const previousFile = path.join(dir, 'bench.json');
  if (process.argv.includes('--only') && fs.existsSync(previousFile)) {
    const previous = JSON.parse(fs.readFileSync(previousFile, 'utf8')) as BenchResults;
    for (const [name, key] of SECTIONS) {
      if (only.has(name) || previous[key] === undefined) continue;
      (results as unknown as Record<string, unknown>)[key] = previous[key];
      if (previous.load[key]) results.load[key] = previous.load[key];
      if (previous.seconds[key] !== undefined) results.seconds[key] = previous.seconds[key];
    }
  }
  const t0 = performance.now();
  const errors: string[] = [];
  // A section that fails is reported and the others still run: the report is written either way.
  const section = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    const start = os.loadavg();
    const t = performance.now();
    process.stderr.write(`[bench] ${name} (${loadLine(start)})\n`);
    let out: T | undefined;
    try {
      out = await fn();
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
      process.stderr.write(`[bench] ${name} failed: ${(e as Error).stack}\n`);
    }
    results.seconds[name] = (performance.now() - t) / 1000;
    results.load[name] = { start: start.map((x) => +x.toFixed(2)), end: os.loadavg().map((x) => +x.toFixed(2)) };
    return out;
  };
  const out: string[] = [`# redpp benchmarks${quick ? ' (quick)' : ''}`, '', `${results.date.slice(0, 10)} — ${machineText(results.machine)}; ${loadLine()} at the start.`, ''];
  if (only.has('compare')) {
    results.compare = await section('compare', () => runCompare({ quick }));
  }
  if (results.compare) {
    // A section carried over from the last run keeps its own file (and its date).
    if (only.has('compare')) writeResult('compare', { load: results.load.compare, points: results.compare }, dir);
    out.push('## redpp vs data-free baselines at the same MACs and at the same params removed (PP-OCRv4)', '', headlineTable(results.compare), '', '### Every point', '', compareTable(results.compare), '');
  }
  if (only.has('frontier')) {
    results.frontier = await section('frontier', () => runFrontier({ quick }));
  }
  if (results.frontier) {
    const { table: _, ...data } = results.frontier;
    if (only.has('frontier')) writeResult('frontier', { load: results.load.frontier, ...data }, dir);
    out.push('## The size/fidelity frontier: the budget against float16, int8 and k-means on every layer (PP-OCRv4)', '', frontierTable(results.frontier.points, results.frontier.skipped), '', spearmanTable(results.frontier.spearman), '');
  }
  if (only.has('hash')) {
    results.hash = await section('hash', () => runHashBench({ quick }));
  }
  if (results.hash) {
    const { table: _, ...data } = results.hash;
    if (only.has('hash')) writeResult('hash', { load: results.load.hash, ...data }, dir);
    out.push('## Hashing kernel throughput (ResNet-50 weights)', '', results.hash.table, '');
  }
  if (only.has('prune')) {
    results.pruneSpeed = await section('pruneSpeed', () =>
      runPruneSpeed(quick ? { models: ['mobilenetv2', 'resnet50'], runs: 1, warmup: 0 } : {}),
    );
  }
  if (results.pruneSpeed) {
    const { table: _, ...data } = results.pruneSpeed;
    if (only.has('prune')) writeResult('prune-speed', { load: results.load.pruneSpeed, ...data }, dir);
    out.push('## Whole-model pruning time and peak memory (redpp prune, random weights)', '', results.pruneSpeed.table, '');
  }
  if (only.has('pack')) {
    results.pack = await section('pack', () => runPackBench({ quick }));
  }
  if (results.pack) {
    const { sizeTable, sessionTable, ...data } = results.pack;
    if (only.has('pack')) writeResult('pack', { load: results.load.pack, ...data }, dir);
    out.push('## Packed export (--pack) against the hashed model: file size, session creation, inference', '', sizeTable, '', sessionTable, '');
  }
  results.seconds.total = (performance.now() - t0) / 1000;
  for (const [k, l] of Object.entries(results.load)) out.push(`- ${k}: ${results.seconds[k].toFixed(0)} s; ${loadLine(l.start)} at the start, ${loadLine(l.end)} at the end`);
  out.push(`- total: ${results.seconds.total.toFixed(0)} s`);
  if (errors.length) {
    results.errors = errors;
    out.push('', '**Failed:**', ...errors.map((e) => `- ${e}`));
  }
  writeResult('bench', results, dir);
  fs.writeFileSync(path.join(dir, 'report.html'), renderReport(results));
  out.push('', `Report: ${path.relative(process.cwd(), path.join(dir, 'report.html'))}`);
  console.log(out.join('\n'));
  if (results.compare && !results.compare.some((p) => p.method === REDPP)) throw new Error('no redpp point was measured');
  if (errors.length) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
