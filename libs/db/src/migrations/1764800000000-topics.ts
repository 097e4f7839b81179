import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Topics and subscriptions (publish/subscribe, cmq-protocol.md §10).
 *
 * A publish fans out in its own commit: copies into the subscribed queues (rows of `messages`)
 * and one `push_deliveries` row per HTTP subscription that matched (and per queue subscription
 * whose queue was full), which the workers push and delete. Subscriptions store their binding
 * keys also as regular expressions (`binding_patterns`), so the publish statement matches routing
 * keys in the same snapshot it writes in.
 */
export class Topics1764800000000 implements MigrationInterface {
  name = 'Topics1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE topics (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        topic_id text NOT NULL UNIQUE,
        account_id uuid NOT NULL REFERENCES accounts (id),
        region text NOT NULL,
        name text NOT NULL,
        max_msg_size integer NOT NULL CHECK (max_msg_size BETWEEN 1024 AND 1048576),
        filter_type smallint NOT NULL CHECK (filter_type IN (1, 2)),
        msg_retention_seconds integer NOT NULL DEFAULT 86400 CHECK (msg_retention_seconds > 0),
        qps_limit integer CHECK (qps_limit > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        last_modify_time timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX topics_live_name ON topics (account_id, region, lower(name)) WHERE deleted_at IS NULL`);
    await q.query(`CREATE INDEX topics_name_deleted ON topics (account_id, region, lower(name), deleted_at) WHERE deleted_at IS NOT NULL`);
    await q.query(`CREATE INDEX topics_account_live ON topics (account_id) WHERE deleted_at IS NULL`);

    await q.query(`
      CREATE TABLE subscriptions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subscription_id text NOT NULL UNIQUE,
        topic_id bigint NOT NULL REFERENCES topics (id),
        account_id uuid NOT NULL REFERENCES accounts (id),
        name text NOT NULL,
        protocol text NOT NULL CHECK (protocol IN ('http', 'queue')),
        endpoint text NOT NULL CHECK (char_length(endpoint) BETWEEN 1 AND 500),
        notify_strategy text NOT NULL CHECK (notify_strategy IN ('BACKOFF_RETRY', 'EXPONENTIAL_DECAY_RETRY')),
        notify_content_format text NOT NULL CHECK (notify_content_format IN ('JSON', 'SIMPLIFIED')),
        filter_tags text[] NOT NULL DEFAULT '{}',
        binding_keys text[] NOT NULL DEFAULT '{}',
        binding_patterns text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        last_modify_time timestamptz NOT NULL DEFAULT now(),
        CHECK (protocol = 'http' OR notify_content_format = 'SIMPLIFIED'),
        CHECK (cardinality(binding_keys) = cardinality(binding_patterns))
      )`);
    await q.query(`CREATE UNIQUE INDEX subscriptions_name ON subscriptions (topic_id, lower(name))`);
    // the queue subscriptions of an account, by queue name (what a deleted queue leaves dangling)
    await q.query(`CREATE INDEX subscriptions_queue ON subscriptions (account_id, lower(endpoint)) WHERE protocol = 'queue'`);

    await q.query(`
      CREATE TABLE push_deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subscription_id bigint NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
        msg_id bigint NOT NULL,
        body bytea NOT NULL,
        tags text[] NOT NULL DEFAULT '{}',
        publish_ms bigint NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_ms bigint NOT NULL,
        lease_until_ms bigint NOT NULL DEFAULT 0,
        last_error text
      ) WITH (autovacuum_vacuum_scale_factor = 0.01)`);
    await q.query(`CREATE INDEX push_deliveries_due ON push_deliveries (next_attempt_ms)`);
    await q.query(`CREATE INDEX push_deliveries_subscription ON push_deliveries (subscription_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE push_deliveries`);
    await q.query(`DROP TABLE subscriptions`);
    await q.query(`DROP TABLE topics`);
  }
}
