/**
 * The checks every option resolver uses (one module, one error factory: invalidOption names the option,
 * what was expected and what was given). Resolvers merge the user's options over their defaults once;
 * what they return is trusted downstream and never checked again.
 */
import { RedppError, invalidOption } from '../errors';

/** The user's options, checked to be an object whose every key the resolver knows. */
export function userOptions<T extends object>(options: T | undefined, known: readonly string[], name = 'options'): Partial<T> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw invalidOption(name, 'an object', options);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    // A '__proto__' key (from JSON.parse) is an own property like any other here: ignored, never merged.
    if (key === '__proto__' || value === undefined) continue;
    if (!known.includes(key)) {
      const renamed = RENAMED[key];
      throw new RedppError(
        'INVALID_OPTION',
        renamed ? `${name}.${key} was renamed ${name}.${renamed}` : `Unknown option ${name}.${key} (known: ${known.join(', ')})`,
      );
    }
    out[key] = value;
  }
  return out as Partial<T>;
}

/** Options of earlier versions, under their new names. */
const RENAMED: Record<string, string> = { split: 'kernelSplit', shapes: 'inputShapes' };

export function oneOf<T extends string>(name: string, values: readonly T[], v: unknown): T {
  if (!values.includes(v as T)) throw invalidOption(name, `one of ${values.join(', ')}`, v);
  return v as T;
}

export function finiteNumber(name: string, v: unknown, range: { min?: number; below?: number } = {}): number {
  const { min = -Infinity, below = Infinity } = range;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v >= below) {
    const expected =
      below < Infinity ? `a number in [${min}, ${below})` : min > -Infinity ? `a finite number >= ${min}` : 'a finite number';
    throw invalidOption(name, expected, v);
  }
  return v;
}

export function integer(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    throw invalidOption(name, max < Number.MAX_SAFE_INTEGER ? `an integer between ${min} and ${max}` : `an integer >= ${min}`, v);
  }
  return v as number;
}

export function boolean(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalidOption(name, 'a boolean', v);
  return v;
}

/** Layer names or patterns (skip lists). */
export function layerPatterns(name: string, v: unknown): (string | RegExp)[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' || s instanceof RegExp)) {
    throw invalidOption(name, 'an array of strings and RegExps', v);
  }
  return [...v];
}

/** Shapes by input name: arrays of positive integers. */
export function inputShapes(name: string, v: unknown): Record<string, number[]> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalidOption(name, 'an object of input names to shapes', v);
  const out: Record<string, number[]> = {};
  for (const [input, s] of Object.entries(v)) {
    if (!Array.isArray(s) || !s.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw invalidOption(`${name}.${input}`, 'an array of positive integers', s);
    }
    out[input] = [...s];
  }
  return out;
}
