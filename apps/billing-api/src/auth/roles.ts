import { SetMetadata } from '@nestjs/common';
import { API_ROLES, ApiRole } from '@app/config';

/**
 * Roles of the internal API's bearer tokens:
 * - `admin`: everything;
 * - `ops`: operations (maintenance, incidents, month closes, top-ups and adjustments, key
 *   disabling, queue limits, releases) and every read;
 * - `finance`: read-only: every read, CSV downloads and export jobs, audit verification.
 */
export const ROLES = API_ROLES;
export type Role = ApiRole;

export const ROLES_KEY = 'cmq:roles';

/**
 * Who may call a handler (or every handler of a controller). Without it, a read (GET, HEAD) is
 * open to every role and anything else to `admin` alone, so a new write is closed by default.
 * `admin` may always call: it need not be listed.
 */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

export const ACCOUNT_ACCESS_KEY = 'cmq:account-access';

/** Where an account-accessible handler names the account: a path parameter or a query parameter. */
export type AccountAccessRule = { param: string | null; query?: string };

/**
 * A handler a web console sign-in (role `account`) may call, for its own account only: the path
 * parameter `param` (default `id`), or the query parameter `query`, must be the signed-in
 * account, else 404 as for an unknown account; `param: null` for the console's own routes, which
 * act for the signed-in account. A handler without it answers an account sign-in 403.
 * Operators' roles apply as they are.
 */
export const AccountAccess = (opts: { param?: string | null; query?: string } = {}) =>
  SetMetadata(ACCOUNT_ACCESS_KEY, {
    param: opts.query !== undefined ? null : opts.param === undefined ? 'id' : opts.param,
    query: opts.query,
  } satisfies AccountAccessRule);
