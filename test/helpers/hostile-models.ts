/**
 * Hand-made hostile inputs for redpp, one per class of failure seen in the wild: models that lie about
 * their sizes, contradict the ONNX spec, reach outside their folder, hold NaN, or are plain garbage;
 * and option misuse. Each case is a folder to lay out (files, symlinks, FIFOs) and the CLI arguments to
 * run on it. `fuzz.ts` runs them and checks redpp's promises on each.
 */
import { DataType } from '../../lib/model/dtype';
import { createMessage, onnxTypes, type ModelProto, type NodeProto, type StringStringEntryProto, type TensorProto } from '../../lib/model/proto';
import { ModelBuilder, randomFloats } from './onnx-builder';

export interface HostileCase {
  name: string;
  /** Files of the case's folder, by relative path; `model/` holds the model. */
  files: Record<string, Uint8Array>;
  /** Symlinks to create: path in the case folder → target (relative to the link, or absolute). */
  links?: Record<string, string>;
  /** Hard links to create: new path → existing path, both in the case folder. */
  hardLinks?: Record<string, string>;
  /** FIFOs to create, by relative path. */
  fifos?: string[];
  /** The CLI arguments after `prune`; INPUT and OUTPUT stand for the case's model and output paths. */
  args: string[];
  /**
   * What must happen: a typed error (with this code where given), a model that loads, or either (a
   * mutation: a flipped weight byte is still a model).
   */
  expect: { error: string | true } | 'loads' | 'either';
}

export const INPUT = 'model/model.onnx';
export const OUTPUT = 'out/out.onnx';

/** A small conv net: Conv(3→8, 3×3) → Relu → Conv(8→4, 1×1), every weight an initializer. */
export function convNet(seed = 1, input: (number | string)[] = [1, 3, 16, 16]): ModelBuilder {
  const spatial = input.slice(2).every((d) => typeof d === 'number');
  return new ModelBuilder()
    .input('x', input)
    .initializer('w1', [8, 3, 3, 3], randomFloats(8 * 27, seed, 0.3))
    .initializer('b1', [8], randomFloats(8, seed + 1, 0.1))
    .initializer('w2', [4, 8, 1, 1], randomFloats(32, seed + 2, 0.3))
    .node('Conv', ['x', 'w1', 'b1'], ['h'], { pads: [1, 1, 1, 1] }, { name: 'conv1' })
    .node('Relu', ['h'], ['r'], {}, { name: 'relu' })
    .node('Conv', ['r', 'w2'], ['y'], {}, { name: 'conv2' })
    .output('y', spatial ? [1, 4, ...input.slice(2)] : undefined);
}

/** The proto of the conv net, to be edited into something hostile. */
function protoOf(edit: (m: ModelProto) => void, seed = 1): ModelProto {
  const proto = onnxTypes().Model.decode(convNet(seed).bytes()) as unknown as ModelProto;
  edit(proto);
  return proto;
}

/** Encodes with protobufjs alone: no check of redpp's writer stands between the edit and the file. */
export function encodeRaw(proto: ModelProto): Uint8Array {
  return onnxTypes().Model.encode(proto as never).finish();
}

const modelFile = (edit: (m: ModelProto) => void) => ({ [INPUT]: encodeRaw(protoOf(edit)) });
const tensor = (m: ModelProto, name: string) => m.graph!.initializer.find((t) => t.name === name)!;
const node = (m: ModelProto, name: string) => m.graph!.node.find((n) => n.name === name)!;
const entry = (key: string, value: string) => createMessage<StringStringEntryProto>(onnxTypes().StringStringEntry, { key, value });
const attr = (n: NodeProto, name: string, ints: number[]) => {
  const a = n.attribute.find((x) => x.name === name);
  if (a) a.ints = ints;
  else n.attribute.push(createMessage(onnxTypes().Attribute, { name, type: 7, ints }) as never);
};
const intAttr = (n: NodeProto, name: string, i: number) =>
  n.attribute.push(createMessage(onnxTypes().Attribute, { name, type: 2, i }) as never);

/** Moves an initializer's data to an external file `location` (relative to the model). */
function external(t: TensorProto, location: string, offset = 0): Uint8Array {
  const data = t.raw_data.byteLength ? t.raw_data : new Uint8Array(new Float32Array(t.float_data).buffer);
  t.raw_data = new Uint8Array(0);
  t.float_data = [];
  t.data_location = 1;
  t.external_data = [entry('location', location), entry('offset', String(offset)), entry('length', String(data.byteLength))];
  return data;
}

function externalCase(name: string, place: (data: Uint8Array) => Omit<HostileCase, 'name' | 'files' | 'args' | 'expect'> & { files?: Record<string, Uint8Array> }, location = 'w.data'): HostileCase {
  let data: Uint8Array = new Uint8Array(0);
  const files = modelFile((m) => (data = external(tensor(m, 'w1'), location)));
  const extra = place(data);
  return { name, ...extra, files: { ...files, ...extra.files }, args: [INPUT, '-o', OUTPUT, '--beta', '0.05'], expect: { error: true } };
}

/** Every hand-made case. */
export function hostileCases(): HostileCase[] {
  const beta = ['--beta', '0.05'];
  const io = [INPUT, '-o', OUTPUT];
  const bad = (name: string, edit: (m: ModelProto) => void, code: string | true = 'INVALID_MODEL'): HostileCase => ({
    name,
    files: modelFile(edit),
    args: [...io, ...beta],
    expect: { error: code },
  });
  const good = convNet().bytes();
  const dynamic = convNet(1, [1, 3, 'H', 'W']).bytes();

  const withNaN = (m: ModelProto) => {
    for (const name of ['w1', 'w2']) {
      const t = tensor(m, name);
      const v = t.raw_data.byteLength ? new Float32Array(Uint8Array.from(t.raw_data).buffer) : new Float32Array(t.float_data);
      v[3] = NaN;
      v[5] = Infinity;
      t.raw_data = new Uint8Array(v.buffer);
      t.float_data = [];
    }
  };
  return [
    // Sizes that lie.
    bad('dims of 2^40 elements', (m) => (tensor(m, 'w1').dims = [1 << 20, 1 << 20])),
    bad('dims whose product is not a safe integer', (m) => (tensor(m, 'w1').dims = [2 ** 52, 2 ** 52, 0])),
    bad('dims of 2^62 and 0', (m) => (tensor(m, 'w2').dims = [2 ** 62, 0, 1, 1])),
    bad('negative dims', (m) => (tensor(m, 'w2').dims = [-4, 8, 1, 1])),
    ...['8', undefined].map((length) => ({
      name: `a string tensor with external-data offsets past the file${length ? '' : ', no length'}`,
      files: {
        ...modelFile((m) => {
          const t = tensor(m, 'b1');
          t.data_type = DataType.STRING;
          t.raw_data = new Uint8Array(0);
          t.float_data = [];
          t.data_location = 1;
          t.external_data = [entry('location', 'w.data'), entry('offset', '99999999999'), ...(length ? [entry('length', length)] : [])];
        }),
        'model/w.data': new Uint8Array(16),
      },
      args: [...io, ...beta],
      expect: { error: 'INVALID_MODEL' },
    })),
    bad('external data at an offset past 2^53', (m) => {
      external(tensor(m, 'w1'), 'w.data');
      tensor(m, 'w1').external_data[1].value = '18446744073709551615';
    }),
    // Conv layers that contradict their input.
    bad('a Conv weight whose input channels do not match its input', (m) => {
      const t = tensor(m, 'w2');
      t.dims = [4, 2, 1, 1];
      t.raw_data = new Uint8Array(randomFloats(8, 5).buffer);
      t.float_data = [];
    }),
    bad('a rank-2 Conv weight', (m) => (tensor(m, 'w2').dims = [4, 8])),
    bad('Conv group 0', (m) => intAttr(node(m, 'conv2'), 'group', 0)),
    bad('Conv group -1', (m) => intAttr(node(m, 'conv2'), 'group', -1)),
    bad('Conv group that does not divide the channels', (m) => intAttr(node(m, 'conv2'), 'group', 3)),
    bad('Conv strides 0', (m) => attr(node(m, 'conv1'), 'strides', [0, 0])),
    bad('Conv negative pads', (m) => attr(node(m, 'conv1'), 'pads', [-1, 1, 1, 1])),
    bad('a Conv without a weight', (m) => (node(m, 'conv2').input = ['r'])),
    ...matmulCases(),
    // Graphs that contradict the spec.
    bad('a node that reads its own output', (m) => (node(m, 'relu').input = ['r'])),
    bad('a value written by two nodes', (m) => (node(m, 'conv2').output = ['h'])),
    bad('duplicate initializer names', (m) => m.graph!.initializer.push(tensor(m, 'w2'))),
    bad('a node output that shadows an initializer', (m) => {
      node(m, 'relu').output = ['b1'];
      node(m, 'conv2').input[0] = 'b1';
    }),
    bad('names with control bytes', (m) => (node(m, 'relu').input = ['\u001b[31mx\u0007']), 'MISSING_VALUE'),
    // NaN and Inf weights in more than one layer, for the default budget and for RED++.
    { name: 'NaN/Inf weights in two layers (budget)', files: modelFile(withNaN), args: io, expect: { error: 'NON_FINITE_WEIGHT' } },
    { name: 'NaN/Inf weights in two layers (beta)', files: modelFile(withNaN), args: [...io, ...beta, '--min-fan-in', '1'], expect: { error: 'NON_FINITE_WEIGHT' } },
    // External data that leaves the folder, or is not a file.
    externalCase('external data through a symlink to a file outside the folder', (data) => ({
      files: { 'secret.bin': data },
      links: { 'model/w.data': '../secret.bin' },
    })),
    externalCase('external data through a symlinked folder', (data) => ({
      files: { 'elsewhere/w.data': data },
      links: { 'model/sub': '../elsewhere' },
    }), 'sub/w.data'),
    externalCase('external data that is a FIFO', () => ({ fifos: ['model/w.data'] })),
    externalCase('external data that is a folder', () => ({ files: { 'model/w.data/x': new Uint8Array(1) } })),
    externalCase('external data with .. in its location', (data) => ({ files: { 'w.data': data } }), '../w.data'),
    externalCase('external data at an absolute location', () => ({}), '/etc/passwd'),
    // The input replaced by the output, through another name.
    {
      name: 'an output path that is the input through a symlinked folder',
      files: { [INPUT]: good },
      links: { alias: 'model' },
      args: [INPUT, '-o', 'alias/model.onnx', ...beta],
      expect: { error: 'INVALID_ARGUMENT' },
    },
    {
      name: 'an output path that is a hard link to the input',
      files: { [INPUT]: good },
      hardLinks: { [OUTPUT]: INPUT },
      args: [...io, ...beta],
      expect: { error: 'INVALID_ARGUMENT' },
    },
    // Garbage and option misuse.
    { name: 'an empty file', files: { [INPUT]: new Uint8Array(0) }, args: io, expect: { error: 'NOT_ONNX' } },
    { name: 'a FIFO as the model', files: {}, fifos: [INPUT], args: io, expect: { error: 'IO_ERROR' } },
    { name: '--beta -1', files: { [INPUT]: good }, args: [...io, '--beta', '-1'], expect: { error: 'INVALID_OPTION' } },
    { name: '--beta 1e308', files: { [INPUT]: good }, args: [...io, '--beta', '1e308'], expect: 'loads' },
    { name: "--skip '/(/'", files: { [INPUT]: good }, args: [...io, '--skip', '/(/'], expect: { error: 'INVALID_OPTION' } },
    {
      name: 'an input shape too large to validate',
      files: { [INPUT]: dynamic },
      args: [...io, ...beta, '--input-shape', 'x=1x3x100000x100000', '--validate'],
      expect: { error: true },
    },
    { name: 'the fidelity budget and a target size together', files: { [INPUT]: good }, args: [...io, '--max-deviation', '0.01', '--target-size', '0.3'], expect: { error: 'INVALID_OPTION' } },
    { name: 'a valid model (control)', files: { [INPUT]: good }, args: [...io, ...beta], expect: 'loads' },
  ];
}

/** A Gemm and a MatMul whose weights do not fit their inputs (K of 6 against an input of 4). */
function matmulCases(): HostileCase[] {
  const model = (op: 'Gemm' | 'MatMul', attributes: Record<string, number>) =>
    new ModelBuilder()
      .input('x', [2, 4])
      .initializer('w', [6, 3], randomFloats(18, 3))
      .node(op, ['x', 'w'], ['y'], attributes, { name: op.toLowerCase() })
      .output('y')
      .bytes();
  return [
    { name: 'a MatMul weight whose rows do not match the input', files: { [INPUT]: model('MatMul', {}) }, args: [INPUT, '-o', OUTPUT, '--beta', '0.05'], expect: { error: 'INVALID_MODEL' } },
    { name: 'a Gemm whose A and B do not share K', files: { [INPUT]: model('Gemm', { transB: 0 }) }, args: [INPUT, '-o', OUTPUT, '--beta', '0.05'], expect: { error: 'INVALID_MODEL' } },
  ];
}
