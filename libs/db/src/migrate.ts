import { loadConfig } from '@app/config';
import { ensureDatabase, runMigrations, StartupError } from './bootstrap-db';

/** `npm run migrate`: applies pending migrations and exits (for deployments with MIGRATIONS_RUN=false). */
async function main(): Promise<void> {
  const config = loadConfig();
  await ensureDatabase(config);
  const applied = await runMigrations(config);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'no pending migrations');
}

main().catch((err) => {
  console.error(err instanceof StartupError ? err.message : err);
  process.exit(1);
});
