import Redis from 'ioredis';
import { Client } from 'pg';

/** Drops the run's database and every Redis key under the run's prefix. */
export default async function globalTeardown(): Promise<void> {
  const dbName = process.env.CMQ_TEST_DATABASE;
  if (dbName?.startsWith('cmq_test_')) {
    const admin = new Client({ connectionString: process.env.CMQ_TEST_ADMIN_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
  const prefix = process.env.REDIS_PREFIX;
  if (prefix?.startsWith('cmqtest-')) {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
  }
}
