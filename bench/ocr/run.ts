/**
 * Task-level fidelity of pruned PP-OCR models, from the command line.
 *
 *   node dist/bench/ocr/run.js [--det pruned_det.onnx] [--rec pruned_rec.onnx] [--cls pruned_cls.onnx]
 *                              [--kinds det,rec,cls] [--runs 10] [--no-latency] [--png DIR] [--json FILE]
 *
 * A kind without a candidate is compared with itself: the report then shows how the original does on the
 * samples (line coverage, reading and direction accuracy) and its latency. --png writes the samples and
 * the original detector's binarised map over each page, for a human to look at.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { binarize } from './det-metrics';
import { evaluateOcrFidelity, type OcrFidelity, type OcrKind } from './fidelity';
import { savePng } from './image';
import { ocrModelPath } from './paths';
import { detInput } from './preprocess';
import { makeClsSamples, makeDetSamples, makeRecSamples } from './samples';
import { openSession, runSession } from './session';
import { checkArgs, machineLine } from '../machine';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function writePngs(dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const det = makeDetSamples();
  const session = await openSession(ocrModelPath('det'));
  for (const s of det) {
    savePng(s.image, path.join(dir, `${s.name}.png`));
    const input = detInput(s.image);
    const out = await runSession(session, input);
    const [h, w] = out.dims.slice(-2) as [number, number];
    const mask = binarize(out.data);
    // The model's input (resized page) with the binarised map in red over it.
    const data = new Uint8Array(w * h * 3);
    const plane = w * h;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.round((input.data[(2 - c) * plane + i]! * [0.229, 0.224, 0.225][2 - c]! + [0.485, 0.456, 0.406][2 - c]!) * 255);
      if (mask[i]) data.set([255, data[i * 3 + 1]! >> 1, data[i * 3 + 2]! >> 1], i * 3);
    }
    savePng({ width: w, height: h, data }, path.join(dir, `${s.name}-map.png`));
  }
  await session.release();
  for (const s of [...makeRecSamples(), ...makeClsSamples()]) savePng(s.image, path.join(dir, `${s.name}.png`));
}

function summary(r: OcrFidelity): string {
  const lat = r.latency
    ? `  latency ms (1 thread / default): original ${r.latency.singleThread.original.toFixed(1)} / ${r.latency.defaultThreads.original.toFixed(1)}, ` +
      `candidate ${r.latency.singleThread.candidate.toFixed(1)} / ${r.latency.defaultThreads.candidate.toFixed(1)} (input ${r.latency.input.join('x')})`
    : '';
  const head = `${r.kind}: ${r.pass ? 'PASS' : 'FAIL'} (${r.criterion}) on ${r.samples} samples`;
  if (r.kind === 'det') {
    const t = r.task;
    return [
      head,
      `  IoU mean ${r.meanIoU.toFixed(4)}, min ${r.minIoU.toFixed(4)}`,
      `  lines found: original ${t.original.linesFound}/${t.original.lines} (core coverage ${t.original.coverage.toFixed(3)}, off-text ${t.original.falsePositive.toFixed(4)}), ` +
        `candidate ${t.candidate.linesFound}/${t.candidate.lines} (${t.candidate.coverage.toFixed(3)}, ${t.candidate.falsePositive.toFixed(4)})`,
      lat,
    ].join('\n');
  }
  if (r.kind === 'rec') {
    const misses = r.details.filter((d) => !d.match).map((d) => `    '${d.original}' -> '${d.candidate}'`);
    return [
      head,
      `  same string ${(r.agreement * 100).toFixed(1)}% (untrimmed ${(r.rawAgreement * 100).toFixed(1)}%), CER ${r.cer.toFixed(4)}, same CTC step ${(r.stepAgreement * 100).toFixed(2)}%`,
      `  read as drawn: original ${(r.task.original.accuracy * 100).toFixed(1)}%, candidate ${(r.task.candidate.accuracy * 100).toFixed(1)}%`,
      ...misses,
      lat,
    ].join('\n');
  }
  return [
    head,
    `  same argmax ${(r.agreement * 100).toFixed(1)}%, max |dp(180)| ${r.maxProbDiff.toExponential(2)}`,
    `  direction right: original ${(r.task.original.accuracy * 100).toFixed(1)}%, candidate ${(r.task.candidate.accuracy * 100).toFixed(1)}%`,
    lat,
  ].join('\n');
}

async function main(): Promise<void> {
  checkArgs('ocr/run', { values: { det: 'FILE', rec: 'FILE', cls: 'FILE', kinds: 'det,rec,cls', runs: 'N', png: 'DIR', json: 'FILE' }, switches: ['no-latency'] });
  const kinds = (arg('kinds') ?? 'det,rec,cls').split(',') as OcrKind[];
  const runs = arg('runs');
  const latency = process.argv.includes('--no-latency') ? false : { runs: runs ? Number(runs) : undefined };
  const png = arg('png');
  if (png) await writePngs(png);
  console.log(machineLine());
  const results: OcrFidelity[] = [];
  for (const kind of kinds) {
    const candidate = arg(kind) ?? ocrModelPath(kind);
    const r = await evaluateOcrFidelity(kind, ocrModelPath(kind), candidate, { latency });
    results.push(r);
    console.log(`${summary(r)}${candidate === ocrModelPath(kind) ? '\n  (candidate = original)' : `\n  candidate: ${candidate}`}`);
  }
  const json = arg('json');
  if (json) fs.writeFileSync(json, `${JSON.stringify(results, null, 1)}\n`);
  if (results.some((r) => !r.pass)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 2;
});
