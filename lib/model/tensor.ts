/**
 * Tensor: one TensorProto (an initializer or a Constant node's value) with its elements as a typed array.
 *
 * The elements are decoded on first use and, where the bytes are aligned, are a view of the model's bytes
 * rather than a copy: treat `data` as read-only. A pass that changes a tensor calls setData() (or edits
 * the array from mutableData(), which copies at most once); either rewrites the TensorProto in place, so
 * the writer emits exactly the tensors that changed and keeps every other one byte for byte.
 *
 * The readers give every tensor bytes of its own, aligned (its stretch of a file they read, or a copy of
 * the caller's bytes; see privateBytes): decoding is then a view, not a copy, and mutableData() edits
 * those bytes in place, since nothing else sees them.
 */
import { RedppError } from '../errors';
import { canReleasePages, sharedBytes } from '../kernels/pages';
import { DataType, byteSize, dataTypeName, isKnownDataType, layoutOf, toFloat32, type TensorData } from './dtype';
import { DataLocation, createMessage, hasField, onnxTypes, toBigInt, toNumber, type TensorProto } from './proto';

/** Bytes of tensors stored as external data, read when the model was loaded, keyed by their TensorProto. */
const externalBytes = new WeakMap<TensorProto, Uint8Array>();

/**
 * Tensor bytes (the exact Uint8Array a TensorProto holds as raw_data or external data) that no other
 * tensor and no buffer of the caller's views: redpp allocated them for this tensor alone (ownBytes()),
 * or they are this tensor's own stretch of a file redpp read. A tensor may adopt and edit them in place.
 */
const privateBytes = new WeakSet<Uint8Array>();

/** Registers `bytes` as one tensor's own (see privateBytes) and returns it. */
export function markOwnBytes<T extends Uint8Array>(bytes: T): T {
  privateBytes.add(bytes);
  return bytes;
}

/** A copy of `bytes` in an ArrayBuffer of its own (offset 0, so aligned for every element type), for one tensor. */
export function ownBytes(bytes: Uint8Array): Buffer {
  const out = allocate(bytes.byteLength);
  out.set(bytes);
  return markOwnBytes(out);
}

/** A new allocation of `length` bytes for one tensor (see ownBytes()). */
export function allocOwnBytes(length: number): Buffer {
  return markOwnBytes(allocate(length));
}

/**
 * Tensors from this size are given shared memory, as a model file read whole is: the pool's workers
 * then read and write them where they are. In an ArrayBuffer, every task that reads a layer copies it
 * on the main thread (pool.ts): 1 GB at a time for a 16384² layer in external data, a stall of
 * seconds. Small ones stay apart (one SharedArrayBuffer each would cost more than they hold).
 */
const SHARED_FROM = 1 << 16;

function allocate(length: number): Buffer {
  return length >= SHARED_FROM ? sharedBytes(length) : Buffer.allocUnsafeSlow(length);
}

/** Tensors that were stored as external data when the model was read (whether changed since or not). */
const readAsExternal = new WeakSet<TensorProto>();

export function attachExternalBytes(proto: TensorProto, bytes: Uint8Array): void {
  externalBytes.set(proto, bytes);
  readAsExternal.add(proto);
}

/** Whether the tensor was external data in the file it was read from: the writer keeps it external. */
export function wasReadAsExternal(proto: TensorProto): boolean {
  return readAsExternal.has(proto);
}

/**
 * Marks a new tensor that takes the place of one read as external data (a codec's form of an external
 * weight, or the weight read back from it): the writer stores it externally too, as it would the original.
 */
export function keepExternalLike(proto: TensorProto, original: TensorProto): void {
  if (readAsExternal.has(original)) readAsExternal.add(proto);
}

/** The bytes of an external-data tensor, or undefined when the tensor's data is inside the protobuf. */
export function externalBytesOf(proto: TensorProto): Uint8Array | undefined {
  return externalBytes.get(proto);
}

export function isExternal(proto: TensorProto): boolean {
  return proto.data_location === DataLocation.EXTERNAL;
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

const TYPED_FIELDS = ['float_data', 'int32_data', 'string_data', 'int64_data', 'double_data', 'uint64_data'] as const;

export class Tensor {
  readonly proto: TensorProto;
  private cached: TensorData | undefined;
  /** Whether `cached` is memory redpp allocated (safe to write) rather than a view of the model's bytes. */
  private owned = false;
  private dirty = false;
  /**
   * Whether nothing but this tensor sees `cached`: a copy that decoding made, or a view of bytes that
   * are this tensor's alone (privateBytes). mutableData() adopts it rather than copying.
   */
  private decodedCopy = false;
  /** Set by releasableBytes(): the elements are going, and reading them is a bug that must not pass as zeros. */
  private released = false;
  private readonly onFirstChange: (() => void) | undefined;

  /** `onFirstChange` runs once before the first change (a Constant node uses it to take the new value). */
  constructor(proto: TensorProto, onFirstChange?: () => void) {
    this.proto = proto;
    this.onFirstChange = onFirstChange;
  }

  /** A new tensor owning `data` (not yet part of any graph); it counts as changed. */
  static create(name: string, dataType: number, dims: readonly number[], data: TensorData): Tensor {
    const t = new Tensor(createMessage<TensorProto>(onnxTypes().Tensor, { name }));
    t.setData(data, dims, dataType);
    return t;
  }

  get name(): string {
    return this.proto.name;
  }

  get dataType(): number {
    return this.proto.data_type;
  }

  get dims(): number[] {
    return this.proto.dims.map(toNumber);
  }

  /** Number of elements. */
  get size(): number {
    return elementCount(this.dims);
  }

  /** Whether the data is an array this tensor owns (set by a pass), not a view of the model's bytes. */
  get ownsData(): boolean {
    return this.owned;
  }

  /** Whether mutableData() hands out the array as it is, with no copy (nothing else sees it). */
  get editableInPlace(): boolean {
    void this.data;
    return this.owned || this.decodedCopy;
  }

  /** Whether a pass replaced or edited the data since the model was loaded (or since create()). */
  get changed(): boolean {
    return this.dirty;
  }

  /** Whether the data lives in an external-data file (as loaded; a changed tensor is inline). */
  get external(): boolean {
    return isExternal(this.proto);
  }

  /** The elements, row-major. Read-only: may be a view of the model's bytes. */
  get data(): TensorData {
    if (this.released) throw new Error(`redpp internal error: tensor '${this.name}' was read after releasableBytes()`);
    if (!this.cached) {
      this.cached = decodeTensor(this.proto);
      const bytes = bytesOf(this.proto);
      this.decodedCopy = bytes === undefined || this.cached.buffer !== bytes.buffer || privateBytes.has(bytes);
    }
    return this.cached;
  }

  /** The elements as float32 (a copy unless the tensor is float32). */
  toFloat32(): Float32Array {
    return toFloat32(this.data, this.dataType);
  }

  /** The elements as an array this tensor owns, for editing in place; marks the tensor changed. */
  mutableData(): TensorData {
    const d = this.data;
    if (this.owned) this.markChanged();
    // Decoding already copied (unaligned or typed-field data), or the bytes are this tensor's alone:
    // adopt them rather than make another copy.
    else if (this.decodedCopy) this.setData(d);
    else this.setData(new (d.constructor as new (src: TensorData) => TensorData)(d));
    return this.cached!;
  }

  /**
   * Replaces the elements (and optionally dims and element type). The array is kept, not copied: the
   * caller hands it over. The TensorProto is rewritten to hold it as raw_data.
   */
  setData(data: TensorData, dims: readonly number[] = this.dims, dataType: number = this.dataType): void {
    const { array } = layoutOf(dataType, `tensor '${this.name}'`);
    if (!(data instanceof array)) {
      throw new RedppError(
        'INVALID_ARGUMENT',
        `tensor '${this.name}': ${dataTypeName(dataType)} data must be a ${array.name}, got ${data.constructor.name}`,
      );
    }
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RedppError('INVALID_ARGUMENT', `tensor '${this.name}': dims must be integers >= 0, got [${dims}]`);
    }
    if (elementCount(dims) !== data.length) {
      throw new RedppError(
        'INVALID_ARGUMENT',
        `tensor '${this.name}': ${data.length} elements do not fill dims [${dims}]`,
      );
    }
    this.markChanged();
    const p = this.proto as unknown as Record<string, unknown>;
    for (const f of TYPED_FIELDS) p[f] = [];
    p.external_data = [];
    delete p.data_location;
    delete p.segment;
    p.dims = [...dims];
    p.data_type = dataType;
    p.raw_data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    externalBytes.delete(this.proto);
    this.cached = data;
    this.owned = true;
  }

  /**
   * The elements' bytes, for the caller to give back to the OS (kernels/pages.ts: releasePages,
   * PageRelease), where nothing but this tensor sees them (editableInPlace): for a tensor that no graph
   * holds and nothing reads again, as the weights a prune's pack replaces (its model is a private copy).
   * Without it, such a weight in shared memory stays resident until every pool worker that read it
   * collects its garbage. From then on `data` throws. Undefined where canReleasePages() says no, which
   * leaves the tensor as it is (writing the zeros would give nothing back), and for memory that others see.
   */
  releasableBytes(): Uint8Array | undefined {
    if (!canReleasePages() || !this.editableInPlace) return undefined;
    const d = this.data;
    this.released = true;
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }

  /** Marks the tensor changed after editing the array from mutableData(). */
  markChanged(): void {
    if (!this.dirty) this.onFirstChange?.();
    this.dirty = true;
  }
}

/** A TensorProto holding `data` as raw_data (the array is kept, not copied). */
export function makeTensorProto(name: string, dataType: number, dims: readonly number[], data: TensorData): TensorProto {
  return createMessage<TensorProto>(onnxTypes().Tensor, {
    name,
    dims: [...dims],
    data_type: dataType,
    raw_data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  });
}

/** The bytes a TensorProto holds its elements in (raw_data or external data), if any. */
function bytesOf(proto: TensorProto): Uint8Array | undefined {
  return externalBytes.get(proto) ?? (hasField(proto, 'raw_data') ? proto.raw_data : undefined);
}

/** Decodes a TensorProto's elements; a view of raw_data (or of external bytes) when aligned. */
export function decodeTensor(proto: TensorProto): TensorData {
  const what = `tensor '${proto.name}'`;
  if (!isKnownDataType(proto.data_type)) {
    throw new RedppError('UNSUPPORTED_DTYPE', `${what} has unknown element type ${proto.data_type}`);
  }
  const { array, field } = layoutOf(proto.data_type, what);
  const count = elementCount(proto.dims.map(toNumber));
  const bytes = externalBytes.get(proto) ?? (hasField(proto, 'raw_data') ? proto.raw_data : undefined);
  if (bytes !== undefined) {
    const expected = count * array.BYTES_PER_ELEMENT;
    if (bytes.byteLength !== expected) {
      throw new RedppError(
        'INVALID_MODEL',
        `${what}: ${bytes.byteLength} bytes of data for dims [${proto.dims.map(toNumber)}] ` +
          `(${dataTypeName(proto.data_type)} needs ${expected})`,
      );
    }
    // Little-endian like raw_data: every platform Node supports for this package is little-endian.
    if (bytes.byteOffset % array.BYTES_PER_ELEMENT === 0) return new array(bytes.buffer, bytes.byteOffset, count);
    const out = new array(count);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  if (isExternal(proto)) {
    throw new RedppError('EXTERNAL_DATA_MISSING', `${what} is stored as external data that was not loaded`);
  }
  const values = proto[field] as ArrayLike<number | Parameters<typeof toNumber>[0]>;
  if (values.length !== count) {
    throw new RedppError(
      'INVALID_MODEL',
      `${what}: ${values.length} values in ${field} for dims [${proto.dims.map(toNumber)}] (${count} elements)`,
    );
  }
  const out = new array(count);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    const unsigned = out instanceof BigUint64Array;
    for (let i = 0; i < count; i++) out[i] = toBigInt(values[i] as Parameters<typeof toNumber>[0], unsigned);
  } else {
    for (let i = 0; i < count; i++) (out as Float32Array)[i] = toNumber(values[i] as Parameters<typeof toNumber>[0]);
  }
  return out;
}

/** Most elements a tensor may have: as many as a typed array may (2^32 - 1 bytes' worth of floats is less). */
const MAX_ELEMENTS = 2 ** 32;

/**
 * Checks a TensorProto without decoding it: known element type, and a data size that matches its dims.
 * Types redpp cannot decode (strings, complex, 4-bit) pass through untouched.
 */
export function checkTensorProto(proto: TensorProto, where: string): void {
  const what = `${where} tensor '${proto.name}'`;
  if (!isKnownDataType(proto.data_type)) {
    throw new RedppError(
      'UNSUPPORTED_DTYPE',
      `${what} has element type ${proto.data_type}, which is not an ONNX TensorProto.DataType`,
    );
  }
  const dims = proto.dims.map(toNumber);
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RedppError('INVALID_MODEL', `${what} has invalid dims [${dims}]`);
  }
  // Each dim may be fine and their product still beyond any array (2^40 elements, or 2^52 · 2^52 · 0,
  // which a float product turns into NaN): refused here, before anything sizes an allocation by it.
  let count = 1;
  for (const d of dims) count = d === 0 || count === 0 ? 0 : count * d;
  if (!Number.isSafeInteger(count) || !dims.every((d) => d <= MAX_ELEMENTS) || count > MAX_ELEMENTS) {
    throw new RedppError('INVALID_MODEL', `${what} has dims [${dims}]: more elements than any tensor can hold (${MAX_ELEMENTS})`);
  }
  if (isExternal(proto) || proto.data_type === DataType.STRING) return;
  if (hasField(proto, 'raw_data')) {
    const expected = byteSize(proto.data_type, elementCount(dims));
    if (expected !== undefined && proto.raw_data.byteLength !== expected) {
      throw new RedppError(
        'INVALID_MODEL',
        `${what}: raw_data has ${proto.raw_data.byteLength} bytes, dims [${dims}] of ` +
          `${dataTypeName(proto.data_type)} need ${expected}`,
      );
    }
  }
}
