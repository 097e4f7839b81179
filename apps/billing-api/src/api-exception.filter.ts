import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { AccountsException, AccountsExceptionCode } from '@app/accounts';

const STATUS: Record<AccountsExceptionCode, number> = {
  [AccountsExceptionCode.ACCOUNT_NOT_FOUND]: HttpStatus.NOT_FOUND,
  [AccountsExceptionCode.KEY_NOT_FOUND]: HttpStatus.NOT_FOUND,
  [AccountsExceptionCode.UNKNOWN_REGION]: HttpStatus.BAD_REQUEST,
};

/**
 * One error shape for the REST API: `{statusCode, error, message, path, timestamp}`; domain
 * exceptions map to their status; anything unexpected is a 500 with an `errorId` to find in logs.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const req = http.getRequest<FastifyRequest>();
    const base = { path: req.url, timestamp: new Date().toISOString() };
    if (exception instanceof AccountsException) {
      void reply.status(STATUS[exception.code]).send({
        statusCode: STATUS[exception.code],
        error: exception.code,
        message: exception.message,
        ...base,
      });
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const message = typeof body === 'object' && body !== null && 'message' in body ? (body as { message: unknown }).message : body;
      void reply.status(status).send({ statusCode: status, error: HttpStatus[status] ?? 'Error', message, ...base });
      return;
    }
    const status = (exception as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Fastify's own client errors (malformed JSON, body too large, wrong content type)
      void reply.status(status).send({ statusCode: status, error: HttpStatus[status] ?? 'Error', message: (exception as Error).message, ...base });
      return;
    }
    const errorId = randomUUID();
    this.logger.error({ err: exception, errorId }, 'unhandled error');
    void reply.status(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'internal error', errorId, ...base });
  }
}
