import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import { auditScope } from '@app/audit';
import { PUBLIC_KEY } from '@app/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { ConsoleSessions } from '../console/console-sessions';
import { ACCOUNT_ACCESS_KEY, AccountAccessRule, Role, ROLES_KEY } from './roles';

/**
 * Who called: the name and role of the bearer token (the audit trail records the name), or a
 * web console sign-in (role `account`: the access key's SecretId and its account).
 */
export type Principal = { name: string; role: Role } | { name: string; role: 'account'; accountId: string };

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

const READS = new Set(['GET', 'HEAD']);

/**
 * Every route of the internal API but the public ones (health) needs `Authorization: Bearer
 * <token>` of ADMIN_TOKEN or API_TOKENS (401 otherwise), and a role the route allows (403
 * otherwise; see {@link Roles} for the default). The token is compared as its SHA-256 digest
 * against every configured token's, in constant time and without stopping at a match, so the
 * time taken tells nothing of which token, or how much of one, matched. The caller is put on
 * the request as `principal`, and what the request changes is audited as coming through it.
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  private readonly tokens: Array<{ name: string; role: Role; digest: Buffer }>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly reflector: Reflector,
    private readonly sessions: ConsoleSessions,
  ) {
    this.tokens = config.apiTokens.map((t) => ({ name: t.name, role: t.role, digest: digest(t.token) }));
  }

  /** The token's principal, or undefined. */
  identify(token: string): Principal | undefined {
    const d = digest(token);
    let found: Principal | undefined;
    for (const t of this.tokens) {
      const same = timingSafeEqual(d, t.digest);
      if (same && found === undefined) found = { name: t.name, role: t.role };
    }
    return found;
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const req = ctx.switchToHttp().getRequest<{
      method: string;
      headers: Record<string, unknown>;
      params?: Record<string, string>;
      query?: Record<string, unknown>;
      principal?: Principal;
    }>();
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new UnauthorizedException('missing bearer token');
    const principal = this.identify(match[1]) ?? (await this.signedIn(match[1]));
    if (!principal) throw new UnauthorizedException('invalid bearer token');
    req.principal = principal;
    const scope = auditScope.current();
    if (scope) scope.via = principal.role === 'account' ? 'console' : `api:${principal.name}`;
    if (principal.role === 'account') return this.accountMay(principal.accountId, targets, req.params ?? {}, req.query ?? {});
    if (principal.role === 'admin') return true;
    const allowed = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets);
    if (allowed ? allowed.includes(principal.role) : READS.has(req.method)) return true;
    throw new ForbiddenException(
      `the ${principal.role} role may not do this (${allowed ? `it needs ${['admin', ...allowed].join(' or ')}` : 'admin only'})`,
    );
  }

  /** A web console sign-in's principal, or undefined. */
  private async signedIn(token: string): Promise<Principal | undefined> {
    const session = await this.sessions.find(token);
    return session ? { name: session.secretId, role: 'account', accountId: session.accountId } : undefined;
  }

  /**
   * An account sign-in calls only the handlers marked {@link AccountAccess}, and only for its own
   * account: another account's id is answered as an unknown one.
   */
  private accountMay(
    accountId: string,
    targets: Parameters<Reflector['getAllAndOverride']>[1],
    params: Record<string, string>,
    query: Record<string, unknown>,
  ): boolean {
    const access = this.reflector.getAllAndOverride<AccountAccessRule | undefined>(ACCOUNT_ACCESS_KEY, targets);
    if (!access) throw new ForbiddenException('an account sign-in may not do this');
    if (access.param !== null && params[access.param] !== accountId) throw new NotFoundException('no such account');
    if (access.query !== undefined && query[access.query] !== accountId) throw new NotFoundException('no such account');
    return true;
  }
}
