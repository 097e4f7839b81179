import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { AccountsException, AccountsExceptionCode } from '@app/accounts';

const STATUS: Record<AccountsExceptionCode, number> = {
  [AccountsExceptionCode.ACCOUNT_NOT_FOUND]: HttpStatus.NOT_FOUND,
  [AccountsExceptionCode.KEY_NOT_FOUND]: HttpStatus.NOT_FOUND,
  [AccountsExceptionCode.UNKNOWN_REGION]: HttpStatus.BAD_REQUEST,
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * An error of the internal API, as RFC 9457 problem details: `type` (about:blank: the status
 * says it all), `title` (the status's phrase), `status`, `detail` (the reason, in words),
 * `instance` (the request's path), and where they apply `code` (a domain error's code),
 * `errors` (every reason when a body or query fails several checks) and `errorId` (a 500's id
 * in the logs).
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code?: string;
  errors?: string[];
  errorId?: string;
}

export function problem(status: number, detail: string, instance: string, extra: Partial<Problem> = {}): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, instance, ...extra };
}

/** The reason(s) an HttpException carries: its message, or class-validator's list of them. */
function reasons(body: string | object): { detail: string; errors?: string[] } {
  const message = typeof body === 'object' && body !== null && 'message' in body ? (body as { message: unknown }).message : body;
  if (Array.isArray(message)) {
    const errors = message.map(String);
    return { detail: errors.join('; '), errors };
  }
  return { detail: typeof message === 'string' ? message : JSON.stringify(message) };
}

/**
 * One error shape for the REST API: application/problem+json. Domain exceptions map to their
 * status; Fastify's own client errors (malformed JSON, a body too large) keep theirs; anything
 * unexpected is a 500 with an `errorId` to find in the logs. Health checks keep terminus's own
 * body (what monitors read), with their status.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const req = http.getRequest<FastifyRequest>();
    const instance = req.url.split('?')[0];
    const send = (p: Problem) => {
      if (p.status === 401) void reply.header('www-authenticate', 'Bearer');
      void reply.status(p.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(p));
    };
    if (exception instanceof AccountsException) {
      send(problem(STATUS[exception.code], exception.message, instance, { code: exception.code }));
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      if (instance.startsWith('/health') && typeof body === 'object') {
        void reply.status(status).send(body);
        return;
      }
      send(problem(status, '', instance, reasons(body)));
      return;
    }
    const status = (exception as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      send(problem(status, (exception as Error).message, instance));
      return;
    }
    const errorId = randomUUID();
    this.logger.error({ err: exception, errorId }, 'unhandled error');
    send(problem(500, `internal error (errorId ${errorId})`, instance, { errorId }));
  }
}
