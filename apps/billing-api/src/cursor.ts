import { BadRequestException } from '@nestjs/common';

/**
 * Cursor pagination of the internal API. A listing answers `{<items>, nextCursor}`; the client
 * passes `nextCursor` back as `?cursor=` for the next page, and `nextCursor` is null on the last.
 * A cursor is opaque to clients: the keyset of the last row of the page (what the listing orders
 * by), as base64url JSON tagged with the listing's name, so a cursor of one listing is refused by
 * another rather than misread.
 */
export function encodeCursor(listing: string, key: readonly (string | number | null)[]): string {
  return Buffer.from(JSON.stringify([listing, ...key]), 'utf8').toString('base64url');
}

/**
 * The keyset in `cursor` (undefined when there is none); 400 when it is not a cursor of
 * `listing` with `size` key parts, each passing `check` (the listing's own validation).
 */
export function decodeCursor(
  listing: string,
  cursor: string | undefined,
  size: number,
  check: (key: Array<string | number | null>) => boolean = () => true,
): Array<string | number | null> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,1024}$/.test(cursor)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestException('cursor is not valid: pass the nextCursor of the previous page');
  }
  if (
    !Array.isArray(parsed) ||
    parsed[0] !== listing ||
    parsed.length !== size + 1 ||
    !parsed.slice(1).every((v) => v === null || typeof v === 'string' || typeof v === 'number') ||
    !check(parsed.slice(1) as Array<string | number | null>)
  ) {
    throw new BadRequestException('cursor is not valid: pass the nextCursor of the previous page');
  }
  return parsed.slice(1) as Array<string | number | null>;
}

/**
 * A page of `limit` from `rows` read with `limit + 1` (the extra row only tells that there is
 * more), and the cursor after its last row.
 */
export function pageOf<T>(rows: T[], limit: number, listing: string, keyOf: (row: T) => readonly (string | number | null)[]) {
  const items = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? encodeCursor(listing, keyOf(items[items.length - 1])) : null;
  return { items, nextCursor };
}
