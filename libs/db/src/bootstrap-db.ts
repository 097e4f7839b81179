import { Client } from 'pg';
import { DataSource } from 'typeorm';
import type { AppConfig } from '@app/config';
import { dataSourceOptions } from './data-source';

/** Advisory lock key taken while migrating, so replicas that start together do not race. */
const MIGRATION_LOCK = 7_106_432_001;

export class StartupError extends Error {}

export function describeAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol.startsWith('redis') ? 6379 : 5432)}`;
}

function connectionHint(kind: 'Postgres' | 'Redis', url: string, cause: unknown): StartupError {
  const variable = kind === 'Postgres' ? 'DATABASE_URL' : 'REDIS_URL';
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new StartupError(
    `Cannot reach ${kind} at ${describeAddress(url)} (${reason}). ` +
      `Set ${variable} to a reachable server, or run \`docker compose up -d postgres redis\` to start one.`,
  );
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  return client;
}

/**
 * Fails fast with one clear line when Postgres cannot be reached, and creates the configured
 * database when it does not exist yet (DATABASE_CREATE, on by default outside production use).
 */
export async function ensureDatabase(config: AppConfig): Promise<void> {
  const url = config.database.url;
  try {
    const client = await connect(url);
    await client.end();
    return;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '3D000' || !config.database.create) throw connectionHint('Postgres', url, err);
  }
  // 3D000: the database does not exist; create it from the maintenance database
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  let client: Client;
  try {
    client = await connect(admin.toString());
  } catch (err) {
    throw connectionHint('Postgres', url, err);
  }
  try {
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } catch (err) {
    if ((err as { code?: string }).code !== '42P04') throw err; // created meanwhile by a sibling
  } finally {
    await client.end();
  }
}

/** Applies pending migrations under a Postgres advisory lock. Returns the names applied. */
export async function runMigrations(config: AppConfig): Promise<string[]> {
  const lock = await connect(config.database.url);
  const ds = new DataSource({ ...dataSourceOptions(config), extra: { max: 2 } });
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await ds.initialize();
    const applied = await ds.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    if (ds.isInitialized) await ds.destroy();
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.end();
  }
}

/** Everything an app needs from Postgres before it starts: reachable, created, migrated. */
export async function prepareDatabase(config: AppConfig): Promise<void> {
  await ensureDatabase(config);
  if (config.database.migrationsRun) await runMigrations(config);
}

export { connectionHint };
