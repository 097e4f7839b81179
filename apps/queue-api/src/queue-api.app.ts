import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from '@app/config';
import { CmqHttpHandler, isCmqPath } from './cmq/cmq-http.handler';
import { CmqGateway } from './cmq/cmq.gateway';

/**
 * The queue-api: Nest (with Fastify) for DI, health and shutdown; the CMQ paths are answered
 * by {@link CmqHttpHandler} on the bare HTTP server in front of Fastify, the hot path paying for
 * no framework layer it does not use.
 */
export async function createQueueApi(config: AppConfig): Promise<NestFastifyApplication> {
  const { QueueApiModule } = await import('./queue-api.module');
  let cmq: CmqHttpHandler | undefined;
  const adapter = new FastifyAdapter({
    serverFactory: (fastifyHandler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        if (cmq && isCmqPath(req.url)) cmq.handle(req, res);
        else fastifyHandler(req, res);
      });
      // the Python SDK keeps one connection and retries once on a stale one: be generous
      server.keepAliveTimeout = 65_000;
      server.headersTimeout = 66_000;
      return server;
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(QueueApiModule.forRoot(config), adapter, {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  cmq = new CmqHttpHandler(app.get(CmqGateway), config.cmq.maxRequestBytes);
  return app;
}
