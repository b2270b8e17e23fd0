/**
 * Standard CNNs built as ONNX graphs with their real layer shapes and random (He-initialised) weights,
 * for benchmarks of scale and speed; random weights say nothing about fidelity.
 */
import { GraphBuilder } from '../lib/model/builder';
import type { Model } from '../lib/model/model';

/** Conv (no bias) + BatchNormalization (+ Relu), as exported by PyTorch before folding. */
function convBn(b: GraphBuilder, x: string, cin: number, cout: number, k: number, stride: number, relu: boolean): string {
  const fanIn = cin * k * k;
  const w = b.init('w', [cout, cin, k, k], b.rng.normals(cout * fanIn, Math.sqrt(2 / fanIn)));
  const p = k >> 1;
  let y = b.op('Conv', [x, w], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p] });
  const ones = (v: number) => new Float32Array(cout).fill(v);
  const scale = b.init('bn_scale', [cout], ones(1).map(() => 1 + 0.1 * b.rng.normal()));
  const bias = b.init('bn_bias', [cout], ones(0).map(() => 0.1 * b.rng.normal()));
  const mean = b.init('bn_mean', [cout], ones(0).map(() => 0.1 * b.rng.normal()));
  const variance = b.init('bn_var', [cout], ones(1).map(() => 1 + 0.1 * Math.abs(b.rng.normal())));
  y = b.op('BatchNormalization', [y, scale, bias, mean, variance], { epsilon: 1e-5 }, ['epsilon']);
  return relu ? b.op('Relu', [y]) : y;
}

export interface ResNetOptions {
  /** Conv + BatchNormalization as exported before folding (default), or convs with a bias (BN folded). */
  batchNorm?: boolean;
  /** Spatial dims of the input: fixed 224x224 (default) or symbolic H, W. */
  spatial?: 'fixed' | 'symbolic';
}

/** torchvision's ResNet-50 (v1.5): input `x` [N, 3, 224, 224] (N symbolic), output `logits` [N, 1000]. */
export function resnet50Model(seed = 50, options: ResNetOptions = {}): Model {
  const batchNorm = options.batchNorm ?? true;
  const b = new GraphBuilder(13, seed);
  const layer = (x: string, cin: number, cout: number, k: number, stride: number, relu: boolean) => {
    const y = batchNorm ? convBn(b, x, cin, cout, k, stride, false) : b.convHe(x, cin, cout, k, stride).y;
    return relu ? b.op('Relu', [y]) : y;
  };
  let x = b.input('x', options.spatial === 'symbolic' ? ['N', 3, 'H', 'W'] : ['N', 3, 224, 224]);
  x = layer(x, 3, 64, 7, 2, true);
  x = b.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  let cin = 64;
  const stages: [number, number, number][] = [
    [64, 3, 1],
    [128, 4, 2],
    [256, 6, 2],
    [512, 3, 2],
  ];
  for (const [width, blocks, stride] of stages) {
    for (let i = 0; i < blocks; i++) {
      const s = i === 0 ? stride : 1;
      let y = layer(x, cin, width, 1, 1, true);
      y = layer(y, width, width, 3, s, true);
      y = layer(y, width, width * 4, 1, 1, false);
      const shortcut = i === 0 ? layer(x, cin, width * 4, 1, s, false) : x;
      x = b.op('Relu', [b.op('Add', [y, shortcut])]);
      cin = width * 4;
    }
  }
  x = b.op('Flatten', [b.op('GlobalAveragePool', [x])], { axis: 1 });
  const fcW = b.init('fc_w', [1000, 2048], b.rng.normals(1000 * 2048, Math.sqrt(1 / 2048)));
  const fcB = b.init('fc_b', [1000], b.rng.normals(1000, 0.01));
  b.node('Gemm', [x, fcW, fcB], ['logits'], { transB: 1 });
  b.output('logits', ['N', 1000]);
  return b.model();
}
