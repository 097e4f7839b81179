import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Pool, PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';

/**
 * A connection the server ends (a restart, pg_terminate_backend, a network cut) emits `error` on
 * its client, whether the pool holds it idle (the pool's `error`) or a caller has it checked out
 * (the client's own, which pg-pool leaves without a listener): unhandled, either would end the
 * process. The query that was running fails with the same error and the pool drops the client,
 * so both are answered here with nothing more to do.
 */
function survivesLostConnections(pool: Pool): void {
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
}

/**
 * The pool of the hot path (messages): plain pg, no ORM in between. TypeORM keeps its own small
 * pool for the management tables.
 */
@Injectable()
export class PgPool extends Pool implements OnApplicationShutdown {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super({
      connectionString: config.database.url,
      max: config.database.poolSize,
      application_name: 'cmq-hot-path',
    });
    survivesLostConnections(this);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.end();
  }
}

/**
 * Connections that commit without waiting for the WAL flush (synchronous_commit=off), for writes
 * whose loss in a crash breaks no promise: a receive's claim on a message (lost, the message
 * simply becomes visible again, which at-least-once delivery allows). Never for sends or deletes.
 * Their prepared statements run on generic plans (see the options).
 */
@Injectable()
export class PgRelaxedPool extends Pool implements OnApplicationShutdown {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super({
      connectionString: config.database.url,
      // claims of one queue share statements (two in flight per queue), so half the pool serves them
      max: Math.max(2, Math.ceil(config.database.poolSize / 2)),
      application_name: 'cmq-receive',
      // The claim statements plan to the same index scan whatever their parameters, but their
      // generic plan's cost (LIMIT unknown) looks higher than a custom plan's, so Postgres would
      // plan each execution anew: about as much CPU as running it. Plan them once per connection.
      options: '-c synchronous_commit=off -c plan_cache_mode=force_generic_plan',
    });
    survivesLostConnections(this);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.end();
  }
}

/** Runs `fn` in one transaction on a client of `pool`: committed if it resolves, rolled back if it throws. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}
