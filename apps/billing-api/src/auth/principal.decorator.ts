import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Principal } from './api-token.guard';

/** The caller of a guarded route (its token's name and role). */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<{ principal?: Principal }>().principal;
  if (!principal) throw new Error('no principal on the request: the route is public');
  return principal;
});
