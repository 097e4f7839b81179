import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Usage: applied batches (each once), hourly and per-minute aggregates, the month's cumulative
 * rating state, and the client ids of usage events from elsewhere (deduplicated for 35 days).
 */
export class Usage1764300000000 implements MigrationInterface {
  name = 'Usage1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE usage_batches_applied (
        batch_id text PRIMARY KEY,
        records integer NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    // statements: per account, region, resource ('' for none), action class and hour (UTC)
    await q.query(`
      CREATE TABLE usage_hourly (
        account_id uuid NOT NULL,
        region text NOT NULL,
        resource text NOT NULL,
        action_class text NOT NULL,
        hour timestamptz NOT NULL,
        calls bigint NOT NULL DEFAULT 0,
        billable_calls bigint NOT NULL DEFAULT 0,
        messages bigint NOT NULL DEFAULT 0,
        bytes_in bigint NOT NULL DEFAULT 0,
        bytes_out bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, region, resource, action_class, hour)
      )`);
    // SLA: requests per account, region, minute and outcome
    await q.query(`
      CREATE TABLE usage_minutely (
        account_id uuid NOT NULL,
        region text NOT NULL,
        minute timestamptz NOT NULL,
        outcome text NOT NULL,
        requests bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, region, minute, outcome)
      )`);
    // cumulative rating: the month's billable calls of a plan line, and what they were charged
    await q.query(`
      CREATE TABLE usage_monthly (
        account_id uuid NOT NULL,
        region text NOT NULL,
        month date NOT NULL,
        meter text NOT NULL,
        plan_id uuid NOT NULL REFERENCES price_plans (id),
        billable_calls bigint NOT NULL DEFAULT 0,
        charged_nano bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, region, month, meter, plan_id)
      )`);
    await q.query(`
      CREATE TABLE usage_event_ids (
        account_id uuid NOT NULL,
        client_id text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, client_id)
      )`);
    await q.query(`CREATE INDEX usage_event_ids_received ON usage_event_ids (received_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE usage_event_ids`);
    await q.query(`DROP TABLE usage_monthly`);
    await q.query(`DROP TABLE usage_minutely`);
    await q.query(`DROP TABLE usage_hourly`);
    await q.query(`DROP TABLE usage_batches_applied`);
  }
}
