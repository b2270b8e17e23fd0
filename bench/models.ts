/**
 * Standard CNNs built as ONNX graphs with their real layer shapes and random (He-initialised) weights,
 * for benchmarks of scale and speed; random weights say nothing about fidelity.
 */
import { GraphBuilder } from '../lib/model/builder';
import { RESNET50_STAGES } from './architectures';
import { toFloat16 } from './fp16';
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
  for (const [width, blocks, stride] of RESNET50_STAGES) {
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

/** torchvision's VGG-16 (no BatchNormalization, convs with a bias): input `x` [N, 3, 224, 224], output `logits` [N, 1000]; 138 M weights. */
export function vgg16Model(seed = 16): Model {
  const b = new GraphBuilder(13, seed);
  let x = b.input('x', ['N', 3, 224, 224]);
  let cin = 3;
  const config: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];
  for (const c of config) {
    if (c === 'M') {
      x = b.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
    } else {
      x = b.op('Relu', [b.convHe(x, cin, c, 3).y]);
      cin = c;
    }
  }
  x = b.op('Flatten', [x], { axis: 1 });
  const fc = (x: string, cin: number, cout: number, out?: string): string => {
    const w = b.init('fc_w', [cout, cin], b.rng.normals(cout * cin, Math.sqrt(2 / cin)));
    const bias = b.init('fc_b', [cout], b.rng.normals(cout, 0.01));
    return b.node('Gemm', [x, w, bias], out ? [out] : 1, { transB: 1 })[0];
  };
  x = b.op('Relu', [fc(x, 512 * 7 * 7, 4096)]);
  x = b.op('Relu', [fc(x, 4096, 4096)]);
  fc(x, 4096, 1000, 'logits');
  b.output('logits', ['N', 1000]);
  return b.model();
}

/** Conv (grouped when `group` > 1, no bias) + BatchNormalization (+ ReLU6 as Clip 0..6). */
function convBnGroup(b: GraphBuilder, x: string, cin: number, cout: number, k: number, stride: number, group: number, relu6: boolean): string {
  const fanIn = (cin / group) * k * k;
  const w = b.init('w', [cout, cin / group, k, k], b.rng.normals(cout * fanIn, Math.sqrt(2 / fanIn)));
  const p = k >> 1;
  let y = b.op('Conv', [x, w], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], group });
  const vec = (f: () => number) => Float32Array.from({ length: cout }, f);
  const scale = b.init('bn_scale', [cout], vec(() => 1 + 0.1 * b.rng.normal()));
  const bias = b.init('bn_bias', [cout], vec(() => 0.1 * b.rng.normal()));
  const mean = b.init('bn_mean', [cout], vec(() => 0.1 * b.rng.normal()));
  const variance = b.init('bn_var', [cout], vec(() => 1 + 0.1 * Math.abs(b.rng.normal())));
  y = b.op('BatchNormalization', [y, scale, bias, mean, variance], { epsilon: 1e-5 }, ['epsilon']);
  if (!relu6) return y;
  return b.op('Clip', [y, b.init('zero', [], [0]), b.init('six', [], [6])]);
}

/**
 * torchvision's MobileNetV2 (width 1.0): inverted residual blocks with depthwise 3x3 convs, Conv +
 * BatchNormalization + ReLU6 as exported; input `x` [N, 3, 224, 224], output `logits` [N, 1000]; 3.5 M weights.
 */
export function mobilenetV2Model(seed = 2): Model {
  const b = new GraphBuilder(13, seed);
  let x = b.input('x', ['N', 3, 224, 224]);
  x = convBnGroup(b, x, 3, 32, 3, 2, 1, true);
  let cin = 32;
  // expansion t, output channels c, repeats n, first stride s
  const blocks: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  for (const [t, c, n, s] of blocks) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = cin * t;
      let y = t === 1 ? x : convBnGroup(b, x, cin, hidden, 1, 1, 1, true);
      y = convBnGroup(b, y, hidden, hidden, 3, stride, hidden, true);
      y = convBnGroup(b, y, hidden, c, 1, 1, 1, false);
      x = stride === 1 && cin === c ? b.op('Add', [x, y]) : y;
      cin = c;
    }
  }
  x = convBnGroup(b, x, cin, 1280, 1, 1, 1, true);
  x = b.op('Flatten', [b.op('GlobalAveragePool', [x])], { axis: 1 });
  const w = b.init('fc_w', [1000, 1280], b.rng.normals(1000 * 1280, Math.sqrt(1 / 1280)));
  const bias = b.init('fc_b', [1000], b.rng.normals(1000, 0.01));
  b.node('Gemm', [x, w, bias], ['logits'], { transB: 1 });
  b.output('logits', ['N', 1000]);
  return b.model();
}

/**
 * Three 16384×16384 Gemms (a Gemm, ReLU, Gemm, ReLU, Gemm; float32): 805 M weights, 3.2 GB, which the
 * file keeps as external data (a protobuf holds at most 2 GiB). Input `x` [1, 16384]. The weights are
 * uniform (a normal per weight would take the build a minute): what this measures is moving 3.2 GB.
 */
export function gemmsModel(seed = 3, width = 16384): Model {
  const b = new GraphBuilder(13, seed);
  let x = b.input('x', [1, width]);
  const scale = Math.sqrt(3 / width);
  for (let i = 0; i < 3; i++) {
    const w = new Float32Array(width * width);
    for (let k = 0; k < w.length; k++) w[k] = (2 * b.rng.next() - 1) * scale;
    const y = b.node('Gemm', [x, b.init('w', [width, width], w), b.init('b', [width], new Float32Array(width))], i === 2 ? ['y'] : 1, { transB: 1 })[0];
    x = i === 2 ? y : b.op('Relu', [y]);
  }
  b.output('y', [1, width]);
  return b.model();
}

/**
 * The architectures the speed benchmarks build, by name. VGG-16 in float16 end to end stands for the
 * float16 nets (an ISNet-style U-Net of 44 M weights in the performance issue): 138 M weights whose
 * every conversion to float32 and back is redpp's to make.
 */
export const BENCH_MODELS: Record<string, () => Model> = {
  resnet50: () => resnet50Model(),
  vgg16: () => vgg16Model(),
  'vgg16-fp16': () => toFloat16(vgg16Model()),
  mobilenetv2: () => mobilenetV2Model(),
};
