import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Hourly statements with exact amounts (billing.md §6), price plan versions with their audit, and
 * the finance exports of bills and bill lines.
 *
 * - usage_hourly gets the CMQ action as metered (part of the key, so usage can be read per action,
 *   not only per action class; '' for the rows written before) and the amount its usage was
 *   charged, in nano: each batch's charge of a plan line spread exactly over the hourly rows it
 *   covers, by their billable calls, so an account's hourly amounts add up to its usage charges
 *   in the ledger. Rows written before hold 0.
 * - An index by account and hour for the usage and statement reads of one account over a range.
 * - price_plans: who created a version (X-Operator) and why.
 * - export_jobs: the kinds bills and bill_lines; bill_lines readable by month first, as exported.
 */
export class UsageHourlyAmounts1764720000000 implements MigrationInterface {
  name = 'UsageHourlyAmounts1764720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_hourly ADD COLUMN action text NOT NULL DEFAULT ''`);
    await q.query(`ALTER TABLE usage_hourly ADD COLUMN amount_nano bigint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE usage_hourly DROP CONSTRAINT usage_hourly_pkey`);
    await q.query(`ALTER TABLE usage_hourly ADD PRIMARY KEY (account_id, region, resource, action_class, action, hour)`);
    await q.query(`CREATE INDEX usage_hourly_account_hour ON usage_hourly (account_id, hour)`);

    await q.query(`ALTER TABLE price_plans ADD COLUMN created_by text`);
    await q.query(`ALTER TABLE price_plans ADD COLUMN reason text`);
    await q.query(`CREATE INDEX price_plans_code_version ON price_plans (code, version)`);

    await q.query(`ALTER TABLE export_jobs DROP CONSTRAINT export_jobs_kind_check`);
    await q.query(`ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_kind_check CHECK (kind IN ('ledger', 'usage_hourly', 'bills', 'bill_lines'))`);
    await q.query(`CREATE INDEX bill_lines_month ON bill_lines (month, account_id, usage_month, region, action_class)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX bill_lines_month`);
    await q.query(`DELETE FROM export_jobs WHERE kind IN ('bills', 'bill_lines')`);
    await q.query(`ALTER TABLE export_jobs DROP CONSTRAINT export_jobs_kind_check`);
    await q.query(`ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_kind_check CHECK (kind IN ('ledger', 'usage_hourly'))`);

    await q.query(`DROP INDEX price_plans_code_version`);
    await q.query(`ALTER TABLE price_plans DROP COLUMN reason`);
    await q.query(`ALTER TABLE price_plans DROP COLUMN created_by`);

    await q.query(`DROP INDEX usage_hourly_account_hour`);
    // the rows of one action class merge again: their counts and amounts are summed
    await q.query(`
      CREATE TEMP TABLE usage_hourly_merged AS
      SELECT account_id, region, resource, action_class, hour, sum(calls) AS calls, sum(billable_calls) AS billable_calls,
             sum(messages) AS messages, sum(bytes_in) AS bytes_in, sum(bytes_out) AS bytes_out
        FROM usage_hourly GROUP BY account_id, region, resource, action_class, hour`);
    await q.query(`DELETE FROM usage_hourly`);
    await q.query(`ALTER TABLE usage_hourly DROP CONSTRAINT usage_hourly_pkey`);
    await q.query(`ALTER TABLE usage_hourly DROP COLUMN amount_nano`);
    await q.query(`ALTER TABLE usage_hourly DROP COLUMN action`);
    await q.query(`
      INSERT INTO usage_hourly (account_id, region, resource, action_class, hour, calls, billable_calls, messages, bytes_in, bytes_out)
      SELECT * FROM usage_hourly_merged`);
    await q.query(`DROP TABLE usage_hourly_merged`);
    await q.query(`ALTER TABLE usage_hourly ADD PRIMARY KEY (account_id, region, resource, action_class, hour)`);
  }
}
