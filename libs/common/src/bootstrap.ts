import type { INestApplication } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig, ConfigError, loadConfig } from '@app/config';
import { connectionHint, describeAddress, prepareDatabase, StartupError } from '@app/db';

/** Fails with one clear line when Redis cannot be reached. */
export async function checkRedis(config: AppConfig): Promise<void> {
  const redis = new Redis(config.redis.url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw connectionHint('Redis', config.redis.url, err);
  } finally {
    redis.disconnect();
  }
}

/** Checks the services, creates and migrates the database: what every app does before Nest starts. */
export async function prepareInfrastructure(config: AppConfig): Promise<void> {
  await checkRedis(config);
  await prepareDatabase(config);
}

/**
 * Runs an app's `main`: config, infrastructure, then the app itself. Known start-up failures
 * (bad config, unreachable Postgres or Redis) end the process with one line, not a stack trace.
 */
export function runMain(name: string, start: (config: AppConfig) => Promise<INestApplication>): void {
  (async () => {
    const config = loadConfig();
    await prepareInfrastructure(config);
    const app = await start(config);
    // SIGTERM/SIGINT: Nest's hooks in order (before-shutdown, HTTP close, shutdown), then exit 0
    app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  })().catch((err: unknown) => {
    if (err instanceof StartupError || err instanceof ConfigError) {
      console.error(`${name}: ${err.message}`);
    } else {
      console.error(`${name}: failed to start`, err);
    }
    process.exit(1);
  });
}

export { describeAddress };
