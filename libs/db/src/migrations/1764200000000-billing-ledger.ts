import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Price plans as versioned data (billing.md §2), with the default plan seeded, and the
 * append-only ledger with per-account balances (§3, §4). Money is bigint nano (1e-9 of the
 * currency unit).
 */
export class BillingLedger1764200000000 implements MigrationInterface {
  name = 'BillingLedger1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE price_plans (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code text NOT NULL,
        region_group text NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        currency char(3) NOT NULL,
        metering_rule text NOT NULL CHECK (metering_rule IN ('size_bands', 'per_64k')),
        effective_from timestamptz NOT NULL,
        effective_to timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (code, region_group, version),
        CHECK (effective_to IS NULL OR effective_to > effective_from)
      )`);
    await q.query(`
      CREATE TABLE price_plan_regions (
        plan_id uuid NOT NULL REFERENCES price_plans (id),
        region text NOT NULL,
        PRIMARY KEY (plan_id, region)
      )`);
    await q.query(`CREATE INDEX price_plan_regions_region ON price_plan_regions (region)`);
    await q.query(`
      CREATE TABLE price_plan_lines (
        plan_id uuid NOT NULL REFERENCES price_plans (id),
        meter text NOT NULL CHECK (meter IN ('calls')),
        free_quota bigint NOT NULL DEFAULT 0 CHECK (free_quota >= 0),
        PRIMARY KEY (plan_id, meter)
      )`);
    await q.query(`
      CREATE TABLE price_plan_tiers (
        plan_id uuid NOT NULL,
        meter text NOT NULL,
        ord integer NOT NULL,
        up_to bigint CHECK (up_to > 0),
        per_million_nano bigint NOT NULL CHECK (per_million_nano >= 0),
        PRIMARY KEY (plan_id, meter, ord),
        FOREIGN KEY (plan_id, meter) REFERENCES price_plan_lines (plan_id, meter)
      )`);

    // the default plan (CNY, per million billable calls, no free quota), one version per region group
    const groups: Array<[string, string[], string]> = [
      ['mainland', ['gz', 'sh', 'bj', 'cd', 'nj'], '2000000000'],
      ['international', ['hk', 'sg', 'seoul', 'tokyo', 'usw', 'fra', 'va'], '2600000000'],
      ['finance', ['szjr', 'shjr', 'bjjr'], '3200000000'],
    ];
    for (const [group, regions, perMillion] of groups) {
      const [{ id }] = await q.query(
        `INSERT INTO price_plans (code, region_group, version, currency, metering_rule, effective_from)
         VALUES ('default', $1, 1, 'CNY', 'size_bands', '2026-01-01T00:00:00+08:00') RETURNING id`,
        [group],
      );
      await q.query(`INSERT INTO price_plan_regions (plan_id, region) SELECT $1, unnest($2::text[])`, [id, regions]);
      await q.query(`INSERT INTO price_plan_lines (plan_id, meter, free_quota) VALUES ($1, 'calls', 0)`, [id]);
      await q.query(`INSERT INTO price_plan_tiers (plan_id, meter, ord, up_to, per_million_nano) VALUES ($1, 'calls', 0, NULL, $2)`, [
        id,
        perMillion,
      ]);
    }

    await q.query(`
      CREATE TABLE balances (
        account_id uuid PRIMARY KEY REFERENCES accounts (id),
        currency char(3) NOT NULL DEFAULT 'CNY',
        cash_nano bigint NOT NULL DEFAULT 0,
        voucher_nano bigint NOT NULL DEFAULT 0 CHECK (voucher_nano >= 0),
        last_usage_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // append-only: every movement of money, with the balances it left behind
    await q.query(`
      CREATE TABLE ledger_entries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        kind text NOT NULL CHECK (kind IN ('topup', 'usage_charge', 'voucher_grant', 'voucher_use', 'adjustment', 'refund', 'rounding')),
        cash_delta_nano bigint NOT NULL DEFAULT 0,
        voucher_delta_nano bigint NOT NULL DEFAULT 0,
        cash_after_nano bigint NOT NULL,
        voucher_after_nano bigint NOT NULL,
        idempotency_key text NOT NULL UNIQUE,
        request_hash text,
        reason text,
        meta jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id)`);
    await q.query(`
      CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'ledger entries are append-only';
      END $$`);
    await q.query(`
      CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
        FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()`);
    // each scheduled check that balances equal the sums of their entries
    await q.query(`
      CREATE TABLE ledger_reconciliations (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_at timestamptz NOT NULL DEFAULT now(),
        accounts_checked integer NOT NULL,
        mismatched integer NOT NULL,
        details jsonb NOT NULL DEFAULT '[]'
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE ledger_reconciliations`);
    await q.query(`DROP TABLE ledger_entries`);
    await q.query(`DROP FUNCTION ledger_entries_append_only()`);
    await q.query(`DROP TABLE balances`);
    await q.query(`DROP TABLE price_plan_tiers`);
    await q.query(`DROP TABLE price_plan_lines`);
    await q.query(`DROP TABLE price_plan_regions`);
    await q.query(`DROP TABLE price_plans`);
  }
}
