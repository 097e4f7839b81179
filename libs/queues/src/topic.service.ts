import { Inject, Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { bindingPattern, CmqErrors, FilterType, TopicLimits } from '@app/cmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { actorFields, appendAudit, AuditActor } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { containing, newResourceId } from './queue.service';
import type { TenantScope } from './queue.types';
import { TopicRegistry } from './topic-registry';
import { NewSubscription, SubscriptionSettings, TOPIC_COLUMNS, TopicRow } from './topic.types';

interface SubscriptionRow {
  id: string;
  subscription_id: string;
  name: string;
  protocol: 'http' | 'queue';
  endpoint: string;
  notify_strategy: string;
  notify_content_format: string;
  filter_tags: string[];
  binding_keys: string[];
  create_time: string;
  last_modify_time: string;
  pending: string;
}

const SUBSCRIPTION_COLUMNS = `s.id, s.subscription_id, s.name, s.protocol, s.endpoint, s.notify_strategy, s.notify_content_format,
  s.filter_tags, s.binding_keys, extract(epoch FROM s.created_at)::bigint AS create_time,
  extract(epoch FROM s.last_modify_time)::bigint AS last_modify_time,
  (SELECT count(*) FROM push_deliveries d WHERE d.subscription_id = s.id) AS pending`;

/** The live topic row of a name, locked for the transaction (`FOR UPDATE` or `FOR SHARE`). */
async function lockTopic(c: PoolClient, scope: TenantScope, name: string, mode: 'UPDATE' | 'SHARE'): Promise<TopicRow> {
  const { rows } = await c.query<TopicRow>(
    `SELECT ${TOPIC_COLUMNS} FROM topics
      WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL
      FOR ${mode}`,
    [scope.accountId, scope.region, name],
  );
  if (!rows[0]) throw CmqErrors.topicNotExist();
  return rows[0];
}

/** A routing topic's subscription needs binding keys (10710); a tag topic's keeps none. */
function checkFilters(filterType: FilterType, bindingKeys: readonly string[]): void {
  if (filterType === 2 && bindingKeys.length === 0) throw CmqErrors.lackBindingKey();
}

/**
 * Topic and subscription management (the CMQ actions of spec §10). A topic's changes lock its
 * row, so DeleteTopic and Subscribe cannot cross (a topic is never deleted with a subscription
 * made meanwhile), and the subscription limit is judged one Subscribe at a time. Every change
 * commits with its audit entry.
 */
@Injectable()
export class TopicService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly registry: TopicRegistry,
  ) {}

  private tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  private audit(c: PoolClient, by: AuditActor, scope: TenantScope, subject: string, action: string, details: Record<string, unknown>) {
    return appendAudit(c, {
      domain: 'queues',
      action,
      ...actorFields(by),
      accountId: scope.accountId,
      subject,
      details,
    });
  }

  async create(scope: TenantScope, name: string, maxMsgSize: number, filterType: FilterType, by: AuditActor): Promise<string> {
    const topicId = newResourceId('topic');
    const { maxTopicsPerAccount, queueNameCooldownSeconds } = this.config.cmq;
    try {
      await this.tx(async (c) => {
        const { rows: same } = await c.query<{ live: boolean; recent: boolean }>(
          `SELECT bool_or(deleted_at IS NULL) AS live, bool_or(deleted_at IS NOT NULL) AS recent
             FROM topics WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3)
              AND (deleted_at IS NULL OR deleted_at > now() - make_interval(secs => $4))`,
          [scope.accountId, scope.region, name, queueNameCooldownSeconds],
        );
        if (same[0].live) throw CmqErrors.topicExists();
        if (same[0].recent) throw CmqErrors.topicNameCooldown();
        if (maxTopicsPerAccount > 0) {
          await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('topics:' || $1, 0))`, [scope.accountId]);
          const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM topics WHERE account_id = $1 AND deleted_at IS NULL`, [
            scope.accountId,
          ]);
          if (Number(rows[0].n) >= maxTopicsPerAccount) throw CmqErrors.topicLimit();
        }
        await c.query(
          `INSERT INTO topics (topic_id, account_id, region, name, max_msg_size, filter_type, msg_retention_seconds)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [topicId, scope.accountId, scope.region, name, maxMsgSize, filterType, TopicLimits.msgRetentionSeconds],
        );
        await this.audit(c, by, scope, `topic:${scope.region}/${name}`, 'topic.create', { topicId, maxMsgSize, filterType });
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw CmqErrors.topicExists();
      throw err;
    }
    await this.registry.changed(scope, name);
    return topicId;
  }

  async list(scope: TenantScope, searchWord: string | undefined, offset: number, limit: number) {
    const args = [scope.accountId, scope.region, containing(searchWord)];
    const where = `account_id = $1 AND region = $2 AND deleted_at IS NULL AND name ILIKE $3`;
    const [count, page] = await Promise.all([
      this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM topics WHERE ${where}`, args),
      this.pool.query<{ topic_id: string; name: string }>(`SELECT topic_id, name FROM topics WHERE ${where} ORDER BY id LIMIT $4 OFFSET $5`, [
        ...args,
        limit,
        offset,
      ]),
    ]);
    return {
      totalCount: Number(count.rows[0].n),
      topicList: page.rows.map((r) => ({ topicId: r.topic_id, topicName: r.name })),
    };
  }

  /**
   * GetTopicAttributes: every field Java reads with getInt as an integer. `msgCount` is what the
   * topic still holds: pushes not yet delivered (queue subscriptions are delivered in the publish).
   */
  async attributes(scope: TenantScope, name: string): Promise<Record<string, unknown>> {
    const t = await this.registry.load(scope, name);
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM push_deliveries d JOIN subscriptions s ON s.id = d.subscription_id WHERE s.topic_id = $1`,
      [t.id],
    );
    return {
      topicId: t.topicId,
      topicName: t.name,
      msgCount: Number(rows[0].n),
      maxMsgSize: t.maxMsgSize,
      msgRetentionSeconds: t.msgRetentionSeconds,
      createTime: t.createTime,
      lastModifyTime: t.lastModifyTime,
      filterType: t.filterType,
      createUin: Number(t.owner),
      qps: t.qpsLimit ?? this.config.cmq.topicQpsLimit,
      tags: [],
    };
  }

  async setAttributes(scope: TenantScope, name: string, maxMsgSize: number | undefined, by: AuditActor): Promise<void> {
    await this.tx(async (c) => {
      const t = await lockTopic(c, scope, name, 'UPDATE');
      if (maxMsgSize !== undefined) {
        await c.query(`UPDATE topics SET max_msg_size = $2, last_modify_time = now() WHERE id = $1`, [t.id, maxMsgSize]);
      }
      await this.audit(c, by, scope, `topic:${scope.region}/${t.name}`, 'topic.set', { topicId: t.topic_id, changed: { maxMsgSize } });
    });
    await this.registry.changed(scope, name);
  }

  /** DeleteTopic: refused (10540) while the topic has subscriptions. */
  async delete(scope: TenantScope, name: string, by: AuditActor): Promise<void> {
    await this.tx(async (c) => {
      const t = await lockTopic(c, scope, name, 'UPDATE');
      const subs = await c.query(`SELECT 1 FROM subscriptions WHERE topic_id = $1 LIMIT 1`, [t.id]);
      if (subs.rowCount) throw CmqErrors.topicHasSubscriptions();
      await c.query(`UPDATE topics SET deleted_at = now() WHERE id = $1`, [t.id]);
      await this.audit(c, by, scope, `topic:${scope.region}/${t.name}`, 'topic.delete', { topicId: t.topic_id });
    });
    await this.registry.changed(scope, name);
  }

  /**
   * Subscribe. A queue endpoint must be a live queue of the same account and region; a routing
   * topic's subscription needs binding keys. The topic row is locked, so the limit holds and a
   * DeleteTopic in flight either sees this subscription or deletes the topic first (then 4440).
   */
  async subscribe(scope: TenantScope, topicName: string, sub: NewSubscription, by: AuditActor): Promise<string> {
    const subscriptionId = newResourceId('subscription');
    try {
      await this.tx(async (c) => {
        const t = await lockTopic(c, scope, topicName, 'UPDATE');
        const bindingKeys = sub.bindingKeys ?? [];
        checkFilters(t.filter_type === 2 ? 2 : 1, bindingKeys);
        const { rows } = await c.query<{ n: string; taken: boolean }>(
          `SELECT count(*) AS n, bool_or(lower(name) = lower($2)) AS taken FROM subscriptions WHERE topic_id = $1`,
          [t.id, sub.name],
        );
        if (rows[0].taken) throw CmqErrors.subscriptionExists();
        if (Number(rows[0].n) >= this.config.cmq.maxSubscriptionsPerTopic) throw CmqErrors.subscriptionLimit();
        if (sub.protocol === 'queue') {
          const q = await c.query(
            `SELECT 1 FROM queues WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL`,
            [scope.accountId, scope.region, sub.endpoint],
          );
          if (!q.rowCount) throw CmqErrors.queueNotExist();
        }
        const settings = {
          notifyStrategy: sub.notifyStrategy ?? 'EXPONENTIAL_DECAY_RETRY',
          notifyContentFormat: sub.notifyContentFormat ?? (sub.protocol === 'queue' ? 'SIMPLIFIED' : 'JSON'),
          filterTags: sub.filterTags ?? [],
          bindingKeys,
        };
        if (sub.protocol === 'queue' && settings.notifyContentFormat !== 'SIMPLIFIED') throw CmqErrors.queueNeedsSimplified();
        await c.query(
          `INSERT INTO subscriptions (subscription_id, topic_id, account_id, name, protocol, endpoint, notify_strategy,
                                      notify_content_format, filter_tags, binding_keys, binding_patterns)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [
            subscriptionId,
            t.id,
            scope.accountId,
            sub.name,
            sub.protocol,
            sub.endpoint,
            settings.notifyStrategy,
            settings.notifyContentFormat,
            settings.filterTags,
            settings.bindingKeys,
            settings.bindingKeys.map(bindingPattern),
          ],
        );
        await this.audit(c, by, scope, `subscription:${scope.region}/${t.name}/${sub.name}`, 'subscription.create', {
          topicId: t.topic_id,
          subscriptionId,
          protocol: sub.protocol,
          endpoint: sub.endpoint,
          ...settings,
        });
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw CmqErrors.subscriptionExists();
      throw err;
    }
    return subscriptionId;
  }

  /** The subscription of a live topic, locked for the transaction. */
  private async lockSubscription(c: PoolClient, scope: TenantScope, topicName: string, name: string) {
    const t = await lockTopic(c, scope, topicName, 'SHARE');
    const { rows } = await c.query<SubscriptionRow>(
      `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.topic_id = $1 AND lower(s.name) = lower($2) FOR UPDATE`,
      [t.id, name],
    );
    if (!rows[0]) throw CmqErrors.subscriptionNotExist();
    return { topic: t, sub: rows[0] };
  }

  /** Unsubscribe: the subscription and the pushes it still had to make go. */
  async unsubscribe(scope: TenantScope, topicName: string, name: string, by: AuditActor): Promise<void> {
    await this.tx(async (c) => {
      const { topic, sub } = await this.lockSubscription(c, scope, topicName, name);
      await c.query(`DELETE FROM subscriptions WHERE id = $1`, [sub.id]);
      await this.audit(c, by, scope, `subscription:${scope.region}/${topic.name}/${sub.name}`, 'subscription.delete', {
        topicId: topic.topic_id,
        subscriptionId: sub.subscription_id,
        undelivered: Number(sub.pending),
      });
    });
  }

  /** SetSubscriptionAttributes (and ClearSubscriptionFilterTags: `filterTags: []`). */
  async setSubscriptionAttributes(
    scope: TenantScope,
    topicName: string,
    name: string,
    changes: SubscriptionSettings,
    by: AuditActor,
    action = 'subscription.set',
  ): Promise<void> {
    await this.tx(async (c) => {
      const { topic, sub } = await this.lockSubscription(c, scope, topicName, name);
      const format = changes.notifyContentFormat ?? sub.notify_content_format;
      if (sub.protocol === 'queue' && format !== 'SIMPLIFIED') throw CmqErrors.queueNeedsSimplified();
      const bindingKeys = changes.bindingKeys ?? sub.binding_keys;
      if (changes.bindingKeys) checkFilters(topic.filter_type === 2 ? 2 : 1, bindingKeys);
      await c.query(
        `UPDATE subscriptions
            SET notify_strategy = $2, notify_content_format = $3, filter_tags = $4, binding_keys = $5, binding_patterns = $6,
                last_modify_time = now()
          WHERE id = $1`,
        [
          sub.id,
          changes.notifyStrategy ?? sub.notify_strategy,
          format,
          changes.filterTags ?? sub.filter_tags,
          bindingKeys,
          bindingKeys.map(bindingPattern),
        ],
      );
      await this.audit(c, by, scope, `subscription:${scope.region}/${topic.name}/${sub.name}`, action, {
        topicId: topic.topic_id,
        subscriptionId: sub.subscription_id,
        changed: changes,
      });
    });
  }

  /**
   * GetSubscriptionAttributes: tags as both `filterTags` (Python) and `filterTag` (Java), binding
   * keys as `bindingKey`, always arrays. `msgCount`: pushes not delivered yet.
   */
  async subscriptionAttributes(scope: TenantScope, topicName: string, name: string): Promise<Record<string, unknown>> {
    const t = await this.registry.load(scope, topicName);
    const { rows } = await this.pool.query<SubscriptionRow>(
      `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.topic_id = $1 AND lower(s.name) = lower($2)`,
      [t.id, name],
    );
    const s = rows[0];
    if (!s) throw CmqErrors.subscriptionNotExist();
    return {
      subscriptionId: s.subscription_id,
      subscriptionName: s.name,
      topicOwner: t.owner,
      msgCount: Number(s.pending),
      protocol: s.protocol,
      endpoint: s.endpoint,
      notifyStrategy: s.notify_strategy,
      notifyContentFormat: s.notify_content_format,
      createTime: Number(s.create_time),
      lastModifyTime: Number(s.last_modify_time),
      bindingKey: s.binding_keys,
      filterTags: s.filter_tags,
      filterTag: s.filter_tags,
    };
  }

  async listSubscriptions(scope: TenantScope, topicName: string, searchWord: string | undefined, offset: number, limit: number) {
    const t = await this.registry.load(scope, topicName);
    const args = [t.id, containing(searchWord)];
    const where = `topic_id = $1 AND name ILIKE $2`;
    const [count, page] = await Promise.all([
      this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM subscriptions WHERE ${where}`, args),
      this.pool.query<{ subscription_id: string; name: string; protocol: string; endpoint: string }>(
        `SELECT subscription_id, name, protocol, endpoint FROM subscriptions WHERE ${where} ORDER BY id LIMIT $3 OFFSET $4`,
        [...args, limit, offset],
      ),
    ]);
    return {
      totalCount: Number(count.rows[0].n),
      subscriptionList: page.rows.map((r) => ({
        subscriptionId: r.subscription_id,
        subscriptionName: r.name,
        protocol: r.protocol,
        endpoint: r.endpoint,
      })),
    };
  }

}

