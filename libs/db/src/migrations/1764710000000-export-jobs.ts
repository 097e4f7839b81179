import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Asynchronous finance exports (billing.md §6): one row per requested export, its status and
 * progress (rows and bytes written so far), and the file it produced under EXPORT_DIR.
 */
export class ExportJobs1764710000000 implements MigrationInterface {
  name = 'ExportJobs1764710000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE export_jobs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text NOT NULL CHECK (kind IN ('ledger', 'usage_hourly')),
        from_at timestamptz NOT NULL,
        to_at timestamptz NOT NULL,
        account_id uuid,
        bom boolean NOT NULL DEFAULT false,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
        rows bigint NOT NULL DEFAULT 0,
        bytes bigint NOT NULL DEFAULT 0,
        file text,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        CHECK (to_at > from_at)
      )`);
    await q.query(`CREATE INDEX export_jobs_created ON export_jobs (created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE export_jobs`);
  }
}
