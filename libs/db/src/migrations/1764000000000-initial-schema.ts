import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Accounts, access keys, queues and messages.
 *
 * Message times are Unix milliseconds taken from the database clock (cmq_now_ms()), so every
 * queue-api process agrees on visibility whatever its own clock says.
 */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION cmq_now_ms() RETURNS bigint
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$`);

    await q.query(`
      CREATE TABLE accounts (
        id uuid PRIMARY KEY,
        app_id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1250000000) UNIQUE,
        name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
        region text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'overdue', 'suspended', 'released')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);

    await q.query(`
      CREATE TABLE access_keys (
        secret_id text PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        secret_key_enc bytea NOT NULL,
        status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX access_keys_account ON access_keys (account_id)`);

    await q.query(`
      CREATE TABLE queues (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue_id text NOT NULL UNIQUE,
        account_id uuid NOT NULL REFERENCES accounts (id),
        region text NOT NULL,
        name text NOT NULL,
        max_msg_heap_num bigint NOT NULL,
        polling_wait_seconds integer NOT NULL,
        visibility_timeout integer NOT NULL,
        max_msg_size integer NOT NULL,
        msg_retention_seconds integer NOT NULL,
        rewind_seconds integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_modify_time timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        purged_at timestamptz
      )`);
    // queue names are unique per account and region, ignoring case, among live queues
    await q.query(
      `CREATE UNIQUE INDEX queues_live_name ON queues (account_id, region, lower(name)) WHERE deleted_at IS NULL`,
    );
    await q.query(`CREATE INDEX queues_unpurged ON queues (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL`);

    // No foreign key to queues: sends insert through a join on the live queue row instead, and a
    // deleted queue's messages are purged in the background.
    await q.query(`
      CREATE TABLE messages (
        msg_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue_id bigint NOT NULL,
        body bytea NOT NULL,
        enqueue_ms bigint NOT NULL,
        visible_ms bigint NOT NULL,
        first_dequeue_ms bigint NOT NULL DEFAULT 0,
        dequeue_count integer NOT NULL DEFAULT 0,
        receipt bigint NOT NULL DEFAULT 0
      ) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.05)`);
    // serves receive (next visible messages of a queue) and the per-queue counts
    await q.query(`CREATE INDEX messages_ready ON messages (queue_id, visible_ms, msg_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE messages`);
    await q.query(`DROP TABLE queues`);
    await q.query(`DROP TABLE access_keys`);
    await q.query(`DROP TABLE accounts`);
    await q.query(`DROP FUNCTION cmq_now_ms()`);
  }
}
