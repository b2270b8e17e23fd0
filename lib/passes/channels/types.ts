/**
 * The public shapes of the channel-dependency analysis: groups, the sites where a group's channels
 * index a constant, and the contract every op's channel rule implements.
 */
import type { Graph, Node, Tensor } from '../../model';
import type { Dim } from '../../model/shapes';
import type { Layout } from './layout';

/**
 * A constant whose `axis` follows a channel layout: a producer's weight rows (output neurons), a
 * consumer's input slices, or a per-channel parameter of an op the channels flow through.
 */
export interface ChannelSite {
  role: 'producer' | 'consumer' | 'param';
  /** The node that reads the constant. */
  node: Node;
  /** Which of the node's inputs the constant is. */
  input: number;
  /** The constant's value name (as read when analysed). */
  value: string;
  /** The constant's axis that indexes channels. */
  axis: number;
  /** Channel layout along `axis`: segment i covers positions [offset_i*inner, (offset_i+length_i)*inner). */
  layout: Layout;
  /** For a consumer: the activation it reads the channels from. */
  reads?: string;
}

export interface ChannelGroup {
  id: number;
  /** Number of channels (output neurons of each producer). */
  channels: number;
  /** Weights (and biases) whose rows create the channels; every producer covers all channels. */
  producers: ChannelSite[];
  /** Weights that read the channels as input features. */
  consumers: ChannelSite[];
  /** Per-channel parameters on the way (depthwise weights, BatchNormalization, per-channel constants). */
  params: ChannelSite[];
  /** Every node the channels flow through, producers and consumers included, in graph order. */
  nodes: Node[];
  /** Every tensor that carries (some of) the channels. */
  values: string[];
  /**
   * Cell boundaries [0, ..., channels]: a Split or Slice sends channel ranges to different places,
   * so two channels may only be merged when they lie in the same cell.
   */
  cells: number[];
  /** Why the channels cannot be pruned; empty when they can. */
  blocked: string[];
}

/**
 * Called at edit time for a node whose constants depend on channel counts (Split sizes, Reshape
 * shapes), with the layout it registered, its groups resolved to the final group ids.
 */
export type RewriteFn = (ctx: RewriteContext, layout: Layout) => void;

export interface RewriteContext {
  readonly graph: Graph;
  readonly opset: number;
  /** How many of the channels at positions [from, to) of `layout` remain after the edit. */
  kept(layout: Layout, from?: number, to?: number): number;
  /** The constant this node reads at `input`, copied first when another reader shares it. */
  writable(node: Node, input: number): Tensor | undefined;
}

/**
 * Per channel position of a tensor: 1 where the channel is exactly zero everywhere. `mask` gives
 * the masks of the node's inputs (undefined: nothing known to be zero), `rowZero` the all-zero rows
 * (weights and bias) of a producer site.
 */
export interface ZeroEnv {
  mask(value: string): Uint8Array | undefined;
  rowZero(site: ChannelSite): Uint8Array;
}
export type ZeroFn = (env: ZeroEnv) => Uint8Array | undefined;

/** What a rule sees and records. Rules run once per node, in topological order. */
export interface ChannelContext {
  readonly graph: Graph;
  /** The default-domain opset the model imports. */
  readonly opset: number;
  /** The channel layout a value carries, or undefined when it carries none that redpp tracks. */
  layout(value: string): Layout | undefined;
  /** The statically inferred shape of a value (numbers, or symbols for unknown dims). */
  shape(value: string): readonly Dim[] | undefined;
  /** The constant behind a value (initializer or Constant node). */
  constant(value: string): Tensor | undefined;
  /** The integer values of a small tensor: a constant, or one that shape inference evaluated. */
  ints(value: string): number[] | undefined;
  /** Sets an output's layout: the channels pass through the node. */
  setLayout(node: Node, value: string, layout: Layout): void;
  /** The node's output neurons create a new group; returns its layout (set on the output). */
  produce(node: Node, spec: ProducerSpec): Layout;
  /** The node reads `data`'s channels as input features of the constant at `weight.input`. */
  consume(node: Node, data: string, weight: { input: number; axis: number }): void;
  /** The constant at `input` holds one slice per channel of `layout` along `axis`. */
  param(node: Node, input: number, axis: number, layout: Layout): void;
  /** Ties layouts that must keep the same channels (a residual Add); blocks them when they cannot be tied. */
  couple(node: Node, layouts: readonly Layout[]): boolean;
  /** Marks the channels of a layout (or of the layout a value carries) as not prunable. */
  block(target: Layout | string, reason: string): void;
  /** Registers a fix of this node's shape constants, run when the channels of `layout` change. */
  rewrite(node: Node, layout: Layout, fn: RewriteFn): void;
  /** How exact zeros pass to `value` (for dead-channel removal); without one, nothing is known zero. */
  zero(value: string, fn: ZeroFn): void;
}

export interface ProducerSpec {
  /** Which output the channels appear on (default 0). */
  output?: number;
  /** Channel axis of the output, and its rank. */
  axis: number;
  rank: number;
  channels: number;
  weight: { input: number; axis: number };
  bias?: { input: number; axis: number };
  /** The output adds a non-zero constant shared by all channels (Gemm's scalar C): none starts at zero. */
  offset?: boolean;
}

/**
 * One op type's contract: given the layouts of the node's inputs (ctx.layout), say where its outputs'
 * channels come from. Anything the rule does not understand it must block; an input that carries
 * channels and that the rule never looked at is blocked for it.
 */
export type ChannelRule = (node: Node, ctx: ChannelContext) => void;
