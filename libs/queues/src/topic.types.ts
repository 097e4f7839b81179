import type { ContentFormat, FilterType, NotifyStrategy, SubscriptionProtocol } from '@app/cmq';

/** A live topic as the publish path sees it. `id` is the internal bigint key, as a string. */
export interface TopicInfo {
  id: string;
  topicId: string;
  accountId: string;
  /** the account's appid: TopicOwner of pushes, createUin of GetTopicAttributes */
  owner: string;
  region: string;
  name: string;
  maxMsgSize: number;
  filterType: FilterType;
  msgRetentionSeconds: number;
  createTime: number;
  lastModifyTime: number;
  /** publish requests/s this topic accepts; null means the deployment's default */
  qpsLimit: number | null;
}

export interface TopicRow {
  id: string;
  topic_id: string;
  account_id: string;
  owner: string;
  region: string;
  name: string;
  max_msg_size: number;
  filter_type: number;
  msg_retention_seconds: number;
  create_time: string;
  last_modify_time: string;
  qps_limit: number | null;
}

export const TOPIC_COLUMNS = `id, topic_id, account_id, (SELECT a.app_id FROM accounts a WHERE a.id = topics.account_id)::text AS owner,
  region, name, max_msg_size, filter_type, msg_retention_seconds,
  extract(epoch FROM created_at)::bigint AS create_time, extract(epoch FROM last_modify_time)::bigint AS last_modify_time, qps_limit`;

export function toTopicInfo(r: TopicRow): TopicInfo {
  return {
    id: r.id,
    topicId: r.topic_id,
    accountId: r.account_id,
    owner: r.owner,
    region: r.region,
    name: r.name,
    maxMsgSize: r.max_msg_size,
    filterType: r.filter_type === 2 ? 2 : 1,
    msgRetentionSeconds: r.msg_retention_seconds,
    createTime: Number(r.create_time),
    lastModifyTime: Number(r.last_modify_time),
    qpsLimit: r.qps_limit,
  };
}

/** What Subscribe and SetSubscriptionAttributes set; undefined leaves a field as it is. */
export interface SubscriptionSettings {
  notifyStrategy?: NotifyStrategy;
  notifyContentFormat?: ContentFormat;
  filterTags?: string[];
  bindingKeys?: string[];
}

export interface NewSubscription extends SubscriptionSettings {
  name: string;
  protocol: SubscriptionProtocol;
  endpoint: string;
}
