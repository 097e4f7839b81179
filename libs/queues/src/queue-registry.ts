import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import { PgPool } from '@app/db';
import { CmqErrors } from '@app/cmq';
import { QUEUE_COLUMNS, QueueInfo, QueueRow, TenantScope, toQueueInfo } from './queue.types';
import { ScopedCache } from './scoped-cache';

/** Channel announcing a queue's change (attributes, deletion), so every process drops its copy. */
export const QUEUES_CHANNEL = 'queues';

/**
 * Finds live queues by (account, region, name ignoring case), cached for QUEUE_CACHE_MS.
 * Changes evict the entry everywhere at once through Redis; the cache only ever saves a lookup,
 * never decides: sends insert through a join on the live queue row, so a message is never
 * acknowledged into a deleted queue.
 */
@Injectable()
export class QueueRegistry implements OnModuleInit {
  private readonly cache: ScopedCache<QueueInfo>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
    redis: RedisService,
  ) {
    this.cache = new ScopedCache(redis, QUEUES_CHANNEL, () => config.cmq.queueCacheMs, (scope, name) => this.load(scope, name));
  }

  async onModuleInit(): Promise<void> {
    await this.cache.listen();
  }

  /** The live queue, from the cache when fresh, or 4440 "(10100)queue is not existed, or deleted". */
  get(scope: TenantScope, name: string): Promise<QueueInfo> {
    return this.cache.get(scope, name);
  }

  /** The live queue as committed now, bypassing the cache (management reads and writes). */
  async load(scope: TenantScope, name: string): Promise<QueueInfo> {
    const { rows } = await this.pool.query<QueueRow>({
      name: 'cmq-queue-load',
      text: `SELECT ${QUEUE_COLUMNS} FROM queues
        WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL`,
      values: [scope.accountId, scope.region, name],
    });
    if (!rows[0]) throw CmqErrors.queueNotExist();
    return toQueueInfo(rows[0]);
  }

  /** Drops the cached copy here and in every other process. */
  changed(scope: TenantScope, name: string): Promise<void> {
    return this.cache.changed(scope, name);
  }
}
