/**
 * Codec settings: how one layer's weights are stored. Plain data, so they cross to the pool's workers
 * and into the report as they are.
 *
 * - `dense`: as they are.
 * - `float16`: float32 weights stored as float16 (the graph computes in float32).
 * - `linear`: uniform per neuron, `bits` bits, a scale and an integer zero point per neuron.
 * - `hash`: RED++ hashing. Without `bits`, the binned KDE's own values per neuron (bandwidth `beta`);
 *   with `bits`, at most 2^bits values per group, refined from the KDE's intervals by Lloyd steps so
 *   that every level of the index is used. A group is a neuron or the whole layer (`granularity`).
 * `tables`: the precision of codebooks and scales in the file.
 */
import type { TablePrecision } from '../../kernels/quantize';
import { CODEC_NAMES, type CodecName } from '../../options/prune';

export { CODEC_NAMES, type CodecName };

export type Granularity = 'neuron' | 'layer';

export interface CodecSetting {
  codec: CodecName;
  /** linear: bits per weight; hash: 2^bits values per group at most (absent: the KDE's own count). */
  bits?: number;
  /** hash: the KDE's bandwidth factor. */
  beta?: number;
  /** hash: which weights share a codebook (default: each neuron its own). */
  granularity?: Granularity;
  /** linear, hash: precision of the codebooks and scales (default float16 for float32 weights with bits, else the weights' own). */
  tables?: TablePrecision;
}

/** Bits a linear codec may use: the index widths words.ts stores whole. */
export const LINEAR_BITS: readonly number[] = [12, 8, 6, 4, 3, 2];
/** 2^bits levels a capped hash codec may use. */
export const HASH_BITS: readonly number[] = [8, 6, 4, 3, 2, 1];

/** The bandwidth factor whose intervals start the refinement of a capped hash (RED++'s default). */
export const HASH_INIT_BETA = 0.05;

/** A short name of a setting for summaries: `hash 4-bit/layer f16`, `linear 8-bit`, `float16`. */
export function settingName(s: CodecSetting): string {
  const parts: string[] = [s.codec];
  if (s.bits !== undefined) parts.push(`${s.bits}-bit`);
  else if (s.codec === 'hash') parts.push(`beta ${s.beta ?? HASH_INIT_BETA}`);
  if (s.granularity === 'layer') parts.push('per layer');
  // Tables are float16 unless said otherwise (the candidates' default).
  if (s.tables === 'float32' && s.codec !== 'dense' && s.codec !== 'float16') parts.push('f32 tables');
  return parts.join(' ');
}

/**
 * The settings the budget chooses among for a layer of `fanIn` weights per neuron, weights of float32
 * (`float32`) or not: dense, float16, linear at 12, 8, 6 and 4 bits, hash at 2^1 to 2^8 values per neuron
 * and, where a neuron's codebook would cost as much as its weights (small fan-in), per layer.
 */
export function candidateSettings(fanIn: number, float32: boolean, allowed: readonly CodecName[] = CODEC_NAMES): CodecSetting[] {
  const tables: TablePrecision = 'float16';
  const out: CodecSetting[] = [{ codec: 'dense' }];
  if (float32) out.push({ codec: 'float16' });
  for (const bits of [12, 8, 6, 4]) out.push({ codec: 'linear', bits, tables });
  for (const bits of HASH_BITS) {
    // A neuron's codebook of 2^bits values is worth it only where the neuron has several times as many weights.
    if (2 ** bits * 4 <= fanIn) out.push({ codec: 'hash', bits, tables });
    out.push({ codec: 'hash', bits, tables, granularity: 'layer' });
  }
  return out.filter((s) => allowed.includes(s.codec));
}
