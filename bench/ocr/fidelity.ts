/**
 * Task-level fidelity of a pruned PP-OCR model against its original, on rendered text images:
 *  - det: IoU of the binarised probability maps (prob > 0.3, where DB post-processing starts),
 *  - rec: the decoded strings (exact match, and character error rate),
 *  - cls: the 0° / 180° decision.
 * Each result also scores both models on the task itself (coverage of the true lines, reading accuracy,
 * direction accuracy) and, unless disabled, their latency in onnxruntime-node.
 */
import { ctcGreedy, characterErrorRate, recCharacters } from './ctc';
import { DET_THRESHOLD, binarize, components, countOnes, detCoverage, maskIoU } from './det-metrics';
import { clsInput, detInput, recInput, type InputTensor } from './preprocess';
import {
  makeClsSamples,
  makeDetSamples,
  makeRecSamples,
  type ClsSample,
  type DetSample,
  type RecSample,
  type SampleOptions,
} from './samples';
import { measureLatency, openSession, runSession, type LatencyOptions, type ModelSource, type Output } from './session';

export type OcrKind = 'det' | 'rec' | 'cls';

export interface FidelityOptions extends SampleOptions {
  /** Samples to use instead of generating them (e.g. to share one set between several evaluations). */
  samples?: DetSample[] | RecSample[] | ClsSample[];
  /** Detector binarisation threshold. Default 0.3 (PaddleOCR's DBPostProcess thresh). */
  threshold?: number;
  /** det passes when every image's IoU is at least this. Default 0.98. */
  minIoU?: number;
  /** rec / cls pass when at least this fraction of samples agree. Default 1 (every string, every argmax). */
  minAgreement?: number;
  /** intraOpNumThreads of the sessions that compute the outputs. Default 1 (reproducible, load-independent). */
  threads?: number;
  /** Latency medians of both models (1 thread and onnxruntime's default); false skips them. */
  latency?: LatencyOptions | false;
}

export interface LatencyReport {
  /** Input shape timed (the first sample's). */
  input: number[];
  warmup: number;
  runs: number;
  /** Median milliseconds per run with intraOpNumThreads: 1. */
  singleThread: { original: number; candidate: number };
  /** Median milliseconds per run with onnxruntime's default session options. */
  defaultThreads: { original: number; candidate: number };
}

interface FidelityCommon {
  samples: number;
  pass: boolean;
  /** The pass rule, in words. */
  criterion: string;
  latency?: LatencyReport;
}

export interface DetTaskScore {
  /** Mean fraction of each true line's DB core found above threshold. */
  coverage: number;
  linesFound: number;
  lines: number;
  /** Fraction of positive pixels outside every padded true box. */
  falsePositive: number;
  /** Connected regions of the binarised maps, summed over images (DB makes one box per region). */
  regions: number;
}

export interface DetDetail {
  name: string;
  /** Model input height and width. */
  input: [number, number];
  iou: number;
  /** Largest absolute difference of the probability maps. */
  maxProbDiff: number;
  positive: { original: number; candidate: number };
  coverage: { original: number; candidate: number };
  regions: { original: number; candidate: number };
}

export interface DetFidelity extends FidelityCommon {
  kind: 'det';
  threshold: number;
  meanIoU: number;
  minIoU: number;
  task: { original: DetTaskScore; candidate: DetTaskScore };
  details: DetDetail[];
}

export interface RecTaskScore {
  /** Fraction of crops read exactly as drawn. */
  accuracy: number;
  /** Mean character error rate against the drawn strings. */
  cer: number;
}

export interface RecDetail {
  name: string;
  /** The string drawn on the crop. */
  reference: string;
  /** The decoded strings, as decoded (not trimmed). */
  original: string;
  candidate: string;
  /** Same string, leading and trailing spaces aside. */
  match: boolean;
  /** Character error rate of the candidate's trimmed string against the original's. */
  cer: number;
  score: { original: number; candidate: number };
}

export interface RecFidelity extends FidelityCommon {
  kind: 'rec';
  /**
   * Fraction of crops where both models decode the same string, leading and trailing spaces aside (CTC
   * emits those for a crop's blank margins, and they flip on tiny changes; OCR output is trimmed).
   */
  agreement: number;
  /** The same, with leading and trailing spaces counted. */
  rawAgreement: number;
  /** Mean character error rate of the candidate's strings against the original's. */
  cer: number;
  /** Fraction of CTC time steps with the same argmax class. */
  stepAgreement: number;
  task: { original: RecTaskScore; candidate: RecTaskScore };
  details: RecDetail[];
}

export interface ClsDetail {
  name: string;
  rotated: boolean;
  /** Argmax class: 0 = '0', 1 = '180'. */
  original: number;
  candidate: number;
  /** Probability of '180'. */
  prob180: { original: number; candidate: number };
}

export interface ClsFidelity extends FidelityCommon {
  kind: 'cls';
  /** Fraction of crops with the same argmax. */
  agreement: number;
  /** Largest difference of the '180' probability. */
  maxProbDiff: number;
  task: { original: { accuracy: number }; candidate: { accuracy: number } };
  details: ClsDetail[];
}

export type OcrFidelity = DetFidelity | RecFidelity | ClsFidelity;

type AnySample = DetSample | RecSample | ClsSample;

function samplesFor(kind: OcrKind, options: FidelityOptions): AnySample[] {
  if (options.samples) {
    // Catch a rec set passed for cls and the like: the metrics would read fields that are not there.
    const fits = (s: AnySample) => (kind === 'det' ? 'lines' in s : kind === 'cls' ? 'rotated' in s : 'text' in s && !('rotated' in s));
    if (!options.samples.every(fits)) throw new Error(`options.samples are not ${kind} samples`);
    return options.samples;
  }
  return kind === 'det' ? makeDetSamples(options) : kind === 'rec' ? makeRecSamples(options) : makeClsSamples(options);
}

function inputFor(kind: OcrKind, sample: AnySample): InputTensor {
  return kind === 'det' ? detInput(sample.image) : kind === 'rec' ? recInput(sample.image) : clsInput(sample.image);
}

/** Runs one model over the samples, one at a time (batch of one, as PaddleOCR's det and our rec/cls rule). */
async function predict(kind: OcrKind, model: ModelSource, samples: readonly AnySample[], threads: number): Promise<Output[]> {
  const session = await openSession(model, { threads });
  try {
    const out: Output[] = [];
    for (const s of samples) out.push(await runSession(session, inputFor(kind, s)));
    return out;
  } finally {
    await session.release();
  }
}

async function latencyOf(
  kind: OcrKind,
  original: ModelSource,
  candidate: ModelSource,
  sample: AnySample,
  options: LatencyOptions,
): Promise<LatencyReport> {
  const input = inputFor(kind, sample);
  const warmup = options.warmup ?? 2;
  const runs = options.runs ?? (kind === 'det' ? 5 : 10);
  const timed = async (model: ModelSource, threads: number) => {
    const s = await openSession(model, { threads });
    try {
      return await measureLatency(s, input, { warmup, runs });
    } finally {
      await s.release();
    }
  };
  return {
    input: [...input.dims],
    warmup,
    runs,
    singleThread: { original: await timed(original, 1), candidate: await timed(candidate, 1) },
    defaultThreads: { original: await timed(original, 0), candidate: await timed(candidate, 0) },
  };
}

function mean(values: readonly number[]): number {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : 0;
}

function detTask(sample: DetSample, out: Output, threshold: number): { mask: Uint8Array; cov: ReturnType<typeof detCoverage>; regions: number } {
  const [h, w] = out.dims.slice(-2) as [number, number];
  const mask = binarize(out.data, threshold);
  const cov = detCoverage(mask, w, h, sample.lines, { x: w / sample.image.width, y: h / sample.image.height });
  return { mask, cov, regions: components(mask, w, h) };
}

function detScore(parts: { cov: ReturnType<typeof detCoverage>; regions: number; positives: number; outside: number }[]): DetTaskScore {
  const perLine = parts.flatMap((p) => p.cov.perLine);
  const positives = parts.reduce((s, p) => s + p.positives, 0);
  return {
    coverage: mean(perLine),
    linesFound: perLine.filter((v) => v >= 0.5).length,
    lines: perLine.length,
    falsePositive: positives ? parts.reduce((s, p) => s + p.outside, 0) / positives : 0,
    regions: parts.reduce((s, p) => s + p.regions, 0),
  };
}

function compareDet(samples: DetSample[], a: Output[], b: Output[], options: FidelityOptions): Omit<DetFidelity, keyof FidelityCommon> & { pass: boolean; criterion: string } {
  const threshold = options.threshold ?? DET_THRESHOLD;
  const minIoU = options.minIoU ?? 0.98;
  const details: DetDetail[] = [];
  const partsA: Parameters<typeof detScore>[0] = [];
  const partsB: Parameters<typeof detScore>[0] = [];
  samples.forEach((s, i) => {
    const oa = a[i]!;
    const ob = b[i]!;
    const ta = detTask(s, oa, threshold);
    const tb = detTask(s, ob, threshold);
    const sameShape = oa.dims.join() === ob.dims.join();
    let maxDiff = sameShape ? 0 : Infinity;
    if (sameShape) for (let k = 0; k < oa.data.length; k++) maxDiff = Math.max(maxDiff, Math.abs(oa.data[k]! - ob.data[k]!));
    const pa = countOnes(ta.mask);
    const pb = countOnes(tb.mask);
    details.push({
      name: s.name,
      input: oa.dims.slice(-2) as [number, number],
      iou: sameShape ? maskIoU(ta.mask, tb.mask) : 0,
      maxProbDiff: maxDiff,
      positive: { original: pa / ta.mask.length, candidate: pb / tb.mask.length },
      coverage: { original: ta.cov.coverage, candidate: tb.cov.coverage },
      regions: { original: ta.regions, candidate: tb.regions },
    });
    partsA.push({ cov: ta.cov, regions: ta.regions, positives: pa, outside: ta.cov.falsePositive * pa });
    partsB.push({ cov: tb.cov, regions: tb.regions, positives: pb, outside: tb.cov.falsePositive * pb });
  });
  const ious = details.map((d) => d.iou);
  const min = ious.length ? Math.min(...ious) : 1;
  return {
    kind: 'det',
    threshold,
    meanIoU: mean(ious),
    minIoU: min,
    task: { original: detScore(partsA), candidate: detScore(partsB) },
    details,
    pass: min >= minIoU,
    criterion: `IoU of the maps binarised at ${threshold} >= ${minIoU} on every image`,
  };
}

function compareRec(samples: RecSample[], a: Output[], b: Output[], options: FidelityOptions) {
  const chars = recCharacters();
  const minAgreement = options.minAgreement ?? 1;
  let steps = 0;
  let sameSteps = 0;
  const details: RecDetail[] = samples.map((s, i) => {
    const decode = (o: Output) => ctcGreedy(o.data, o.dims[1]!, o.dims[2]!, chars);
    const da = decode(a[i]!);
    const db = decode(b[i]!);
    const n = Math.min(da.classes.length, db.classes.length);
    steps += Math.max(da.classes.length, db.classes.length);
    for (let t = 0; t < n; t++) sameSteps += da.classes[t] === db.classes[t] ? 1 : 0;
    return {
      name: s.name,
      reference: s.text,
      original: da.text,
      candidate: db.text,
      match: da.text.trim() === db.text.trim(),
      cer: characterErrorRate(da.text.trim(), db.text.trim()),
      score: { original: da.score, candidate: db.score },
    };
  });
  const agreement = mean(details.map((d) => (d.match ? 1 : 0)));
  const task = (pick: (d: RecDetail) => string): RecTaskScore => ({
    accuracy: mean(details.map((d) => (pick(d).trim() === d.reference ? 1 : 0))),
    cer: mean(details.map((d) => characterErrorRate(d.reference, pick(d).trim()))),
  });
  return {
    kind: 'rec' as const,
    agreement,
    rawAgreement: mean(details.map((d) => (d.original === d.candidate ? 1 : 0))),
    cer: mean(details.map((d) => d.cer)),
    stepAgreement: steps ? sameSteps / steps : 1,
    task: { original: task((d) => d.original), candidate: task((d) => d.candidate) },
    details,
    pass: agreement >= minAgreement,
    criterion: `the same decoded string (trimmed) on at least ${minAgreement * 100}% of the crops`,
  };
}

function compareCls(samples: ClsSample[], a: Output[], b: Output[], options: FidelityOptions) {
  const minAgreement = options.minAgreement ?? 1;
  const argmax = (o: Output) => (o.data[1]! > o.data[0]! ? 1 : 0);
  const details: ClsDetail[] = samples.map((s, i) => ({
    name: s.name,
    rotated: s.rotated,
    original: argmax(a[i]!),
    candidate: argmax(b[i]!),
    prob180: { original: a[i]!.data[1]!, candidate: b[i]!.data[1]! },
  }));
  const agreement = mean(details.map((d) => (d.original === d.candidate ? 1 : 0)));
  const accuracy = (pick: (d: ClsDetail) => number) => mean(details.map((d) => (pick(d) === (d.rotated ? 1 : 0) ? 1 : 0)));
  return {
    kind: 'cls' as const,
    agreement,
    maxProbDiff: Math.max(0, ...details.map((d) => Math.abs(d.prob180.original - d.prob180.candidate))),
    task: { original: { accuracy: accuracy((d) => d.original) }, candidate: { accuracy: accuracy((d) => d.candidate) } },
    details,
    pass: agreement >= minAgreement,
    criterion: `the same argmax on at least ${minAgreement * 100}% of the crops`,
  };
}

/**
 * Evaluates `candidateModel` (e.g. a pruned copy) against `originalModel` on rendered text images.
 *
 *   const r = await evaluateOcrFidelity('det', 'ch_PP-OCRv4_det_infer.onnx', 'pruned.onnx');
 *   if (!r.pass) console.log(r.minIoU, r.details);
 */
export async function evaluateOcrFidelity(kind: 'det', originalModel: ModelSource, candidateModel: ModelSource, options?: FidelityOptions): Promise<DetFidelity>;
export async function evaluateOcrFidelity(kind: 'rec', originalModel: ModelSource, candidateModel: ModelSource, options?: FidelityOptions): Promise<RecFidelity>;
export async function evaluateOcrFidelity(kind: 'cls', originalModel: ModelSource, candidateModel: ModelSource, options?: FidelityOptions): Promise<ClsFidelity>;
export async function evaluateOcrFidelity(kind: OcrKind, originalModel: ModelSource, candidateModel: ModelSource, options?: FidelityOptions): Promise<OcrFidelity>;
export async function evaluateOcrFidelity(
  kind: OcrKind,
  originalModel: ModelSource,
  candidateModel: ModelSource,
  options: FidelityOptions = {},
): Promise<OcrFidelity> {
  if (kind !== 'det' && kind !== 'rec' && kind !== 'cls') throw new Error(`kind must be 'det', 'rec' or 'cls', got '${String(kind)}'`);
  const samples = samplesFor(kind, options);
  if (!samples.length) throw new Error('no samples to evaluate');
  const threads = options.threads ?? 1;
  const a = await predict(kind, originalModel, samples, threads);
  const b = await predict(kind, candidateModel, samples, threads);
  const compared =
    kind === 'det'
      ? compareDet(samples as DetSample[], a, b, options)
      : kind === 'rec'
        ? compareRec(samples as RecSample[], a, b, options)
        : compareCls(samples as ClsSample[], a, b, options);
  const result = { ...compared, samples: samples.length } as OcrFidelity;
  if (options.latency !== false) result.latency = await latencyOf(kind, originalModel, candidateModel, samples[0]!, options.latency ?? {});
  return result;
}

export interface OcrTaskResult {
  kind: OcrKind;
  samples: number;
  /** det: DetTaskScore; rec: RecTaskScore; cls: { accuracy }. */
  score: DetTaskScore | RecTaskScore | { accuracy: number };
  /** Per sample: det coverage and regions, rec the string read, cls the class chosen. */
  details: { name: string; [key: string]: unknown }[];
}

/** How well one model does the task on the samples (the check that the references are sound). */
export async function evaluateOcrTask(kind: OcrKind, model: ModelSource, options: FidelityOptions = {}): Promise<OcrTaskResult> {
  const samples = samplesFor(kind, options);
  const a = await predict(kind, model, samples, options.threads ?? 1);
  if (kind === 'det') {
    const r = compareDet(samples as DetSample[], a, a, options);
    const details = r.details.map((d, i) => {
      const lines = (samples[i] as DetSample).lines.length;
      return { name: d.name, input: d.input, coverage: d.coverage.original, regions: d.regions.original, lines, positive: d.positive.original };
    });
    return { kind, samples: samples.length, score: r.task.original, details };
  }
  if (kind === 'rec') {
    const r = compareRec(samples as RecSample[], a, a, options);
    const details = r.details.map((d) => ({ name: d.name, reference: d.reference, read: d.original, score: d.score.original }));
    return { kind, samples: samples.length, score: r.task.original, details };
  }
  const r = compareCls(samples as ClsSample[], a, a, options);
  const details = r.details.map((d) => ({ name: d.name, rotated: d.rotated, predicted: d.original, prob180: d.prob180.original }));
  return { kind, samples: samples.length, score: r.task.original, details };
}
