import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '@app/config';

/**
 * pino through nestjs-pino; secrets are redacted wherever they appear in a logged object.
 * `httpPaths` limits the per-request logger middleware to some routes (none: no middleware, and
 * no async-context tracking of every promise). The queue-api runs without it: its CMQ path
 * answers ahead of Fastify and logs only failures.
 */
export function loggerParams(config: AppConfig, app: string, httpPaths?: string[]): Params {
  return {
    forRoutes: httpPaths?.map((path) => ({ path, method: RequestMethod.ALL })),
    pinoHttp: {
      name: app,
      level: config.log.level,
      autoLogging: config.log.requests ? { ignore: (req) => /^\/(health|metrics)(?:[/?]|$)/.test(req.url ?? '') } : false,
      redact: {
        paths: ['req.headers.authorization', '*.secretKey', '*.SecretKey', '*.Signature', '*.masterKey', '*.adminToken'],
        censor: '[redacted]',
      },
      transport: config.log.pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
    },
  };
}
