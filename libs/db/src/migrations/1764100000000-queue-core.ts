import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The complete queue core: dead-letter bindings, per-queue QPS limits, messages kept after
 * deletion for rewinding, and exact per-queue message counters.
 *
 * queue_counters holds, per queue, the number of undeleted messages (`msgs`) and of deleted
 * messages still inside the rewind window (`rewind_msgs`), as sums over shards. Every statement
 * that adds, deletes, moves or restores messages adds its delta to the shard of its own backend
 * (pg_backend_pid()) in the same statement, so concurrent commits never wait on one counter row
 * and the sum is exact for whatever is committed. The worker folds the shards of backends that
 * are gone into shard 0.
 */
export class QueueCore1764100000000 implements MigrationInterface {
  name = 'QueueCore1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE queues
        ADD COLUMN dead_letter_queue bigint REFERENCES queues (id),
        ADD COLUMN dead_letter_policy smallint CHECK (dead_letter_policy IN (0, 1)),
        ADD COLUMN max_receive_count integer CHECK (max_receive_count BETWEEN 1 AND 1000),
        ADD COLUMN max_time_to_live integer CHECK (max_time_to_live BETWEEN 300 AND 43200),
        ADD COLUMN qps_limit integer CHECK (qps_limit > 0),
        ADD CONSTRAINT queues_dead_letter_complete CHECK (
          (dead_letter_queue IS NULL AND dead_letter_policy IS NULL)
          OR (dead_letter_policy = 0 AND max_receive_count IS NOT NULL)
          OR (dead_letter_policy = 1 AND max_time_to_live IS NOT NULL))`);
    // the sources of a dead-letter queue (binding limit, ListDeadLetterSourceQueues, delete guard)
    await q.query(
      `CREATE INDEX queues_dead_letter ON queues (dead_letter_queue) WHERE dead_letter_queue IS NOT NULL AND deleted_at IS NULL`,
    );
    // recently deleted queues of a name (the recreate cool-down)
    await q.query(
      `CREATE INDEX queues_name_deleted ON queues (account_id, region, lower(name), deleted_at) WHERE deleted_at IS NOT NULL`,
    );
    // per-account live queue count (the optional queue limit)
    await q.query(`CREATE INDEX queues_account_live ON queues (account_id) WHERE deleted_at IS NULL`);

    // deleted_ms: when a message of a rewindable queue was deleted; it stays for the rewind window
    await q.query(`ALTER TABLE messages ADD COLUMN deleted_ms bigint`);
    await q.query(`DROP INDEX messages_ready`);
    await q.query(`CREATE INDEX messages_ready ON messages (queue_id, visible_ms, msg_id) WHERE deleted_ms IS NULL`);
    await q.query(`CREATE INDEX messages_rewindable ON messages (queue_id, enqueue_ms) WHERE deleted_ms IS NOT NULL`);

    await q.query(`
      CREATE TABLE queue_counters (
        queue_id bigint NOT NULL,
        shard integer NOT NULL,
        msgs bigint NOT NULL DEFAULT 0,
        rewind_msgs bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (queue_id, shard)
      ) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.01)`);
    await q.query(`
      INSERT INTO queue_counters (queue_id, shard, msgs)
      SELECT queue_id, 0, count(*) FROM messages GROUP BY queue_id`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE queue_counters`);
    await q.query(`DELETE FROM messages WHERE deleted_ms IS NOT NULL`);
    await q.query(`DROP INDEX messages_rewindable`);
    await q.query(`DROP INDEX messages_ready`);
    await q.query(`CREATE INDEX messages_ready ON messages (queue_id, visible_ms, msg_id)`);
    await q.query(`ALTER TABLE messages DROP COLUMN deleted_ms`);
    await q.query(`DROP INDEX queues_account_live`);
    await q.query(`DROP INDEX queues_name_deleted`);
    await q.query(`DROP INDEX queues_dead_letter`);
    await q.query(`
      ALTER TABLE queues DROP CONSTRAINT queues_dead_letter_complete,
        DROP COLUMN qps_limit, DROP COLUMN max_time_to_live, DROP COLUMN max_receive_count,
        DROP COLUMN dead_letter_policy, DROP COLUMN dead_letter_queue`);
  }
}
