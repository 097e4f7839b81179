import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The month's cash spent on usage per account (the SLA credit base, billing.md §4) read from an
 * index of the usage charges by account and time, with the cash part included, instead of every
 * entry the account ever had: an active account has a usage charge for every few hundred
 * milliseconds of traffic.
 */
export class LedgerUsageByTime1764630000000 implements MigrationInterface {
  name = 'LedgerUsageByTime1764630000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX ledger_entries_usage_by_time ON ledger_entries (account_id, created_at) INCLUDE (cash_delta_nano) WHERE kind = 'usage_charge'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX ledger_entries_usage_by_time`);
  }
}
