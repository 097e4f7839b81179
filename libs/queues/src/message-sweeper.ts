import { Injectable } from '@nestjs/common';
import { PgPool } from '@app/db';
import { counterUpsert, moveToDeadLetterQueue } from './message-store';

export interface SweepResult {
  expired: number;
  rewindPurged: number;
  deadLettered: number;
  purged: number;
  queuesReleased: number;
  countersFolded: number;
}

/**
 * Background clean-up, off the hot path, in bounded batches: messages past their queue's
 * retention, deleted messages that left the rewind window, messages past a dead-letter
 * time-to-live (moved to the dead-letter queue), and the messages of deleted queues. Every step
 * that removes or moves messages updates the queue counters in the same statement. Receives
 * already skip expired messages and move dead ones themselves, so a late sweep only costs space
 * and counter accuracy, never correctness.
 */
@Injectable()
export class MessageSweeper {
  constructor(private readonly pool: PgPool) {}

  /**
   * Deletes, in every live queue, up to `batch` rows matching `rows` (a condition on a message
   * row and its queue `q`), and subtracts them from the counter `column`.
   */
  private async deleteFromLiveQueues(rows: string, column: 'msgs' | 'rewind_msgs', batch: number): Promise<number> {
    const { rows: out } = await this.pool.query<{ n: string }>(
      `WITH gone AS (
         DELETE FROM messages WHERE msg_id IN (
           SELECT m.msg_id FROM queues q
             CROSS JOIN LATERAL (SELECT msg_id FROM messages WHERE queue_id = q.id AND ${rows} LIMIT $1) m
            WHERE q.deleted_at IS NULL
            LIMIT $1)
         RETURNING queue_id
       ), delta AS (
         SELECT queue_id, ${column === 'msgs' ? '-1' : '0'} AS msgs, ${column === 'rewind_msgs' ? '-1' : '0'} AS rewind_msgs FROM gone
       ), cnt AS (${counterUpsert('delta')})
       SELECT count(*) AS n FROM gone`,
      [batch],
    );
    return Number(out[0].n);
  }

  /**
   * Every message whose visible time is past the retention cutoff is expired (a message is never
   * visible before it is enqueued), so this range of the (queue_id, visible_ms) index holds only
   * expired rows. In-flight or delayed expired messages follow once their visible time passes it.
   */
  deleteExpired(batch: number): Promise<number> {
    return this.deleteFromLiveQueues(
      `deleted_ms IS NULL AND visible_ms <= cmq_now_ms() - q.msg_retention_seconds::bigint * 1000`,
      'msgs',
      batch,
    );
  }

  /** Deleted messages kept for rewinding, once the queue's rewind window no longer reaches them. */
  purgeRewound(batch: number): Promise<number> {
    return this.deleteFromLiveQueues(
      `deleted_ms IS NOT NULL AND enqueue_ms < cmq_now_ms() - q.rewind_seconds::bigint * 1000`,
      'rewind_msgs',
      batch,
    );
  }

  /**
   * Messages of queues with a time-to-live policy that outlived it, into the dead-letter queue.
   * A visible time at or before the cutoff implies an enqueue time before it, so the index range
   * holds only dead messages; in-flight ones follow when they become visible (or a receive
   * moves them).
   */
  async moveDeadLetters(batch: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `WITH dead AS (
         SELECT m.msg_id, q.id AS src, d.id AS dlq FROM queues q
           JOIN queues d ON d.id = q.dead_letter_queue AND d.deleted_at IS NULL
           CROSS JOIN LATERAL (
             SELECT msg_id FROM messages
              WHERE queue_id = q.id AND deleted_ms IS NULL
                AND visible_ms <= cmq_now_ms() - q.max_time_to_live::bigint * 1000
              LIMIT $1
              FOR UPDATE SKIP LOCKED) m
          WHERE q.deleted_at IS NULL AND q.dead_letter_policy = 1
          LIMIT $1
       ), moved AS (
         ${moveToDeadLetterQueue('dead', 'm.msg_id, dead.src, dead.dlq')}
       ), delta AS (
         SELECT src AS queue_id, -1 AS msgs, 0 AS rewind_msgs FROM moved
         UNION ALL SELECT dlq, 1, 0 FROM moved
       ), cnt AS (${counterUpsert('delta')})
       SELECT count(*) AS n FROM moved`,
      [batch],
    );
    return Number(rows[0].n);
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
      `WITH released AS (
         UPDATE queues q SET purged_at = now()
          WHERE q.deleted_at IS NOT NULL AND q.purged_at IS NULL AND q.deleted_at < now() - interval '1 minute'
            AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.queue_id = q.id)
         RETURNING q.id
       ), counters AS (DELETE FROM queue_counters c USING released r WHERE c.queue_id = r.id)
       SELECT 1 FROM released`,
    );
    return rowCount ?? 0;
  }

  /** Folds the counter shards of backends that are gone into shard 0, so a sum reads few rows. */
  async foldCounters(): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `WITH gone AS (
         DELETE FROM queue_counters
          WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity)
         RETURNING queue_id, msgs, rewind_msgs
       ), folded AS (
         INSERT INTO queue_counters AS k (queue_id, shard, msgs, rewind_msgs)
         SELECT queue_id, 0, sum(msgs), sum(rewind_msgs) FROM gone GROUP BY queue_id
         ON CONFLICT (queue_id, shard) DO UPDATE
           SET msgs = k.msgs + excluded.msgs, rewind_msgs = k.rewind_msgs + excluded.rewind_msgs
       )
       SELECT count(*) AS n FROM gone`,
    );
    return Number(rows[0].n);
  }

  /** One sweep: repeats each step while it fills whole batches, at most `maxRounds` times. */
  async sweep(batch: number, maxRounds = 20): Promise<SweepResult> {
    const repeat = async (step: (b: number) => Promise<number>): Promise<number> => {
      let total = 0;
      for (let i = 0; i < maxRounds; i++) {
        const n = await step(batch);
        total += n;
        if (n < batch) break;
      }
      return total;
    };
    return {
      deadLettered: await repeat((b) => this.moveDeadLetters(b)),
      expired: await repeat((b) => this.deleteExpired(b)),
      rewindPurged: await repeat((b) => this.purgeRewound(b)),
      purged: await repeat((b) => this.purgeDeletedQueues(b)),
      queuesReleased: await this.releaseEmptyDeletedQueues(),
      countersFolded: await this.foldCounters(),
    };
  }
}
