/**
 * Where a codec's export goes: a ChainSite adds the constants and nodes that rebuild a weight in the
 * graph (export.ts gives one on the graph), or only counts the bytes they would add to the file
 * (measuringSite: how the allocator and the export price a form before writing it).
 */
import type { TensorData } from '../../model/dtype';

/**
 * In the name of every node a codec writes; how the reader recognises one (0.1 wrote 'redpp_pack',
 * which it matches too).
 */
export const PACK_MARK = 'redpp';

/**
 * The prefix of a chain's names, as short as a unique name can be ('redpp', 'redpp_1', ...): a chain
 * has up to a dozen nodes and constants, each name written twice or more, and on a model of many small
 * layers long names (the weight's, say) would cost more than the codes. The chain's output keeps the
 * weight's own name.
 */
export function chainBase(uniqueName: (base: string) => string): string {
  return uniqueName(PACK_MARK);
}

/** What measuringSite() prices names at: a base as long as that of the thousandth chain. */
const TYPICAL_BASE = `${PACK_MARK}_999`;

/** What a dry run knows of a tensor's data: its size. */
export interface ByteCount {
  readonly byteLength: number;
}

export interface ChainSite {
  opset: number;
  /** Adds a constant and returns its name (a measuring site is given only the data's size). */
  constant(what: string, dataType: number, dims: readonly number[], data: TensorData | ByteCount): string;
  /** Adds a node and returns its output's name (`output` when given). */
  node(opType: string, inputs: string[], attributes: Record<string, number | number[]>, output?: string): string;
}

/**
 * A site that adds nothing and counts the bytes the chain would add to the file: tensor data plus the
 * protobuf fields around it (names, dims, attributes), as an initializer or as a Constant node.
 */
export function measuringSite(opset: number, constantNodes: boolean): ChainSite & { bytes: number } {
  const base = TYPICAL_BASE;
  let outputs = 0;
  const field = (length: number) => length + 1 + (length < 128 ? 1 : length < 16384 ? 2 : 4);
  const site = {
    opset,
    bytes: 0,
    constant(what: string, dataType: number, dims: readonly number[], data: TensorData | ByteCount) {
      const name = `${base}/${what}`;
      const tensor = field(name.length) + dims.length * 3 + 2 + field(data.byteLength);
      site.bytes += field(constantNodes ? field('Constant'.length) + 2 * field(name.length) + field(tensor + 10) : tensor);
      return name;
    },
    node(opType: string, inputs: string[], attributes: Record<string, number | number[]>, output?: string) {
      const out = output ?? `${base}/${outputs++}`;
      const attrs = Object.entries(attributes).reduce((a, [k, v]) => a + field(field(k.length) + 2 + (Array.isArray(v) ? v.length * 3 + 2 : 3)), 0);
      site.bytes += field(field(opType.length) + field(`${base}/${opType}`.length) + inputs.reduce((a, i) => a + field(i.length), 0) + field(out.length) + attrs);
      return out;
    },
  };
  return site;
}
