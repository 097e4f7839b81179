import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which price plan an account is on, per region (billing.md §2). Rows are never changed: an
 * assignment takes effect from the start of the next hour, and the rows are the audit trail of
 * every change. Without a row the account is on the plan `default`.
 */
export class AccountPlans1764410000000 implements MigrationInterface {
  name = 'AccountPlans1764410000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE account_plans (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        region text NOT NULL,
        plan_code text NOT NULL,
        effective_from timestamptz NOT NULL CHECK (date_trunc('hour', effective_from) = effective_from),
        reason text,
        assigned_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX account_plans_lookup ON account_plans (account_id, region, effective_from DESC, id DESC)`);
    await q.query(`
      CREATE TRIGGER account_plans_append_only BEFORE UPDATE OR DELETE ON account_plans
        FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE account_plans`);
  }
}
