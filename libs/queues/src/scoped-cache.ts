import { Logger } from '@nestjs/common';
import type { RedisService } from '@app/common';
import type { TenantScope } from './queue.types';

interface Entry<T> {
  value: T;
  expires: number;
}

/**
 * Named resources of a tenant (queues, topics) by (account, region, name ignoring case), cached
 * for `ttlMs`. A change evicts the entry in every process at once through a Redis channel; the
 * cache only ever saves a lookup, never decides (writes check the live row in their statement).
 */
export class ScopedCache<T> {
  private readonly logger: Logger;
  private readonly cache = new Map<string, Entry<T>>();
  private static readonly MAX_ENTRIES = 200_000;

  constructor(
    private readonly redis: RedisService,
    /** channel announcing a change, so every process drops its copy */
    private readonly channel: string,
    private readonly ttlMs: () => number,
    private readonly loader: (scope: TenantScope, name: string) => Promise<T>,
  ) {
    this.logger = new Logger(`ScopedCache:${channel}`);
  }

  static key(scope: TenantScope, name: string): string {
    return `${scope.accountId}/${scope.region}/${name.toLowerCase()}`;
  }

  async listen(): Promise<void> {
    await this.redis.subscribe(this.channel, (key) => this.cache.delete(key));
  }

  /** The live resource, from the cache when fresh, else loaded (a load that throws is not cached). */
  async get(scope: TenantScope, name: string): Promise<T> {
    const key = ScopedCache.key(scope, name);
    const hit = this.cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.value;
    let value: T;
    try {
      value = await this.loader(scope, name);
    } catch (err) {
      this.cache.delete(key);
      throw err;
    }
    const ttl = this.ttlMs();
    if (ttl > 0) {
      if (this.cache.size >= ScopedCache.MAX_ENTRIES) this.cache.clear();
      this.cache.set(key, { value, expires: Date.now() + ttl });
    }
    return value;
  }

  /** Drops the cached copy here and in every other process. */
  async changed(scope: TenantScope, name: string): Promise<void> {
    const key = ScopedCache.key(scope, name);
    this.cache.delete(key);
    // the change is committed already; if Redis is unreachable the other copies expire by TTL
    await this.redis.publish(this.channel, key).catch((err: Error) => this.logger.warn(`publish: ${err.message}`));
  }
}
