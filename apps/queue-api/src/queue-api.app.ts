import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from '@app/config';
import { CmqErrors } from '@app/cmq';
import { CmqGateway } from './cmq/cmq.gateway';

/** Paths that serve the CMQ API: the classic one and the one newer SDKs default to. */
export const CMQ_PATHS = ['/v2/index.php', '/'];
const CMQ_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Mounts the CMQ endpoint straight on Fastify (no Nest pipeline on the hot path), in its own
 * plugin scope whose one body parser takes every Content-Type as raw bytes: some SDKs send none,
 * Java sends `*\/*`, and the form is decoded by the gateway whatever the header says.
 */
function mountCmq(fastify: FastifyInstance, gateway: CmqGateway, maxRequestBytes: number): void {
  void fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxRequestBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.setErrorHandler((err, _req, reply) => {
      // transport failures (body too large, aborted, malformed) still get a CMQ reply
      const cmqErr = CmqErrors.cannotParse('request');
      void reply.code(200).header('content-type', JSON_TYPE).send(gateway.transportError(cmqErr));
      void err;
    });
    for (const url of CMQ_PATHS) {
      scope.route({
        method: [...CMQ_METHODS],
        url,
        handler: async (req, reply) => {
          const out = await gateway.handle({
            method: req.method,
            host: req.headers.host ?? '',
            url: req.url,
            body: Buffer.isBuffer(req.body) ? req.body : undefined,
          });
          return reply.header('content-type', JSON_TYPE).send(out);
        },
      });
    }
  });
}

export async function createQueueApi(config: AppConfig): Promise<NestFastifyApplication> {
  const { QueueApiModule } = await import('./queue-api.module');
  const adapter = new FastifyAdapter({
    keepAliveTimeout: 65_000,
    bodyLimit: config.cmq.maxRequestBytes,
  });
  const app = await NestFactory.create<NestFastifyApplication>(QueueApiModule.forRoot(config), adapter, {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  mountCmq(app.getHttpAdapter().getInstance(), app.get(CmqGateway), config.cmq.maxRequestBytes);
  app.enableShutdownHooks();
  return app;
}
