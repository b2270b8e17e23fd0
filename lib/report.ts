/**
 * How a PruneReport is shown: a summary table for people, and the stable JSON object of `--json` (the
 * report itself, the layer records as they are, with the validation summed up per output).
 */
import type { ResolvedPruneOptions } from './options';
import { settingName } from './passes/codecs/settings';
import type { BudgetRecord, LayerRecord, OpCounts } from './passes/layer-records';
import type { PassReport } from './passes/pass';
import type { ValidationReport } from './validate';

/** What prune() reports: the layers' records with the totals (prune.ts fills it). */
export interface PruneReport {
  input: string | null;
  output: string | null;
  options: Omit<ResolvedPruneOptions, 'onProgress' | 'output' | 'signal' | 'report'>;
  params: { before: number; after: number };
  /** null when a shape in the model could not be resolved at `inputShapes`. */
  macs: { before: number | null; after: number | null };
  /** Bytes of the model's files (the .onnx and any external-data files) before and after. */
  file: { before: number; after: number };
  /**
   * Arithmetic of the layers for one run: dense before; after, as RED++ input splitting counts it (a
   * multiplication per distinct non-zero value of a neuron). Counted, not measured. Null when a shape
   * is unknown.
   */
  ops: OpCounts | null;
  inputShapes: Record<string, number[]>;
  /** What the backends that hashed were: 'cpu' (native), 'cuda', 'reference' (TypeScript: the addon did not load), or 'none'. */
  hashBackend: string;
  /** What the fidelity budget chose on (absent with beta): the budget, the predicted and measured deviation, the checkpoints. */
  budget?: BudgetRecord;
  /** Bytes as a CDN serves the file: brotli-compressed (quality 5), before and after; null unless options.transferSize asked for it. */
  transfer: { before: number; after: number } | null;
  layers: LayerRecord[];
  passes: PassReport[];
  validation?: ValidationReport;
  timingsMs: Record<string, number>;
}


export interface JsonReport {
  input: string | null;
  output: string | null;
  params: { before: number; after: number };
  macs: { before: number | null; after: number | null };
  file: { before: number; after: number };
  /** RED++ input-splitting arithmetic: counted, not measured. */
  ops: PruneReport['ops'];
  inputShapes: Record<string, number[]>;
  hashBackend: string;
  budget?: PruneReport['budget'];
  transfer: PruneReport['transfer'];
  layers: Omit<LayerRecord, 'layer'>[];
  passes: { pass: string; changed: boolean; stats: Record<string, number>; skipped: number }[];
  validation?: {
    outputs: { name: string; relL2: number; cosine: number; maxAbs: number; argmaxAgreement: number | null }[];
    latencyMs: { before: number; after: number } | null;
    /** onnxruntime session creation, once each (a packed model's chains are folded then). */
    sessionMs: { before: number; after: number };
  };
  options: Omit<PruneReport['options'], 'skip'> & { skip: string[] };
  timingsMs: Record<string, number>;
}

export function toJsonReport(r: PruneReport): JsonReport {
  const out: JsonReport = {
    input: r.input,
    output: r.output,
    params: r.params,
    macs: r.macs,
    file: r.file,
    ops: r.ops,
    inputShapes: r.inputShapes,
    hashBackend: r.hashBackend,
    ...(r.budget ? { budget: r.budget } : {}),
    transfer: r.transfer,
    // A record's layer is not enumerable: the records print as their figures.
    layers: r.layers,
    passes: r.passes.map((p) => ({ pass: p.pass, changed: p.changed, stats: p.stats, skipped: p.skipped.length })),
    options: { ...r.options, skip: r.options.skip.map(String) },
    timingsMs: r.timingsMs,
  };
  if (r.validation) {
    out.validation = {
      outputs: r.validation.outputs.map((o) => ({
        name: o.name,
        relL2: o.relL2Error,
        cosine: o.cosine,
        maxAbs: o.maxAbsError,
        argmaxAgreement: o.argmaxAgreement,
      })),
      latencyMs: r.validation.latency
        ? { before: r.validation.latency.original.medianMs, after: r.validation.latency.changed.medianMs }
        : null,
      sessionMs: { before: r.validation.sessionMs.original, after: r.validation.sessionMs.changed },
    };
  }
  return out;
}

const count = (n: number) => n.toLocaleString('en-US');
const si = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${n}`;
const bytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const change = (before: number, after: number) =>
  before === 0 ? '' : `${after <= before ? '-' : '+'}${((Math.abs(before - after) / before) * 100).toFixed(1)} %`;

function pad(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ').trimEnd());
}

export function summaryTable(r: PruneReport): string {
  const shapes = Object.entries(r.inputShapes).map(([k, v]) => `${k}=${v.join('x')}`).join(', ');
  const rows: string[][] = [
    ['', 'before', 'after', 'change'],
    ['params', count(r.params.before), count(r.params.after), change(r.params.before, r.params.after)],
    r.macs.before !== null && r.macs.after !== null
      ? ['MACs', si(r.macs.before), si(r.macs.after), change(r.macs.before, r.macs.after)]
      : ['MACs', 'unknown', 'unknown', ''],
    ['file size', bytes(r.file.before), bytes(r.file.after), change(r.file.before, r.file.after)],
  ];
  if (r.transfer) rows.push(['transfer (brotli)', bytes(r.transfer.before), bytes(r.transfer.after), change(r.transfer.before, r.transfer.after)]);
  if (r.ops) {
    rows.push(['multiplications*', si(r.ops.mults.before), si(r.ops.mults.after), change(r.ops.mults.before, r.ops.mults.after)]);
    rows.push(['additions*', si(r.ops.adds.before), si(r.ops.adds.after), change(r.ops.adds.before, r.ops.adds.after)]);
  }
  const o = r.options;
  const lines = [
    `redpp prune ${r.input ?? '(buffer)'} -> ${r.output ?? '(in memory)'}`,
    `${selectionLine(r)}; epsilon ${o.epsilon}; MACs at ${shapes || 'the declared shapes'}`,
    '',
    ...pad(rows),
    ...(r.ops
      ? ['* counted as RED++ input splitting would compute them (one multiplication per distinct non-zero', '  weight of a neuron); dense runtimes still multiply every weight: not a measured speed-up']
      : []),
    '',
    codecLine(r),
    errorLine(r),
    `neurons merged  ${count(r.layers.reduce((a, l) => a + (l.neurons.before - l.neurons.after), 0))}`,
    kernelSplitLine(r),
  ];
  if (o.pack) lines.push(packLine(r));
  if (r.validation) {
    lines.push('', `validation (onnxruntime-node, ${r.validation.inputSets} input set(s): ${r.validation.inputs.map((i) => `${i.name} ${i.source}`).join(', ')})`);
    const vrows = [['output', 'rel. L2', 'cosine', 'max |diff|', 'argmax agree']];
    for (const o of r.validation.outputs) {
      vrows.push([
        o.name,
        o.relL2Error.toExponential(2),
        o.cosine.toFixed(6),
        o.maxAbsError.toExponential(2),
        o.argmaxAgreement === null ? '-' : `${(o.argmaxAgreement * 100).toFixed(1)} %`,
      ]);
    }
    lines.push(...pad(vrows).map((l) => `  ${l}`));
    const lat = r.validation.latency;
    if (lat) {
      lines.push(`  latency ${lat.original.medianMs.toFixed(2)} ms -> ${lat.changed.medianMs.toFixed(2)} ms (median of ${lat.changed.runs} runs)`);
    }
    const load = r.validation.sessionMs;
    lines.push(`  session creation ${load.original.toFixed(0)} ms -> ${load.changed.toFixed(0)} ms (once each)`);
  }
  return lines.join('\n');
}

/** How the codecs were chosen, and with the budget what it measured. */
function selectionLine(r: PruneReport): string {
  const s = r.options.selection;
  if (s.mode === 'hash') return `RED++ hashing at beta ${s.beta}, center ${r.options.center}, minFanIn ${r.options.minFanIn}`;
  const b = r.budget;
  const goal = s.maxDeviation !== undefined ? `max deviation ${s.maxDeviation}` : `target size ${(s.targetSize! * 100).toFixed(1)} %`;
  if (!b) return `budget ${goal}`;
  const source = r.options.samples ? `${b.probes} samples` : `${b.probes} synthetic probes`;
  const corrected = b.corrected ? `; ${b.corrected} layer prediction${b.corrected > 1 ? 's' : ''} corrected by measurement` : '';
  return `budget ${goal}: deviation ${b.measured.toExponential(2)} measured (${b.predicted.toExponential(2)} predicted) on ${source}${corrected}`;
}

/** How many layers each codec setting got. */
function codecLine(r: PruneReport): string {
  const byName = new Map<string, number>();
  for (const l of r.layers) {
    const name = l.codec ? settingName(l.codec) : 'dense';
    byName.set(name, (byName.get(name) ?? 0) + 1);
  }
  const parts = [...byName].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${n} ${name}`);
  return `codecs          ${parts.join(', ')} (of ${r.layers.length} layers)`;
}

/** The weight error of the coded layers, weighted by their weights. */
function errorLine(r: PruneReport): string {
  const coded = r.layers.filter((l) => l.weightError);
  const weights = coded.reduce((a, l) => a + l.neurons.before * l.fanIn, 0);
  if (!weights) return 'weight error    none (no layer coded)';
  const rms = Math.sqrt(coded.reduce((a, l) => a + l.weightError!.relative ** 2 * l.neurons.before * l.fanIn, 0) / weights);
  const reference = r.hashBackend.includes('reference') ? ' (TypeScript reference kernel: the native addon did not load)' : '';
  return `weight error    ${(rms * 100).toFixed(2)} % relative RMS over the ${coded.length} coded layers${reference}`;
}

/** One line on the packed export: how many layers, their weight bytes before and after, the index widths. */
function packLine(r: PruneReport): string {
  const packed = r.layers.filter((l) => l.packed);
  if (!packed.length) return 'packed          nothing (no layer whose coded form is smaller than its weights)';
  const before = packed.reduce((a, l) => a + l.packed!.bytes.before, 0);
  const after = packed.reduce((a, l) => a + l.packed!.bytes.after, 0);
  const forms = (['palette', 'uniform', 'half'] as const).map((f) => [f, packed.filter((l) => l.packed!.form === f).length] as const).filter(([, n]) => n > 0);
  return `packed          ${packed.length} layers (${forms.map(([f, n]) => `${n} ${f}`).join(', ')}): weights ${bytes(before)} -> ${bytes(after)} (${change(before, after)})`;
}

/** One line on the kernel-level split: eligible convs, how many were rewritten, their kernel sharing. */
function kernelSplitLine(r: PruneReport): string {
  const eligible = r.layers.filter((l) => l.kernelSplit);
  if (r.options.kernelSplit === 'off') return 'kernel split    off';
  if (!eligible.length) return 'kernel split    no eligible conv (group 1, k×k, constant float32 weights)';
  const split = eligible.filter((l) => l.kernelSplit!.split);
  const share = eligible.reduce((a, l) => a + l.kernelSplit!.mc.mean / l.kernelSplit!.cout, 0) / eligible.length;
  const lat = split.filter((l) => l.kernelSplit!.latencyMs);
  const ms = lat.length
    ? `; alone ${lat.reduce((a, l) => a + l.kernelSplit!.latencyMs!.before, 0).toFixed(3)} ms -> ${lat.reduce((a, l) => a + l.kernelSplit!.latencyMs!.after, 0).toFixed(3)} ms`
    : '';
  return `kernel split    ${split.length} of ${eligible.length} eligible convs (distinct kernels per input channel: ${(share * 100).toFixed(0)} % of C_out on average)${ms}`;
}
