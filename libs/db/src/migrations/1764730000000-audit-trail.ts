import { MigrationInterface, QueryRunner } from 'typeorm';
import { AUDIT_CHAINS, chainOf, entryHash, GENESIS_HASH } from '../../../audit/src/chain';

/**
 * One audit trail for every state change that matters (user operations, operator actions,
 * component events): append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and
 * hash-chained (16 chains, an account's entries in one of them; each entry carries the previous
 * entry's hash in its chain; audit_heads names each chain's last), so a changed, removed or
 * inserted entry is found by verification. Export jobs gain the kinds audit and sla_results.
 * The SLA operations' audit
 * (sla_audit) and the account audit log (audit_log, resource releases) move into it, in the
 * order they were written, and are dropped.
 */
export class AuditTrail1764730000000 implements MigrationInterface {
  name = 'AuditTrail1764730000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_trail (
        id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        chain smallint NOT NULL CHECK (chain >= 0 AND chain < ${AUDIT_CHAINS}),
        seq bigint NOT NULL CHECK (seq > 0),
        at timestamptz NOT NULL,
        domain text NOT NULL CHECK (domain IN ('queues', 'accounts', 'billing', 'sla', 'system')),
        action text NOT NULL,
        actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'operator', 'component')),
        actor text NOT NULL,
        via text,
        account_id uuid,
        subject text NOT NULL,
        reason text,
        details jsonb NOT NULL,
        prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
        hash bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
        PRIMARY KEY (chain, seq)
      )`);
    await q.query(`CREATE INDEX audit_trail_account ON audit_trail (account_id, id) WHERE account_id IS NOT NULL`);
    await q.query(`CREATE INDEX audit_trail_domain ON audit_trail (domain, id)`);
    await q.query(`CREATE INDEX audit_trail_at ON audit_trail (at)`);
    await q.query(`
      CREATE TABLE audit_heads (
        chain smallint PRIMARY KEY CHECK (chain >= 0 AND chain < ${AUDIT_CHAINS}),
        seq bigint NOT NULL,
        hash bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE FUNCTION audit_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_trail is append-only: % refused', TG_OP;
      END $$`);
    await q.query(`
      CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE ON audit_trail
      FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only()`);
    await q.query(`
      CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
      FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only()`);

    // what was audited before, oldest first, chained in that order
    const old: Array<{
      at: Date;
      domain: 'sla' | 'billing';
      action: string;
      actor_kind: 'operator' | 'component';
      actor: string;
      account_id: string | null;
      subject: string;
      reason: string | null;
      details: unknown;
    }> = await q.query(`
      SELECT at, domain, action, actor_kind, actor, account_id, subject, reason, details FROM (
        SELECT created_at AS at, 'sla' AS domain, action, 'operator' AS actor_kind, actor, NULL::uuid AS account_id, subject, reason,
               details, 0 AS src, id FROM sla_audit
        UNION ALL
        SELECT created_at, 'billing', action, 'component', actor, account_id, 'account:' || account_id, NULL, details, 1, id FROM audit_log
      ) o ORDER BY at, src, id`);
    const heads = Array.from({ length: AUDIT_CHAINS }, () => ({ seq: 0n, hash: GENESIS_HASH as Buffer }));
    for (const o of old) {
      const chain = chainOf(o.account_id);
      const head = heads[chain];
      head.seq += 1n;
      const at = new Date(o.at.getTime());
      const fields = {
        chain,
        seq: head.seq.toString(),
        at,
        domain: o.domain,
        action: o.action,
        actorKind: o.actor_kind,
        actor: o.actor,
        via: null,
        accountId: o.account_id,
        subject: o.subject,
        reason: o.reason,
        details: o.details,
      };
      const hash = entryHash(head.hash, fields);
      await q.query(
        `INSERT INTO audit_trail (chain, seq, at, domain, action, actor_kind, actor, via, account_id, subject, reason, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11, $12, $13)`,
        [chain, fields.seq, at, o.domain, o.action, o.actor_kind, o.actor, o.account_id, o.subject, o.reason, JSON.stringify(o.details), head.hash, hash],
      );
      head.hash = hash;
    }
    for (const [chain, head] of heads.entries()) {
      await q.query(`INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, $2, $3)`, [chain, head.seq.toString(), head.hash]);
    }
    // the trail is exported for auditors like the finance files (downloads and export jobs), and
    // the SLA results become an export job kind of their own too
    await q.query(`ALTER TABLE export_jobs DROP CONSTRAINT export_jobs_kind_check`);
    await q.query(
      `ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_kind_check CHECK (kind IN ('ledger', 'usage_hourly', 'bills', 'bill_lines', 'sla_results', 'audit'))`,
    );
    await q.query(`DROP TABLE sla_audit`);
    await q.query(`DROP TABLE audit_log`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM export_jobs WHERE kind IN ('sla_results', 'audit')`);
    await q.query(`ALTER TABLE export_jobs DROP CONSTRAINT export_jobs_kind_check`);
    await q.query(`ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_kind_check CHECK (kind IN ('ledger', 'usage_hourly', 'bills', 'bill_lines'))`);
    await q.query(`
      CREATE TABLE sla_audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        actor text NOT NULL,
        action text NOT NULL,
        subject text NOT NULL,
        reason text,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        action text NOT NULL,
        actor text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_log_account ON audit_log (account_id, id)`);
    await q.query(`
      INSERT INTO sla_audit (actor, action, subject, reason, details, created_at)
      SELECT actor, action, subject, reason, details, at FROM audit_trail WHERE domain = 'sla' AND actor_kind = 'operator' ORDER BY id`);
    await q.query(`
      INSERT INTO audit_log (account_id, action, actor, details, created_at)
      SELECT account_id, action, actor, details, at FROM audit_trail WHERE action = 'release' AND account_id IS NOT NULL ORDER BY id`);
    await q.query(`DROP TABLE audit_heads`);
    await q.query(`DROP TABLE audit_trail`);
    await q.query(`DROP FUNCTION audit_trail_append_only()`);
  }
}
