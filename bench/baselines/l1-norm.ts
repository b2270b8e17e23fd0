/**
 * L1-norm filter pruning (Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets",
 * ICLR 2017), data-free and without fine-tuning: in each layer, the filters with the smallest sum of
 * absolute weights go; their channels simply disappear from the next layers. A channel group with
 * several producers (a residual Add ties them) ranks a channel by the sum of its rows' L1 norms over
 * the producers. Biases do not count (the paper ranks the kernel weights).
 */
import type { ChannelAnalysis, ChannelGroup } from '../../lib/passes/channels';
import { channelSlice, type BaselineMethod, type Removal } from './plan';

/** Per channel of the group: the L1 norm of its rows in every producer's weight. */
export function l1Norms(analysis: ChannelAnalysis, g: ChannelGroup): Float64Array {
  const norms = new Float64Array(g.channels);
  const weights = g.producers.filter((s) => s.input === 1 || (s.node.opType === 'MatMul' && s.input === 0));
  for (const site of weights) {
    for (let c = 0; c < g.channels; c++) {
      const row = channelSlice(analysis.graph, site, g.id, c);
      let s = 0;
      for (let k = 0; k < row.length; k++) s += Math.abs(row[k]);
      norms[c] += s;
    }
  }
  return norms;
}

export const l1NormPruning: BaselineMethod = {
  name: 'L1-norm (Li et al. 2017)',
  order(analysis, g) {
    const norms = l1Norms(analysis, g);
    const cells: Removal[][] = [];
    for (let k = 0; k + 1 < g.cells.length; k++) {
      const idx: number[] = [];
      for (let c = g.cells[k]; c < g.cells[k + 1]; c++) idx.push(c);
      // Smallest norm first; ties by index, so the order is deterministic. The largest is kept.
      idx.sort((a, b) => norms[a] - norms[b] || a - b);
      cells.push(idx.slice(0, -1).map((channel) => ({ channel, into: -1, scale: 1 })));
    }
    return cells;
  },
};
