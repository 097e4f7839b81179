import { createHash } from 'node:crypto';

/**
 * The audit trail's hash chains, pure: which chain an entry belongs to, how it is written down
 * for hashing, and its hash.
 *
 * The trail is {@link AUDIT_CHAINS} chains: an account's entries all go to one (chosen by its
 * id), entries of no account to chain 0. Entry n of a chain hashes as SHA-256(hash of entry n−1
 * of that chain ‖ canonical(entry n)), with 32 zero bytes before the first. `canonical` is JSON
 * of a fixed array of the entry's fields, its `details` with object keys sorted at every depth,
 * so the bytes hashed do not depend on how Postgres's jsonb orders keys when the entry is read
 * back. Changing any field of any entry, removing or reordering entries, changes every later
 * hash of its chain. Several chains let appends of different accounts run side by side (an
 * append holds its chain's head until its transaction commits).
 */

export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/** Chains of the trail; fixed (a chain is never added or removed, so a missing one is found). */
export const AUDIT_CHAINS = 16;

/** The chain of an entry: by its account (the UUID's last hex digit), chain 0 without one. */
export function chainOf(accountId: string | null | undefined): number {
  if (!accountId) return 0;
  const d = parseInt(accountId.charAt(accountId.length - 1), 16);
  return Number.isNaN(d) ? 0 : d % AUDIT_CHAINS;
}

export const AUDIT_DOMAINS = ['queues', 'accounts', 'billing', 'sla', 'system'] as const;
export type AuditDomain = (typeof AUDIT_DOMAINS)[number];

export const ACTOR_KINDS = ['user', 'operator', 'component'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

/** What an audit entry says, as hashed. */
export interface ChainedFields {
  chain: number;
  /** place in its chain: 1, 2, 3, … */
  seq: string;
  at: Date;
  domain: AuditDomain;
  action: string;
  actorKind: ActorKind;
  /** who: an operator's name, a SecretId, a component */
  actor: string;
  /** through what: the API token's name, `cmq`, `console`, a worker job */
  via: string | null;
  accountId: string | null;
  /** what it acted on, e.g. `queue:gz/orders`, `maintenance:12` */
  subject: string;
  reason: string | null;
  details: unknown;
}

/** JSON with object keys sorted at every depth (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/**
 * `details` as it can be stored in jsonb and read back identically: plain JSON (Dates as ISO
 * strings, bigints as decimal strings, undefined dropped) without U+0000, which jsonb refuses.
 */
export function storableDetails(details: unknown): unknown {
  return JSON.parse(
    JSON.stringify(details ?? {}, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : typeof v === 'string' ? v.replace(/\u0000/g, '\ufffd') : v)),
  );
}

export function entryHash(prev: Buffer, e: ChainedFields): Buffer {
  const body = canonicalJson([
    e.chain,
    e.seq,
    e.at.toISOString(),
    e.domain,
    e.action,
    e.actorKind,
    e.actor,
    e.via,
    e.accountId,
    e.subject,
    e.reason,
    e.details,
  ]);
  return createHash('sha256').update(prev).update(body, 'utf8').digest();
}
