import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '@app/config';

/**
 * pino through nestjs-pino; secrets are redacted wherever they appear in a logged object.
 * `httpPaths` limits the per-request logger middleware to some routes: the queue-api keeps it
 * off the CMQ hot path, which answers from its own Fastify route and logs only failures.
 */
export function loggerParams(config: AppConfig, app: string, httpPaths?: string[]): Params {
  return {
    forRoutes: httpPaths?.map((path) => ({ path, method: RequestMethod.ALL })),
    pinoHttp: {
      name: app,
      level: config.log.level,
      autoLogging: config.log.requests ? { ignore: (req) => (req.url ?? '').startsWith('/health') } : false,
      redact: {
        paths: ['req.headers.authorization', '*.secretKey', '*.SecretKey', '*.Signature', '*.masterKey', '*.adminToken'],
        censor: '[redacted]',
      },
      transport: config.log.pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
    },
  };
}
