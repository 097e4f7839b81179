import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from '@app/config';
import type { Clock } from '@app/common';
import { auditScope } from '@app/audit';
import { ApiExceptionFilter, problem, PROBLEM_CONTENT_TYPE } from './api-exception.filter';
import { BillingApiModule } from './billing-api.module';
import { VALIDATION_PIPE_OPTIONS } from './validation';
import { openApiDocument } from './openapi';
import { serveConsole } from './console/console-assets';
import { unsafeInput } from './input-guard';
import { HttpMetrics } from './http-metrics';

/** `clock`: the time the SLA reports and operations read (the system clock unless given). */
export async function createBillingApi(config: AppConfig, opts: { clock?: Clock } = {}): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    BillingApiModule.forRoot(config, opts.clock),
    new FastifyAdapter({
      bodyLimit: 1024 * 1024,
      // what Fastify refuses before any route runs (a malformed percent-encoding in the URL)
      // answers a problem too
      frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
        const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
        void reply
          .code(status)
          .type(PROBLEM_CONTENT_TYPE)
          .send(JSON.stringify(problem(status, err.message, (req.url ?? '').split('?')[0])));
      },
    }),
    { bufferLogs: true },
  );
  app.useLogger(app.get(Logger));
  // request rate and latency by route template and status class, on /metrics
  app.get(HttpMetrics).install(app.getHttpAdapter().getInstance());
  // each request runs in an audit scope of its own: what it changes is recorded as coming
  // through the token the guard found (see ApiTokenGuard)
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (_req, _reply, done) => auditScope.run(() => done()));
  // a body nested too deep or a NUL character is the caller's mistake (400), never a 500
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('preValidation', (req, reply, done) => {
      const reason = unsafeInput(req.body, req.query);
      if (reason === undefined) return done();
      void reply.code(400).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem(400, reason, req.url.split('?')[0])));
    });
  app.useGlobalPipes(new ValidationPipe(VALIDATION_PIPE_OPTIONS));
  app.useGlobalFilters(new ApiExceptionFilter());
  SwaggerModule.setup('docs', app, openApiDocument(app));
  await serveConsole(app);
  return app;
}
