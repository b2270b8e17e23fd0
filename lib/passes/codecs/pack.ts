/**
 * The pack pass (options.pack): every layer's weights leave in the form its codec chose, a chain of constant ops
 * that rebuilds the dense tensor under the weight's own name, and onnxruntime folds the chain when it
 * creates the session: inference runs on the same dense tensor, bit for bit, and only the file shrinks.
 *
 * - float16 layers: half.ts's form;
 * - linear layers whose weights are still as the codec left them: uniform.ts's form;
 * - every other layer (hashed ones, and weights with few values per neuron however they came): the
 *   palette of its distinct values per group (palette.ts), lossless, where it is smaller than the dense
 *   tensor. A codebook of float32 weights that are all float16 values is stored as float16.
 * A form that would not be smaller leaves the layer dense. Run it last, after every pass that reads or
 * edits weights. loadModel() reads every form back as the plain tensor (read.ts).
 */
import { RedppError } from '../../errors';
import { PageRelease, largeArray } from '../../kernels/pages';
import { layerTable, type Layer, type NeuronLayout } from '../../layers';
import { DataType, dataTypeName, encodeInto, float16BitsToNumber, fromNumbers, isFloatType, type TensorData } from '../../model/dtype';
import type { Graph, Node } from '../../model/graph';
import type { Model } from '../../model/model';
import { keepExternalLike } from '../../model/tensor';
import { SAVE_DEFAULTS } from '../../options/save';
import { addConstant, isConstantNodeValue } from '../constant-tensors';
import type { LayerPlan, PackRecord } from '../layer-records';
import { matchesSkip, newReport, type Pass, type PassReport } from '../pass';
import { inProcess, type TaskRunner } from '../tasks';
import { inChunks, nextTurn } from '../../turns';
import { bitsOf, type Bits } from './bits';
import { groupGrid } from './encode';
import { HALF_PRIMARY, addHalf } from './float16';
import { PALETTE_PRIMARY, addPalette, type PaletteParts } from './palette';
import type { CodedLayer } from './palette-code';
import { chainBase, measuringSite, type ChainSite } from './site';
import { UNIFORM_PRIMARY, addUniform, type UniformParts } from './uniform';

export { PACK_MARK } from './site';
export { MAX_CODES } from './palette-code';

export interface PackOptions {
  /** Layer (node) names or patterns whose weights stay dense. */
  skip?: readonly (string | RegExp)[];
  /** Code the layers on this runner (prune() passes its worker pool); default: this thread, a layer at a time. */
  runner?: TaskRunner;
  /**
   * Nothing reads a weight once its form replaces it (prune's private copy of the model): its memory
   * goes back to the OS soon after (Tensor.releasableBytes()), and the forms being made at any time
   * stay a small part of the model: one layer larger than a bound at a time, beside smaller ones up to
   * the bound in all (inFlightBytes). Off, every layer is coded at once and the originals stay.
   */
  releaseReplaced?: boolean;
  /**
   * With releaseReplaced, the weight bytes of the smaller layers coded at one time (default:
   * inFlightBound()). A layer larger than that is coded alone among such layers, on the runner's threads.
   */
  inFlightBytes?: number;
}

/**
 * With releaseReplaced, the weight bytes of the smaller layers coded at one time: an eighth of all the
 * layers' together, or 64 MiB where that is more. Three 16384² layers of 1 GiB are then coded one after
 * the other (peak RSS 1.11x the model: the model and one 256 MiB form; a second form at once would add
 * as much again), and VGG-16's fc1 beside its smaller layers.
 */
function inFlightBound(sizes: readonly number[]): number {
  return Math.max(64 << 20, sizes.reduce((a, b) => a + b, 0) / 8);
}

/** A form ready to write: how to add its chain, which constant takes the original's place, its bytes. */
interface Form {
  record: PackRecord;
  primary: string;
  add(site: ChainSite, output: string): void;
}

export function packPass(options: PackOptions = {}): Pass {
  const { inFlightBytes } = options;
  if (inFlightBytes !== undefined && !(inFlightBytes > 0)) throw new RedppError('INVALID_ARGUMENT', `pack: inFlightBytes must be a number > 0, got ${inFlightBytes}`);
  const skipPatterns = options.skip ?? [];
  const runner = options.runner ?? inProcess;
  return {
    name: 'pack',
    exact: true,
    async run(model: Model, plan: LayerPlan): Promise<PassReport> {
      const report = newReport('pack');
      const graph = model.graph;
      const opset = model.opsetVersion('') ?? 0;
      const skip = (node: Node, reason: string) => report.skipped.push({ node: node.label, reason });
      const claimed = new Set<string>();
      const candidates: { layer: Layer; layout: NeuronLayout }[] = [];
      for (const layer of layerTable(graph)) {
        const { node } = layer;
        if (opset < 7) {
          skip(node, `opset ${opset} is too old to rebuild weights in the graph (needs 7)`);
          continue;
        }
        if (matchesSkip(skipPatterns, node.label)) {
          skip(node, 'matches options.skip');
          continue;
        }
        // A weight read by several layers is packed once, in the layout of its first reader.
        if (claimed.has(layer.weightValue)) continue;
        const layout = layer.layout();
        if ('skip' in layout) {
          skip(node, layout.skip);
          continue;
        }
        claimed.add(layout.value);
        const why = unpackable(graph, layout);
        if (why) skip(node, why);
        else candidates.push({ layer, layout });
      }
      // Coding a palette is the heavy part (every weight): in the runner, as many layers as the bound
      // allows, in file order; the graph is edited here, a layer at a time and in file order, as each is ready.
      const sizes = candidates.map(({ layout }) => layout.tensor.data.byteLength);
      const bound = options.releaseReplaced ? (options.inFlightBytes ?? inFlightBound(sizes)) : Infinity;
      const alone = sizes.map((size) => size > bound);
      const forms: (ReturnType<typeof chooseForm> | undefined)[] = [];
      // In flight: the layers coded alone (one at most), and the bytes of the others.
      let [large, small] = [0, 0];
      const fits = (i: number) => (alone[i] ? large === 0 : small + sizes[i] <= bound);
      const startMore = () => {
        for (let i = forms.length; i < candidates.length && fits(i); i++) {
          const { layer, layout } = candidates[i];
          if (alone[i]) large++;
          else small += sizes[i];
          const form = chooseForm(layer, layout, plan, runner, opset, isConstantNodeValue(graph, layout.value), alone[i] ? runner.threads : 1);
          // Awaited in order: a later layer's failure waits its turn to be thrown, not reported unhandled.
          form.catch(() => undefined);
          forms.push(form);
        }
      };
      let bytesBefore = 0;
      let bytesAfter = 0;
      // The originals' pages go back on a libuv thread, in batches, while the next layers are applied here.
      const release = new PageRelease();
      try {
        for (const [i, { layer, layout }] of candidates.entries()) {
          startMore();
          const { form, ms } = await forms[i]!;
          forms[i] = undefined;
          if (alone[i]) large--;
          else small -= sizes[i];
          if (typeof form === 'string') {
            skip(layer.node, form);
            continue;
          }
          const original = layout.tensor;
          applyForm(graph, layout, form, opset);
          const bytes = options.releaseReplaced ? original.releasableBytes() : undefined;
          if (bytes) release.add(bytes);
          const record = plan.record(layer);
          record.packed = form.record;
          if (ms !== undefined) record.timingsMs.pack = Math.round(ms * 10) / 10;
          bytesBefore += form.record.bytes.before;
          bytesAfter += form.record.bytes.after;
          report.changes.push({ node: layer.name, action: describe(layout, form.record) });
          await nextTurn();
        }
      } finally {
        // Also where a layer failed: the originals handed over are given back, not left half released.
        await release.done();
      }
      report.changed = report.changes.length > 0;
      report.stats = { layers: report.changes.length, bytesBefore, bytesAfter };
      return report;
    },
  };
}

function describe(layout: NeuronLayout, r: PackRecord): string {
  if (r.form === 'half') return `stored ${layout.neurons} neurons as float16`;
  if (r.form === 'uniform') return `stored ${layout.neurons} neurons as ${r.indexBits}-bit levels with a scale and zero point each`;
  return `packed ${layout.neurons} neurons as ${r.codes}-entry codebooks + ${r.indexBits}-bit indices`;
}

/** Why the weight cannot be packed in place, or undefined. */
function unpackable(graph: Graph, layout: NeuronLayout): string | undefined {
  const { value, tensor } = layout;
  if (!isFloatType(tensor.dataType)) return `${dataTypeName(tensor.dataType)} weights are left dense`;
  if (tensor.size === 0) return 'empty weights';
  const own = graph.initializers.has(value) || isConstantNodeValue(graph, value);
  if (!own) return 'weights come from an enclosing graph';
  if (graph.isGraphInput(value)) return 'weights are also a graph input (overridable)';
  if (graph.isGraphOutput(value)) return 'weights are also a graph output';
  return undefined;
}

/**
 * The form a layer leaves in, or why it stays dense. The chain rebuilds the weights bit for bit by
 * construction: the same grid places the integers here and in the readers' rebuild(), which the tests
 * compare with onnxruntime.
 */
async function chooseForm(
  layer: Layer,
  layout: NeuronLayout,
  plan: LayerPlan,
  runner: TaskRunner,
  opset: number,
  constantNodes: boolean,
  threads: number,
): Promise<{ form: Form | string; ms?: number }> {
  const { tensor } = layout;
  const record = plan.recordOf(layer.node);
  const setting = record?.codec;
  const pending = record ? plan.encoded(record) : undefined;
  const intact = pending !== undefined && pending.data === tensor.data;
  const denseBytes = tensor.size * tensor.data.BYTES_PER_ELEMENT;
  const dims = [...tensor.dims];
  const priced = (form: Omit<Form, 'record'>, r: Omit<PackRecord, 'bytes'>): Form | string => {
    const tally = measuringSite(opset, constantNodes);
    form.add(tally, layout.value);
    if (tally.bytes >= denseBytes) return `${r.form} would not save bytes`;
    return { ...form, record: { ...r, bytes: { before: denseBytes, after: tally.bytes } } };
  };
  if (setting?.codec === 'float16' && intact && tensor.dataType === DataType.FLOAT) {
    // Natively where the addon is loaded (Uint16Array.from with a callback took 48 s for VGG-16's fc1,
    // this 0.14 s), and in slices: the event loop keeps its turns.
    const data = tensor.data as Float32Array;
    const half = largeArray(Uint16Array, data.length);
    await inChunks(data.length, (from, to) => encodeInto(data.subarray(from, to), DataType.FLOAT16, half.subarray(from, to)));
    return { form: priced({ primary: HALF_PRIMARY, add: (site, out) => addHalf({ half, dims }, site, out) }, { form: 'half' }) };
  }
  if (setting?.codec === 'linear' && intact && pending.uniform) {
    const u = pending.uniform;
    const grid = groupGrid(layout.grid, setting);
    const parts: UniformParts = {
      dataType: tensor.dataType,
      format: u.format,
      words: u.words,
      zeroPoint: u.zeroPoint,
      scale: u.scale,
      scaleType: tensor.dataType === DataType.FLOAT16 || setting.tables === 'float16' ? DataType.FLOAT16 : DataType.FLOAT,
      dims,
      grid,
    };
    return { form: priced({ primary: UNIFORM_PRIMARY, add: (site, out) => addUniform(parts, site, out) }, { form: 'uniform', indexBits: u.format.bits }) };
  }
  const grid = setting ? groupGrid(layout.grid, setting) : layout.grid;
  const { coded, ms } = await runner.code({ layer: layer.name, bits: bitsOf(tensor.data), grid, threads });
  if (typeof coded === 'string') return { form: coded, ms };
  const parts: PaletteParts = { ...coded, ...halfCodebook(coded, tensor.dataType, setting?.tables === 'float16'), dataType: tensor.dataType, dims, grid };
  const form = priced({ primary: PALETTE_PRIMARY, add: (site, out) => addPalette(parts, site, out) }, { form: 'palette', codes: coded.codes, indexBits: coded.format.bits });
  if (typeof form === 'string') return { form: `packing would not save bytes (${coded.codes} distinct values per neuron of ${layout.fanIn})`, ms };
  return { form, ms };
}

/** The codebook as float16, where it is asked for and every float32 entry is a float16 value; else as it is. */
function halfCodebook(coded: CodedLayer, dataType: number, asked: boolean): { codebook: Bits; codebookType: number } {
  if (!asked || dataType !== DataType.FLOAT) return { codebook: coded.codebook, codebookType: dataType };
  const values = new Float32Array(coded.codebook.buffer, coded.codebook.byteOffset, coded.codebook.length);
  const half = fromNumbers(values, DataType.FLOAT16) as Uint16Array;
  for (let i = 0; i < half.length; i++) {
    if (float16BitsToNumber(half[i]) !== values[i]) return { codebook: coded.codebook, codebookType: dataType };
  }
  return { codebook: half, codebookType: DataType.FLOAT16 };
}

/** Replaces the weight's constant by its form's constants and the chain that rebuilds it (same value name). */
function applyForm(graph: Graph, layout: NeuronLayout, form: Form, opset: number): void {
  const { value } = layout;
  const constantNode = isConstantNodeValue(graph, value) ? graph.producer(value)! : undefined;
  // The chain's nodes go after the weight's Constant node, or before its first reader; its constants
  // where the weight was defined: Constant nodes before the chain, or among the initializers.
  const readers = new Set(graph.consumers(value));
  const before = constantNode ? graph.nodes[graph.nodes.indexOf(constantNode) + 1] : graph.nodes.find((n) => readers.has(n))!;
  const initializers = graph.proto.initializer;
  const slot = initializers.findIndex((t) => t.name === value);
  const original = graph.constant(value)!.proto;
  // The original goes first, and the chain writes the weight's own name: then each of its nodes writes
  // a value no node writes, and joins the graph's index in place (ISNet's pack made 300 indexes anew).
  if (constantNode) graph.removeNode(constantNode);
  else graph.removeInitializer(value);
  const initializerCount = initializers.length;
  const base = chainBase((b) => graph.uniqueName(b));
  let primary = '';
  let first: Node | undefined;
  let outputs = 0;
  const site: ChainSite = {
    opset,
    constant(what, dataType, dims, data) {
      if (!ArrayBuffer.isView(data)) throw new Error(`redpp internal error: the export of '${value}' has no data for its ${what}`);
      const name = addConstant(graph, `${base}/${what}`, dataType, dims, data as TensorData, first ?? before, constantNode !== undefined);
      if (what === form.primary) primary = name;
      // The bulk of an external weight's form is external too (the small constants stay in the protobuf).
      if (data.byteLength >= SAVE_DEFAULTS.externalDataThreshold) keepExternalLike(graph.constant(name)!.proto, original);
      return name;
    },
    node(opType, inputs, attributes, output) {
      const out = output ?? graph.uniqueName(`${base}/${outputs++}`);
      const node = graph.addNode({ opType, name: graph.uniqueName(`${base}/${opType}`), inputs, outputs: [out], attributes }, { before });
      first ??= node;
      return out;
    },
  };
  form.add(site, value);
  if (constantNode) {
    // The primary constant's node takes the original's name (unnamed, as paddle2onnx writes its
    // Constants, stays unnamed), so that reading the model back restores it.
    const primaryNode = graph.producer(primary)!.proto as { name?: string };
    if (constantNode.name) primaryNode.name = constantNode.name;
    else delete primaryNode.name;
  } else {
    // The new initializers take the original's place in the file (reading back puts it there).
    const added = initializers.length - initializerCount;
    initializers.splice(slot, 0, ...initializers.splice(initializers.length - added, added));
  }
}

