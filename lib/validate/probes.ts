/**
 * Data-free probe inputs: random tensors shaped from the model's declared inputs, from a seeded RNG so a
 * validation run can be repeated exactly.
 */
import * as ort from 'onnxruntime-node';

import { invalidOption } from '../errors';
import { numberToFloat16Bits } from '../model/dtype';

/** mulberry32: small, fast, and good enough for probe data. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ProbeDistribution = 'normal' | 'uniform';

export interface InputSpec {
  name: string;
  type: ort.Tensor.Type;
  /** Declared dims; strings (or negative numbers) are symbolic. */
  shape: readonly (number | string)[];
}

/**
 * A concrete shape for an input: the user's shape for this input if given, else the declared dims with
 * each symbolic dim taken from `dims` by name, or by default 1 for the batch axis, 3 for the channel axis
 * of a 4-D input, and 224 elsewhere (the image-model conventions).
 */
export function probeShape(
  spec: InputSpec,
  shapes: Record<string, readonly number[]>,
  dims: Record<string, number>,
): number[] {
  const given = shapes[spec.name];
  if (given) {
    if (given.length !== spec.shape.length) {
      throw invalidOption(`options.shapes.${spec.name}`, `${spec.shape.length} dims ([${spec.shape}])`, `[${given}]`);
    }
    given.forEach((d, i) => {
      const declared = spec.shape[i];
      if (!Number.isSafeInteger(d) || d < 0) throw invalidOption(`options.shapes.${spec.name}`, 'integers >= 0', `[${given}]`);
      if (typeof declared === 'number' && declared >= 0 && declared !== d) {
        throw invalidOption(`options.shapes.${spec.name}[${i}]`, `${declared} (declared by the model)`, d);
      }
    });
    return [...given];
  }
  return spec.shape.map((d, i) => {
    if (typeof d === 'number' && d >= 0) return d;
    if (typeof d === 'string' && d in dims) return dims[d];
    if (i === 0) return 1;
    if (spec.shape.length === 4 && i === 1) return 3;
    return 224;
  });
}

export function probeTensor(
  type: ort.Tensor.Type,
  shape: readonly number[],
  random: () => number,
  distribution: ProbeDistribution,
): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const sample = distribution === 'normal' ? normal(random) : random;
  switch (type) {
    case 'float32':
    case 'float64': {
      const data = type === 'float32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) data[i] = sample();
      return new ort.Tensor(type, data, shape);
    }
    case 'float16': {
      const data = new Uint16Array(n);
      for (let i = 0; i < n; i++) data[i] = numberToFloat16Bits(sample());
      return new ort.Tensor('float16', data, shape);
    }
    case 'bool': {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = random() < 0.5 ? 1 : 0;
      return new ort.Tensor('bool', data, shape);
    }
    case 'int64':
    case 'uint64': {
      const data = type === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) data[i] = BigInt(Math.floor(random() * 10));
      return new ort.Tensor(type, data, shape);
    }
    case 'int32':
    case 'int16':
    case 'int8':
    case 'uint32':
    case 'uint16':
    case 'uint8': {
      const ctor = { int32: Int32Array, int16: Int16Array, int8: Int8Array, uint32: Uint32Array, uint16: Uint16Array, uint8: Uint8Array }[type];
      const data = new ctor(n);
      for (let i = 0; i < n; i++) data[i] = Math.floor(random() * 10);
      return new ort.Tensor(type, data, shape);
    }
    default:
      throw invalidOption('options.inputs', `tensors for input type ${type} (redpp cannot make probes of it)`, type);
  }
}

/** Standard normal samples by Box-Muller. */
function normal(random: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = random();
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}
