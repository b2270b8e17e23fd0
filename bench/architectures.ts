/**
 * Real layer shapes of standard CNNs, for benchmarks that need their scale (weights are random:
 * these say nothing about fidelity).
 */
export interface ConvShape {
  name: string;
  /** Output channels (neurons). */
  out: number;
  /** Input channels per group. */
  in: number;
  kh: number;
  kw: number;
  stride: number;
  group: number;
  kind: 'conv' | 'gemm';
}

function conv(name: string, out: number, inC: number, k: number, stride = 1, group = 1): ConvShape {
  return { name, out, in: inC, kh: k, kw: k, stride, group, kind: 'conv' };
}

/** ResNet-50's stages: bottleneck width, blocks, stride of the first block. */
export const RESNET50_STAGES: readonly (readonly [number, number, number])[] = [
  [64, 3, 1],
  [128, 4, 2],
  [256, 6, 2],
  [512, 3, 2],
];

/** torchvision's ResNet-50 (v1.5: stride on the 3x3 conv): 53 convs and the classifier, 25.5 M weights. */
export function resnet50(): ConvShape[] {
  const layers: ConvShape[] = [conv('conv1', 64, 3, 7, 2)];
  let inC = 64;
  RESNET50_STAGES.forEach(([width, blocks, stride], s) => {
    for (let b = 0; b < blocks; b++) {
      const p = `layer${s + 1}.${b}`;
      layers.push(conv(`${p}.conv1`, width, inC, 1));
      layers.push(conv(`${p}.conv2`, width, width, 3, b === 0 ? stride : 1));
      layers.push(conv(`${p}.conv3`, width * 4, width, 1));
      if (b === 0) layers.push(conv(`${p}.downsample`, width * 4, inC, 1, stride));
      inC = width * 4;
    }
  });
  layers.push({ name: 'fc', out: 1000, in: 2048, kh: 1, kw: 1, stride: 1, group: 1, kind: 'gemm' });
  return layers;
}

/** Weights per output neuron (the hash group of per-neuron hashing). */
export function fanIn(l: ConvShape): number {
  return l.in * l.kh * l.kw;
}

export function weightCount(l: ConvShape): number {
  return l.out * fanIn(l);
}
