/**
 * The long fuzz run: the hand-made hostile cases, then seeded mutations of the bundled PP-OCR models
 * (byte flips, truncation, length prefixes, field edits) through the CLI until the time is up, checked
 * as test/fuzz.ts checks them (test/helpers/fuzz.ts). Prints a table by mutation kind and lists every
 * broken promise; exits 1 if there was one.
 *
 *   npm run fuzz -- --minutes 10 [--seed N] [--jobs 2]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { MUTATION_KINDS, mutations, runCases, type Outcome } from '../test/helpers/fuzz';
import { hostileCases } from '../test/helpers/hostile-models';
import { checkArgs, machineInfo, numberArg, resultsDir } from './machine';
import { ocrModelPath } from './ocr/paths';

async function main(): Promise<void> {
  checkArgs('fuzz', { values: { minutes: 'N', seed: 'N', jobs: 'N' } });
  const minutes = numberArg('minutes', 5);
  const seed = numberArg('seed', Date.now() % 2 ** 31);
  const jobs = numberArg('jobs', Math.max(1, os.availableParallelism()));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-fuzz-'));
  const t0 = Date.now();
  const deadline = t0 + minutes * 60_000;
  const machine = machineInfo();
  try {
    const hostile = await runCases(hostileCases(), { root, concurrency: jobs, timeoutMs: 120_000 });
    const bases = (['cls', 'det', 'rec'] as const).map((name) => ({ name, bytes: fs.readFileSync(ocrModelPath(name)) }));
    let done = 0;
    const mutated = await runCases(mutations(bases, seed), {
      root,
      concurrency: jobs,
      timeoutMs: 120_000,
      deadline,
      onOutcome: () => {
        if (++done % 25 === 0) process.stderr.write(`  ${done} mutations, ${Math.round((Date.now() - t0) / 1000)} s\n`);
      },
    });
    const rows = [
      row('hand-made', hostile),
      ...MUTATION_KINDS.map((kind) => row(`mutation: ${kind}`, mutated.filter((o) => o.name.includes(`: ${kind} `)))),
      row('all', [...hostile, ...mutated]),
    ];
    const seconds = (Date.now() - t0) / 1000;
    console.log(`redpp fuzz: seed ${seed}, ${seconds.toFixed(0)} s, ${jobs} jobs, ${machine.cpu} × ${machine.cores}, load ${machine.loadavg.join(' / ')}`);
    console.log(table(['cases', 'runs', 'pruned', 'refused', 'broken promises', 'median ms'], rows));
    const violations = [...hostile, ...mutated].filter((o) => o.kind === 'violation');
    for (const v of violations) console.log(`BROKEN: ${v.name}: ${v.detail}`);
    const codes = new Map<string, number>();
    for (const o of [...hostile, ...mutated]) if (o.code) codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
    console.log(`refusals by code: ${[...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`);
    fs.mkdirSync(resultsDir(), { recursive: true });
    fs.writeFileSync(
      path.join(resultsDir(), 'fuzz.json'),
      `${JSON.stringify({ date: new Date().toISOString(), machine, seed, seconds, jobs, rows, codes: Object.fromEntries(codes), violations }, null, 2)}\n`,
    );
    if (violations.length) process.exitCode = 1;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function row(name: string, outcomes: Outcome[]): (string | number)[] {
  const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  const count = (k: Outcome['kind']) => outcomes.filter((o) => o.kind === k).length;
  return [name, outcomes.length, count('pruned'), count('refused'), count('violation'), ms.length ? ms[ms.length >> 1] : 0];
}

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows].map((r) => r.map(String));
  const width = head.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join(' | ')} |`;
  return [line(cells[0]), `|${width.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
