import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import { PgPool } from '@app/db';
import { CmqErrors } from '@app/cmq';
import type { TenantScope } from './queue.types';
import { ScopedCache } from './scoped-cache';
import { TOPIC_COLUMNS, TopicInfo, TopicRow, toTopicInfo } from './topic.types';

/** Channel announcing a topic's change (attributes, deletion), so every process drops its copy. */
export const TOPICS_CHANNEL = 'topics';

/**
 * Finds live topics by (account, region, name ignoring case), cached like queues (QUEUE_CACHE_MS,
 * evicted everywhere through Redis). The cache never decides: a publish checks the live topic
 * row and reads its subscriptions in the statement that stores it.
 */
@Injectable()
export class TopicRegistry implements OnModuleInit {
  private readonly cache: ScopedCache<TopicInfo>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
    redis: RedisService,
  ) {
    this.cache = new ScopedCache(redis, TOPICS_CHANNEL, () => config.cmq.queueCacheMs, (scope, name) => this.load(scope, name));
  }

  async onModuleInit(): Promise<void> {
    await this.cache.listen();
  }

  /** The live topic, from the cache when fresh, or 4440 "(10600)topic is not existed, or deleted". */
  get(scope: TenantScope, name: string): Promise<TopicInfo> {
    return this.cache.get(scope, name);
  }

  /** The live topic as committed now, bypassing the cache. */
  async load(scope: TenantScope, name: string): Promise<TopicInfo> {
    const { rows } = await this.pool.query<TopicRow>(
      `SELECT ${TOPIC_COLUMNS} FROM topics
        WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL`,
      [scope.accountId, scope.region, name],
    );
    if (!rows[0]) throw CmqErrors.topicNotExist();
    return toTopicInfo(rows[0]);
  }

  changed(scope: TenantScope, name: string): Promise<void> {
    return this.cache.changed(scope, name);
  }
}
