import type { QueueAttributeName } from '@app/cmq';

export type QueueAttributes = Record<QueueAttributeName, number>;

/** A dead-letter binding: where a source queue's dead messages go, and when a message is dead. */
export interface DeadLetterPolicy {
  /** internal id of the dead-letter queue */
  queueId: string;
  queueName: string;
  /** 0: received maxReceiveCount times without a delete; 1: older than maxTimeToLive seconds */
  policy: 0 | 1;
  maxReceiveCount?: number;
  maxTimeToLive?: number;
}

/** A live queue as the hot path sees it. `id` is the internal bigint key, as a string. */
export interface QueueInfo extends QueueAttributes {
  id: string;
  queueId: string;
  accountId: string;
  region: string;
  name: string;
  createTime: number;
  lastModifyTime: number;
  deadLetter: DeadLetterPolicy | null;
  /** requests/s this queue accepts; null means the deployment's default */
  qpsLimit: number | null;
}

/** Which tenant and region a request acts in. Every queue lookup is scoped by it. */
export interface TenantScope {
  accountId: string;
  region: string;
}

export interface QueueRow {
  id: string;
  queue_id: string;
  account_id: string;
  region: string;
  name: string;
  max_msg_heap_num: string;
  polling_wait_seconds: number;
  visibility_timeout: number;
  max_msg_size: number;
  msg_retention_seconds: number;
  rewind_seconds: number;
  create_time: string;
  last_modify_time: string;
  dead_letter_queue: string | null;
  dead_letter_name: string | null;
  dead_letter_policy: number | null;
  max_receive_count: number | null;
  max_time_to_live: number | null;
  qps_limit: number | null;
}

export const QUEUE_COLUMNS = `id, queue_id, account_id, region, name, max_msg_heap_num, polling_wait_seconds,
  visibility_timeout, max_msg_size, msg_retention_seconds, rewind_seconds,
  extract(epoch FROM created_at)::bigint AS create_time, extract(epoch FROM last_modify_time)::bigint AS last_modify_time,
  dead_letter_queue, (SELECT d.name FROM queues d WHERE d.id = queues.dead_letter_queue) AS dead_letter_name,
  dead_letter_policy, max_receive_count, max_time_to_live, qps_limit`;

export function toQueueInfo(r: QueueRow): QueueInfo {
  return {
    id: r.id,
    queueId: r.queue_id,
    accountId: r.account_id,
    region: r.region,
    name: r.name,
    maxMsgHeapNum: Number(r.max_msg_heap_num),
    pollingWaitSeconds: r.polling_wait_seconds,
    visibilityTimeout: r.visibility_timeout,
    maxMsgSize: r.max_msg_size,
    msgRetentionSeconds: r.msg_retention_seconds,
    rewindSeconds: r.rewind_seconds,
    createTime: Number(r.create_time),
    lastModifyTime: Number(r.last_modify_time),
    deadLetter:
      r.dead_letter_queue === null
        ? null
        : {
            queueId: r.dead_letter_queue,
            queueName: r.dead_letter_name ?? '',
            policy: r.dead_letter_policy === 1 ? 1 : 0,
            ...(r.dead_letter_policy === 1 ? { maxTimeToLive: r.max_time_to_live! } : { maxReceiveCount: r.max_receive_count! }),
          },
    qpsLimit: r.qps_limit,
  };
}

/** deadLetterPolicy as GetQueueAttributes echoes it: the JSON string CreateQueue takes. */
export function deadLetterPolicyJson(d: DeadLetterPolicy): string {
  return JSON.stringify({
    deadLetterQueue: d.queueName,
    policy: d.policy,
    ...(d.policy === 0 ? { maxReceiveCount: d.maxReceiveCount } : { maxTimeToLive: d.maxTimeToLive }),
  });
}
