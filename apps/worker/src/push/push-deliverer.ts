import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { CLOCK, Clock, JobQueue } from '@app/common';
import { inTransaction, PgPool } from '@app/db';
import { counterUpsert, enqueuePushes } from '@app/queues';
import { encodeUsage, enqueueUsage, insertUsageRow, RequestMeter } from '@app/billing';

/** What the deliverer needs of a claimed push_deliveries row. */
interface ClaimedPush {
  id: string;
  msg_id: string;
  body: Buffer;
  tags: string[];
  publish_ms: string;
  attempts: number;
  now_ms: string;
  subscription_name: string;
  protocol: 'http' | 'queue';
  endpoint: string;
  notify_strategy: 'BACKOFF_RETRY' | 'EXPONENTIAL_DECAY_RETRY';
  notify_content_format: 'JSON' | 'SIMPLIFIED';
  account_id: string;
  owner: string;
  topic_name: string;
  region: string;
  msg_retention_seconds: number;
}

export type PushOutcome = 'delivered' | 'retry' | 'dropped' | 'gone' | 'busy' | 'early';

/** The User-Agent of every push (cmq-protocol.md §10). */
export const PUSH_USER_AGENT = 'Qcloud Notification Service Agent';

/** A header value as UTF-8 bytes on the wire (fetch takes header values as Latin-1 strings). */
function wireHeader(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}

/**
 * One attempt of a topic's push (a push_deliveries row): claimed under a lease longer than a
 * push may take, so two workers (or a job queued twice) never push it at once; delivered to the
 * subscriber's URL (or, for a queue that was full at publish time, into its queue); then, in one
 * transaction, the row deleted and its usage written to the usage outbox (an HTTP push is billed
 * as a consume call), or the next attempt scheduled by the subscription's retry strategy, or the
 * row dropped when the strategy or the topic's retention gives up.
 */
@Injectable()
export class PushDeliverer {
  private readonly logger = new Logger(PushDeliverer.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    @Inject(CLOCK) private readonly clock: Clock,
    @InjectQueue(JobQueue.Push) private readonly pushQueue: Queue,
    @InjectQueue(JobQueue.Usage) private readonly usageQueue: Queue,
  ) {}

  private get leaseMs(): number {
    return this.config.push.timeoutMs + 15_000;
  }

  async attempt(id: string): Promise<PushOutcome> {
    const claimed = await this.claim(id);
    if (typeof claimed === 'string') return claimed;
    const p = claimed;
    const now = Number(p.now_ms);
    if (now - Number(p.publish_ms) > p.msg_retention_seconds * 1000) return this.drop(p, 'retention ran out');
    let failure: string | null;
    try {
      failure = p.protocol === 'http' ? await this.post(p) : await this.intoQueue(p);
    } catch (err) {
      // the worker's own failure (database): the lease runs out and the job is retried
      this.logger.warn(`push ${p.id}: ${(err as Error).message}`);
      throw err;
    }
    if (failure === null) return p.protocol === 'http' ? this.delivered(p) : 'delivered';
    if (failure === 'gone') return this.drop(p, 'queue deleted');
    return this.failed(p, failure);
  }

  /** Takes the row's lease if it is due and free; else says why not (and requeues an early job). */
  private async claim(id: string): Promise<ClaimedPush | 'gone' | 'busy' | 'early'> {
    const { rows } = await this.pool.query<ClaimedPush>(
      `UPDATE push_deliveries d SET lease_until_ms = cmq_now_ms() + $2, attempts = d.attempts + 1
         FROM subscriptions s JOIN topics t ON t.id = s.topic_id
        WHERE d.id = $1 AND s.id = d.subscription_id AND d.lease_until_ms < cmq_now_ms() AND d.next_attempt_ms <= cmq_now_ms()
        RETURNING d.id, d.msg_id, d.body, d.tags, d.publish_ms, d.attempts, cmq_now_ms() AS now_ms,
                  s.name AS subscription_name, s.protocol, s.endpoint, s.notify_strategy, s.notify_content_format, s.account_id,
                  (SELECT a.app_id FROM accounts a WHERE a.id = s.account_id)::text AS owner,
                  t.name AS topic_name, t.region, t.msg_retention_seconds`,
      [id, this.leaseMs],
    );
    if (rows[0]) return rows[0];
    const { rows: state } = await this.pool.query<{ attempts: number; wait_ms: string; leased: boolean }>(
      `SELECT attempts, next_attempt_ms - cmq_now_ms() AS wait_ms, lease_until_ms >= cmq_now_ms() AS leased FROM push_deliveries WHERE id = $1`,
      [id],
    );
    const s = state[0];
    if (!s) return 'gone';
    if (s.leased) return 'busy';
    // queued ahead of its time (clocks apart): queued again for when it is due
    await enqueuePushes(this.pushQueue, [{ id, attempt: s.attempts, delayMs: Number(s.wait_ms), suffix: `at${Date.now()}` }]);
    return 'early';
  }

  /** POSTs the message; null on a 2xx answer, else what went wrong. */
  private async post(p: ClaimedPush): Promise<string | null> {
    const body =
      p.notify_content_format === 'JSON'
        ? JSON.stringify({
            TopicOwner: p.owner,
            topicName: p.topic_name,
            subscriptionName: p.subscription_name,
            msgId: p.msg_id,
            msgBody: p.body.toString('utf8'),
            publishTime: Math.floor(Number(p.publish_ms) / 1000),
          })
        : p.body;
    try {
      const res = await fetch(p.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'text/plain',
          'user-agent': PUSH_USER_AGENT,
          'x-cmq-request-id': randomUUID(),
          'x-cmq-message-id': p.msg_id,
          'x-cmq-message-tag': wireHeader(p.tags.join(', ')),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.push.timeoutMs),
      });
      await res.body?.cancel().catch(() => undefined);
      return res.status >= 200 && res.status <= 299 ? null : `HTTP ${res.status}`;
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string; message?: string }; message: string };
      if (e.name === 'TimeoutError') return `no answer within ${this.config.push.timeoutMs} ms`;
      return e.cause?.code ?? e.cause?.message ?? e.message;
    }
  }

  /**
   * A copy into the subscribed queue (one that was full at publish time), with the row deleted
   * in the same transaction; 'gone' when the queue no longer exists, a failure while it is full.
   */
  private async intoQueue(p: ClaimedPush): Promise<string | null> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ outcome: string }>(
        `WITH q AS (
           SELECT q.id, q.max_msg_heap_num,
                  (SELECT coalesce(sum(msgs), 0) FROM queue_counters k WHERE k.queue_id = q.id) AS msgs
             FROM queues q WHERE q.account_id = $2 AND q.region = $3 AND lower(q.name) = lower($4) AND q.deleted_at IS NULL
         ), ins AS (
           INSERT INTO messages (queue_id, body, enqueue_ms, visible_ms)
           SELECT q.id, $5, cmq_now_ms(), cmq_now_ms() FROM q WHERE q.msgs < q.max_msg_heap_num
           RETURNING queue_id
         ), delta AS (SELECT queue_id, count(*) AS msgs, 0 AS rewind_msgs FROM ins GROUP BY queue_id),
         cnt AS (${counterUpsert('delta')}),
         gone AS (DELETE FROM push_deliveries WHERE id = $1 AND attempts = $6 AND (EXISTS (SELECT 1 FROM ins) OR NOT EXISTS (SELECT 1 FROM q)))
         SELECT CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 'stored' WHEN NOT EXISTS (SELECT 1 FROM q) THEN 'gone' ELSE 'full' END AS outcome`,
        [p.id, p.account_id, p.region, p.endpoint, p.body, p.attempts],
      );
      // receivers waiting on the queue see it at their next recheck (LONG_POLL_RECHECK_MS)
      const outcome = rows[0].outcome;
      return outcome === 'stored' ? null : outcome === 'gone' ? 'gone' : 'queue is full';
    });
  }

  /** A 2xx: the row goes and the push's usage is written, in one transaction; then relayed. */
  private async delivered(p: ClaimedPush): Promise<PushOutcome> {
    const meter = new RequestMeter(p.account_id, p.region, 'PushMessage', this.clock.now());
    meter.resource = p.topic_name;
    meter.messageBytes = [p.body.length];
    const outboxId = await inTransaction(this.pool, async (c: PoolClient) => {
      const del = await c.query(`DELETE FROM push_deliveries WHERE id = $1 AND attempts = $2`, [p.id, p.attempts]);
      // unsubscribed meanwhile (the row went with it): pushed, but nothing left to account for
      if (!del.rowCount || !this.config.usage.metering) return null;
      return insertUsageRow(c, JSON.stringify(encodeUsage([meter.settle('ok').record()])));
    });
    if (outboxId) {
      await enqueueUsage(this.usageQueue, [outboxId]).catch((err: Error) =>
        this.logger.warn(`usage relay of push ${p.id} failed (${err.message}); the resend tick sends it`),
      );
    }
    return 'delivered';
  }

  /** The subscription's retry strategy: the next attempt, or none (dropped). */
  private nextDelayMs(p: ClaimedPush): number | null {
    const push = this.config.push;
    const now = Number(p.now_ms);
    if (p.notify_strategy === 'BACKOFF_RETRY') {
      // attempts counts the first try: retries made so far are attempts - 1
      if (p.attempts > push.backoffRetries) return null;
      return push.backoffMinMs + Math.floor(Math.random() * (push.backoffMaxMs - push.backoffMinMs + 1));
    }
    const delay = push.exponentialBaseMs * 2 ** Math.min(p.attempts - 1, 40);
    if (now + delay > Number(p.publish_ms) + p.msg_retention_seconds * 1000) return null;
    return delay;
  }

  private async failed(p: ClaimedPush, reason: string): Promise<PushOutcome> {
    const delay = this.nextDelayMs(p);
    if (delay === null) return this.drop(p, reason);
    const { rowCount } = await this.pool.query(
      `UPDATE push_deliveries SET next_attempt_ms = cmq_now_ms() + $3, lease_until_ms = 0, last_error = $4
        WHERE id = $1 AND attempts = $2`,
      [p.id, p.attempts, delay, reason.slice(0, 500)],
    );
    if (rowCount) await enqueuePushes(this.pushQueue, [{ id: p.id, attempt: p.attempts, delayMs: delay }]);
    return 'retry';
  }

  private async drop(p: ClaimedPush, reason: string): Promise<PushOutcome> {
    await this.pool.query(`DELETE FROM push_deliveries WHERE id = $1 AND attempts = $2`, [p.id, p.attempts]);
    this.logger.warn(
      `push of message ${p.msg_id} of topic ${p.topic_name} to subscription ${p.subscription_name} dropped after ${p.attempts} attempts: ${reason}`,
    );
    return 'dropped';
  }

  /**
   * Queues again the pushes due for a while that no worker attempted (a job lost with Redis, or
   * a queue-api process gone before it relayed); a job still waiting is not queued twice.
   */
  async resend(limit = 5000): Promise<{ resent: number }> {
    const { rows } = await this.pool.query<{ id: string; attempts: number }>(
      `SELECT id, attempts FROM push_deliveries
        WHERE next_attempt_ms <= cmq_now_ms() - $1 AND lease_until_ms < cmq_now_ms()
        ORDER BY next_attempt_ms LIMIT $2`,
      [this.config.push.resendAfterMs, limit],
    );
    await enqueuePushes(
      this.pushQueue,
      rows.map((r) => ({ id: r.id, attempt: r.attempts })),
    );
    if (rows.length > 0) this.logger.warn(`queued ${rows.length} pushes again (due ${this.config.push.resendAfterMs} ms ago, not attempted)`);
    return { resent: rows.length };
  }
}
