import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis, { RedisOptions } from 'ioredis';
import { APP_CONFIG, AppConfig } from '@app/config';

export function redisOptions(extra: RedisOptions = {}): RedisOptions {
  return { maxRetriesPerRequest: 3, enableAutoPipelining: true, connectTimeout: 3000, ...extra };
}

type Handler = (message: string) => void;

/**
 * The app's Redis: one connection for commands, one for subscriptions. Every key and channel
 * name goes through {@link key}, so one Redis can serve several deployments or test runs.
 */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  readonly client: Redis;
  private subscriber?: Redis;
  private readonly handlers = new Map<string, Set<Handler>>();
  readonly prefix: string;
  private readonly url: string;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.prefix = config.redis.prefix;
    this.url = config.redis.url;
    this.client = new Redis(this.url, redisOptions());
    this.client.on('error', (err) => this.logger.warn(`redis: ${err.message}`));
  }

  key(...parts: string[]): string {
    return `${this.prefix}:${parts.join(':')}`;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(this.key('ch', channel), message);
  }

  /** Subscribes to one of our channels; handlers run for every message published to it. */
  async subscribe(channel: string, handler: Handler): Promise<void> {
    const full = this.key('ch', channel);
    if (!this.subscriber) {
      this.subscriber = new Redis(this.url, redisOptions({ enableAutoPipelining: false }));
      this.subscriber.on('error', (err) => this.logger.warn(`redis subscriber: ${err.message}`));
      this.subscriber.on('message', (ch: string, msg: string) => {
        for (const h of this.handlers.get(ch) ?? []) h(msg);
      });
    }
    let set = this.handlers.get(full);
    if (!set) {
      set = new Set();
      this.handlers.set(full, set);
      await this.subscriber.subscribe(full);
    }
    set.add(handler);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.client.quit(), this.subscriber?.quit()]);
  }
}
