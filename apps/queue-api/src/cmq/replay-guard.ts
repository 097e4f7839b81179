import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';

/**
 * Sets each key (KEYS) to 1 for ARGV[1] ms unless it exists; answers, per key, 1 where it was
 * set (first use) and 0 where it was already there (a replay).
 */
const REMEMBER = `
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[1], 'NX') then out[i] = 1 else out[i] = 0 end
end
return out`;

/** Keys one script call takes at most. */
const MAX_KEYS_PER_CALL = 512;

interface Pending {
  key: string;
  resolve: (firstUse: boolean) => void;
  reject: (err: Error) => void;
}

type RememberClient = { cmqRemember(numKeys: number, ...keysThenTtl: Array<string | number>): Promise<number[]> };

/**
 * The replay guard's memory in Redis, shared by every queue-api process. Every signed request
 * asks whether its signature was seen before; the questions of one turn of the event loop go to
 * Redis together, as one script call (SET NX with a TTL for each), instead of one command each:
 * the same answers, a fraction of the client's and Redis's work per request. A signature is
 * valid for at most 2 signature windows from now, so it is remembered that long.
 */
@Injectable()
export class ReplayGuard {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly ttlMs: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly redis: RedisService,
  ) {
    this.ttlMs = config.cmq.signatureWindowSeconds * 2000;
    this.redis.client.defineCommand('cmqRemember', { lua: REMEMBER });
  }

  /** true if `key` was not remembered (it is now); false if it was: a replay. */
  firstUse(key: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ key, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    for (let at = 0; at < all.length; at += MAX_KEYS_PER_CALL) void this.ask(all.slice(at, at + MAX_KEYS_PER_CALL));
  }

  private async ask(batch: Pending[]): Promise<void> {
    try {
      const client = this.redis.client as unknown as RememberClient;
      const answers = await client.cmqRemember(batch.length, ...batch.map((p) => p.key), this.ttlMs);
      batch.forEach((p, i) => p.resolve(answers[i] === 1));
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
    }
  }
}
