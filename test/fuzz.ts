/**
 * The bounded fuzz suite: every hand-made hostile case (test/helpers/hostile-models.ts) and a seeded
 * run of mutations of the bundled PP-OCR models, each through the CLI in a child process, checked by
 * test/helpers/fuzz.ts. `npm run fuzz -- --minutes N` runs the mutations for longer.
 */
import * as fs from 'node:fs';

import t from 'tap';

import { mutations, runCases, type Outcome } from './helpers/fuzz';
import { hostileCases } from './helpers/hostile-models';
import { OCR_MODELS, tempDir } from './helpers/onnx-builder';

const report = (t: Tap.Test, outcomes: Outcome[]) => {
  for (const o of outcomes) {
    if (o.kind === 'violation') t.fail(`${o.name}: ${o.detail}`);
    else t.pass(`${o.name}: ${o.kind}${o.code ? ` ${o.code}` : ''} (${o.ms} ms)`);
  }
};

t.test('hand-made hostile models: a typed error or a model that loads, nothing else', async (t) => {
  const cases = hostileCases();
  const outcomes = await runCases(cases, { root: tempDir(t), concurrency: 2, timeoutMs: 60_000 });
  t.equal(outcomes.length, cases.length, 'every case ran');
  report(t, outcomes);
});

t.test('seeded mutations of the PP-OCR models', async (t) => {
  const bases = [
    { name: 'cls', bytes: fs.readFileSync(OCR_MODELS.cls.file) },
    { name: 'det', bytes: fs.readFileSync(OCR_MODELS.det.file) },
  ];
  const count = 40;
  const cases = [...take(mutations(bases, 20261202), count)];
  const outcomes = await runCases(cases, { root: tempDir(t), concurrency: 2, timeoutMs: 60_000 });
  t.equal(outcomes.length, count, 'every mutation ran');
  report(t, outcomes);
});

function* take<T>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  for (const x of it) {
    yield x;
    if (--n === 0) return;
  }
}
