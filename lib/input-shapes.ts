/**
 * Concrete shapes for a model's inputs: what MACs are counted at and what probe inputs are made of.
 * The user's `inputShapes` for the inputs they name, else the declared dims with each symbolic dim
 * taken from `dims` by name, or by the image-model conventions: 1 for the batch axis, 3 for the
 * channel axis of a 4-D input, 224 elsewhere.
 */
import { invalidOption, RedppError } from './errors';
import type { Graph } from './model/graph';

/** An input as declared: its dims, where strings (or negative numbers) are symbolic. */
export interface DeclaredInput {
  name: string;
  shape: readonly (number | string)[];
}

/**
 * Most elements of one input: probes and validation allocate inputs of this shape (2^28 floats is
 * 1 GiB; an image of 3 × 9459 × 9459).
 */
export const MAX_INPUT_ELEMENTS = 2 ** 28;

/** The concrete shape of one input (see the file comment); a given shape must fit the declared one. */
export function concreteShape(input: DeclaredInput, given: Readonly<Record<string, readonly number[]>>, dims: Readonly<Record<string, number>> = {}): number[] {
  const shape = resolveShape(input, given, dims);
  if (shape.reduce((a, d) => a * d, 1) > MAX_INPUT_ELEMENTS) {
    const text = `[${shape.join(', ')}]`;
    if (given[input.name]) throw invalidOption(`options.inputShapes.${input.name}`, `at most ${MAX_INPUT_ELEMENTS} elements`, text);
    throw new RedppError('INVALID_MODEL', `input '${input.name}' declares ${text}, more than ${MAX_INPUT_ELEMENTS} elements: give a smaller shape (inputShapes)`);
  }
  return shape;
}

function resolveShape(input: DeclaredInput, given: Readonly<Record<string, readonly number[]>>, dims: Readonly<Record<string, number>>): number[] {
  const shape = given[input.name];
  if (shape) {
    const option = `options.inputShapes.${input.name}`;
    const declared = `[${input.shape.join(', ')}]`;
    if (shape.length !== input.shape.length) {
      throw invalidOption(option, `${input.shape.length} dims (the model declares ${declared})`, shape);
    }
    shape.forEach((d, i) => {
      const fixed = input.shape[i];
      if (typeof fixed === 'number' && fixed >= 0 && fixed !== d) {
        throw invalidOption(`${option}[${i}]`, `${fixed} (the model declares ${declared})`, d);
      }
    });
    return [...shape];
  }
  return input.shape.map((d, i) => {
    if (typeof d === 'number' && d >= 0) return d;
    if (typeof d === 'string' && Object.hasOwn(dims, d)) return dims[d];
    if (i === 0) return 1;
    if (input.shape.length === 4 && i === 1) return 3;
    return 224;
  });
}

/** Concrete shapes of every input a caller feeds; a given shape for something that is not an input is refused. */
export function concreteInputShapes(graph: Graph, given: Readonly<Record<string, readonly number[]>>): Record<string, number[]> {
  const inputs = graph.runtimeInputs;
  for (const name of Object.keys(given)) {
    if (!inputs.some((i) => i.name === name)) {
      throw invalidOption(`options.inputShapes.${name}`, `the name of a model input (${inputs.map((i) => i.name).join(', ') || 'none'})`, name);
    }
  }
  const out: Record<string, number[]> = {};
  for (const input of inputs) {
    const dims = input.type?.tensor_type?.shape?.dim ?? [];
    const declared = dims.map((d) => (d.value === 'dim_value' ? Number(d.dim_value) : d.dim_param || '?'));
    out[input.name] = concreteShape({ name: input.name, shape: declared }, given);
  }
  return out;
}
