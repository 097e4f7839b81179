import { applyDecorators, createParamDecorator, ExecutionContext } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { AuditActor } from '@app/audit';
import type { Principal } from './api-token.guard';
import { actorOf } from '../params';

type GuardedRequest = { principal?: Principal; headers: Record<string, string | string[] | undefined> };

function principalOf(ctx: ExecutionContext): Principal {
  const principal = ctx.switchToHttp().getRequest<GuardedRequest>().principal;
  if (!principal) throw new Error('no principal on the request: the route is public');
  return principal;
}

/** The caller of a guarded route (its token's name and role). */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => principalOf(ctx));

/**
 * The operator an action is audited as: the X-Operator header when given (1-128 printable
 * ASCII, 400 otherwise), else the token's name; a web console sign-in is the account's user. Pair with {@link ApiOperatorHeader}.
 */
export const OperatorActor = createParamDecorator((_: unknown, ctx: ExecutionContext): AuditActor => {
  const principal = principalOf(ctx);
  // a web console sign-in acts as the account's user, by the key it signed in with
  if (principal.role === 'account') return { kind: 'user', name: principal.name, via: 'console' };
  const header = ctx.switchToHttp().getRequest<GuardedRequest>().headers['x-operator'];
  return { kind: 'operator', name: actorOf(principal, Array.isArray(header) ? header[0] : header) };
});

/**
 * The X-Operator header in the OpenAPI document: optional unless `required` (the handlers that
 * read it through `operator` of params.ts refuse a request without it).
 */
export const ApiOperatorHeader = (opts: { required?: boolean; description?: string } = {}) =>
  applyDecorators(
    ApiHeader({
      name: 'X-Operator',
      required: opts.required ?? false,
      description: `${opts.description ?? (opts.required ? 'who does it, as the audit trail records it' : 'who does it, as the audit trail records it (default: the token’s name)')}; 1-128 printable ASCII characters`,
      example: 'alice@ops',
    }),
  );
