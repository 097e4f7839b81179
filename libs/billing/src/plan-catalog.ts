import { Injectable } from '@nestjs/common';
import { actorFields, appendAudit, AuditActor } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import type { MeteringRule } from './metering';
import type { PricePlan, PriceTier } from './rating';

export class NoPlanError extends Error {}

/** The plan every account is on in a region until it is assigned another. */
export const DEFAULT_PLAN = 'default';

export interface PlanAssignment {
  region: string;
  plan: string;
  effectiveFrom: Date;
  reason: string | null;
  assignedAt: Date;
}

const HOUR = 3_600_000;

export interface PlanRow {
  id: string;
  code: string;
  version: number;
  currency: string;
  metering_rule: MeteringRule;
  effective_from: Date;
  effective_to: Date | null;
  regions: string[];
}

export interface LineRow {
  meter: 'calls';
  free_quota: string;
  tiers: Array<{ up_to: string | null; per_million_nano: string }> | null;
}

/** A plan as stored (its row, regions and lines with their tiers) as rating uses it. */
export function toPlan(p: PlanRow, lines: LineRow[]): PricePlan {
  return {
    id: p.id,
    code: p.code,
    version: p.version,
    currency: p.currency,
    rule: p.metering_rule,
    regions: p.regions,
    effectiveFrom: p.effective_from,
    effectiveTo: p.effective_to,
    lines: lines.map((l) => ({
      meter: l.meter,
      freeQuota: BigInt(l.free_quota),
      tiers: (l.tiers ?? []).map((t): PriceTier => ({ upTo: t.up_to === null ? null : BigInt(t.up_to), perMillion: BigInt(t.per_million_nano) })),
    })),
  };
}

/** Price plans as stored: versioned, per region group, effective over a time range. */
@Injectable()
export class PlanCatalog {
  constructor(private readonly pool: PgPool) {}

  /**
   * The plans accounts are on, for many (account, region, time) at once, in one statement:
   * each key's plan code (its latest assignment in force then, else {@link DEFAULT_PLAN}) and
   * the newest version of that plan covering its region then, as {@link effective} finds it.
   * Answers in the order of `keys`; the NoPlanError, if any, is the one of the first key no
   * plan covers.
   */
  async forAccounts(keys: ReadonlyArray<{ accountId: string; region: string; at: Date }>): Promise<PricePlan[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.pool.query<PlanRow & { plan_code: string; lines: LineRow[] | null }>(
      `SELECT c.plan_code, p.id, p.code, p.version, p.currency, p.metering_rule, p.effective_from, p.effective_to,
              (SELECT array_agg(r2.region ORDER BY r2.region) FROM price_plan_regions r2 WHERE r2.plan_id = p.id) AS regions,
              (SELECT json_agg(json_build_object('meter', l.meter, 'free_quota', l.free_quota::text, 'tiers',
                        (SELECT json_agg(json_build_object('up_to', t2.up_to::text, 'per_million_nano', t2.per_million_nano::text) ORDER BY t2.ord)
                           FROM price_plan_tiers t2 WHERE t2.plan_id = l.plan_id AND t2.meter = l.meter)) ORDER BY l.meter)
                 FROM price_plan_lines l WHERE l.plan_id = p.id) AS lines
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS t(a, r, at, i)
         CROSS JOIN LATERAL (
           SELECT coalesce((SELECT ap.plan_code FROM account_plans ap
                             WHERE ap.account_id = t.a AND ap.region = t.r AND ap.effective_from <= t.at
                             ORDER BY ap.effective_from DESC, ap.id DESC LIMIT 1), $4) AS plan_code) c
         LEFT JOIN LATERAL (
           SELECT p.* FROM price_plans p JOIN price_plan_regions r ON r.plan_id = p.id AND r.region = t.r
            WHERE p.code = c.plan_code AND p.effective_from <= t.at AND (p.effective_to IS NULL OR p.effective_to > t.at)
            ORDER BY p.version DESC LIMIT 1) p ON true
        ORDER BY t.i`,
      [keys.map((k) => k.accountId), keys.map((k) => k.region), keys.map((k) => k.at), DEFAULT_PLAN],
    );
    const plans = new Map<string, PricePlan>();
    return rows.map((row, i) => {
      if (row.id === null) throw new NoPlanError(`no plan ${row.plan_code} covers region ${keys[i].region} at ${keys[i].at.toISOString()}`);
      let plan = plans.get(row.id);
      if (!plan) plans.set(row.id, (plan = toPlan(row, row.lines ?? [])));
      return plan;
    });
  }

  /**
   * Puts the account on plan `code` in `region` from the start of the next hour (the plan must
   * cover the region then). The row is kept for good: the assignments are the audit trail.
   */
  async assign(accountId: string, region: string, code: string, reason: string | null, by: AuditActor, now = new Date()): Promise<PlanAssignment> {
    const from = new Date((Math.floor(now.getTime() / HOUR) + 1) * HOUR);
    await this.effective(code, region, from);
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ assigned_at: Date }>(
        `INSERT INTO account_plans (account_id, region, plan_code, effective_from, reason) VALUES ($1, $2, $3, $4, $5) RETURNING assigned_at`,
        [accountId, region, code, from, reason],
      );
      await appendAudit(c, {
        domain: 'billing',
        action: 'plan.assign',
        ...actorFields(by),
        accountId,
        subject: `plan:${accountId}/${region}`,
        reason,
        details: { region, plan: code, effectiveFrom: from.toISOString() },
      });
      return { region, plan: code, effectiveFrom: from, reason, assignedAt: rows[0].assigned_at };
    });
  }

  /** Every assignment of the account, newest first. */
  async assignments(accountId: string): Promise<PlanAssignment[]> {
    const { rows } = await this.pool.query<{ region: string; plan_code: string; effective_from: Date; reason: string | null; assigned_at: Date }>(
      `SELECT region, plan_code, effective_from, reason, assigned_at FROM account_plans WHERE account_id = $1 ORDER BY id DESC`,
      [accountId],
    );
    return rows.map((r) => ({ region: r.region, plan: r.plan_code, effectiveFrom: r.effective_from, reason: r.reason, assignedAt: r.assigned_at }));
  }

  /** The newest version of plan `code` that covers `region` at `at`. */
  async effective(code: string, region: string, at: Date): Promise<PricePlan> {
    const { rows } = await this.pool.query<PlanRow>(
      `SELECT p.id, p.code, p.version, p.currency, p.metering_rule, p.effective_from, p.effective_to,
              (SELECT array_agg(r2.region ORDER BY r2.region) FROM price_plan_regions r2 WHERE r2.plan_id = p.id) AS regions
         FROM price_plans p JOIN price_plan_regions r ON r.plan_id = p.id AND r.region = $2
        WHERE p.code = $1 AND p.effective_from <= $3 AND (p.effective_to IS NULL OR p.effective_to > $3)
        ORDER BY p.version DESC LIMIT 1`,
      [code, region, at],
    );
    const p = rows[0];
    if (!p) throw new NoPlanError(`no plan ${code} covers region ${region} at ${at.toISOString()}`);
    const { rows: lines } = await this.pool.query<LineRow>(
      `SELECT l.meter, l.free_quota,
              (SELECT json_agg(json_build_object('up_to', t.up_to::text, 'per_million_nano', t.per_million_nano::text) ORDER BY t.ord)
                 FROM price_plan_tiers t WHERE t.plan_id = l.plan_id AND t.meter = l.meter) AS tiers
         FROM price_plan_lines l WHERE l.plan_id = $1 ORDER BY l.meter`,
      [p.id],
    );
    return toPlan(p, lines);
  }
}
