/**
 * Standard CNNs built as ONNX graphs with their real layer shapes and random (He-initialised) weights,
 * for benchmarks of scale and speed; random weights say nothing about fidelity.
 */
import { GraphBuilder } from '../lib/model/builder';
import { RESNET50_STAGES } from './architectures';
import { toFloat16 } from './fp16';
import type { Model } from '../lib/model/model';

/** An inference-mode BatchNormalization of `channels` channels on `x`, its parameters near identity. */
function batchNorm(b: GraphBuilder, x: string, channels: number): string {
  const vec = (f: () => number) => Float32Array.from({ length: channels }, f);
  const scale = b.init('bn_scale', [channels], vec(() => 1 + 0.1 * b.rng.normal()));
  const bias = b.init('bn_bias', [channels], vec(() => 0.1 * b.rng.normal()));
  const mean = b.init('bn_mean', [channels], vec(() => 0.1 * b.rng.normal()));
  const variance = b.init('bn_var', [channels], vec(() => 1 + 0.1 * Math.abs(b.rng.normal())));
  return b.op('BatchNormalization', [x, scale, bias, mean, variance], { epsilon: 1e-5 }, ['epsilon']);
}

/** Conv (no bias) + BatchNormalization (+ Relu), as exported by PyTorch before folding. */
function convBn(b: GraphBuilder, x: string, cin: number, cout: number, k: number, stride: number, relu: boolean): string {
  const fanIn = cin * k * k;
  const w = b.init('w', [cout, cin, k, k], b.rng.normals(cout * fanIn, Math.sqrt(2 / fanIn)));
  const p = k >> 1;
  const y = batchNorm(b, b.op('Conv', [x, w], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p] }), cout);
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
  const y = batchNorm(b, b.op('Conv', [x, w], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], group }), cout);
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
 * ISNet (DIS, Qin et al. 2022; the `ISNetDIS` of xuebinqin/DIS, as rembg's isnet-general-use.onnx
 * exports it): a U-Net of nested U-Nets (RSU blocks) with six side outputs, 44 M weights; input `x`
 * [1, 3, size, size] (size a multiple of 64; DIS runs 1024), outputs `d1`..`d6` [1, 1, size, size].
 * Every conv is 3x3 with a bias, dilated inside the RSU-4F blocks, and BatchNormalization + ReLU as
 * exported; upsampling is bilinear Resize; random weights. The float16 nets of the performance issue.
 */
export function isnetModel(seed = 44, size = 1024): Model {
  const b = new GraphBuilder(13, seed);
  // A 3x3 conv with a bias (He-initialised), padded and dilated by d.
  const conv3 = (x: string, cin: number, cout: number, d = 1, stride = 1): string => b.convHe(x, cin, cout, 3, stride, d).y;
  // REBNCONV: conv3, BatchNormalization, ReLU.
  const conv = (x: string, cin: number, cout: number, d = 1): string => b.op('Relu', [batchNorm(b, conv3(x, cin, cout, d), cout)]);
  const pool = (x: string) => b.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 });
  const scales = (f: number) => b.init('scales', [4], new Float32Array([1, 1, f, f]));
  const up = (x: string, f: number) => b.op('Resize', [x, '', scales(f)], { mode: 'linear' });
  const cat = (x: string, y: string) => b.op('Concat', [x, y], { axis: 1 });
  // RSU-L: an encoder of L-1 convs with L-2 poolings, a dilated conv at the bottom, a decoder back up
  // through concatenations, and the block's input conv added to its output.
  const rsu = (x: string, levels: number, cin: number, mid: number, cout: number): string => {
    const hxin = conv(x, cin, cout);
    const down: string[] = [conv(hxin, cout, mid)];
    for (let l = 2; l < levels; l++) down.push(conv(pool(down[down.length - 1]), mid, mid));
    let hx = conv(down[down.length - 1], mid, mid, 2);
    for (let l = down.length - 1; l >= 0; l--) {
      hx = conv(cat(hx, down[l]), 2 * mid, l === 0 ? cout : mid);
      if (l > 0) hx = up(hx, 2);
    }
    return b.op('Add', [hx, hxin]);
  };
  // RSU-4F: no pooling; dilations 1, 2, 4 and 8 down, 4, 2, 1 back.
  const rsu4f = (x: string, cin: number, mid: number, cout: number): string => {
    const hxin = conv(x, cin, cout);
    const hx1 = conv(hxin, cout, mid);
    const hx2 = conv(hx1, mid, mid, 2);
    const hx3 = conv(hx2, mid, mid, 4);
    const hx4 = conv(hx3, mid, mid, 8);
    const hx3d = conv(cat(hx4, hx3), 2 * mid, mid, 4);
    const hx2d = conv(cat(hx3d, hx2), 2 * mid, mid, 2);
    return b.op('Add', [conv(cat(hx2d, hx1), 2 * mid, cout), hxin]);
  };
  const x = b.input('x', [1, 3, size, size]);
  const hxin = conv3(x, 3, 64, 1, 2);
  const hx1 = rsu(hxin, 7, 64, 32, 64);
  const hx2 = rsu(pool(hx1), 6, 64, 32, 128);
  const hx3 = rsu(pool(hx2), 5, 128, 64, 256);
  const hx4 = rsu(pool(hx3), 4, 256, 128, 512);
  const hx5 = rsu4f(pool(hx4), 512, 256, 512);
  const hx6 = rsu4f(pool(hx5), 512, 256, 512);
  const hx5d = rsu4f(cat(up(hx6, 2), hx5), 1024, 256, 512);
  const hx4d = rsu(cat(up(hx5d, 2), hx4), 4, 1024, 128, 256);
  const hx3d = rsu(cat(up(hx4d, 2), hx3), 5, 512, 64, 128);
  const hx2d = rsu(cat(up(hx3d, 2), hx2), 6, 256, 32, 64);
  const hx1d = rsu(cat(up(hx2d, 2), hx1), 7, 128, 16, 64);
  // Side outputs: a 3x3 conv to one channel at each decoder level (d6 from the bottom), upsampled to the input.
  const sides: [string, number, number][] = [[hx1d, 64, 2], [hx2d, 64, 4], [hx3d, 128, 8], [hx4d, 256, 16], [hx5d, 512, 32], [hx6, 512, 64]];
  sides.forEach(([hx, cin, f], i) => {
    b.node('Sigmoid', [up(conv3(hx, cin, 1), f)], [`d${i + 1}`]);
    b.output(`d${i + 1}`, [1, 1, size, size]);
  });
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
