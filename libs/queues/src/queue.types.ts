import type { QueueAttributeName } from '@app/cmq';

export type QueueAttributes = Record<QueueAttributeName, number>;

/** A live queue as the hot path sees it. `id` is the internal bigint key, as a string. */
export interface QueueInfo extends QueueAttributes {
  id: string;
  queueId: string;
  accountId: string;
  region: string;
  name: string;
  createTime: number;
  lastModifyTime: number;
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
}

export const QUEUE_COLUMNS = `id, queue_id, account_id, region, name, max_msg_heap_num, polling_wait_seconds,
  visibility_timeout, max_msg_size, msg_retention_seconds, rewind_seconds,
  extract(epoch FROM created_at)::bigint AS create_time, extract(epoch FROM last_modify_time)::bigint AS last_modify_time`;

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
  };
}
