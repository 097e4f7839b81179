import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * System accounts: the service's own tenants (the SLA prober's), which use the public CMQ
 * endpoint like any customer but are never metered or billed. Their names are unique, so
 * concurrent workers that ensure one by name make it once.
 */
export class SystemAccount1764610000000 implements MigrationInterface {
  name = 'SystemAccount1764610000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN system boolean NOT NULL DEFAULT false`);
    await q.query(`CREATE UNIQUE INDEX accounts_system_name ON accounts (name) WHERE system`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX accounts_system_name`);
    await q.query(`ALTER TABLE accounts DROP COLUMN system`);
  }
}
