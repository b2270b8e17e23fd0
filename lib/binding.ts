/**
 * The only file that loads the native addon and types its surface. If the addon cannot load, every
 * kernel falls back to its TypeScript reference, and the first use says so once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Numeric codes shared with native/simd.h and native/hash.h. */
export const SIMD_LEVELS = { auto: 0, scalar: 1, avx2: 2, avx512: 3 } as const;
export type SimdName = keyof typeof SIMD_LEVELS;
export const CENTER_CODES = { mean: 0, mode: 1 } as const;
export const DEVICE_CODES = { cpu: 0, cuda: 1 } as const;

export interface NativeBinding {
  hashWeights(
    weights: Float32Array,
    groupSize: number,
    beta: number,
    center: number,
    threads: number,
    simd: number,
    device: number,
    values: Float32Array,
    distinct: Uint32Array,
    rms: Float64Array,
  ): Promise<number>;
  /** hashWeights() on the calling thread, blocking it (a pool worker's): the index of the first NaN/Inf weight, or -1. */
  hashWeightsBlocking(...args: Parameters<NativeBinding['hashWeights']>): number;
  /**
   * Palette coding (native/palette.h): writes index and counts; returns the firsts, or null when a
   * neuron has more values than the index's width addresses (256, 65536). `width`: words per element
   * (2: a 64-bit element).
   */
  codeNeurons(
    words: Uint16Array | Uint32Array,
    width: number,
    neuronAt: Uint32Array,
    placeAt: Uint32Array,
    index: Uint8Array | Uint16Array,
    counts: Uint32Array,
    /** CPU threads, each coding a part of the neurons (one where a layout puts two neurons' weights among each other's). */
    threads?: number,
  ): Uint32Array | null;
  /** The indices as a little-endian bitstream of `bits`-bit fields (native/palette.h); `out` apart from `index`, or over it in place. */
  packIndices(index: Uint8Array | Uint16Array, bits: number, out: Uint8Array): void;
  /** The sum of squares in 8 lanes (native/weight_stats.h). */
  sumOfSquares(x: Float32Array): number;
  /** Exact zeros per group of `groupSize` (native/weight_stats.h). */
  zerosPerGroup(x: Float32Array, groupSize: number, zeros: Uint32Array): void;
  /** Each row copied and sorted as TypedArray sort does, and its distinct values counted (native/quantize.h). */
  sortRows(rows: Float32Array, rowLength: number, sorted: Float32Array, distinct: Uint32Array): void;
  /** Each weight replaced by its nearest of the sorted centers, the lower on a tie (native/quantize.h). */
  nearestCenters(x: Float32Array, centers: Float64Array, out: Float32Array): void;
  /** Uniform quantization of each row (native/quantize.h), as uniformRowsReference; false when a row holds a non-finite value. */
  uniformRows(
    rows: Float32Array,
    rowLength: number,
    bits: number,
    halfTables: boolean,
    clips: Float64Array,
    simd: number,
    scale: Float32Array,
    zeroPoint: Float32Array,
    q: Uint16Array,
    values: Float32Array,
  ): boolean;
  /** float16 bits to float32 (native/half.h), as dtype.ts's float16BitsToNumber. */
  halfToFloat(src: Uint16Array, dst: Float32Array): void;
  /** float32 to float16 bits (native/half.h), as dtype.ts's numberToFloat16Bits. */
  floatToHalf(src: Float32Array, dst: Uint16Array): void;
  /** Row r of `fanIn` consecutive weights times factors[r] (native/scale.h), as grid.ts's scaleRowsReference; w holds fanIn per factor. */
  scaleRows(w: Float32Array, fanIn: number, factors: Float64Array): void;
  /**
   * Each array's bytes set to zero, their whole pages given back to the OS (native/pages.h), on a libuv
   * thread; resolves to the bytes given back in all. Nothing may read or write the bytes until then.
   */
  releasePages(views: Uint8Array[]): Promise<number>;
  /** Transparent huge pages asked for the array's whole 2 MiB-aligned stretches (native/pages.h); returns the bytes advised. */
  adviseHugePages(bytes: Uint8Array): number;
  /**
   * Moves within `bytes`, as (from, to, length) triples, each as memmove does (native/pages.h), on a
   * libuv thread; resolves to the bytes moved. Nothing may read or write the bytes until then.
   */
  moveBytes(bytes: Uint8Array, moves: Float64Array): Promise<number>;
  /** Each channel's fingerprint (native/channels.h), as merge/prints.ts's channelPrint. */
  channelPrints(words: Uint32Array, outer: number, length: number, stride: number, inner: number, prints: Uint32Array): void;
  /** A conv's shared kernels per input channel (native/channels.h), as kernel-split/sharing.ts's reference; `starts` null unless the kernels are wanted. */
  kernelSharing(bits: Uint32Array, cout: number, cin: number, k: number, index: Int32Array, counts: Uint32Array, starts: Uint32Array | null): void;
  simdSupported(level: number): boolean;
  bestSimdLevel(): number;
  /** '' when a CUDA device can run the kernels, otherwise why not. */
  cudaStatus(): string;
  hashConstants: Record<string, number>;
}

/** The package root: the directory that holds binding.gyp (from lib/ in tests, dist/lib/ when built). */
export const packageRoot = findRoot(__dirname);

/** redpp's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

function findRoot(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'binding.gyp'))) return d;
    if (path.dirname(d) === d) return path.resolve(__dirname, '..');
  }
}

/**
 * Where the addon is looked for, in order: a local build (`npm run build:native`), then the prebuilt
 * binary for this platform that the package ships (`npm run prebuild` makes it:
 * prebuilds/<platform>-<arch>/redpp.napi[.musl].node, one N-API build for every Node version). The
 * local build first, as node-gyp-build orders them: an installed package has none unless its user
 * built one on purpose, and in a checkout the copy `npm pack` leaves in prebuilds/ must not shadow a
 * rebuild of the kernels. REDPP_ADDON names a build elsewhere instead (the CUDA one).
 */
export function addonCandidates(): string[] {
  const fromEnv = process.env.REDPP_ADDON;
  if (fromEnv) return [path.resolve(fromEnv)];
  const libc = process.platform === 'linux' && isMusl() ? '.musl' : '';
  return [
    path.join(packageRoot, 'build', 'Release', 'redpp.node'),
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, `redpp.napi${libc}.node`),
  ];
}

/**
 * Whether this Linux runs on musl (Alpine). The ldd script names its C library, as detect-libc reads
 * it: a file read, where the process report (glibc reports its version there) takes 5-20 ms of the
 * event loop, which the first kernel call of a prune paid. The report where ldd says neither.
 */
function isMusl(): boolean {
  let ldd = '';
  try {
    ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
  } catch {
    // No ldd (a distroless image): the report tells.
  }
  if (ldd.includes('musl')) return true;
  if (ldd.includes('GNU C Library')) return false;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime === undefined;
}

/**
 * Every export of the addon the code calls (the type keeps the list whole): a build without one of them
 * (older than this package, as a CUDA build named by REDPP_ADDON can be) does not load, instead of
 * failing at the first call of what it lacks.
 */
const EXPORTS: Record<keyof NativeBinding, true> = {
  hashWeights: true,
  hashWeightsBlocking: true,
  codeNeurons: true,
  packIndices: true,
  sumOfSquares: true,
  zerosPerGroup: true,
  sortRows: true,
  nearestCenters: true,
  uniformRows: true,
  halfToFloat: true,
  floatToHalf: true,
  scaleRows: true,
  releasePages: true,
  adviseHugePages: true,
  moveBytes: true,
  channelPrints: true,
  kernelSharing: true,
  simdSupported: true,
  bestSimdLevel: true,
  cudaStatus: true,
  hashConstants: true,
};

let loaded: { binding: NativeBinding | null; error: string } | undefined;

function load(): { binding: NativeBinding | null; error: string } {
  const failures: string[] = [];
  for (const file of addonCandidates()) {
    try {
      const binding = require(file) as NativeBinding;
      const missing = Object.keys(EXPORTS).filter((name) => !(name in binding));
      if (missing.length > 0) throw new Error(`a build older than this package, without ${missing.join(', ')}`);
      return { binding, error: '' };
    } catch (e) {
      failures.push(`${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return {
    binding: null,
    error:
      `could not load the native addon (tried ${failures.join('; ')}). ` +
      'Build it with `npm run build:native` in the redpp package folder (needs python3, make and a C++17 compiler).',
  };
}

/** The addon, or null when it could not load (see nativeLoadError). */
export function native(): NativeBinding | null {
  loaded ??= load();
  return loaded.binding;
}

export function nativeLoadError(): string {
  loaded ??= load();
  return loaded.error;
}

let warned = false;

/** Called where a kernel falls back to its TypeScript reference: warns once per process. */
export function warnFallback(): void {
  if (warned) return;
  warned = true;
  process.emitWarning(`redpp ${nativeLoadError()} Falling back to the TypeScript reference kernels (slow).`, {
    code: 'REDPP_NATIVE_FALLBACK',
  });
}
