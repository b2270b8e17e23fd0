/**
 * How a PruneReport is shown: a summary table for people, and the stable JSON object of `--json` (the
 * report itself, the layer records as they are, with the validation summed up per output).
 */
import type { LayerRecord, PruneReport } from './prune';

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
  if (r.ops) {
    rows.push(['multiplications*', si(r.ops.mults.before), si(r.ops.mults.after), change(r.ops.mults.before, r.ops.mults.after)]);
    rows.push(['additions*', si(r.ops.adds.before), si(r.ops.adds.after), change(r.ops.adds.before, r.ops.adds.after)]);
  }
  const hashed = r.layers.filter((l) => l.hash);
  const weights = hashed.reduce((a, l) => a + l.neurons.before * l.fanIn, 0);
  const meanErr = weights
    ? Math.sqrt(hashed.reduce((a, l) => a + l.hash!.relativeError ** 2 * l.neurons.before * l.fanIn, 0) / weights)
    : 0;
  const distinct = hashed.reduce((a, l) => a + l.distinctPerNeuron.mean * l.neurons.after, 0);
  const neurons = hashed.reduce((a, l) => a + l.neurons.after, 0);
  const fanIn = neurons ? weights / hashed.reduce((a, l) => a + l.neurons.before, 0) : 0;
  const merged = r.layers.reduce((a, l) => a + (l.neurons.before - l.neurons.after), 0);
  const lines = [
    `redpp prune ${r.input ?? '(buffer)'} -> ${r.output ?? '(in memory)'}`,
    `beta ${r.options.beta}, center ${r.options.center}, epsilon ${r.options.epsilon}, minFanIn ${r.options.minFanIn}; MACs at ${shapes || 'the declared shapes'}`,
    '',
    ...pad(rows),
    ...(r.ops
      ? ['* counted as RED++ input splitting would compute them (one multiplication per distinct non-zero', '  weight of a neuron); dense runtimes still multiply every weight: not a measured speed-up']
      : []),
    '',
    `hashed layers   ${hashed.length} of ${r.layers.length} (${r.layers.length - hashed.length} left alone: small fan-in or skipped)`,
    hashed.length
      ? `hashing         ${(distinct / neurons).toFixed(1)} distinct values per neuron on average (of ${fanIn.toFixed(0)} weights), weight RMS error ${(meanErr * 100).toFixed(2)} %${r.hashBackend.includes('reference') ? ' (TypeScript reference kernel: the native addon did not load)' : ''}`
      : 'hashing         nothing hashed',
    `neurons merged  ${count(merged)}`,
    kernelSplitLine(r),
  ];
  if (r.options.pack) lines.push(packLine(r));
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

/** One line on the packed export: how many layers, their weight bytes before and after, the index widths. */
function packLine(r: PruneReport): string {
  const packed = r.layers.filter((l) => l.packed);
  if (!packed.length) return 'packed          nothing (no layer whose codebooks + indices are smaller than its weights)';
  const before = packed.reduce((a, l) => a + l.packed!.bytes.before, 0);
  const after = packed.reduce((a, l) => a + l.packed!.bytes.after, 0);
  const bits = packed.map((l) => l.packed!.indexBits);
  const [lo, hi] = [Math.min(...bits), Math.max(...bits)];
  const width = lo === hi ? `${lo}-bit` : `${lo}- to ${hi}-bit`;
  return `packed          ${packed.length} layers: weights ${bytes(before)} -> ${bytes(after)} (${change(before, after)}), ${width} indices; file ${change(r.file.before, r.file.after)}`;
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
