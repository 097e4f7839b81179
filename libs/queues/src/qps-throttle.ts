import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import type { QueueInfo } from './queue.types';

/**
 * Takes up to ARGV[1] requests from the queue's budget for one second (ARGV[2]); answers how
 * many it granted. The key lives two seconds, long enough for every process's clock to leave it.
 */
const TAKE = `
local want = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local used = redis.call('INCRBY', KEYS[1], want)
if used == want then redis.call('PEXPIRE', KEYS[1], 2000) end
local before = used - want
if before >= limit then return 0 end
if used > limit then return limit - before end
return want`;

interface Window {
  second: number;
  /** requests this process may still admit in this second without asking Redis */
  allowance: number;
  /** the next grant to ask for; doubles within a second, so quiet queues reserve little */
  chunk: number;
  /** the budget of this second is spent in every process */
  spent: boolean;
  asking?: Promise<void>;
}

/**
 * The per-queue requests/s cap (default QUEUE_QPS_LIMIT, per queue through the internal API),
 * shared by every queue-api process through Redis: each process takes grants from the queue's
 * budget for the current second and spends them locally, so Redis sees a few calls per queue
 * per second, not one per request. A process may hold at most one unspent grant when the second
 * ends (at most 1% of the limit), which is how far below the limit a busy queue can be cut off.
 * When Redis cannot answer, requests are admitted: the cap protects the service, it must never
 * be the reason it fails.
 */
@Injectable()
export class QpsThrottle {
  private readonly logger = new Logger(QpsThrottle.name);
  private readonly windows = new Map<string, Window>();
  private lastWarn = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly redis: RedisService,
  ) {
    this.redis.client.defineCommand('cmqTakeQps', { numberOfKeys: 1, lua: TAKE });
  }

  limitOf(queue: Pick<QueueInfo, 'qpsLimit'>): number {
    return queue.qpsLimit ?? this.config.cmq.queueQpsLimit;
  }

  /** true when the request may go ahead; false means 4420 "(10250)qps throttling". */
  async admit(queue: Pick<QueueInfo, 'id' | 'qpsLimit'>): Promise<boolean> {
    const limit = this.limitOf(queue);
    for (;;) {
      const w = this.window(queue.id);
      if (w.allowance > 0) {
        w.allowance--;
        return true;
      }
      if (w.spent) return false;
      w.asking ??= this.take(queue.id, w, limit).finally(() => (w.asking = undefined));
      await w.asking;
    }
  }

  private window(queueId: string): Window {
    const second = Math.floor(Date.now() / 1000);
    let w = this.windows.get(queueId);
    if (!w || w.second !== second) {
      if (this.windows.size > 100_000) this.windows.clear();
      w = { second, allowance: 0, chunk: 1, spent: false };
      this.windows.set(queueId, w);
    }
    return w;
  }

  private async take(queueId: string, w: Window, limit: number): Promise<void> {
    const want = Math.min(w.chunk, Math.max(1, Math.floor(limit / 100)));
    try {
      const client = this.redis.client as unknown as {
        cmqTakeQps(key: string, want: number, limit: number): Promise<number>;
      };
      const granted = Number(await client.cmqTakeQps(this.redis.key('qps', queueId, String(w.second)), want, limit));
      w.allowance += granted;
      if (granted < want) w.spent = true;
      w.chunk = want * 2;
    } catch (err) {
      const now = Date.now();
      if (now - this.lastWarn > 10_000) {
        this.lastWarn = now;
        this.logger.warn(`qps cap not enforced, Redis did not answer: ${(err as Error).message}`);
      }
      w.allowance += want;
    }
  }
}
