import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { loadConfig } from '../libs/config/src/config';
import { runMigrations } from '../libs/db/src/bootstrap-db';

/**
 * One database and one Redis prefix for this test run, both named after it, migrated once here.
 * Every spec makes its own accounts, so specs share nothing else and may run in any order.
 */
export default async function globalSetup(): Promise<void> {
  const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const base = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const dbName = `cmq_test_${run}`;
  const admin = new Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${dbName}`;

  Object.assign(process.env, {
    NODE_ENV: 'test',
    DATABASE_URL: url.toString(),
    DATABASE_CREATE: 'false',
    MIGRATIONS_RUN: 'false',
    REDIS_PREFIX: `cmqtest-${run}`,
    MASTER_KEY: randomBytes(32).toString('base64'),
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    CMQ_TEST_ADMIN_DATABASE_URL: base.toString(),
    CMQ_TEST_DATABASE: dbName,
  });
  await runMigrations(loadConfig(process.env));
}
