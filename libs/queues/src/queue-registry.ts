import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import { PgPool } from '@app/db';
import { CmqErrors } from '@app/cmq';
import { QUEUE_COLUMNS, QueueInfo, QueueRow, TenantScope, toQueueInfo } from './queue.types';

/** Channel announcing a queue's change (attributes, deletion), so every process drops its copy. */
export const QUEUES_CHANNEL = 'queues';

interface Entry {
  value: QueueInfo;
  expires: number;
}

/**
 * Finds live queues by (account, region, name ignoring case), cached for QUEUE_CACHE_MS.
 * Changes evict the entry everywhere at once through Redis; the cache only ever saves a lookup,
 * never decides: sends insert through a join on the live queue row, so a message is never
 * acknowledged into a deleted queue.
 */
@Injectable()
export class QueueRegistry implements OnModuleInit {
  private readonly logger = new Logger(QueueRegistry.name);
  private readonly cache = new Map<string, Entry>();
  private static readonly MAX_ENTRIES = 200_000;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly redis: RedisService,
  ) {}

  static cacheKey(scope: TenantScope, name: string): string {
    return `${scope.accountId}/${scope.region}/${name.toLowerCase()}`;
  }

  async onModuleInit(): Promise<void> {
    await this.redis.subscribe(QUEUES_CHANNEL, (key) => this.cache.delete(key));
  }

  /** The live queue, from the cache when fresh, or 4440 "(10100)queue is not existed, or deleted". */
  async get(scope: TenantScope, name: string): Promise<QueueInfo> {
    const key = QueueRegistry.cacheKey(scope, name);
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.value;
    let value: QueueInfo;
    try {
      value = await this.load(scope, name);
    } catch (err) {
      this.cache.delete(key);
      throw err;
    }
    if (this.config.cmq.queueCacheMs > 0) {
      if (this.cache.size >= QueueRegistry.MAX_ENTRIES) this.cache.clear();
      this.cache.set(key, { value, expires: Date.now() + this.config.cmq.queueCacheMs });
    }
    return value;
  }

  /** The live queue as committed now, bypassing the cache (management reads and writes). */
  async load(scope: TenantScope, name: string): Promise<QueueInfo> {
    const { rows } = await this.pool.query<QueueRow>(
      `SELECT ${QUEUE_COLUMNS} FROM queues
        WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL`,
      [scope.accountId, scope.region, name],
    );
    if (!rows[0]) throw CmqErrors.queueNotExist();
    return toQueueInfo(rows[0]);
  }

  /** Drops the cached copy here and in every other process. */
  async changed(scope: TenantScope, name: string): Promise<void> {
    const key = QueueRegistry.cacheKey(scope, name);
    this.cache.delete(key);
    // the change is committed already; if Redis is unreachable the other copies expire by TTL
    await this.redis.publish(QUEUES_CHANNEL, key).catch((err: Error) => this.logger.warn(`publish: ${err.message}`));
  }
}
