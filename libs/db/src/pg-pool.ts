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
