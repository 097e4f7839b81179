/** How deep a JSON body may nest (objects and arrays); no operation's body comes near it. */
export const MAX_JSON_DEPTH = 32;

/**
 * Why a request's parsed input (JSON body, query) is refused before it reaches validation, or
 * undefined when it is fine:
 * - nested deeper than {@link MAX_JSON_DEPTH}: class-transformer and the ValidationPipe walk a
 *   body recursively, and a megabyte of `[` would overflow the stack (a 500);
 * - a NUL character (U+0000) in any key or string: Postgres text cannot hold one, so it would
 *   fail in the database (a 500) instead of being refused as the client's mistake.
 * The walk is iterative, so it cannot overflow the stack itself.
 */
export function unsafeInput(...inputs: unknown[]): string | undefined {
  const stack: Array<[unknown, number]> = inputs.map((v) => [v, 0]);
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return 'text must not contain NUL characters (U+0000)';
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) return `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`;
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('\u0000')) return 'text must not contain NUL characters (U+0000)';
      stack.push([v, depth + 1]);
    }
  }
  return undefined;
}
