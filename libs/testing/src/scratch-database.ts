import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/**
 * A database of its own, beside the run's (test/global-setup.ts), for specs that break or race
 * on the schema, or whose settings would act on the other specs' accounts. Not migrated.
 */
export async function scratchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = new URL(process.env.CMQ_TEST_ADMIN_DATABASE_URL!);
  const name = `${process.env.CMQ_TEST_DATABASE}_${randomBytes(3).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new Client({ connectionString: admin.toString() });
    await c.connect();
    await c.query(sql);
    await c.end();
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(admin.toString());
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
