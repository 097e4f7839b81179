import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Pool } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';

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
    // an idle client's error (e.g. the server restarted) must not crash the process
    this.on('error', () => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.end();
  }
}

/**
 * Connections that commit without waiting for the WAL flush (synchronous_commit=off), for writes
 * whose loss in a crash breaks no promise: a receive's claim on a message (lost, the message
 * simply becomes visible again, which at-least-once delivery allows). Never for sends or deletes.
 */
@Injectable()
export class PgRelaxedPool extends Pool implements OnApplicationShutdown {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super({
      connectionString: config.database.url,
      // claims of one queue share statements (two in flight per queue), so half the pool serves them
      max: Math.max(2, Math.ceil(config.database.poolSize / 2)),
      application_name: 'cmq-receive',
      options: '-c synchronous_commit=off',
    });
    this.on('error', () => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.end();
  }
}
