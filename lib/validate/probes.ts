/**
 * Data-free probe inputs: random tensors of the inputs' concrete shapes (lib/input-shapes.ts), from a
 * seeded generator so a validation run can be repeated exactly.
 */
import type * as ort from 'onnxruntime-node';

import { invalidOption } from '../errors';
import { numberToFloat16Bits } from '../model/dtype';
import type { ProbeDistribution } from '../options/validate';
import type { Rng } from '../rng';
import { onnxruntime } from '../runtime';

export function probeTensor(type: ort.Tensor.Type, shape: readonly number[], rng: Rng, distribution: ProbeDistribution): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const random = () => rng.next();
  const sample = distribution === 'normal' ? () => rng.normal() : random;
  switch (type) {
    case 'float32':
    case 'float64': {
      const data = type === 'float32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) data[i] = sample();
      return new (onnxruntime('validation').Tensor)(type, data, shape);
    }
    case 'float16': {
      const data = new Uint16Array(n);
      for (let i = 0; i < n; i++) data[i] = numberToFloat16Bits(sample());
      return new (onnxruntime('validation').Tensor)('float16', data, shape);
    }
    case 'bool': {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = random() < 0.5 ? 1 : 0;
      return new (onnxruntime('validation').Tensor)('bool', data, shape);
    }
    case 'int64':
    case 'uint64': {
      const data = type === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) data[i] = BigInt(Math.floor(random() * 10));
      return new (onnxruntime('validation').Tensor)(type, data, shape);
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
      return new (onnxruntime('validation').Tensor)(type, data, shape);
    }
    default:
      throw invalidOption('options.inputs', `tensors for input type ${type} (redpp cannot make probes of it)`, type);
  }
}
