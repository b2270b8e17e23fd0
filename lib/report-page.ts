/**
 * The report as a page to look at (`--report out.html`, and the service's GET /v1/jobs/:id/report.html):
 * one self-contained HTML file — no script, no network, no fonts; inline SVG, native tooltips — drawn
 * from the JSON report alone, so the page shows nothing the JSON does not hold.
 *
 * Every layer's bar carries its figures as data attributes (data-layer, data-before, data-after), and
 * the totals theirs (#totals), so that a test can check the page against the JSON it came from.
 */
import { byteSize, DataType, type DataTypeName } from './model/dtype';
import { settingName } from './passes/codecs/settings';
import type { JsonReport } from './report';

type Layer = JsonReport['layers'][number];

const COLOURS: Record<string, string> = { dense: '#8c8c8c', float16: '#4e79a7', linear: '#f28e2b', hash: '#59a14f', none: '#c9c2bc' };

/** Bytes of a layer's weight in the file, before and after: as packed, else the dense tensor of its type. */
export function layerBytes(l: Layer): { before: number; after: number } {
  if (l.packed) return l.packed.bytes;
  // The record names the type as dataTypeName() does (FLOAT, FLOAT16, …).
  const code = DataType[l.dtype as DataTypeName] as number | undefined;
  const size = (n: number) => (code === undefined ? undefined : byteSize(code, n)) ?? n * 4;
  return { before: size(l.params.before), after: size(l.params.after) };
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

const num = (n: number | null) => (n === null ? '—' : n.toLocaleString('en-US'));
const pct = (after: number, before: number) => (before ? `${((after / before) * 100).toFixed(1)} %` : '—');
const dev = (d: number) => (d === 0 ? '0' : d.toExponential(2));

function codecOf(l: Layer): string {
  return l.codec ? l.codec.codec : 'none';
}

function codecText(l: Layer): string {
  if (!l.codec) return l.skipped ? `left alone: ${l.skipped}` : 'as it was';
  const parts = [settingName(l.codec)];
  if (l.packed?.indexBits) parts.push(`${l.packed.indexBits} bits stored per index`);
  parts.push(`granularity ${l.codec.granularity ?? 'neuron'}`);
  return parts.join(', ');
}

/** The layers, one bar each in graph order: bytes before (grey) and after (the codec's colour). */
function layerBars(layers: Layer[]): string {
  const row = 16;
  const label = 300;
  const width = 960;
  const barW = width - label - 170;
  const max = Math.max(1, ...layers.map((l) => layerBytes(l).before));
  const rows = layers.map((l, i) => {
    const b = layerBytes(l);
    const y = i * row;
    const wBefore = (b.before / max) * barW;
    const wAfter = (b.after / max) * barW;
    const tip = `${l.node} (${l.op}): ${bytes(b.before)} → ${bytes(b.after)}; ${codecText(l)}${l.deviation ? `; predicted deviation ${dev(l.deviation.predicted)}` : ''}`;
    return (
      `<g class="layer" data-layer="${escape(l.node)}" data-before="${b.before}" data-after="${b.after}" data-codec="${codecOf(l)}"><title>${escape(tip)}</title>` +
      `<text x="${label - 6}" y="${y + 12}" text-anchor="end">${escape(l.node.length > 42 ? `…${l.node.slice(-41)}` : l.node)}</text>` +
      `<rect x="${label}" y="${y + 2}" width="${wBefore.toFixed(1)}" height="${row - 4}" fill="#e4e4e4"/>` +
      `<rect x="${label}" y="${y + 4}" width="${Math.max(0.5, wAfter).toFixed(1)}" height="${row - 8}" fill="${COLOURS[codecOf(l)]}"/>` +
      `<text x="${label + barW + 8}" y="${y + 12}">${bytes(b.after)} / ${bytes(b.before)}</text></g>`
    );
  });
  return `<svg class="bars" width="${width}" height="${layers.length * row + 4}" role="img" aria-label="bytes per layer">${rows.join('')}</svg>`;
}

function legend(): string {
  return Object.entries(COLOURS)
    .map(([k, c]) => `<span class="key"><i style="background:${c}"></i>${k === 'none' ? 'left as it was' : k}</span>`)
    .join(' ');
}

/** Axis ticks at powers of ten between lo and hi (log scale). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

/**
 * The allocator's trade-off: each layer's predicted deviation against the bytes its codec saves (log
 * scales), and the checkpoints the budget measured (file size against deviation), the chosen one ringed.
 */
function tradeOffPlots(r: JsonReport): string {
  const plots: string[] = [];
  const points = r.layers
    .map((l) => ({ l, saved: layerBytes(l).before - layerBytes(l).after, d: l.deviation?.predicted ?? 0 }))
    .filter((p) => p.saved > 0 && p.d > 0);
  const W = 460;
  const H = 300;
  const m = { l: 64, r: 12, t: 12, b: 40 };
  if (points.length) {
    const xs = points.map((p) => p.saved);
    const ys = points.map((p) => p.d);
    const [x0, x1] = [Math.min(...xs) / 1.5, Math.max(...xs) * 1.5];
    const [y0, y1] = [Math.min(...ys) / 1.5, Math.max(...ys) * 1.5];
    const sx = (x: number) => m.l + ((Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0) || 1)) * (W - m.l - m.r);
    const sy = (y: number) => H - m.b - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0) || 1)) * (H - m.t - m.b);
    const ticks =
      logTicks(x0, x1)
        .filter((x) => x >= x0 && x <= x1)
        .map((x) => `<text x="${sx(x)}" y="${H - m.b + 16}" text-anchor="middle">${bytes(x)}</text>`)
        .join('') +
      logTicks(y0, y1)
        .filter((y) => y >= y0 && y <= y1)
        .map((y) => `<text x="${m.l - 6}" y="${sy(y) + 4}" text-anchor="end">${dev(y)}</text>`)
        .join('');
    const dots = points
      .map((p) => `<circle cx="${sx(p.saved).toFixed(1)}" cy="${sy(p.d).toFixed(1)}" r="3.5" fill="${COLOURS[codecOf(p.l)]}"><title>${escape(`${p.l.node}: saves ${bytes(p.saved)}, predicted deviation ${dev(p.d)}; ${codecText(p.l)}`)}</title></circle>`)
      .join('');
    plots.push(
      `<figure><svg width="${W}" height="${H}" role="img" aria-label="predicted deviation against bytes saved, per layer">` +
        `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#ccc"/>${ticks}${dots}` +
        `<text x="${(W + m.l) / 2}" y="${H - 6}" text-anchor="middle">bytes saved by the layer's codec</text></svg>` +
        `<figcaption>Per layer: the deviation the budget predicted its codec adds, against the bytes it saves.</figcaption></figure>`,
    );
  }
  const b = r.budget;
  if (b && b.checkpoints.length > 1) {
    // In order of size (the budget measures them path by path, not in order).
    const cs = [...b.checkpoints].sort((p, q) => p.fileBytes - q.fileBytes);
    const xs = cs.map((c) => c.fileBytes);
    const ys = cs.flatMap((c) => [c.predicted, c.measured]).concat(b.maxDeviation ?? 0);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const y1 = Math.max(...ys) * 1.1 || 1;
    const sx = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
    const sy = (y: number) => H - m.b - (y / y1) * (H - m.t - m.b);
    const line = (key: 'predicted' | 'measured', colour: string) =>
      (key === 'measured' ? '' : `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${cs.map((c) => `${sx(c.fileBytes).toFixed(1)},${sy(c[key]).toFixed(1)}`).join(' ')}"/>`) +
      cs.map((c) => `<circle cx="${sx(c.fileBytes).toFixed(1)}" cy="${sy(c[key]).toFixed(1)}" r="2.5" fill="${colour}"><title>${key} ${dev(c[key])} at ${bytes(c.fileBytes)}</title></circle>`).join('');
    const chosen = b.checkpoints[b.chosen];
    const budgetLine =
      b.maxDeviation !== undefined
        ? `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(b.maxDeviation)}" y2="${sy(b.maxDeviation)}" stroke="#b00" stroke-dasharray="4 3"/><text x="${W - m.r - 4}" y="${sy(b.maxDeviation) - 4}" text-anchor="end" fill="#b00">budget ${b.maxDeviation}</text>`
        : '';
    const ticks =
      [x0, (x0 + x1) / 2, x1].map((x, i) => `<text x="${sx(x)}" y="${H - m.b + 16}" text-anchor="${['start', 'middle', 'end'][i]}">${bytes(Math.round(x))}</text>`).join('') +
      [0, y1 / 2, y1].map((y) => `<text x="${m.l - 6}" y="${sy(y) + 4}" text-anchor="end">${dev(y)}</text>`).join('');
    plots.push(
      `<figure><svg width="${W}" height="${H}" role="img" aria-label="the budget's checkpoints">` +
        `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#ccc"/>${ticks}${budgetLine}${line('predicted', '#4e79a7')}${line('measured', '#f28e2b')}` +
        (chosen ? `<circle id="chosen" cx="${sx(chosen.fileBytes)}" cy="${sy(chosen.measured)}" r="8" fill="none" stroke="#000" stroke-width="2"><title>chosen: ${bytes(chosen.fileBytes)}, measured ${dev(chosen.measured)}</title></circle>` : '') +
        `<text x="${(W + m.l) / 2}" y="${H - 6}" text-anchor="middle">file size (estimated)</text></svg>` +
        `<figcaption>The checkpoints the budget measured on its path: deviation <b style="color:#4e79a7">predicted</b> and <b style="color:#f28e2b">measured</b> on ${b.probes} probes, against the file's size; the chosen one ringed.</figcaption></figure>`,
    );
  }
  return plots.length ? `<div class="plots">${plots.join('')}</div>` : '<p>No layer was coded: nothing to plot.</p>';
}

function summary(r: JsonReport): string {
  const s = r.options.selection;
  const rows: [string, string][] = [
    ['file', `${bytes(r.file.before)} → ${bytes(r.file.after)} (${pct(r.file.after, r.file.before)})`],
    ...(r.transfer ? ([['transfer (brotli)', `${bytes(r.transfer.before)} → ${bytes(r.transfer.after)} (${pct(r.transfer.after, r.transfer.before)})`]] as [string, string][]) : []),
    ['params', `${num(r.params.before)} → ${num(r.params.after)}`],
    ['MACs', `${num(r.macs.before)} → ${num(r.macs.after)}`],
    ['chosen by', s.mode === 'hash' ? `RED++ hashing at beta ${s.beta}` : s.targetSize !== undefined ? `the budget, target size ${s.targetSize}` : `the budget, max deviation ${s.maxDeviation}`],
  ];
  if (r.budget) rows.push(['deviation', `predicted ${dev(r.budget.predicted)}, measured ${dev(r.budget.measured)} (on ${r.budget.probes} probes; ${r.budget.corrected} predictions corrected)`]);
  rows.push(['hashing backend', r.hashBackend]);
  const total = Object.values(r.timingsMs).reduce((a, b) => a + b, 0);
  rows.push(['time', `${(total / 1000).toFixed(1)} s: ${Object.entries(r.timingsMs).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', ')}`]);
  return (
    `<table id="totals" data-file-before="${r.file.before}" data-file-after="${r.file.after}" data-layers="${r.layers.length}" ` +
    `data-layer-bytes-before="${r.layers.reduce((a, l) => a + layerBytes(l).before, 0)}" data-layer-bytes-after="${r.layers.reduce((a, l) => a + layerBytes(l).after, 0)}">` +
    rows.map(([k, v]) => `<tr><th>${k}</th><td>${escape(v)}</td></tr>`).join('') +
    '</table>'
  );
}

function outputs(r: JsonReport): string {
  const v = r.validation;
  const budget = r.budget
    ? `<p>Measured by the budget on its ${r.budget.probes} probes (relative L2 at the logits, before a Sigmoid or Softmax), with the codecs chosen:</p>` +
      `<table class="grid" id="budget-outputs"><tr><th>output</th><th>relative L2</th></tr>${r.budget.outputs.map((o) => `<tr><td>${escape(o.name)}</td><td>${dev(o.measured)}</td></tr>`).join('')}</table>`
    : '';
  if (!v) return budget + '<p>Prune with <code>--validate</code> for the outputs in onnxruntime on other inputs, and the latency.</p>';
  const rows = v.outputs
    .map((o) => `<tr><td>${escape(o.name)}</td><td>${dev(o.relL2)}</td><td>${o.cosine.toFixed(6)}</td><td>${dev(o.maxAbs)}</td><td>${o.argmaxAgreement === null ? '—' : `${(o.argmaxAgreement * 100).toFixed(1)} %`}</td></tr>`)
    .join('');
  const latency = v.latencyMs ? `<p>Latency ${v.latencyMs.before.toFixed(2)} → ${v.latencyMs.after.toFixed(2)} ms; session creation ${v.sessionMs.before.toFixed(0)} → ${v.sessionMs.after.toFixed(0)} ms.</p>` : '';
  return `${budget}<p>With <code>--validate</code>, in onnxruntime:</p><table class="grid"><tr><th>output</th><th>relative L2</th><th>cosine</th><th>max |Δ|</th><th>argmax agreement</th></tr>${rows}</table>${latency}`;
}

function leftAlone(layers: Layer[]): string {
  const byReason = new Map<string, string[]>();
  for (const l of layers) {
    if (l.codec && l.codec.codec !== 'dense') continue;
    const why = l.skipped ?? (l.codec ? 'the budget kept it dense' : 'not coded');
    byReason.set(why, [...(byReason.get(why) ?? []), l.node]);
  }
  if (!byReason.size) return '<p>Every layer was coded.</p>';
  return `<ul class="alone">${[...byReason].map(([why, names]) => `<li><b>${escape(why)}</b> (${names.length}): ${escape(names.slice(0, 30).join(', '))}${names.length > 30 ? ` and ${names.length - 30} more` : ''}</li>`).join('')}</ul>`;
}

const STYLE = `body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}th{text-align:left;padding:2px 12px 2px 0;font-weight:600}
td{padding:2px 12px 2px 0}.grid td,.grid th{border-bottom:1px solid #eee}svg text{font:11px system-ui,sans-serif;fill:#333}
.plots{display:flex;flex-wrap:wrap;gap:24px}figure{margin:0}figcaption{max-width:460px;color:#555;font-size:12px}
.key{margin-right:12px}.key i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.bars g.layer:hover rect:last-of-type{stroke:#000;stroke-width:.5}`;

/** The page of one report. */
export function reportPage(r: JsonReport, title = r.input ?? 'model'): string {
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    `<title>redpp report: ${escape(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>redpp report: ${escape(title)}</h1>`,
    summary(r),
    `<h2>Bytes per layer, in graph order (${r.layers.length} layers)</h2><p>${legend()} — hover a bar for the codec, its bits and granularity.</p>`,
    layerBars(r.layers),
    '<h2>The trade-off</h2>',
    tradeOffPlots(r),
    '<h2>Outputs</h2>',
    outputs(r),
    '<h2>Left alone</h2>',
    leftAlone(r.layers),
    '</body></html>',
  ].join('\n');
}
