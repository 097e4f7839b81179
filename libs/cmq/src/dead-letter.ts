import { CmqErrors } from './errors';
import { QUEUE_NAME_RE } from './limits';

/** The deadLetterPolicy parameter of CreateQueue and SetQueueAttributes, decoded (spec §9). */
export interface DeadLetterPolicyParam {
  deadLetterQueue: string;
  policy: 0 | 1;
  maxReceiveCount?: number;
  maxTimeToLive?: number;
}

export const DeadLetterLimits = {
  maxReceiveCount: { min: 1, max: 1000 },
  maxTimeToLive: { min: 300, max: 43_200 },
  /** source queues one dead-letter queue may serve */
  maxSources: 6,
} as const;

function integerIn(v: unknown, range: { min: number; max: number }): number | undefined {
  const n = typeof v === 'string' && /^\d{1,10}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= range.min && n <= range.max ? n : undefined;
}

/**
 * Decodes and checks a deadLetterPolicy JSON string, field by field in the order the protocol's
 * errors name them. The binding itself (queue exists, no nesting, at most six sources, TTL below
 * the source's retention) is checked against the stored queues by the caller.
 */
export function parseDeadLetterPolicy(raw: string): DeadLetterPolicyParam {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw CmqErrors.deadLetterNotJson();
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw CmqErrors.deadLetterNotJson();
  const o = v as Record<string, unknown>;
  if (typeof o.deadLetterQueue !== 'string' || o.deadLetterQueue === '') throw CmqErrors.deadLetterQueueMember();
  if (!QUEUE_NAME_RE.test(o.deadLetterQueue)) throw CmqErrors.deadLetterQueueMissing();
  const policy = o.policy === 0 || o.policy === '0' ? 0 : o.policy === 1 || o.policy === '1' ? 1 : undefined;
  if (policy === undefined) throw CmqErrors.deadLetterPolicyMember();
  if (policy === 0) {
    const maxReceiveCount = integerIn(o.maxReceiveCount, DeadLetterLimits.maxReceiveCount);
    if (maxReceiveCount === undefined) throw CmqErrors.deadLetterParams();
    return { deadLetterQueue: o.deadLetterQueue, policy, maxReceiveCount };
  }
  const maxTimeToLive = integerIn(o.maxTimeToLive, DeadLetterLimits.maxTimeToLive);
  if (maxTimeToLive === undefined) throw CmqErrors.deadLetterParams();
  return { deadLetterQueue: o.deadLetterQueue, policy, maxTimeToLive };
}
