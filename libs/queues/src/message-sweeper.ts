import { Injectable } from '@nestjs/common';
import { PgPool } from '@app/db';

export interface SweepResult {
  expired: number;
  purged: number;
  queuesReleased: number;
}

/**
 * Background clean-up, off the hot path: deletes messages past their queue's retention and the
 * messages of deleted queues, in bounded batches. Receives already skip expired messages, so a
 * late sweep only costs space, never correctness.
 */
@Injectable()
export class MessageSweeper {
  constructor(private readonly pool: PgPool) {}

  /**
   * Every message whose visible time is past the retention cutoff is expired (a message is never
   * visible before it is enqueued), so this range of the (queue_id, visible_ms) index holds only
   * expired rows. In-flight or delayed expired messages follow once their visible time passes it.
   */
  async deleteExpired(batch: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM messages WHERE msg_id IN (
         SELECT m.msg_id FROM queues q
           CROSS JOIN LATERAL (
             SELECT msg_id FROM messages
              WHERE queue_id = q.id AND visible_ms <= cmq_now_ms() - q.msg_retention_seconds::bigint * 1000
              LIMIT $1) m
          WHERE q.deleted_at IS NULL
          LIMIT $1)`,
      [batch],
    );
    return rowCount ?? 0;
  }

  async purgeDeletedQueues(batch: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM messages WHERE msg_id IN (
         SELECT m.msg_id FROM queues q
           CROSS JOIN LATERAL (SELECT msg_id FROM messages WHERE queue_id = q.id LIMIT $1) m
          WHERE q.deleted_at IS NOT NULL AND q.purged_at IS NULL
          LIMIT $1)`,
      [batch],
    );
    return rowCount ?? 0;
  }

  /** Marks deleted queues whose messages are all gone (after a grace for sends in flight). */
  async releaseEmptyDeletedQueues(): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE queues q SET purged_at = now()
        WHERE q.deleted_at IS NOT NULL AND q.purged_at IS NULL AND q.deleted_at < now() - interval '1 minute'
          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.queue_id = q.id)`,
    );
    return rowCount ?? 0;
  }

  /** One sweep: repeats each step while it fills whole batches, at most `maxRounds` times. */
  async sweep(batch: number, maxRounds = 20): Promise<SweepResult> {
    const result: SweepResult = { expired: 0, purged: 0, queuesReleased: 0 };
    for (let i = 0; i < maxRounds; i++) {
      const n = await this.deleteExpired(batch);
      result.expired += n;
      if (n < batch) break;
    }
    for (let i = 0; i < maxRounds; i++) {
      const n = await this.purgeDeletedQueues(batch);
      result.purged += n;
      if (n < batch) break;
    }
    result.queuesReleased = await this.releaseEmptyDeletedQueues();
    return result;
  }
}
