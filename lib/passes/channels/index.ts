/**
 * The channel-dependency analysis (the centre of lib/passes/): which channels must be pruned
 * together, who creates and reads them, and which ops they flow through.
 */
import './rules';

export { analyzeChannels, channelSteps, channelSummary, type ChannelAnalysis, type AnalyzeOptions } from './analysis';
export { registerChannelRule, channelRuleOps } from './registry';
export { FIXED, channelCount, cutLayout, describeLayout, type Layout, type Segment } from './layout';
export { zeroMasks, siteZeros } from './zeros';
export { axisView, copySlice, sliceSize, slicesWhere, type AxisView } from './slices';
export type {
  ChannelContext,
  ChannelGroup,
  ChannelRule,
  ChannelSite,
  ProducerSpec,
  RewriteContext,
  RewriteFn,
  ZeroEnv,
  ZeroFn,
} from './types';
