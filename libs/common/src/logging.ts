import type { Params } from 'nestjs-pino';
import type { AppConfig } from '@app/config';

/** pino through nestjs-pino; secrets are redacted wherever they appear in a logged object. */
export function loggerParams(config: AppConfig, app: string): Params {
  return {
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
