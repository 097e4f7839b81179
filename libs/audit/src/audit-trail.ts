import { Injectable } from '@nestjs/common';
import type { Pool, PoolClient } from 'pg';
import { inTransaction, PgPool } from '@app/db';
import { ActorKind, AUDIT_CHAINS, AuditDomain, ChainedFields, chainOf, entryHash, GENESIS_HASH, storableDetails } from './chain';
import { auditScope } from './context';

/** Who makes a change: a user's own request, an operator, a component; and through what (absent: the request's own, see auditScope). */
export interface AuditActor {
  kind: ActorKind;
  name: string;
  via?: string;
}

/** The actor fields of an {@link AuditEvent}. */
export function actorFields(by: AuditActor): Pick<AuditEvent, 'actorKind' | 'actor' | 'via'> {
  return { actorKind: by.kind, actor: by.name, via: by.via ?? null };
}

/** An event to record. `at` defaults to the time the chain was locked for it. */
export interface AuditEvent {
  domain: AuditDomain;
  action: string;
  actorKind: ActorKind;
  actor: string;
  via?: string | null;
  accountId?: string | null;
  subject: string;
  reason?: string | null;
  details?: unknown;
  at?: Date;
}

/** A recorded entry: its id (the trail's order), its place in its chain, its fields, the previous entry's hash and its own. */
export interface AuditRecord extends ChainedFields {
  id: string;
  prevHash: Buffer;
  hash: Buffer;
}

type Queryable = Pick<PoolClient, 'query'>;

const clean = (s: string) => s.replace(/\u0000/g, '\ufffd');

/**
 * Locks the heads of `chains` (in chain order) until the caller's transaction ends. An append
 * does it for its own chains; a transaction that will append to several chains at different
 * moments takes them all first, so that no two appenders ever wait for each other's heads.
 */
export async function lockAuditChains(c: Queryable, chains: Iterable<number>): Promise<Map<number, { seq: bigint; hash: Buffer; now: Date }>> {
  const wanted = [...new Set(chains)].sort((a, b) => a - b);
  const { rows } = await c.query<{ chain: number; seq: string; hash: Buffer; now: Date }>(
    `SELECT chain, seq::text, hash, clock_timestamp() AS now FROM audit_heads WHERE chain = ANY($1::smallint[]) ORDER BY chain FOR UPDATE`,
    [wanted],
  );
  if (rows.length !== wanted.length) throw new Error(`audit_heads lacks chains of ${wanted.join(', ')}: the audit-trail migration has not run`);
  return new Map(rows.map((r) => [r.chain, { seq: BigInt(r.seq), hash: r.hash, now: r.now }]));
}

/**
 * Appends `events` to the audit trail inside the caller's transaction, so an entry exists
 * exactly when the change it records committed. Each event goes to its account's chain
 * ({@link chainOf}); the heads of those chains are locked (FOR UPDATE, in chain order) until
 * that transaction ends, so appends to one chain are serialised, each entry gets the next
 * number of its chain and the hash of the one before. Call it last in a transaction (after the
 * rows the change locks), so no transaction waits for a head while holding what another
 * appender needs.
 */
export async function appendAudit(c: Queryable, events: AuditEvent | readonly AuditEvent[]): Promise<AuditRecord[]> {
  const list = Array.isArray(events) ? (events as readonly AuditEvent[]) : [events as AuditEvent];
  if (list.length === 0) return [];
  const heads = await lockAuditChains(c, list.map((e) => chainOf(e.accountId)));
  const via = auditScope.current()?.via ?? null;
  const fields = list.map((e): ChainedFields => {
    const chain = chainOf(e.accountId);
    const head = heads.get(chain)!;
    head.seq += 1n;
    return {
      chain,
      seq: head.seq.toString(),
      at: e.at ?? head.now,
      domain: e.domain,
      action: clean(e.action),
      actorKind: e.actorKind,
      actor: clean(e.actor),
      via: e.via != null ? clean(e.via) : via,
      accountId: e.accountId ?? null,
      subject: clean(e.subject),
      reason: e.reason == null ? null : clean(e.reason),
      details: storableDetails(e.details),
    };
  });
  // hashes chain by chain, in the order given
  const last = new Map<number, Buffer>();
  const hashed = fields.map((f) => {
    const prevHash = last.get(f.chain) ?? heads.get(f.chain)!.hash;
    const hash = entryHash(prevHash, f);
    last.set(f.chain, hash);
    return { ...f, prevHash, hash };
  });
  const col = <K extends keyof (typeof hashed)[number]>(k: K) => hashed.map((r) => r[k]);
  const chains = [...last.keys()];
  const { rows } = await c.query<{ id: string }>(
    `WITH ins AS (
       INSERT INTO audit_trail (chain, seq, at, domain, action, actor_kind, actor, via, account_id, subject, reason, details, prev_hash, hash)
       SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                            $9::uuid[], $10::text[], $11::text[], $12::jsonb[], $13::bytea[], $14::bytea[])
       RETURNING id, chain, seq
     ), heads AS (
       UPDATE audit_heads h SET seq = t.seq, hash = t.hash, updated_at = now()
         FROM unnest($15::smallint[], $16::bigint[], $17::bytea[]) AS t(chain, seq, hash)
        WHERE h.chain = t.chain
     )
     SELECT id::text FROM ins ORDER BY chain, seq`,
    [
      col('chain'),
      col('seq'),
      col('at'),
      col('domain'),
      col('action'),
      col('actorKind'),
      col('actor'),
      col('via'),
      col('accountId'),
      col('subject'),
      col('reason'),
      hashed.map((r) => JSON.stringify(r.details)),
      col('prevHash'),
      col('hash'),
      chains,
      chains.map((ch) => heads.get(ch)!.seq.toString()),
      chains.map((ch) => last.get(ch)!),
    ],
  );
  // ids back in the order of the events (the rows came by chain, then number)
  const order = hashed.map((r, i) => i).sort((a, b) => hashed[a].chain - hashed[b].chain || Number(BigInt(hashed[a].seq) - BigInt(hashed[b].seq)));
  const ids: string[] = new Array(hashed.length);
  order.forEach((i, k) => (ids[i] = rows[k].id));
  return hashed.map((r, i) => ({ ...r, id: ids[i] }));
}

export interface AuditQuery {
  accountId?: string | null;
  domain?: AuditDomain | null;
  actorKind?: ActorKind | null;
  /** entries at or after */
  from?: Date | null;
  /** entries before */
  to?: Date | null;
  /** only entries with a smaller id (the cursor) */
  beforeId?: string | null;
  limit: number;
}

/** Where verification found a chain broken, and how. */
export interface AuditBreak {
  chain: number;
  seq: string;
  problem: 'hash' | 'link' | 'gap' | 'head';
  detail: string;
}

export interface ChainHead {
  chain: number;
  /** the head's sequence number and hash (hex) as stored */
  seq: string;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  /** entries checked */
  entries: number;
  /** every chain's head as stored */
  heads: ChainHead[];
  /** the first break found (by chain, then sequence number); null when every chain holds */
  firstBreak: AuditBreak | null;
  checkedAt: Date;
}

interface TrailRow {
  id: string;
  chain: number;
  seq: string;
  at: Date;
  domain: AuditDomain;
  action: string;
  actor_kind: ActorKind;
  actor: string;
  via: string | null;
  account_id: string | null;
  subject: string;
  reason: string | null;
  details: unknown;
  prev_hash: Buffer;
  hash: Buffer;
}

// ORDER BY must name the table's columns (audit_trail.id): the output columns are text and
// would sort as text
const COLUMNS = `id::text, chain, seq::text, at, domain, action, actor_kind, actor, via, account_id, subject, reason, details, prev_hash, hash`;

const toRecord = (r: TrailRow): AuditRecord => ({
  id: r.id,
  chain: r.chain,
  seq: r.seq,
  at: r.at,
  domain: r.domain,
  action: r.action,
  actorKind: r.actor_kind,
  actor: r.actor,
  via: r.via,
  accountId: r.account_id,
  subject: r.subject,
  reason: r.reason,
  details: r.details,
  prevHash: r.prev_hash,
  hash: r.hash,
});

/** Pages read by a verification. */
export const VERIFY_PAGE = 5_000;

/**
 * The audit trail (append-only, hash-chained; see chain.ts): appends, listings, and
 * verification of every chain.
 */
@Injectable()
export class AuditTrail {
  constructor(private readonly pool: PgPool) {}

  /** {@link appendAudit} in a transaction of its own. */
  append(events: AuditEvent | readonly AuditEvent[]): Promise<AuditRecord[]> {
    return inTransaction(this.pool, (c) => appendAudit(c, events));
  }

  /** Entries newest first (by id), filtered; `limit` rows (the caller asks one more to know of a next page). */
  async list(q: AuditQuery): Promise<AuditRecord[]> {
    const { rows } = await this.pool.query<TrailRow>(
      `SELECT ${COLUMNS} FROM audit_trail
        WHERE ($1::uuid IS NULL OR account_id = $1::uuid) AND ($2::text IS NULL OR domain = $2) AND ($3::text IS NULL OR actor_kind = $3)
          AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR id < $6::bigint)
        ORDER BY audit_trail.id DESC LIMIT $7`,
      [q.accountId ?? null, q.domain ?? null, q.actorKind ?? null, q.from ?? null, q.to ?? null, q.beforeId ?? null, q.limit],
    );
    return rows.map(toRecord);
  }

  /** See {@link verifyChains}. */
  async verify(): Promise<AuditVerification> {
    return verifyChains(this.pool);
  }
}

/**
 * Walks every chain in sequence order inside one snapshot: every entry's number follows the one
 * before in its chain, its previous hash is that entry's hash, its own hash is what its fields
 * hash to, each of the {@link AUDIT_CHAINS} chains has its head, and each head names its
 * chain's last entry. Answers the first break found.
 */
export async function verifyChains(pool: Pool, pageRows = VERIFY_PAGE): Promise<AuditVerification> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows: stored } = await c.query<{ chain: number; seq: string; hash: Buffer }>(`SELECT chain, seq::text, hash FROM audit_heads ORDER BY chain`);
    const heads = new Map(stored.map((h) => [h.chain, h]));
    let entries = 0;
    let firstBreak: AuditBreak | null = null;
    const found = (b: AuditBreak) => {
      firstBreak ??= b;
    };
    // where each chain got to: its last number and hash
    const reached = new Map<number, { seq: bigint; hash: Buffer }>();
    let after: [number, string] = [-1, '0'];
    outer: for (;;) {
      const { rows } = await c.query<TrailRow>(
        `SELECT ${COLUMNS} FROM audit_trail WHERE (chain, seq) > ($1::smallint, $2::bigint) ORDER BY audit_trail.chain, audit_trail.seq LIMIT $3`,
        [after[0], after[1], pageRows],
      );
      for (const r of rows) {
        const rec = toRecord(r);
        entries++;
        const at = reached.get(rec.chain) ?? { seq: 0n, hash: GENESIS_HASH };
        const expected = at.seq + 1n;
        const where = `entry ${rec.seq} of chain ${rec.chain}`;
        if (!heads.has(rec.chain)) {
          found({ chain: rec.chain, seq: rec.seq, problem: 'head', detail: `${where} is in a chain that has no head` });
          break outer;
        }
        if (BigInt(rec.seq) !== expected) {
          found({ chain: rec.chain, seq: rec.seq, problem: 'gap', detail: `${where} follows ${at.seq}: entries ${expected} to ${BigInt(rec.seq) - 1n} are missing` });
          break outer;
        }
        if (!rec.prevHash.equals(at.hash)) {
          found({ chain: rec.chain, seq: rec.seq, problem: 'link', detail: `${where} does not carry the hash of entry ${at.seq}` });
          break outer;
        }
        if (!entryHash(at.hash, rec).equals(rec.hash)) {
          found({ chain: rec.chain, seq: rec.seq, problem: 'hash', detail: `${where} was changed: its fields no longer hash to its stored hash` });
          break outer;
        }
        reached.set(rec.chain, { seq: BigInt(rec.seq), hash: rec.hash });
      }
      if (rows.length < pageRows) break;
      const last = rows[rows.length - 1];
      after = [last.chain, last.seq];
    }
    if (!firstBreak) {
      for (let chain = 0; chain < AUDIT_CHAINS; chain++) {
        const head = heads.get(chain);
        const end = reached.get(chain) ?? { seq: 0n, hash: GENESIS_HASH };
        if (!head) {
          found({ chain, seq: end.seq.toString(), problem: 'head', detail: `chain ${chain} has no head` });
          break;
        }
        if (BigInt(head.seq) !== end.seq || !head.hash.equals(end.hash)) {
          const same = BigInt(head.seq) === end.seq;
          found({ chain, seq: head.seq, problem: 'head', detail: `the head of chain ${chain} names entry ${head.seq} but the chain ends at entry ${end.seq}${same ? ' with another hash' : ''}` });
          break;
        }
      }
    }
    await c.query('COMMIT');
    return {
      ok: firstBreak === null,
      entries,
      heads: stored.map((h) => ({ chain: h.chain, seq: h.seq, hash: h.hash.toString('hex') })),
      firstBreak,
      checkedAt: new Date(),
    };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}
