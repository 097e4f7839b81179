import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';

/** Channel on which committed sends are announced to the long polls of every process. */
export const WAKE_CHANNEL = 'wake';

interface Waiter {
  wake: (open: boolean) => void;
}

/**
 * Where long-polling receivers wait. A committed send wakes as many local waiters of its queue
 * as it brought messages, and announces itself on Redis so waiters in other processes wake too.
 * Waiters also recheck every LONG_POLL_RECHECK_MS, which covers delayed messages coming due,
 * visibility timeouts running out, and a lost announcement.
 */
@Injectable()
export class LongPoll implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(LongPoll.name);
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly origin = randomUUID();
  private closing = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly redis: RedisService,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.redis.subscribe(WAKE_CHANNEL, (msg) => {
      const [origin, queueId, count] = msg.split('|');
      if (origin !== this.origin) this.wakeLocal(queueId, Number(count) || 1);
    });
  }

  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /** Announces `count` newly visible messages in a queue. */
  notify(queueId: string, count: number): void {
    this.wakeLocal(queueId, count);
    this.redis
      .publish(WAKE_CHANNEL, `${this.origin}|${queueId}|${count}`)
      .catch((err: Error) => this.logger.warn(`wake publish: ${err.message}`));
  }

  /**
   * Waits for a wake-up, the periodic recheck, or the deadline. Resolves false when the
   * deadline passed or the process is shutting down (the caller makes one last attempt).
   */
  wait(queueId: string, deadline: number): Promise<boolean> {
    if (this.closing) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let set = this.waiters.get(queueId);
      if (!set) {
        set = new Set();
        this.waiters.set(queueId, set);
      }
      const remaining = deadline - Date.now();
      const timer = setTimeout(
        () => waiter.wake(remaining > this.config.cmq.longPollRecheckMs),
        Math.max(0, Math.min(remaining, this.config.cmq.longPollRecheckMs)),
      );
      const waiter: Waiter = {
        wake: (open) => {
          clearTimeout(timer);
          const s = this.waiters.get(queueId);
          if (s) {
            s.delete(waiter);
            if (s.size === 0) this.waiters.delete(queueId);
          }
          resolve(open && !this.closing && Date.now() < deadline);
        },
      };
      set.add(waiter);
    });
  }

  private wakeLocal(queueId: string, count: number): void {
    const set = this.waiters.get(queueId);
    if (!set) return;
    for (const w of [...set].slice(0, count)) w.wake(true);
  }

  /** Runs before the HTTP server closes, so open long polls answer at once instead of holding it. */
  beforeApplicationShutdown(): void {
    this.closing = true;
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.wake(false);
  }
}
