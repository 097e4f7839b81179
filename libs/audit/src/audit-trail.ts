import { Injectable } from '@nestjs/common';
import type { Pool, PoolClient } from 'pg';
import { PgPool } from '@app/db';
import { ActorKind, AuditDomain, ChainedFields, entryHash, GENESIS_HASH, storableDetails } from './chain';
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

/** A recorded entry: its place in the chain, its fields, the previous entry's hash and its own. */
export interface AuditRecord extends ChainedFields {
  prevHash: Buffer;
  hash: Buffer;
}

type Queryable = Pick<PoolClient, 'query'>;

const clean = (s: string) => s.replace(/\u0000/g, '\ufffd');

/**
 * Appends `events` to the audit trail inside the caller's transaction, so an entry exists
 * exactly when the change it records committed. The chain's head row is locked (FOR UPDATE)
 * until that transaction ends: appends are serialised, each entry gets the next sequence
 * number and the hash of the one before. Call it last in a transaction (after the rows the
 * change locks), so no transaction waits for the head while holding what another appender
 * needs.
 */
export async function appendAudit(c: Queryable, events: AuditEvent | readonly AuditEvent[]): Promise<AuditRecord[]> {
  const list = Array.isArray(events) ? (events as readonly AuditEvent[]) : [events as AuditEvent];
  if (list.length === 0) return [];
  const { rows } = await c.query<{ seq: string; hash: Buffer; now: Date }>(`SELECT seq::text, hash, clock_timestamp() AS now FROM audit_head FOR UPDATE`);
  if (!rows[0]) throw new Error('audit_head has no row: the audit-trail migration has not run');
  let seq = BigInt(rows[0].seq);
  let prev: Buffer = rows[0].hash;
  const via = auditScope.current()?.via ?? null;
  const records = list.map((e): AuditRecord => {
    seq += 1n;
    const fields: ChainedFields = {
      seq: seq.toString(),
      at: e.at ?? rows[0].now,
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
    const hash = entryHash(prev, fields);
    const record = { ...fields, prevHash: prev, hash };
    prev = hash;
    return record;
  });
  const col = <K extends keyof AuditRecord>(k: K) => records.map((r) => r[k]);
  await c.query(
    `WITH ins AS (
       INSERT INTO audit_trail (seq, at, domain, action, actor_kind, actor, via, account_id, subject, reason, details, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::uuid[],
                            $9::text[], $10::text[], $11::jsonb[], $12::bytea[], $13::bytea[])
       RETURNING seq)
     UPDATE audit_head SET seq = $14::bigint, hash = $15::bytea, updated_at = now() WHERE (SELECT count(*) FROM ins) = $16`,
    [
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
      records.map((r) => JSON.stringify(r.details)),
      col('prevHash'),
      col('hash'),
      seq.toString(),
      prev,
      records.length,
    ],
  );
  return records;
}

export interface AuditQuery {
  accountId?: string | null;
  domain?: AuditDomain | null;
  actorKind?: ActorKind | null;
  /** entries at or after */
  from?: Date | null;
  /** entries before */
  to?: Date | null;
  /** only entries with a smaller sequence number (the cursor) */
  beforeSeq?: string | null;
  limit: number;
}

/** Where verification found the chain broken, and how. */
export interface AuditBreak {
  seq: string;
  problem: 'hash' | 'link' | 'gap' | 'head';
  detail: string;
}

export interface AuditVerification {
  ok: boolean;
  /** entries checked */
  entries: number;
  /** the head's sequence number and hash (hex) as stored */
  headSeq: string;
  headHash: string;
  /** the first break found; null when the chain holds */
  firstBreak: AuditBreak | null;
  checkedAt: Date;
}

interface TrailRow {
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

// ORDER BY must name audit_trail.seq: the output column seq is text and would sort as text
const COLUMNS = `seq::text, at, domain, action, actor_kind, actor, via, account_id, subject, reason, details, prev_hash, hash`;

const toRecord = (r: TrailRow): AuditRecord => ({
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
 * verification of the whole chain.
 */
@Injectable()
export class AuditTrail {
  constructor(private readonly pool: PgPool) {}

  /** {@link appendAudit} in a transaction of its own. */
  async append(events: AuditEvent | readonly AuditEvent[]): Promise<AuditRecord[]> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await appendAudit(c, events);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /** Entries newest first, filtered; `limit` rows (the caller asks one more to know of a next page). */
  async list(q: AuditQuery): Promise<AuditRecord[]> {
    const { rows } = await this.pool.query<TrailRow>(
      `SELECT ${COLUMNS} FROM audit_trail
        WHERE ($1::uuid IS NULL OR account_id = $1::uuid) AND ($2::text IS NULL OR domain = $2) AND ($3::text IS NULL OR actor_kind = $3)
          AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR seq < $6::bigint)
        ORDER BY audit_trail.seq DESC LIMIT $7`,
      [q.accountId ?? null, q.domain ?? null, q.actorKind ?? null, q.from ?? null, q.to ?? null, q.beforeSeq ?? null, q.limit],
    );
    return rows.map(toRecord);
  }

  /**
   * Walks the whole chain in sequence order inside one snapshot: every entry's sequence number
   * follows the one before, its previous hash is that entry's hash, its own hash is what its
   * fields hash to, and the head names the last entry. Answers the first break found.
   */
  async verify(): Promise<AuditVerification> {
    return verifyChain(this.pool);
  }
}

export async function verifyChain(pool: Pool, pageRows = VERIFY_PAGE): Promise<AuditVerification> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows: head } = await c.query<{ seq: string; hash: Buffer }>(`SELECT seq::text, hash FROM audit_head`);
    let prev: Buffer = GENESIS_HASH;
    let expected = 1n;
    let entries = 0;
    let firstBreak: AuditBreak | null = null;
    let after = 0n;
    outer: for (;;) {
      const { rows } = await c.query<TrailRow>(`SELECT ${COLUMNS} FROM audit_trail WHERE seq > $1 ORDER BY audit_trail.seq LIMIT $2`, [after.toString(), pageRows]);
      for (const r of rows) {
        const rec = toRecord(r);
        entries++;
        if (BigInt(rec.seq) !== expected) {
          firstBreak = { seq: rec.seq, problem: 'gap', detail: `entry ${rec.seq} follows ${expected - 1n}: entries ${expected} to ${BigInt(rec.seq) - 1n} are missing` };
          break outer;
        }
        if (!rec.prevHash.equals(prev)) {
          firstBreak = { seq: rec.seq, problem: 'link', detail: `entry ${rec.seq} does not carry the hash of entry ${expected - 1n}` };
          break outer;
        }
        const hash = entryHash(prev, rec);
        if (!hash.equals(rec.hash)) {
          firstBreak = { seq: rec.seq, problem: 'hash', detail: `entry ${rec.seq} was changed: its fields no longer hash to its stored hash` };
          break outer;
        }
        prev = rec.hash;
        expected += 1n;
      }
      if (rows.length < pageRows) break;
      after = BigInt(rows[rows.length - 1].seq);
    }
    const headSeq = head[0]?.seq ?? '0';
    const headHash = head[0]?.hash ?? GENESIS_HASH;
    if (!firstBreak && (BigInt(headSeq) !== expected - 1n || !headHash.equals(prev))) {
      firstBreak = {
        seq: headSeq,
        problem: 'head',
        detail: `the head names entry ${headSeq} but the chain ends at entry ${expected - 1n}${BigInt(headSeq) === expected - 1n ? ' with another hash' : ''}`,
      };
    }
    await c.query('COMMIT');
    return { ok: firstBreak === null, entries, headSeq, headHash: headHash.toString('hex'), firstBreak, checkedAt: new Date() };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}
