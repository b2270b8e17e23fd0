/**
 * ONNX element types (TensorProto.DataType) and how redpp holds each in memory.
 *
 * 16-bit and 8-bit floats are held as their bit patterns (Uint16Array / Uint8Array): Node has no
 * Float16Array, and keeping bits makes an unchanged tensor round-trip exactly. toFloat32() converts any
 * numeric tensor for arithmetic.
 */
import { native } from '../binding';
import { RedppError } from '../errors';
import { largeArray } from '../kernels/pages';

export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
} as const;

export type DataTypeName = keyof typeof DataType;

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type ArrayCtor = {
  new (length: number): TensorData;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorData;
  readonly BYTES_PER_ELEMENT: number;
};

/** Which TensorProto field holds the elements when raw_data is not used. */
export type TypedField = 'float_data' | 'int32_data' | 'int64_data' | 'double_data' | 'uint64_data';

interface Layout {
  array: ArrayCtor;
  field: TypedField;
}

const LAYOUTS: Partial<Record<number, Layout>> = {
  [DataType.FLOAT]: { array: Float32Array, field: 'float_data' },
  [DataType.UINT8]: { array: Uint8Array, field: 'int32_data' },
  [DataType.INT8]: { array: Int8Array, field: 'int32_data' },
  [DataType.UINT16]: { array: Uint16Array, field: 'int32_data' },
  [DataType.INT16]: { array: Int16Array, field: 'int32_data' },
  [DataType.INT32]: { array: Int32Array, field: 'int32_data' },
  [DataType.INT64]: { array: BigInt64Array, field: 'int64_data' },
  [DataType.BOOL]: { array: Uint8Array, field: 'int32_data' },
  [DataType.FLOAT16]: { array: Uint16Array, field: 'int32_data' },
  [DataType.DOUBLE]: { array: Float64Array, field: 'double_data' },
  [DataType.UINT32]: { array: Uint32Array, field: 'uint64_data' },
  [DataType.UINT64]: { array: BigUint64Array, field: 'uint64_data' },
  [DataType.BFLOAT16]: { array: Uint16Array, field: 'int32_data' },
  [DataType.FLOAT8E4M3FN]: { array: Uint8Array, field: 'int32_data' },
  [DataType.FLOAT8E4M3FNUZ]: { array: Uint8Array, field: 'int32_data' },
  [DataType.FLOAT8E5M2]: { array: Uint8Array, field: 'int32_data' },
  [DataType.FLOAT8E5M2FNUZ]: { array: Uint8Array, field: 'int32_data' },
  [DataType.FLOAT8E8M0]: { array: Uint8Array, field: 'int32_data' },
};

const NAMES = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k])) as Record<number, DataTypeName>;

/** Bits per element of every defined type, decodable or not (used to check sizes and place external data). */
const BITS: Record<number, number> = {
  [DataType.STRING]: 0,
  [DataType.COMPLEX64]: 64,
  [DataType.COMPLEX128]: 128,
  [DataType.UINT4]: 4,
  [DataType.INT4]: 4,
  [DataType.FLOAT4E2M1]: 4,
  [DataType.UINT2]: 2,
  [DataType.INT2]: 2,
};

export function dataTypeName(code: number): string {
  return NAMES[code] ?? `unknown (${code})`;
}

/** A type the ONNX spec defines (UNDEFINED excluded). */
export function isKnownDataType(code: number): boolean {
  return Number.isInteger(code) && code > 0 && code in NAMES;
}

/** Whether redpp can hold the elements in a typed array. */
export function isDecodable(code: number): boolean {
  return LAYOUTS[code] !== undefined;
}

export function layoutOf(code: number, what: string): Layout {
  const layout = LAYOUTS[code];
  if (!layout) {
    throw new RedppError(
      'UNSUPPORTED_DTYPE',
      `${what} has element type ${dataTypeName(code)}, which redpp cannot decode ` +
        '(supported: float32/16/64, bfloat16, float8 as bits, bool and 8- to 64-bit integers)',
    );
  }
  return layout;
}

/** Bytes that `count` elements take in raw_data, or undefined for STRING. */
export function byteSize(code: number, count: number): number | undefined {
  const layout = LAYOUTS[code];
  if (layout) return count * layout.array.BYTES_PER_ELEMENT;
  const bits = BITS[code];
  if (bits === undefined || bits === 0) return undefined;
  return Math.ceil((count * bits) / 8);
}

/** 8-bit floats, held as bits; redpp moves them but does no arithmetic on them. */
function isFloat8(code: number): boolean {
  return (code >= DataType.FLOAT8E4M3FN && code <= DataType.FLOAT8E5M2FNUZ) || code === DataType.FLOAT8E8M0;
}

/** float32 and float64: held as Float32Array/Float64Array, so passes can rescale and sum them in place. */
export function isArithmeticFloat(code: number): boolean {
  return code === DataType.FLOAT || code === DataType.DOUBLE;
}

/** Every float type redpp decodes to numbers: the weights it hashes and packs. */
export function isFloatType(code: number): boolean {
  return (
    code === DataType.FLOAT ||
    code === DataType.DOUBLE ||
    code === DataType.FLOAT16 ||
    code === DataType.BFLOAT16
  );
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float16BitsToNumber(h: number): number {
  return (halfValues ??= halfTable())[h & 0xffff];
}

/** Every float16 bit pattern's value, made on first use: a lookup is several times faster than decoding (the codecs convert every weight). */
let halfValues: Float64Array | undefined;

/**
 * decodeHalf() of every bit pattern, a block of 1024 significands per exponent: (1024 + f) * 2^(e-25)
 * for a normal value and f * 2^-24 for a subnormal one, both exact in a double, so the same values
 * (test/native-kernels.ts compares them). Made by decodeHalf() per pattern, the first call took 18-20 ms
 * of a prune's main thread; 8 ms this way.
 */
function halfTable(): Float64Array {
  const t = new Float64Array(65536).fill(NaN);
  for (let e = 0; e < 31; e++) {
    const scale = e === 0 ? 2 ** -24 : 2 ** (e - 25);
    const lead = e === 0 ? 0 : 1024;
    for (let f = 0, at = e << 10; f < 1024; f++, at++) {
      const v = (lead + f) * scale;
      t[at] = v;
      t[at | 0x8000] = -v;
    }
  }
  // The rest are the NaNs, of both signs the one NaN decodeHalf() gives (a negated NaN's sign bit would
  // show in a Float32Array made from the table).
  t[31 << 10] = Infinity;
  t[0xfc00] = -Infinity;
  return t;
}

/** A float16 bit pattern's value, by the format's definition: halfTable()'s reference. @internal exported for its test */
export function decodeHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Round to nearest even, as numpy's astype(float16). */
export function numberToFloat16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function bfloat16BitsToNumber(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

export function numberToBfloat16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The elements as float32, converting from any numeric type (64-bit integers through Number). */
export function toFloat32(data: TensorData, code: number): Float32Array {
  if (code === DataType.FLOAT) return data as Float32Array;
  const out = largeArray(Float32Array, data.length);
  decodeInto(data, code, out);
  return out;
}

/** The elements of `data` (element type `code`) as float32 into `out`, of the same length. */
export function decodeInto(data: TensorData, code: number, out: Float32Array): void {
  const addon = native();
  if (code === DataType.FLOAT16 && addon && data instanceof Uint16Array) addon.halfToFloat(data, out);
  else if (code === DataType.FLOAT16) {
    for (let i = 0; i < data.length; i++) out[i] = float16BitsToNumber(data[i] as number);
  } else if (code === DataType.BFLOAT16) {
    for (let i = 0; i < data.length; i++) out[i] = bfloat16BitsToNumber(data[i] as number);
  } else if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  } else if (isDecodable(code) && !isFloat8(code)) {
    out.set(data as ArrayLike<number>);
  } else {
    throw new RedppError('UNSUPPORTED_DTYPE', `cannot convert ${dataTypeName(code)} to float32`);
  }
}

/**
 * Each value rounded to the nearest float16, back as float32 (what a float16 tensor of them computes),
 * through one small scratch and natively where the addon is loaded. Array.from with a per-element
 * callback took 48 s for VGG-16's fc1; this takes a fraction of a second.
 */
export function roundedToFloat16(values: Float32Array): Float32Array {
  const out = largeArray(Float32Array, values.length);
  const scratch = new Uint16Array(Math.min(values.length, ROUND_CHUNK));
  for (let at = 0; at < values.length; at += ROUND_CHUNK) {
    const to = Math.min(values.length, at + ROUND_CHUNK);
    const half = scratch.subarray(0, to - at);
    encodeInto(values.subarray(at, to), DataType.FLOAT16, half);
    decodeInto(half, DataType.FLOAT16, out.subarray(at, to));
  }
  return out;
}

const ROUND_CHUNK = 1 << 16;

/** float64 values into the element type `code` (floats rounded, integers truncated toward zero). */
export function fromNumbers(values: ArrayLike<number>, code: number): TensorData {
  const { array } = layoutOf(code, 'the target');
  const out = new array(values.length);
  encodeInto(values, code, out);
  return out;
}

/** fromNumbers() into `out`, an array of the element type `code` and of the same length. */
export function encodeInto(values: ArrayLike<number>, code: number, out: TensorData): void {
  const addon = native();
  // The native conversion matches numberToFloat16Bits (which rounds through float32 first).
  if (code === DataType.FLOAT16 && addon && values instanceof Float32Array && out instanceof Uint16Array) addon.floatToHalf(values, out);
  else if (code === DataType.FLOAT16) {
    for (let i = 0; i < values.length; i++) (out as Uint16Array)[i] = numberToFloat16Bits(values[i]);
  } else if (code === DataType.BFLOAT16) {
    for (let i = 0; i < values.length; i++) (out as Uint16Array)[i] = numberToBfloat16Bits(values[i]);
  } else if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(Math.trunc(values[i]));
  } else if (isFloatType(code)) {
    (out as Float32Array | Float64Array).set(values);
  } else if (isFloat8(code)) {
    throw new RedppError('UNSUPPORTED_DTYPE', `cannot convert numbers to ${dataTypeName(code)}`);
  } else {
    for (let i = 0; i < values.length; i++) (out as Int32Array)[i] = Math.trunc(values[i]);
  }
}

/** The typed-array constructor for a decodable type. */
export function arrayTypeOf(code: number): ArrayCtor {
  return layoutOf(code, 'a tensor').array;
}
