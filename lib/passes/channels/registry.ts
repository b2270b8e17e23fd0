/**
 * The one registry of channel rules: op type (and domain) -> rule. Built-in rules register themselves
 * from rules.ts; registerChannelRule() is the public hook for custom ops.
 */
import { RedppError } from '../../errors';
import { OpMap } from '../../model/op-map';
import type { ChannelRule } from './types';

const rules = new OpMap<ChannelRule>();

/**
 * Registers (or replaces) the rule for an op type. `domain` is '' for the default ONNX domain.
 * Returns a function that restores the previous rule.
 */
export function registerChannelRule(opType: string, rule: ChannelRule, domain = ''): () => void {
  if (typeof opType !== 'string' || opType === '') {
    throw new RedppError('INVALID_ARGUMENT', 'registerChannelRule: opType must be a non-empty string');
  }
  if (typeof rule !== 'function') {
    throw new RedppError('INVALID_ARGUMENT', `registerChannelRule: the rule for '${opType}' must be a function`);
  }
  return rules.set(domain, opType, rule);
}

export function findRule(domain: string, opType: string): ChannelRule | undefined {
  return rules.get(domain, opType);
}

/** Op types (default domain) that have a rule, for reports and docs. */
export function channelRuleOps(): string[] {
  return rules.opTypes('').sort();
}
