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
