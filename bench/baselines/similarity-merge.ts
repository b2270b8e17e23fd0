/**
 * Similarity-based neuron merging (Srinivas & Babu, "Data-free Parameter Pruning for Deep Neural
 * Networks", BMVC 2015). Two neurons i, j of a layer with weight vectors W_i, W_j (here: the rows of
 * every producer of the channel group, bias included) and outgoing weights a_i, a_j (their slices in
 * every consumer): removing j and adding a_j into a_i changes the next layer's input by
 * a_j (h(W_j x) - h(W_i x)), whose expected size the paper bounds by the saliency
 * s_ij = <a_j^2> ||W_j - W_i||^2. For ReLU nets, which are positively homogeneous, a neuron that is a
 * positive multiple of another, W_j = alpha W_i, gives h(W_j x) = alpha h(W_i x): the merge is then
 * a_i <- a_i + alpha a_j, with alpha = ||W_j|| / ||W_i||, and the saliency measures the residual
 * ||W_j - alpha W_i||^2 (plus the difference of their per-channel parameters, e.g. depthwise kernels,
 * which the merge replaces by i's). The paper's greedy surgery: repeatedly remove the pair of
 * smallest saliency, with a_i updated after each merge. Data-free, no fine-tuning.
 */
import type { ChannelAnalysis, ChannelGroup } from '../../lib/passes/channels';
import { channelSlice, type BaselineMethod, type Removal } from './plan';

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
};

/** The greedy merge order of channels [lo, hi) of a group. */
export function mergeOrder(analysis: ChannelAnalysis, g: ChannelGroup, lo: number, hi: number): Removal[] {
  const graph = analysis.graph;
  const n = hi - lo;
  const w: Float64Array[] = [];
  const p: Float64Array[] = [];
  const a: Float64Array[] = [];
  for (let c = lo; c < hi; c++) {
    w.push(concat(g.producers.map((s) => channelSlice(graph, s, g.id, c))));
    p.push(concat(g.params.map((s) => channelSlice(graph, s, g.id, c))));
    a.push(concat(g.consumers.map((s) => channelSlice(graph, s, g.id, c))));
  }
  const norm = w.map((v) => Math.sqrt(dot(v, v)));
  // d[i*n + j]: residual of replacing j by alpha_ij * i, alpha_ij = |W_j| / |W_i|.
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const cos = norm[i] > 0 && norm[j] > 0 ? dot(w[i], w[j]) / (norm[i] * norm[j]) : 0;
      let pd = 0;
      for (let k = 0; k < p[i].length; k++) pd += (p[i][k] - p[j][k]) ** 2;
      const base = Math.max(0, 2 - 2 * cos);
      d[i * n + j] = norm[j] ** 2 * base + pd; // j merged into i
      d[j * n + i] = norm[i] ** 2 * base + pd; // i merged into j
    }
  }
  const alive = new Uint8Array(n).fill(1);
  const energy = a.map((v) => dot(v, v) / Math.max(1, v.length));
  const best = new Int32Array(n);
  const findBest = (j: number) => {
    let bi = -1;
    let bd = Infinity;
    for (let i = 0; i < n; i++) {
      if (i === j || !alive[i]) continue;
      if (d[i * n + j] < bd) [bd, bi] = [d[i * n + j], i];
    }
    best[j] = bi;
  };
  for (let j = 0; j < n; j++) findBest(j);
  const order: Removal[] = [];
  for (let step = 0; step + 1 < n; step++) {
    let jStar = -1;
    let sStar = Infinity;
    for (let j = 0; j < n; j++) {
      if (!alive[j] || best[j] < 0) continue;
      const s = energy[j] * d[best[j] * n + j];
      if (s < sStar || jStar < 0) [sStar, jStar] = [s, j];
    }
    if (jStar < 0) break;
    const i = best[jStar];
    const alpha = norm[i] > 0 ? norm[jStar] / norm[i] : 1;
    order.push({ channel: lo + jStar, into: lo + i, scale: alpha });
    alive[jStar] = 0;
    // a_i <- a_i + alpha a_j: i's outgoing weights (and so its saliency) change.
    const ai = a[i];
    const aj = a[jStar];
    for (let k = 0; k < ai.length; k++) ai[k] += alpha * aj[k];
    energy[i] = dot(ai, ai) / Math.max(1, ai.length);
    for (let j = 0; j < n; j++) if (alive[j] && best[j] === jStar) findBest(j);
  }
  return order;
}

export const similarityMerging: BaselineMethod = {
  name: 'Merging (Srinivas & Babu 2015)',
  order(analysis, g) {
    const cells: Removal[][] = [];
    for (let k = 0; k + 1 < g.cells.length; k++) cells.push(mergeOrder(analysis, g, g.cells[k], g.cells[k + 1]));
    return cells;
  },
};
