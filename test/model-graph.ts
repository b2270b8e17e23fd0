import * as ort from 'onnxruntime-node';
import t from 'tap';

import { DataType, Tensor, decodeModel, encodeModel, inferShapes, loadModel } from '../lib/index';
import { createMessage, onnxTypes, type ValueInfoProto } from '../lib/model/proto';
import { Graph } from '../lib/model/graph';
import { NameMap } from '../lib/model/name-map';
import { shapeSteps, sharedShapeSteps, sharedShapes } from '../lib/model/shapes';
import { ModelBuilder, OCR_MODELS, randomFloats, runModel, textImage } from './helpers/onnx-builder';

t.test('producers, consumers and constants (initializers and every Constant form)', async (t) => {
  const b = new ModelBuilder()
    .input('x', ['N', 3])
    .initializer('w', [3, 2], randomFloats(6, 1))
    .constant('c', [2], new Float32Array([1, 2]))
    .node('Constant', [], ['f'], { value_float: 0.5 }, { floats: ['value_float'] })
    .node('Constant', [], ['ints'], { value_ints: [4, 5, 6] })
    .node('MatMul', ['x', 'w'], ['m'], {}, { name: 'mm' })
    .node('Add', ['m', 'c'], ['a'], {}, { name: 'add' })
    .node('Mul', ['a', 'f'], ['y'], {}, { name: 'mul' })
    .node('Relu', ['m'], ['r'], {}, { name: 'relu' })
    .output('y', ['N', 2])
    .output('r', ['N', 2]);
  const g = b.build().graph;
  t.equal(g.producer('m')!.name, 'mm');
  t.same(g.consumers('m').map((n) => n.name), ['add', 'relu']);
  t.equal(g.producer('x'), undefined);
  t.ok(g.isGraphOutput('y'));
  t.same(g.runtimeInputs.map((i) => i.name), ['x']);
  t.same(Array.from(g.constant('w')!.data as Float32Array), Array.from(randomFloats(6, 1)));
  t.same(Array.from(g.constant('c')!.data as Float32Array), [1, 2]);
  t.same(Array.from(g.constant('f')!.data as Float32Array), [0.5]);
  t.same(g.constant('f')!.dims, []);
  t.same(Array.from(g.constant('ints')!.data as BigInt64Array), [4n, 5n, 6n]);
  t.equal(g.constant('m'), undefined, 'a computed value is not constant');
  t.same(g.topologicalOrder().map((n) => n.opType).slice(-4), ['MatMul', 'Add', 'Mul', 'Relu']);
});

t.test('topological order after a read: file order where it is one, sorted where a node reads ahead', async (t) => {
  // The read's check of every input learns on the way whether file order is topological: it must
  // find out when it is not (a reader before its producer, also through a subgraph's outer reference).
  const build = (order: 'forward' | 'ahead') => {
    const b = new ModelBuilder().input('x', [1, 4]);
    const neg = () => b.node('Neg', ['x'], ['a'], {}, { name: 'neg' });
    const relu = () => b.node('Relu', ['a'], ['r'], {}, { name: 'relu' });
    if (order === 'forward') neg(), relu();
    else relu(), neg();
    return b.node('Abs', ['r'], ['y'], {}, { name: 'abs' }).output('y', [1, 4]).build();
  };
  const forward = await loadModel(encodeModel(build('forward')));
  t.same(forward.graph.topologicalOrder().map((n) => n.name), ['neg', 'relu', 'abs']);
  const ahead = await loadModel(encodeModel(build('ahead')));
  t.same(ahead.graph.nodes.map((n) => n.name), ['relu', 'neg', 'abs'], 'the file as written');
  t.same(ahead.graph.topologicalOrder().map((n) => n.name), ['neg', 'relu', 'abs']);

  // An If whose branch reads 'a', which a node after the If produces.
  const branch = (name: string) =>
    createMessage(onnxTypes().Graph, {
      name,
      node: [createMessage(onnxTypes().Node, { op_type: 'Identity', input: ['a'], output: [`${name}_out`] })],
      output: [createMessage<ValueInfoProto>(onnxTypes().ValueInfo, { name: `${name}_out` })],
    });
  /** An If (first) whose branches read 'a', then a Neg of x that writes `negOut`. */
  const ifThenNeg = (negOut: string) => {
    const model = new ModelBuilder()
      .input('x', [1, 4])
      .input('c', [], DataType.BOOL)
      .node('If', ['c'], ['y'], {}, { name: 'if' })
      .node('Neg', ['x'], [negOut], {}, { name: 'neg' })
      .output('y', [1, 4])
      .output(negOut, [1, 4])
      .build();
    model.graph.nodes[0].proto.attribute.push(
      createMessage(onnxTypes().Attribute, { name: 'then_branch', type: 5, g: branch('t') }),
      createMessage(onnxTypes().Attribute, { name: 'else_branch', type: 5, g: branch('e') }),
    );
    return model;
  };
  const read = await loadModel(encodeModel(ifThenNeg('a')));
  t.same(read.graph.topologicalOrder().map((n) => n.name), ['neg', 'if'], 'the outer reference orders the If after its producer');

  // Two missing values, the first in the If's branch: the check tells the first in the file.
  const twoMissing = ifThenNeg('z');
  twoMissing.graph.nodes[1].proto.input[0] = 'gone';
  await t.rejects(loadModel(encodeModel(twoMissing)), { code: 'MISSING_VALUE', message: /node 'if' subgraph: .* reads 'a'/ }, 'the branch, not the later node');
});

t.test('editing: replace data, rewire, insert and remove nodes; only changes are written', async (t) => {
  const b = new ModelBuilder()
    .input('x', [1, 4])
    .initializer('w', [4, 4], randomFloats(16, 2))
    .node('Constant', [], ['k'], { value_float: 2 }, { floats: ['value_float'] })
    .node('MatMul', ['x', 'w'], ['m'], {}, { name: 'mm' })
    .node('Mul', ['m', 'k'], ['y'], {}, { name: 'scale' })
    .output('y', [1, 4]);
  const model = b.build();
  const g = model.graph;
  const x = { x: new ort.Tensor('float32', randomFloats(4, 3), [1, 4]) };
  const before = (await runModel(model, x)).y.data as Float32Array;

  // value_float changes are written back as the Constant's tensor value; the node stays a Constant.
  (g.constant('k')!.mutableData() as Float32Array)[0] = 4;
  t.equal(g.producer('k')!.proto.attribute[0].name, 'value');
  const w = g.constant('w')!;
  w.setData(Float32Array.from(w.data as Float32Array, (v) => v * 0.5));
  t.ok(w.changed);
  const after = (await runModel(model, x)).y.data as Float32Array;
  after.forEach((v, i) => t.ok(Math.abs(v - before[i]) < 1e-5, `y[${i}] unchanged (x2 x0.5)`));

  // Insert a Relu between MatMul and Mul, then take it out again.
  const mm = g.producer('m')!;
  const relu = g.addNode({ opType: 'Relu', inputs: ['m'], outputs: [g.uniqueName('m')], name: 'relu' }, { after: mm });
  t.equal(relu.outputs[0], 'm_1');
  g.producer('y')!.setInput(0, 'm_1');
  t.same(g.nodes.map((n) => n.opType), ['Constant', 'MatMul', 'Relu', 'Mul']);
  t.same(g.consumers('m').map((n) => n.name), ['relu']);
  g.replaceUses('m_1', 'm');
  g.removeNode(relu);
  t.same(g.nodes.map((n) => n.opType), ['Constant', 'MatMul', 'Mul']);
  t.ok(g.changed);

  // An unchanged model encodes to the bytes it came from; the edited one differs only where edited.
  t.ok(encodeModel(b.build()).equals(b.bytes()));
  const reloaded = await loadModel(encodeModel(model));
  t.same(Array.from(reloaded.graph.constant('k')!.data as Float32Array), [4]);
  t.equal(reloaded.graph.nodes.length, 3);

  t.throws(() => g.addInitializer(Tensor.create('w', DataType.FLOAT, [1], new Float32Array(1))), { code: 'INVALID_ARGUMENT' });
  t.throws(() => w.setData(new Float64Array(16)), { code: 'INVALID_ARGUMENT', message: /Float32Array/ });
  t.throws(() => w.setData(new Float32Array(3), [2, 2]), { code: 'INVALID_ARGUMENT', message: /do not fill/ });
});

t.test('edits the index takes in place (a new constant, an empty input filled, nodes removed at once) answer as an index made anew', async (t) => {
  const b = new ModelBuilder()
    .input('x', [1, 2, 4, 4])
    .initializer('w1', [2, 2, 1, 1], randomFloats(4, 1))
    .initializer('w2', [2, 2, 1, 1], randomFloats(4, 2))
    .initializer('shared', [2], new Float32Array([1, 2]))
    .node('Conv', ['x', 'w1'], ['c1'], {}, { name: 'conv1' })
    .node('Relu', ['c1'], ['r1'], {}, { name: 'relu1' })
    .node('Conv', ['r1', 'w2'], ['c2'], {}, { name: 'conv2' })
    .node('Conv', ['c2', 'w2', 'shared'], ['c3'], {}, { name: 'conv3' })
    .node('Add', ['c3', 'r1'], ['y'], {}, { name: 'add' })
    .output('y', [1, 2, 4, 4]);
  const model = b.build();
  const g = model.graph;
  // What the index answers: every name's producer and readers, the open reads in file order, the order.
  const answers = (graph: typeof g) => {
    const names = new Set<string>(['x', 'y', 'w1', 'w2', 'shared', 'b1', 'b2']);
    for (const n of graph.nodes) for (const v of [...n.inputs, ...n.outputs]) if (v) names.add(v);
    const open: string[] = [];
    graph.firstUndefinedInput((v) => (open.push(v), true));
    // The index's own list of reads no earlier node writes (firstUndefinedInput() asks only of some).
    const { openReads } = (graph as unknown as { idx(): { openReads: unknown } }).idx();
    return {
      values: [...names].sort().map((v) => [v, graph.producer(v)?.name, graph.consumers(v).map((n) => n.name), graph.isGraphOutput(v)]),
      twice: graph.producedTwice()?.value,
      open,
      openReads,
      order: (() => {
        try {
          return graph.topologicalOrder().map((n) => n.name);
        } catch (e) {
          return (e as Error).message; // random edits make cycles
        }
      })(),
    };
  };
  // The graph as a file holds it, unchecked (edits below leave reads of nothing), indexed anew.
  const anew = async () => {
    const types = onnxTypes();
    return answers(new Graph(types.Graph.decode(types.Graph.encode(g.proto).finish()) as unknown as typeof g.proto));
  };
  t.same(answers(g), await anew(), 'as loaded');
  const revision = g.revision;
  g.addInitializer(Tensor.create('b1', DataType.FLOAT, [2], new Float32Array(2)));
  g.producer('c1')!.setInput(2, 'b1');
  t.same(answers(g), await anew(), 'a new constant read by the first layer');
  t.ok(g.revision > revision && g.changed, 'the edits count');
  // A value with readers already (their order is file order): the index is made anew.
  g.producer('c2')!.setInput(2, 'shared');
  t.same(answers(g), await anew(), 'a constant read already, by a later node');
  g.addInitializer(Tensor.create('b2', DataType.FLOAT, [2], new Float32Array(2)));
  g.producer('c3')!.setInput(2, 'b2');
  t.same(answers(g), await anew(), 'a filled input replaced');
  g.producer('y')!.setInput(2, 'c1');
  t.same(answers(g), await anew(), 'a value a node writes');
  g.removeNodes([g.producer('y')!, g.producer('c3')!]);
  g.producer('c2')!.setOutput(0, 'y');
  t.same(answers(g), await anew(), 'two nodes removed at once');
  t.same(g.nodes.map((n) => n.name), ['conv1', 'relu1', 'conv2']);
  t.same(g.proto.node.map((n) => n.name), ['conv1', 'relu1', 'conv2'], "the protobuf's list beside");
  // Nodes put in place: a chain that writes a value read after it (a pack's, its weight removed
  // first), one that reads a value written after it, one before everything, one at the end.
  g.removeInitializer('w2');
  t.same(answers(g), await anew(), 'an initializer removed (its readers now read nothing)');
  const conv2 = g.producer('y')!;
  const neg = g.addNode({ opType: 'Neg', inputs: ['w1'], outputs: ['w2_neg'], name: 'neg' }, { before: conv2 });
  t.same(answers(g), await anew(), 'a node writing a new value');
  g.addNode({ opType: 'Abs', inputs: ['w2_neg'], outputs: ['w2'], name: 'abs' }, { after: neg });
  t.same(answers(g), await anew(), 'a node writing the value a later node reads');
  g.addNode({ opType: 'Sigmoid', inputs: ['y'], outputs: ['early'], name: 'early' }, { before: g.nodes[0] });
  t.same(answers(g), await anew(), 'a node reading a value written after it');
  g.addNode({ opType: 'Identity', inputs: ['r1'], outputs: ['late'], name: 'late' });
  t.same(answers(g), await anew(), 'a node at the end, reading a value with readers');
  g.addNode({ opType: 'Identity', inputs: ['x'], outputs: ['r1'], name: 'twice' }, { after: g.nodes[0] });
  t.same(answers(g), await anew(), 'a node writing a value a node writes already');
  const other = new ModelBuilder().input('x', [1]).node('Relu', ['x'], ['y'], {}, { name: 'stranger' }).output('y', [1]).build();
  const count = g.nodes.length;
  t.throws(() => g.removeNodes([g.nodes[0], other.graph.nodes[0]]), { code: 'INVALID_ARGUMENT', message: /'stranger' is not in graph/ });
  t.equal(g.nodes.length, count, 'nothing removed when one node is not there');

  // 300 random edits of those kinds, each followed by the index's answers against one made anew.
  let seed = 11;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const values = () => [...new Set(g.nodes.flatMap((n) => [...n.inputs, ...n.outputs]).filter((v) => v))];
  for (let step = 0; step < 300; step++) {
    const edit = rand(5);
    const pick = <T>(a: readonly T[]) => a[rand(a.length)];
    if (edit <= 1) {
      const out = rand(3) === 0 ? pick(values()) : g.uniqueName('v');
      const where = rand(2) === 0 ? { before: pick(g.nodes) } : { after: pick(g.nodes) };
      g.addNode({ opType: 'Add', inputs: [pick(values()), pick(values())], outputs: [out], name: g.uniqueName('n') }, where);
    } else if (edit === 2) {
      const name = g.uniqueName('c');
      g.addInitializer(Tensor.create(name, DataType.FLOAT, [1], new Float32Array(1)));
      const reader = pick(g.nodes);
      reader.setInput(reader.inputs.length, rand(2) === 0 ? name : pick(values()));
    } else if (edit === 3 && g.initializers.size > 0) {
      g.removeInitializer(pick([...g.initializers.keys()]));
    } else if (g.nodes.length > 4) {
      g.removeNodes([pick(g.nodes), pick(g.nodes)]);
    }
    // Answers read now, so that the index is built before the next edit and taken in place by it; a
    // step in four reads only a producer, so that the next edit meets an index whose readers are not
    // gathered yet.
    if (rand(4) === 0) {
      g.producer('x');
      continue;
    }
    const seen = answers(g);
    const fresh = await anew();
    if (JSON.stringify(seen) !== JSON.stringify(fresh)) {
      t.same(seen, fresh, `step ${step}: edit ${edit}`);
      break;
    }
  }
  t.pass('300 random edits answered as an index made anew');

  // On a graph no value of which has two writers (where every edit above is taken in place):
  const clean = new ModelBuilder()
    .input('x', [1, 4])
    .node('Relu', ['x'], ['a'], {}, { name: 'relu' })
    .node('Neg', ['x'], ['b'], {}, { name: 'neg' })
    .node('Add', ['a', 'b'], ['y'], {}, { name: 'add' })
    .output('y', [1, 4])
    .build().graph;
  const cleanAnew = () => new Graph(onnxTypes().Graph.decode(onnxTypes().Graph.encode(clean.proto).finish()) as unknown as typeof g.proto);
  // the readers a caller holds stay as they were,
  const readers = clean.consumers('x');
  clean.addNode({ opType: 'Abs', inputs: ['x'], outputs: ['x_abs'], name: 'abs' }, { before: readers[1] });
  t.same(readers.map((n) => n.name), ['relu', 'neg'], 'a list of readers handed out is not changed');
  t.same(answers(clean), answers(cleanAnew()), 'a reader put among readers');
  // the values an inference holds come in file order,
  clean.addNode({ opType: 'Sigmoid', inputs: ['x'], outputs: ['first'], name: 'first' }, { before: clean.nodes[0] });
  t.same([...inferShapes(clean).types.keys()], [...inferShapes(cleanAnew()).types.keys()], "inferred values in file order after a node put first");
  // and a node removed, then edited, is not taken into the index.
  const gone = clean.producer('x_abs')!;
  clean.removeNode(gone);
  clean.consumers('x');
  gone.setInput(1, 'nothing_reads_this');
  t.same(answers(clean), answers(cleanAnew()), 'an edit of a removed node');

  // An edit inside a subgraph: its node's reads in the enclosing graph change with it.
  const withIf = new ModelBuilder().input('x', [1]).input('c', [], DataType.BOOL).node('If', ['c'], ['z'], {}, { name: 'if' }).output('z', [1]).build().graph;
  const branch = (name: string) =>
    createMessage(onnxTypes().Graph, {
      name,
      node: [createMessage(onnxTypes().Node, { op_type: 'Identity', input: ['c'], output: [`${name}_out`] })],
      output: [createMessage<ValueInfoProto>(onnxTypes().ValueInfo, { name: `${name}_out` })],
    });
  withIf.nodes[0].proto.attribute.push(
    createMessage(onnxTypes().Attribute, { name: 'then_branch', type: 5, g: branch('t') }),
    createMessage(onnxTypes().Attribute, { name: 'else_branch', type: 5, g: branch('e') }),
  );
  const outer = new Graph(onnxTypes().Graph.decode(onnxTypes().Graph.encode(withIf.proto).finish()) as unknown as typeof g.proto);
  t.same(outer.consumers('x').map((n) => n.name), [], 'nothing reads x');
  outer.nodes[0].subgraphs()[0].nodes[0].setInput(0, 'x');
  outer.addNode({ opType: 'Neg', inputs: ['c'], outputs: ['c_neg'] });
  t.same(outer.consumers('x').map((n) => n.name), ['if'], 'the If reads x once its branch does');
});

t.test('uniqueName: never a name the graph uses, through edits that add names and edits that free them', async (t) => {
  // The set of names is made once and every edit adds the names it brings in; checked here against
  // every name the graph's protobuf holds and every name handed out, after each of 400 random edits.
  const g = new ModelBuilder()
    .input('x', [1, 4])
    .initializer('w', [4, 4], randomFloats(16, 5))
    .node('MatMul', ['x', 'w'], ['m'], {}, { name: 'mm' })
    .node('Relu', ['m'], ['y'], {}, { name: 'relu' })
    .output('y', [1, 4])
    .build().graph;
  const used = () => {
    const names = new Set<string>([...g.proto.input, ...g.proto.output].map((v) => v.name));
    for (const i of g.proto.initializer) names.add(i.name);
    for (const n of g.proto.node) for (const v of [n.name, ...n.input, ...n.output]) if (v) names.add(v);
    return names;
  };
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const bases = ['m', 'w', 'redpp', 'redpp/Mul', 'y', 'n'];
  const added: string[] = [];
  const handedOut = new Set<string>();
  for (let step = 0; step < 400; step++) {
    const base = bases[rand(bases.length)];
    const name = g.uniqueName(base);
    if (used().has(name) || handedOut.has(name)) {
      t.fail(`step ${step}: '${name}' is in use or was handed out before`);
      return;
    }
    handedOut.add(name);
    // Half the time the edit names what it adds itself, as a pass may: a name uniqueName must then skip.
    const own = `${base}_${1 + rand(3)}`;
    const named = rand(2) === 0 && !used().has(own) && !handedOut.has(own) ? own : name;
    const edit = rand(6);
    if (edit === 0) {
      const nodeName = `n_${1 + rand(3)}`;
      added.push(g.addNode({ opType: 'Neg', inputs: ['x'], outputs: [named], name: used().has(nodeName) ? `${named}/Neg` : nodeName }).outputs[0]);
    } else if (edit === 1) {
      g.addInitializer(Tensor.create(named, DataType.FLOAT, [1], new Float32Array(1)));
      added.push(named);
    } else if (edit === 2 && added.length > 0) {
      const gone = added.splice(rand(added.length), 1)[0];
      if (g.initializers.has(gone)) g.removeInitializer(gone);
      else g.removeNode(g.producer(gone)!);
      t.notOk(used().has(gone), `step ${step}: '${gone}' is free again`);
    } else if (edit === 3 && added.length > 0) {
      const node = g.producer(added[added.length - 1]);
      if (node) {
        node.setOutput(0, name);
        added[added.length - 1] = name;
      }
    }
    // edits 4 and 5: a name handed out and never used, which is not handed out again
  }
  t.ok(added.length > 10, `${added.length} names added and kept`);
  // Each kind of name an addition brings, named by the caller, is skipped straight after it.
  t.equal(g.uniqueName('k'), 'k');
  g.addInitializer(Tensor.create('k_1', DataType.FLOAT, [1], new Float32Array(1)));
  t.equal(g.uniqueName('k'), 'k_2', "an initializer's name");
  g.addNode({ opType: 'Neg', inputs: ['k_3'], outputs: ['k_4'], name: 'k_5' });
  t.equal(g.uniqueName('k'), 'k_6', "a node's input, output and name");
  // A name freed by a removal is not handed out again (each pack chain has a base of its own: 'redpp',
  // 'redpp_1', ...), nor a name an edit brought in, by either kind of removal.
  const first = g.uniqueName('fresh');
  g.addInitializer(Tensor.create(first, DataType.FLOAT, [1], new Float32Array(1)));
  g.removeInitializer(first);
  t.equal(g.uniqueName('fresh'), `${first}_1`);
  const relu = g.addNode({ opType: 'Relu', inputs: ['x'], outputs: ['gone'] });
  relu.setInput(0, 'was_read');
  g.removeNode(relu);
  t.same([g.uniqueName('gone'), g.uniqueName('was_read')], ['gone_1', 'was_read_1']);
});

t.test('shape inference: symbolic dims stay symbolic, static ones follow the ops', async (t) => {
  const b = new ModelBuilder()
    .input('x', ['batch', 3, 'H', 'W'])
    .initializer('w', [8, 3, 3, 3], randomFloats(8 * 27, 4))
    .node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] })
    .node('Relu', ['c'], ['r'])
    .node('MaxPool', ['r'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] })
    .node('GlobalAveragePool', ['p'], ['g'])
    .node('Flatten', ['g'], ['f'])
    .initializer('fc', [8, 5], randomFloats(40, 5))
    .node('MatMul', ['f', 'fc'], ['y'])
    .output('y', ['batch', 5]);
  const model = b.build();
  const sym = inferShapes(model.graph);
  t.same(sym.types.get('c')!.shape, ['batch', 8, 'H', 'W'], 'padded 3x3 conv keeps symbolic H and W');
  t.equal(sym.types.get('p')!.shape![0], 'batch');
  t.match(sym.types.get('p')!.shape![2], /^unk_/, 'pooling a symbolic dim gives a fresh symbol');
  t.same(sym.types.get('g')!.shape!.slice(1), [8, 1, 1]);
  t.same(sym.types.get('y')!.shape, ['batch', 5]);
  t.same(sym.unresolved, []);
  const fixed = inferShapes(model.graph, { x: [2, 3, 9, 7] });
  t.same(fixed.types.get('p')!.shape, [2, 8, 4, 3]);
  t.same(fixed.types.get('y')!.shape, [2, 5]);
  t.equal(fixed.types.get('y')!.elemType, DataType.FLOAT);
});

t.test('shared shapes: reused while nothing changed, inferred again after any edit', async (t) => {
  const model = new ModelBuilder({ opset: 13 })
    .input('x', ['n', 8])
    .initializer('shape', [2], new BigInt64Array([-1n, 4n]), DataType.INT64)
    .initializer('w', [4, 3], randomFloats(12, 1))
    .node('Reshape', ['x', 'shape'], ['r'])
    .node('MatMul', ['r', 'w'], ['y'])
    .node('Transpose', ['y'], ['z'], { perm: [1, 0] })
    .output('z')
    .build();
  const g = model.graph;
  const first = sharedShapes(g, { x: [2, 8] });
  t.same(first.types.get('z')!.shape, [3, 4]);
  t.equal(sharedShapes(g, { x: [2, 8] }), first, 'the same inference while nothing changed');
  t.not(sharedShapes(g, { x: [6, 8] }), first, 'other input shapes: inferred again');
  t.same(sharedShapes(g, { x: [6, 8] }).types.get('z')!.shape, [3, 12]);

  // A constant edited in place (after mutableData(), which notifies no one) is seen.
  (g.constant('shape')!.mutableData() as BigInt64Array).set([-1n, 2n]);
  t.same(sharedShapes(g, { x: [6, 8] }).types.get('r')!.shape, [24, 2], 'an in-place edit of a small constant');
  g.constant('w')!.setData(randomFloats(10, 2), [2, 5]);
  t.same(sharedShapes(g, { x: [6, 8] }).types.get('y')!.shape, [24, 5], "new dims of a weight");
  g.nodes[2].setAttribute('perm', [0, 1]);
  t.same(sharedShapes(g, { x: [6, 8] }).types.get('z')!.shape, [24, 5], 'an attribute edit');
  g.nodes[2].setInput(0, 'r');
  t.same(sharedShapes(g, { x: [6, 8] }).types.get('z')!.shape, [24, 2], 'a rewired input');
});

t.test('shape inference in steps: the same result, a yield every 32 nodes; shared, an edit meanwhile is seen after', async (t) => {
  const b = new ModelBuilder({ opset: 13 }).input('x', [1, 4, 16, 16]);
  let x = 'x';
  for (let i = 0; i < 100; i++) {
    b.node('Relu', [x], [`r${i}`]);
    x = `r${i}`;
  }
  const model = b.output(x).build();
  const g = model.graph;
  const steps = shapeSteps(g, { x: [2, 4, 16, 16] });
  let yields = 0;
  let step = steps.next();
  for (; !step.done; step = steps.next()) yields++;
  t.equal(yields, 3, '100 nodes: a yield after each 32');
  t.same([...step.value.types], [...inferShapes(g, { x: [2, 4, 16, 16] }).types], 'the types inferShapes() gives');
  t.same(step.value.types.get(x)!.shape, [2, 4, 16, 16]);
  // An edit while the shared inference is in its steps: the next call infers the edited graph.
  const shared = sharedShapeSteps(g, { x: [2, 4, 16, 16] });
  shared.next();
  g.nodes[99].setInput(0, 'r97');
  let s = shared.next();
  while (!s.done) s = shared.next();
  const after = sharedShapes(g, { x: [2, 4, 16, 16] });
  t.not(after, s.value, 'inferred again');
  t.equal(sharedShapes(g, { x: [2, 4, 16, 16] }), after, 'then kept');
});

t.test("the graph index's NameMap answers as a Map would, also past the size it was made for", async (t) => {
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  // Short names that repeat, long ones, non-ASCII, a lone surrogate, '' and names of one char apart.
  const pool = [
    '',
    'a',
    'b',
    'ab',
    'ba',
    'é',
    '\ud800',
    'x'.repeat(300),
    'x'.repeat(299) + 'y',
    // Not a name (a hole in an input list): a key of its own, as in a Map.
    undefined as unknown as string,
    ...Array.from({ length: 3000 }, (_, i) => `v${i}`),
  ];
  for (const expected of [0, 10, 5000]) {
    const ours = new NameMap<number>(expected);
    const map = new Map<string, number>();
    const differ: string[] = [];
    for (let op = 0; op < 20000; op++) {
      const name = pool[Math.floor(random() * pool.length)];
      if (random() < 0.6) {
        if (ours.put(name, op) !== !map.has(name)) differ.push(`put '${name}'`);
        map.set(name, op);
      } else if (ours.get(name) !== map.get(name) || ours.has(name) !== map.has(name)) {
        differ.push(`get '${name}'`);
      }
    }
    t.same(differ, [], `${expected}: every put and get as a Map's`);
    t.equal(ours.size, map.size, `${expected}: as many names`);
    t.same([...ours], [...map], `${expected}: the same entries in insertion order`);
    t.same([...ours.keys()], [...map.keys()]);
    t.same([...ours.values()], [...map.values()]);
  }
});

t.test('inferred types are a snapshot: every value, in order, unchanged by later edits', async (t) => {
  // A file order that is not topological (the inference walks a sorted order), a two-output node and
  // a Constant node.
  const model = new ModelBuilder()
    .input('x', [2, 6])
    .initializer('w', [6, 4], randomFloats(24, 1))
    .initializer('spare', [3], randomFloats(3, 2))
    .node('Relu', ['m'], ['r'], {}, { name: 'relu' })
    .node('MatMul', ['x', 'w'], ['m'], {}, { name: 'mm' })
    .node('Constant', [], ['k'], { value_ints: [2, 2] })
    .node('Split', ['r'], ['s0', 's1'], { axis: 1 }, { name: 'split' })
    .node('Add', ['s0', 's1'], ['y'], {}, { name: 'add' })
    .output('y')
    .build();
  const g = model.graph;
  const types = inferShapes(g).types;
  const expected: [string, number[] | undefined][] = [
    ['x', [2, 6]],
    ['w', [6, 4]],
    ['spare', [3]],
    ['r', [2, 4]],
    ['m', [2, 4]],
    ['k', [2]],
    ['s0', [2, 2]],
    ['s1', [2, 2]],
    ['y', [2, 2]],
  ];
  const seen = () => [...types].map(([v, type]) => [v, type.shape]);
  t.same(seen(), expected, 'inputs and initializers, then node outputs in file order');
  t.equal(types.size, expected.length);
  t.same([...types.keys()], expected.map(([v]) => v));
  t.ok(types.has('s1'));
  t.notOk(types.has('nothing'));
  t.equal(types.get('nothing'), undefined);

  // Edits after the inference: a node added before the others (every node's place moves), an
  // initializer's value written by a node instead (as a pack does), an output renamed, a node removed.
  // The inference answers as it did.
  g.addNode({ opType: 'Identity', inputs: ['x'], outputs: ['x2'] }, { before: g.nodes[0] });
  g.removeInitializer('spare');
  g.addNode({ opType: 'Identity', inputs: ['x2'], outputs: ['spare'] }, { after: g.nodes[0] });
  g.nodes.find((n) => n.name === 'split')!.setOutput(1, 'renamed');
  g.removeNode(g.nodes.find((n) => n.name === 'add')!);
  g.topologicalOrder();
  t.same(seen(), expected, 'the same after edits');
  t.same(types.get('s1')!.shape, [2, 2]);
  t.equal(types.get('renamed'), undefined);
  t.equal(types.get('x2'), undefined);
  t.same(inferShapes(g).types.get('renamed')!.shape, [2, 2], 'a new inference sees the edits');
});

t.test('a value given a second writer by an edit: inference reads the first while only it has run', async (t) => {
  // A writes a; nine nodes later B reads it; C, added last, writes a too (a read refuses such a graph,
  // an edit can make one). File order is inference's order: B sees A's type, as a map of names would.
  const b = new ModelBuilder().input('x', [2, 3]).node('Relu', ['x'], ['a'], {}, { name: 'A' });
  for (let i = 0; i < 9; i++) b.node('Relu', ['x'], [`p${i}`]);
  b.node('Relu', ['a'], ['b'], {}, { name: 'B' }).output('b');
  const g = b.build().graph;
  g.addNode({ opType: 'Flatten', inputs: ['x'], outputs: ['a'], attributes: { axis: 0 } });
  t.ok(g.producedTwice(), 'a is written twice');
  const types = inferShapes(g).types;
  t.same(types.get('b')!.shape, [2, 3], "B's output: A's shape");
  t.same(types.get('a')!.shape, [1, 6], 'a: the last writer inferred');
});

t.test('a node without outputs, named like the nodes of a packed weight, is read as it is', async (t) => {
  const model = new ModelBuilder()
    .input('x', [2, 3])
    .node('Identity', ['x'], [], {}, { name: 'redpp_x' })
    .node('Relu', ['x'], ['y'])
    .output('y')
    .build();
  const read = decodeModel(encodeModel(model));
  t.equal(read.graph.nodes.length, 2);
  t.same(read.graph.consumers(undefined as unknown as string), []);
  t.equal(inferShapes(read.graph).types.get(undefined as unknown as string), undefined);
});

t.test('shape inference matches onnxruntime on every value of the PP-OCRv4 models', async (t) => {
  for (const [name, { file, shape }] of Object.entries(OCR_MODELS)) {
    const model = await loadModel(file);
    const inferred = inferShapes(model.graph, { x: shape });
    t.same(inferred.unresolved, [], `${name}: every value has a shape`);
    // Expose every intermediate value as an output and let onnxruntime tell the truth.
    const values = model.graph.nodes.filter((n) => n.opType !== 'Constant').flatMap((n) => n.outputs.filter(Boolean));
    for (const v of values) {
      if (!model.graph.isGraphOutput(v)) model.proto.graph!.output.push(createMessage<ValueInfoProto>(onnxTypes().ValueInfo, { name: v }));
    }
    const out = await runModel(model, { x: textImage(shape) });
    const wrong = values.filter((v) => JSON.stringify(inferred.types.get(v)!.shape) !== JSON.stringify(out[v].dims));
    t.same(wrong, [], `${name}: ${values.length} inferred shapes equal onnxruntime's`);
    const symbolic = inferShapes((await loadModel(file)).graph);
    t.same(symbolic.unresolved, [], `${name}: ranks known with symbolic input dims too`);
    t.equal(symbolic.types.get(model.graph.outputs[0].name)!.shape![0], 'p2o.DynamicDimension.0', `${name}: batch symbol kept`);
  }
});
