import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from '@app/config';
import type { Clock } from '@app/common';
import { WorkerModule } from './worker.module';

/** `clock`: the time probes are stamped with and months are closed by (the system clock unless given). */
export async function createWorker(config: AppConfig, opts: { clock?: Clock } = {}): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(WorkerModule.forRoot(config, opts.clock), new FastifyAdapter(), {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  return app;
}
