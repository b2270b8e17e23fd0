/**
 * The report page of the largest bench models: its size, and how long headless Chromium takes to
 * render it (navigation start to the load event, and to a frame drawn after it; median of
 * `--runs` fresh pages). The target (issue: a report to look at) is VGG-16's under 2 MB, rendered in
 * under a second. The models are pruned with --beta 0.05 (the page's size depends on the layers, not
 * on how they were coded).
 *
 *   npm run bench:report-page [-- --models vgg16,resnet50,mobilenetv2,chain300] [--runs 5]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import puppeteer from 'puppeteer-core';

import { GraphBuilder } from '../lib/model/builder';
import type { Model } from '../lib/model/model';
import { saveModel } from '../lib/model/write';
import { prune } from '../lib/prune';
import { CHROMIUM } from '../test/helpers/chromium';
import { checkArgs, listArg, loadLine, machineLine, median, numberArg, table, writeResult } from './machine';
import { BENCH_MODELS } from './models';

/** 300 convs 32 → 32 (3×3) in a chain, with ReLUs: a page of 300 layers. */
function deepChain(): Model {
  const b = new GraphBuilder(13, 300);
  let x = b.input('x', ['N', 32, 16, 16]);
  for (let i = 0; i < 300; i++) x = b.op('Relu', [b.convHe(x, 32, 32, 3).y]);
  b.output(x, ['N', 32, 16, 16]);
  return b.model();
}

const MODELS: Record<string, () => Model> = { ...BENCH_MODELS, chain300: deepChain };


async function main(): Promise<void> {
  checkArgs('report-page', { values: { models: 'vgg16,resnet50,mobilenetv2,chain300', runs: 'N' } });
  if (!CHROMIUM) throw new Error('bench:report-page needs Chromium (the chromium package, or REDPP_CHROMIUM)');
  const models = listArg('models', ['vgg16', 'resnet50', 'mobilenetv2', 'chain300']);
  const runs = numberArg('runs', 5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-report-'));
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const rows: { model: string; layers: number; bytes: number; loadMs: number; paintMs: number; load: string }[] = [];
  try {
    for (const name of models) {
      const file = path.join(dir, `${name}.onnx`);
      await saveModel(MODELS[name](), file);
      const html = path.join(dir, `${name}.html`);
      const { report } = await prune(file, { beta: 0.05, output: path.join(dir, `${name}.out.onnx`), report: html });
      const load = loadLine();
      const loads: number[] = [];
      const paints: number[] = [];
      for (let i = 0; i < runs; i++) {
        const page = await browser.newPage();
        await page.setViewport({ width: 1040, height: 900 });
        await page.goto(`file://${html}`, { waitUntil: 'load' });
        // In the page (a string: this project compiles without the DOM's types).
        // The load event, and the first frame drawn after it (two animation frames: the one after the
        // layout of the whole page has been painted), in ms from the navigation's start.
        const t = (await page.evaluate(`new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
          const nav = performance.getEntriesByType('navigation')[0];
          resolve({ load: nav.loadEventEnd || nav.loadEventStart, paint: performance.now() });
        })))`)) as { load: number; paint: number };
        loads.push(t.load);
        paints.push(t.paint);
        await page.close();
      }
      rows.push({ model: name, layers: report.layers.length, bytes: fs.statSync(html).size, loadMs: median(loads), paintMs: median(paints), load });
      fs.rmSync(path.join(dir, `${name}.out.onnx`), { force: true });
    }
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n## The report page in headless Chromium (${machineLine()})\n`);
  console.log(
    table(
      ['model', 'layers', 'page size', 'to load event', 'to a frame drawn', 'target', 'load before'],
      rows.map((r) => [r.model, r.layers, `${(r.bytes / 1024).toFixed(1)} KiB`, `${r.loadMs.toFixed(0)} ms`, `${r.paintMs.toFixed(0)} ms`, r.bytes < 2 * 1024 ** 2 && r.paintMs < 1000 ? 'met' : 'NOT met', r.load]),
    ),
  );
  writeResult('report-page', { runs, rows });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
