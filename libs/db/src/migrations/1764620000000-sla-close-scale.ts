import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the SLA month close needs at fleet scale (docs/benchmarks.md, "SLA month close"):
 * - the server-error minutes of usage_minutely found without reading every usage row of every
 *   account: a partial index of the server_error rows only (a minute with none cannot be down by
 *   its error ratio), so the usage path pays for it on those rows alone;
 * - the per-account results' outage lists (one object per outage the account saw: hundreds a
 *   month for every account of a region when the region has many incidents) compressed with
 *   lz4 rather than pglz, which took most of the close's time in Postgres; when this Postgres
 *   was built without lz4 the columns keep the default.
 */
export class SlaCloseScale1764620000000 implements MigrationInterface {
  name = 'SlaCloseScale1764620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX usage_minutely_server_errors ON usage_minutely (account_id, minute) WHERE outcome = 'server_error'`);
    const lz4: Array<{ ok: boolean }> = await q.query(
      `SELECT 'lz4' = ANY (enumvals) AS ok FROM pg_settings WHERE name = 'default_toast_compression'`,
    );
    if (lz4[0]?.ok) {
      await q.query(`ALTER TABLE sla_results ALTER COLUMN outages SET COMPRESSION lz4, ALTER COLUMN maintenance SET COMPRESSION lz4`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sla_results ALTER COLUMN outages SET COMPRESSION default, ALTER COLUMN maintenance SET COMPRESSION default`);
    await q.query(`DROP INDEX usage_minutely_server_errors`);
  }
}
