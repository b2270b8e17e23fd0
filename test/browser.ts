/**
 * The report page and the service's page in a real browser: headless Chromium (the Debian package,
 * which .ci/run installs and names in REDPP_CHROMIUM), driven by puppeteer-core. Skipped where no
 * Chromium is named or found. With REDPP_SCREENSHOTS=DIR, screenshots of both are written there (the
 * README's come from such a run).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import t from 'tap';

import { prune } from '../lib/prune';
import { toJsonReport } from '../lib/report';
import { buildServer } from '../lib/serve/http';
import { LocalQueue } from '../lib/serve/local-queue';
import { DirectoryStore } from '../lib/serve/store';
import { CHROMIUM } from './helpers/chromium';
import { OCR_MODELS, tempDir } from './helpers/onnx-builder';
import { CLI } from './helpers/service';

const SHOTS = process.env.REDPP_SCREENSHOTS;

async function browser(t: { teardown(fn: () => unknown): void }): Promise<Browser> {
  const b = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => b.close());
  return b;
}

/** Every URL the page asked for (a self-contained page asks for nothing but itself). */
function requests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  return urls;
}

/** A layer's stored bytes after, from the JSON alone: as packed, else the dense tensor. */
const BYTES_PER: Record<string, number> = { FLOAT: 4, FLOAT16: 2 };

t.test('the browser tests', { skip: CHROMIUM ? false : 'no Chromium: install the chromium package or set REDPP_CHROMIUM' }, async (t) => {
  t.test('--report: the bundled det model; every layer has its bar, the totals are the JSON report\'s', async (t) => {
    const dir = tempDir(t);
    const html = path.join(dir, 'det.html');
    const { report } = await prune(OCR_MODELS.det.file, { output: path.join(dir, 'det.onnx'), report: html });
    const json = toJsonReport(report);
    t.ok(fs.statSync(html).size < 2 * 1024 ** 2, `${fs.statSync(html).size} bytes`);
    const b = await browser(t);
    const page = await b.newPage();
    await page.setViewport({ width: 1040, height: 900 });
    const asked = requests(page);
    await page.goto(`file://${html}`, { waitUntil: 'load' });
    const bars = await page.$$eval('g.layer', (gs) => gs.map((g) => ({ layer: g.getAttribute('data-layer'), before: Number(g.getAttribute('data-before')), after: Number(g.getAttribute('data-after')), codec: g.getAttribute('data-codec'), rects: g.querySelectorAll('rect').length, tip: g.querySelector('title')?.textContent ?? '' })));
    t.same(
      bars.map((x) => x.layer),
      json.layers.map((l) => l.node),
      'a bar per layer, in graph order',
    );
    t.ok(bars.every((x) => x.rects === 2 && x.tip.includes('→')), 'each with its before and after and a tooltip');
    for (const [i, l] of json.layers.entries()) {
      const after = l.packed ? l.packed.bytes.after : l.params.after * BYTES_PER[l.dtype];
      if (bars[i].after !== after) t.fail(`${l.node}: bar ${bars[i].after} bytes, JSON ${after}`);
      if (bars[i].codec !== (l.codec?.codec ?? 'none')) t.fail(`${l.node}: bar coloured ${bars[i].codec}, codec ${l.codec?.codec}`);
      if (l.codec?.bits !== undefined && !bars[i].tip.includes(`${l.codec.bits}-bit`)) t.fail(`${l.node}: no bits in the tooltip`);
    }
    const totals = await page.$eval('#totals', (e) => ({ before: Number(e.getAttribute('data-file-before')), after: Number(e.getAttribute('data-file-after')), layers: Number(e.getAttribute('data-layers')), text: e.textContent ?? '' }));
    t.same({ before: totals.before, after: totals.after, layers: totals.layers }, { before: json.file.before, after: json.file.after, layers: json.layers.length }, 'the totals are the report\'s');
    t.match(totals.text, /the budget, max deviation 0\.02/);
    t.ok(await page.$('#chosen'), 'the chosen checkpoint is marked');
    const outputRows = await page.$$eval('#budget-outputs tr td:first-child', (tds) => tds.map((td) => td.textContent));
    t.same(outputRows, json.budget!.outputs.map((o) => o.name), 'the deviation of every output');
    t.same(asked, [`file://${html}`], 'nothing but the file is loaded');
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'report.png'), fullPage: true });
  });

  t.test('the service page: upload the cls model, follow the job, download a model byte-identical to the CLI\'s', async (t) => {
    const dir = tempDir(t);
    const store = new DirectoryStore(path.join(dir, 'store'));
    const queue = await LocalQueue.open(store, { concurrency: 1, threads: 2, maxQueue: 10, maxAttempts: 3, jobTimeoutMs: 600_000 });
    const app = buildServer({ queue, store, maxUpload: 64 * 1024 ** 2, token: 'page-token' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.teardown(async () => {
      await app.close();
      await queue.close();
    });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const b = await browser(t);
    const page = await b.newPage();
    await page.setViewport({ width: 1040, height: 1200 });
    const asked = requests(page);
    await page.goto(`${base}/`, { waitUntil: 'load' });
    await page.type('#token', 'page-token');
    const input = await page.$('#file');
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(OCR_MODELS.cls.file);
    await page.click('#submit');
    // Done, or an error shown (then the assertion below says which).
    await page.waitForFunction("!document.getElementById('result').hidden || document.getElementById('error').textContent !== ''", { timeout: 180_000 });
    t.equal(await page.$eval('#error', (e) => e.textContent), '', 'no error shown');
    t.match(await page.$eval('#status', (e) => e.textContent), /: done/);
    const downloaded = Buffer.from(
      await page.$eval('#download', async (a) => Array.from(new Uint8Array(await (await fetch((a as HTMLAnchorElement).href)).arrayBuffer()))),
    );
    t.equal(await page.$eval('#download', (a) => (a as HTMLAnchorElement).download), 'ch_ppocr_mobile_v2.0_cls_infer.pruned.onnx');
    const cli = path.join(dir, 'cli.onnx');
    await promisify(execFile)(process.execPath, [CLI, 'prune', OCR_MODELS.cls.file, '-o', cli, '--max-deviation', '0.02', '--kernel-split', 'auto']);
    t.equal(Buffer.compare(downloaded, fs.readFileSync(cli)), 0, 'the downloaded model is the CLI\'s, byte for byte');
    const frame = await (await page.$('#report'))!.contentFrame();
    t.ok(((await frame?.$$('g.layer')) ?? []).length > 0, 'the report is shown');
    t.notOk(
      asked.some((u) => !u.startsWith(base) && !u.startsWith('blob:') && !u.startsWith('about:')),
      'nothing outside the server is asked for',
    );
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, 'service.png'), fullPage: false });
  });
});
