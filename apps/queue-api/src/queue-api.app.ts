import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { createServer, IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from '@app/config';
import type { Clock } from '@app/common';
import { CmqHttpHandler, isCmqPath } from './cmq/cmq-http.handler';
import { CmqGateway } from './cmq/cmq.gateway';

/**
 * The queue-api: Nest (with Fastify) for DI, health and shutdown; the CMQ paths are answered
 * by {@link CmqHttpHandler} on the bare HTTP server in front of Fastify, the hot path paying for
 * no framework layer it does not use.
 */
/** `clock`: the time usage is metered by (the system clock unless given). */
export async function createQueueApi(config: AppConfig, opts: { clock?: Clock } = {}): Promise<NestFastifyApplication> {
  const { QueueApiModule } = await import('./queue-api.module');
  let cmq: CmqHttpHandler | undefined;
  const adapter = new FastifyAdapter({
    // A request line or headers too large for the parser (a GET with a huge query) gets the
    // protocol's reply too; other malformed requests get a plain 400, as Fastify does.
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
      const cmqReply = err.code === 'HPE_HEADER_OVERFLOW' && cmq ? cmq.transportErrorBody() : undefined;
      const body = cmqReply ?? '{"error":"Bad Request","message":"Client Error","statusCode":400}';
      const status = cmqReply ? 200 : 400;
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
      );
      socket.destroy();
    },
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
  const app = await NestFactory.create<NestFastifyApplication>(QueueApiModule.forRoot(config, opts.clock), adapter, {
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  cmq = new CmqHttpHandler(app.get(CmqGateway), config.cmq.maxRequestBytes);
  return app;
}
