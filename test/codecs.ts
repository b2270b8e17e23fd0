/**
 * Every codec's export is exact: for every setting, on every weight layout, at every opset the chains
 * use, the packed file computes in onnxruntime bit for bit what the model with the codec's values as
 * dense tensors computes, and loadModel reads it back as that model, byte for byte. float16 models too.
 */
import * as ort from 'onnxruntime-node';
import t from 'tap';

import { layerTable } from '../lib/layers';
import { decodeModel } from '../lib/load';
import { DataType, fromNumbers, type Model } from '../lib/model';
import { GraphBuilder } from '../lib/model/builder';
import { encodeModel } from '../lib/model/write';
import { lowerBoundNear } from '../lib/kernels/quantize';
import { encodeLayer } from '../lib/passes/codecs/encode';
import { packPass } from '../lib/passes/codecs/pack';
import { settingName, type CodecSetting } from '../lib/passes/codecs/settings';
import { LayerPlan } from '../lib/passes/layer-records';
import { runPasses } from '../lib/passes/pass';
import { Rng } from '../lib/rng';

/** Every weight layout redpp knows, weights random (so every codec has work to do). */
function layoutsModel(opset: number, fp16 = false): Model {
  const b = new GraphBuilder(opset, 7);
  const dt = fp16 ? DataType.FLOAT16 : DataType.FLOAT;
  const w = (base: string, dims: number[], asNode = false) => {
    const n = dims.reduce((a, c) => a * c, 1);
    const values = b.rng.normals(n, 0.3);
    return b.init(base, dims, fp16 ? fromNumbers(values, DataType.FLOAT16) : values, { asNode, dataType: dt });
  };
  const x = b.input('x', [1, 8, 6, 6], dt);
  let y = b.op('Conv', [x, w('conv_w', [32, 8, 3, 3], true), w('conv_b', [32], true)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  y = b.op('Conv', [y, w('dw_w', [32, 1, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 32 });
  y = b.op('ConvTranspose', [y, w('convt_w', [32, 16, 2, 2])], { kernel_shape: [2, 2], strides: [2, 2] });
  y = b.op('ConvTranspose', [y, w('convt_g_w', [16, 8, 3, 3])], { kernel_shape: [3, 3], strides: [2, 2], group: 2 });
  y = b.op('Flatten', [b.op('GlobalAveragePool', [y])]);
  y = b.op('Gemm', [y, w('gemm_t_w', [64, 16]), w('gemm_t_b', [64])], { transB: 1 });
  y = b.op('Gemm', [y, w('gemm_w', [64, 48]), w('gemm_b', [48])], { transB: 0 });
  y = b.op('MatMul', [y, w('matmul_w', [48, 20], true)]);
  b.output(y, undefined, dt);
  return b.build();
}

const SETTINGS: CodecSetting[] = [
  { codec: 'float16' },
  ...[12, 8, 6, 4, 3, 2].map((bits): CodecSetting => ({ codec: 'linear', bits, tables: 'float16' })),
  { codec: 'linear', bits: 4, tables: 'float32' },
  ...[8, 6, 4, 3, 2, 1].map((bits): CodecSetting => ({ codec: 'hash', bits, tables: 'float16' })),
  ...[6, 3].map((bits): CodecSetting => ({ codec: 'hash', bits, tables: 'float16', granularity: 'layer' })),
  { codec: 'hash', bits: 4, tables: 'float32' },
  { codec: 'hash', beta: 0.1, tables: 'float32' },
];

/** The model with every layer's weights replaced by `setting`'s values, and its plan. */
async function coded(model: Model, setting: CodecSetting): Promise<{ model: Model; plan: LayerPlan }> {
  const copy = decodeModel(encodeModel(model));
  const plan = new LayerPlan(copy);
  for (const layer of layerTable(copy.graph)) {
    const layout = layer.layout();
    if ('skip' in layout) continue;
    const { tensor } = layout;
    const [e] = await encodeLayer({ weights: tensor.toFloat32(), grid: layout.grid, dataType: tensor.dataType, settings: [setting], values: true });
    tensor.setData(tensor.dataType === DataType.FLOAT ? e.values! : fromNumbers(e.values!, tensor.dataType));
    const record = plan.record(layer);
    record.codec = setting;
    plan.setEncoded(record, { data: tensor.data, uniform: e.uniform });
  }
  return { model: copy, plan };
}

async function outputBits(bytes: Uint8Array, fp16: boolean): Promise<Buffer> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const n = 8 * 6 * 6;
  const input = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.3));
  const feed = fp16 ? new ort.Tensor('float16', fromNumbers(input, DataType.FLOAT16) as Uint16Array, [1, 8, 6, 6]) : new ort.Tensor('float32', input, [1, 8, 6, 6]);
  const out = (await s.run({ x: feed }))[s.outputNames[0]].data as Float32Array | Uint16Array;
  await s.release();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

for (const fp16 of [false, true]) {
  for (const opset of fp16 ? [13] : [7, 9, 10, 13, 17]) {
    t.test(`${fp16 ? 'float16' : 'float32'} weights, opset ${opset}: every codec exact and read back`, async (t) => {
      const model = layoutsModel(opset, fp16);
      let packedLayers = 0;
      for (const setting of SETTINGS) {
        if (fp16 && setting.codec === 'float16') continue;
        const name = settingName(setting);
        const { model: plain, plan } = await coded(model, setting);
        const plainBytes = encodeModel(plain);
        const [pack] = await runPasses(plain, [packPass()], plan);
        const packed = encodeModel(plain);
        const forms = plan.records.flatMap((r) => (r.packed ? [r.packed.form] : []));
        const expected = setting.codec === 'float16' ? 'half' : setting.codec === 'linear' ? 'uniform' : 'palette';
        // Every layer leaves in its codec's form, or dense where that form would not be smaller (fan-ins of 9 to 128 here).
        if (!forms.every((f) => f === expected)) t.fail(`${name}: forms ${forms.join(', ')}`);
        const dense = [...pack.skipped];
        if (!dense.every((s) => /would not save bytes/.test(s.reason))) t.fail(`${name}: ${JSON.stringify(dense)}`);
        packedLayers += forms.length;
        const [a, b] = [await outputBits(plainBytes, fp16), await outputBits(packed, fp16)];
        if (Buffer.compare(a, b) !== 0) t.fail(`${name}: the packed file computes other bits`);
        const back = encodeModel(decodeModel(packed));
        if (Buffer.compare(back, plainBytes) !== 0) t.fail(`${name}: the packed file does not read back as the coded model`);
        t.ok(forms.length === 0 ? packed.byteLength === plainBytes.byteLength : packed.byteLength < plainBytes.byteLength, `${name}: ${forms.length} layers packed, ${plainBytes.byteLength} -> ${packed.byteLength} bytes, exact, read back`);
      }
      // 7 layers over the settings above: most gain (fewer in float16, whose dense tensors are half the size).
      t.ok(packedLayers >= (fp16 ? 0.5 : 0.7) * 7 * (SETTINGS.length - Number(fp16)), `${packedLayers} layers packed over all settings`);
    });
  }
}

t.test('a coded layer whose weights changed after coding is packed losslessly instead', async (t) => {
  const model = layoutsModel(13);
  const { model: plain, plan } = await coded(model, { codec: 'linear', bits: 4, tables: 'float16' });
  // Another pass edits one layer (as merging edits rows): its uniform form no longer holds.
  // The second Gemm: 48 neurons of 64 weights, where one more distinct value per neuron still gains.
  const gemm = layerTable(plain.graph).filter((l) => l.node.opType === 'Gemm')[1];
  const w = gemm.weight()!;
  const edited = Float32Array.from(w.data as Float32Array);
  edited[0] += edited[1];
  w.setData(edited);
  const before = encodeModel(plain);
  await runPasses(plain, [packPass()], plan);
  t.equal(plan.recordOf(gemm.node)!.packed?.form, 'palette', 'the edited layer falls back to its palette');
  t.equal(Buffer.compare(await outputBits(encodeModel(plain), false), await outputBits(before, false)), 0, 'still exact');
});

t.test('lowerBoundNear (the cuts of the Lloyd steps): the first index not below x, from any hint', async (t) => {
  const rng = new Rng(8);
  let cases = 0;
  let wrong = 0;
  for (const n of [0, 1, 2, 3, 7, 64, 257]) {
    // Duplicates, both zeros and NaNs at the end, as a row sorted by TypedArray sort has them.
    const values = Float32Array.from({ length: n }, () => [0, -0, 1, -1, Number.NaN][rng.int(5)] * (rng.int(3) === 0 ? 1 : rng.normal()));
    values.sort();
    const xs = [Number.NaN, -Infinity, Infinity, 0, -0, ...Array.from(values), ...Array.from({ length: 8 }, () => rng.normal())];
    for (const x of xs) {
      let expected = 0;
      while (expected < n && values[expected] < x) expected++;
      for (let hint = 0; hint <= n; hint++) {
        cases++;
        if (lowerBoundNear(values, x, hint) !== expected) wrong++;
      }
    }
  }
  t.equal(wrong, 0, `${cases} cases of length 0-257, every hint`);
});
