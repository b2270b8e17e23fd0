import t from 'tap';

import { concreteInputShapes, concreteShape } from '../lib/input-shapes';
import { GraphBuilder } from '../lib/model/builder';
import { prune } from '../lib/prune';

t.test('concrete shapes: the given one, else symbolic dims by name or by the image conventions', async (t) => {
  const input = { name: 'x', shape: ['N', 3, 'H', 'W'] };
  t.same(concreteShape(input, {}), [1, 3, 224, 224], 'batch 1, 224 for spatial dims');
  t.same(concreteShape(input, {}, { H: 32, W: 64, N: 2 }), [2, 3, 32, 64]);
  t.same(concreteShape(input, { x: [4, 3, 8, 8] }), [4, 3, 8, 8]);
  t.same(concreteShape({ name: 'v', shape: [-1, 7] }, {}), [1, 7], 'a negative dim is symbolic');
  t.throws(() => concreteShape(input, { x: [1, 3] }), {
    code: 'INVALID_OPTION',
    message: 'Expected 4 dims (the model declares [N, 3, H, W]) for options.inputShapes.x but received [1, 3]',
  });
  t.throws(() => concreteShape(input, { x: [1, 4, 8, 8] }), { code: 'INVALID_OPTION', message: /declares \[N, 3, H, W\]\) for options\.inputShapes\.x\[1\] but received 4/ });
});

t.test('every given shape must name an input of the model', async (t) => {
  const b = new GraphBuilder(13, 1);
  b.output(b.op('Relu', [b.input('x', ['N', 4])]));
  const graph = b.build().graph;
  t.same(concreteInputShapes(graph, { x: [2, 4] }), { x: [2, 4] });
  t.throws(() => concreteInputShapes(graph, { y: [2, 4] }), { code: 'INVALID_OPTION', message: /model input \(x\) for options\.inputShapes\.y/ });
});

t.test('prune: a shape of the wrong rank is named as the option it was given in', async (t) => {
  const b = new GraphBuilder(13, 1);
  const x = b.input('x', ['N', 8]);
  b.output(b.op('Gemm', [x, b.weights('w', [8, 4])]));
  await t.rejects(prune(b.build(), { inputShapes: { x: [1, 3, 48] } }), {
    code: 'INVALID_OPTION',
    message: 'Expected 2 dims (the model declares [N, 8]) for options.inputShapes.x but received [1, 3, 48]',
  });
});
