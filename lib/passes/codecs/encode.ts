/**
 * Encoding one layer at a codec setting (settings.ts): the weights the model will compute with, their
 * error against the original, and what the export's size depends on. Pure work on typed arrays, no
 * graph: the pool's workers run it (tasks.ts), one layer per task.
 */
import { hashResolved, type HashBackend } from '../../hash';
import { SortedRows, uniformRows, type TablePrecision } from '../../kernels/quantize';
import { fromRows, gridSize, toRows, type NeuronGrid } from '../../layers';
import { DataType, roundedToFloat16, type TensorData } from '../../model/dtype';
import { HASH_INIT_BETA, type CodecSetting } from './settings';
import { toWords, wordFormat, type WordFormat } from './words';

/** The grid a setting's groups lie on: the layer's neurons, or the whole layer as one group. */
export function groupGrid(layer: NeuronGrid, setting: CodecSetting): NeuronGrid {
  return setting.granularity === 'layer' ? { dims: [...layer.dims], neuronAxes: [] } : layer;
}

/** The precision of a setting's tables for weights of `dataType`. */
export function tablesOf(setting: CodecSetting, dataType: number): TablePrecision {
  if (dataType !== DataType.FLOAT) return 'float16';
  return setting.tables ?? (setting.bits === undefined ? 'float32' : 'float16');
}

/** What an export's size depends on, besides the layer's dims. */
export type ExportSize =
  | { form: 'dense' }
  | { form: 'half' }
  | { form: 'uniform'; format: WordFormat; groups: number }
  | { form: 'palette'; format: WordFormat; groups: number; entries: number };

/** The parts of a uniform export, made where the levels are known. */
export interface UniformExport {
  format: WordFormat;
  words: Uint8Array;
  zeroPoint: Uint8Array | Uint16Array;
  scale: Float32Array;
}

export interface Encoded {
  setting: CodecSetting;
  /** Sum of squared differences to the original weights, and the weights' own sum of squares. */
  sse: number;
  energy: number;
  size: ExportSize;
  /** What hashed the weights, for the hash codec (the TypeScript reference when the addon did not load). */
  backend?: HashBackend;
  /** The weights as the model will compute them (float32, the tensor's order), when asked for: what encodeLayer() returns. */
  values?: Float32Array;
  /** The same in the tensor's element type, in shared memory: what a task runner returns instead (tasks.ts). */
  data?: TensorData;
  uniform?: UniformExport;
}

/** An encoding's values in the tensor's element type, as a task runner returns them when asked for (`values: true`). */
export function encodedData(x: Encoded): TensorData {
  if (!x.data) throw new Error('redpp internal error: an encoding asked for its values came back without them');
  return x.data;
}

export interface EncodeTask {
  /** The layer's name, for errors. */
  layer: string;
  /** The layer's weights as float32, in the tensor's order (read, not changed). */
  weights: Float32Array;
  grid: NeuronGrid;
  /** The tensor's element type. */
  dataType: number;
  settings: CodecSetting[];
  /** Return each setting's values (and export parts), not only its error and size. */
  values: boolean;
}

/** Weights a layer's analysis (values not asked for) reads at most: beyond, an evenly spaced sample of its groups, or of one group's weights. */
const ANALYSIS_WEIGHTS = 1 << 20;

export async function encodeLayer(task: EncodeTask): Promise<Encoded[]> {
  const shared = new Shared(task);
  const out: Encoded[] = [];
  for (const setting of task.settings) {
    const e = await encodeOne(task, setting, shared);
    const { rows, scale } = shared.of(setting);
    let { sse } = e;
    if (sse === undefined) {
      // Against the weights as the rows hold them (the whole layer, or its sample, in row order).
      const values = task.values || scale === 1 ? toRows(shared.of(setting).grid, e.values!) : e.values!;
      sse = 0;
      for (let i = 0; i < rows.length; i++) sse += (values[i] - rows[i]) ** 2;
    }
    const energy = sumSquares(rows) * scale;
    out.push({ setting, sse: sse * scale, energy, size: e.size, ...(e.backend ? { backend: e.backend } : {}), ...(task.values ? { values: e.values, uniform: e.uniform } : {}) });
  }
  return out;
}

/** A layer's weights as the rows of one grid, and the factor from them to the whole layer (1 unless sampled). */
interface GridRows {
  grid: NeuronGrid;
  fanIn: number;
  /** Groups of the whole layer. */
  groups: number;
  rows: Float32Array;
  scale: number;
  sorted?: SortedRows;
  hashed?: Float32Array;
}

/** What settings of one layer share: its rows per grid, sorted; the KDE's intervals. */
class Shared {
  private readonly rows = new Map<string, GridRows>();
  backend: HashBackend | undefined;

  constructor(private readonly task: EncodeTask) {}

  of(setting: CodecSetting): GridRows {
    const key = setting.granularity ?? 'neuron';
    let r = this.rows.get(key);
    if (!r) {
      const grid = groupGrid(this.task.grid, setting);
      const { neurons, fanIn } = gridSize(grid);
      let rows = toRows(grid, this.task.weights);
      let [rowLength, scale] = [fanIn, 1];
      if (!this.task.values && rows.length > ANALYSIS_WEIGHTS) {
        if (neurons > 1) {
          const step = Math.ceil(rows.length / ANALYSIS_WEIGHTS);
          const picked = Array.from({ length: Math.ceil(neurons / step) }, (_, i) => i * step);
          const sample = new Float32Array(picked.length * fanIn);
          picked.forEach((n, i) => sample.set(rows.subarray(n * fanIn, (n + 1) * fanIn), i * fanIn));
          [rows, scale] = [sample, neurons / picked.length];
        } else {
          const step = Math.ceil(rows.length / ANALYSIS_WEIGHTS);
          const sample = Float32Array.from({ length: Math.ceil(rows.length / step) }, (_, i) => rows[i * step]);
          [rows, rowLength, scale] = [sample, sample.length, rows.length / sample.length];
        }
      }
      r = { grid, fanIn: rowLength, groups: neurons, rows, scale };
      this.rows.set(key, r);
    }
    return r;
  }

  sorted(setting: CodecSetting): SortedRows {
    const r = this.of(setting);
    return (r.sorted ??= new SortedRows(r.rows, r.fanIn));
  }

  /** The rows hashed by the binned KDE at the setting's beta (its intervals start the capped hash's Lloyd steps). */
  async hashed(setting: CodecSetting): Promise<{ values: Float32Array; distinct: Uint32Array }> {
    const r = this.of(setting);
    const beta = setting.beta ?? HASH_INIT_BETA;
    const h = await hashResolved(r.rows, r.fanIn, { beta, center: 'mean', threads: 1, device: 'cpu', simd: 'auto' });
    this.backend = h.backend;
    if (beta === HASH_INIT_BETA) r.hashed = h.values;
    return h;
  }

  async initValues(setting: CodecSetting): Promise<Float32Array> {
    const r = this.of(setting);
    return r.hashed ?? (await this.hashed(setting)).values;
  }
}

async function encodeOne(
  task: EncodeTask,
  setting: CodecSetting,
  shared: Shared,
): Promise<{ values?: Float32Array; sse?: number; size: ExportSize; uniform?: UniformExport; backend?: HashBackend }> {
  const { weights, dataType } = task;
  const tables = tablesOf(setting, dataType);
  switch (setting.codec) {
    case 'dense':
      return { values: weights, sse: 0, size: { form: 'dense' } };
    case 'float16':
      return { values: roundedToFloat16(scaleOf(shared, setting) === 1 ? weights : shared.of(setting).rows), size: { form: 'half' } };
    case 'linear': {
      const { grid, fanIn, rows, groups, scale } = shared.of(setting);
      const bits = setting.bits ?? 8;
      const u = uniformRows(rows, fanIn, bits, tables);
      const format = wordFormat(2 ** bits);
      const values = dataType === DataType.FLOAT16 ? roundedToFloat16(u.values) : u.values;
      const size: ExportSize = { form: 'uniform', format, groups };
      if (scale !== 1) return { values, size };
      const levels = fromRows(grid, Float32Array.from(u.q));
      const zeroPoint = bits > 8 ? Uint16Array.from(u.zeroPoint) : Uint8Array.from(u.zeroPoint);
      const uniform: UniformExport = { format, words: toWords(levels, format), zeroPoint, scale: u.scale };
      return { values: fromRows(grid, values), size, uniform };
    }
    case 'hash': {
      const { grid, fanIn, groups, scale } = shared.of(setting);
      let values: Float32Array | undefined;
      let sse: number | undefined;
      let counts: ArrayLike<number>;
      if (setting.bits === undefined) {
        // RED++ as the paper has it: the KDE's own values.
        const h = await shared.hashed(setting);
        values = tables === 'float16' ? roundedToFloat16(h.values) : h.values;
        counts = h.distinct;
      } else {
        // The KDE's intervals start the Lloyd steps: their means, one per distinct hashed value.
        const hashed = await shared.initValues(setting);
        const init = (r: number) => hashed.subarray(r * fanIn, (r + 1) * fanIn);
        const p = shared.sorted(setting).palette(2 ** setting.bits, tables, task.values, init);
        ({ sse, counts } = p);
        values = p.values;
      }
      let codes = 1;
      let entries = 0;
      for (let g = 0; g < counts.length; g++) {
        codes = Math.max(codes, counts[g]);
        entries += counts[g];
      }
      const size: ExportSize = { form: 'palette', format: wordFormat(codes), groups, entries: Math.round(groups > 1 ? entries * scale : entries) };
      return { values: values && scale === 1 ? fromRows(grid, values) : values, sse, size, backend: shared.backend };
    }
  }
}

function scaleOf(shared: Shared, setting: CodecSetting): number {
  return shared.of(setting).scale;
}

function sumSquares(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}
