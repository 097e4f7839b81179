import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Monthly bills (billing.md §6): one row per closed month (with the ledger cut it was closed at),
 * one bill per account and month, and its lines by region and action class. Money is bigint nano;
 * the amount due is numeric(20,2), the exact total rounded half-up to the minor unit.
 */
export class Bills1764700000000 implements MigrationInterface {
  name = 'Bills1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE bill_closes (
        month date PRIMARY KEY,
        time_zone text NOT NULL,
        cut_entry_id bigint NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        closed_at timestamptz,
        accounts integer NOT NULL DEFAULT 0,
        closed_by text
      )`);
    await q.query(`
      CREATE TABLE bills (
        account_id uuid NOT NULL REFERENCES accounts (id),
        month date NOT NULL,
        currency char(3) NOT NULL,
        opening_balance_nano bigint NOT NULL,
        topups_nano bigint NOT NULL,
        usage_total_nano bigint NOT NULL,
        vouchers_used_nano bigint NOT NULL,
        cash_charged_nano bigint NOT NULL,
        sla_credits_nano bigint NOT NULL,
        other_vouchers_nano bigint NOT NULL,
        adjustments_nano bigint NOT NULL,
        refunds_nano bigint NOT NULL,
        rounding_nano bigint NOT NULL,
        closing_balance_nano bigint NOT NULL,
        total_nano bigint NOT NULL,
        amount_due numeric(20, 2) NOT NULL,
        late_usage_nano bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, month)
      )`);
    await q.query(`CREATE INDEX bills_month ON bills (month, account_id)`);
    await q.query(`
      CREATE TABLE bill_lines (
        account_id uuid NOT NULL,
        month date NOT NULL,
        usage_month date NOT NULL,
        region text NOT NULL,
        action_class text NOT NULL,
        calls bigint NOT NULL,
        billable_calls bigint NOT NULL,
        amount_nano bigint NOT NULL,
        late boolean NOT NULL,
        PRIMARY KEY (account_id, month, usage_month, region, action_class),
        FOREIGN KEY (account_id, month) REFERENCES bills (account_id, month)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE bill_lines`);
    await q.query(`DROP TABLE bills`);
    await q.query(`DROP TABLE bill_closes`);
  }
}
