import { Injectable } from '@nestjs/common';
import { PgPool } from '@app/db';
import type { MeteringRule } from './metering';
import type { PricePlan, PriceTier } from './rating';

export class NoPlanError extends Error {}

/** Price plans as stored: versioned, per region group, effective over a time range. */
@Injectable()
export class PlanCatalog {
  constructor(private readonly pool: PgPool) {}

  /** The newest version of plan `code` that covers `region` at `at`. */
  async effective(code: string, region: string, at: Date): Promise<PricePlan> {
    const { rows } = await this.pool.query<{
      id: string;
      code: string;
      version: number;
      currency: string;
      metering_rule: MeteringRule;
      effective_from: Date;
      effective_to: Date | null;
      regions: string[];
    }>(
      `SELECT p.id, p.code, p.version, p.currency, p.metering_rule, p.effective_from, p.effective_to,
              (SELECT array_agg(r2.region ORDER BY r2.region) FROM price_plan_regions r2 WHERE r2.plan_id = p.id) AS regions
         FROM price_plans p JOIN price_plan_regions r ON r.plan_id = p.id AND r.region = $2
        WHERE p.code = $1 AND p.effective_from <= $3 AND (p.effective_to IS NULL OR p.effective_to > $3)
        ORDER BY p.version DESC LIMIT 1`,
      [code, region, at],
    );
    const p = rows[0];
    if (!p) throw new NoPlanError(`no plan ${code} covers region ${region} at ${at.toISOString()}`);
    const { rows: lines } = await this.pool.query<{ meter: 'calls'; free_quota: string; tiers: Array<{ up_to: string | null; per_million_nano: string }> }>(
      `SELECT l.meter, l.free_quota,
              (SELECT json_agg(json_build_object('up_to', t.up_to::text, 'per_million_nano', t.per_million_nano::text) ORDER BY t.ord)
                 FROM price_plan_tiers t WHERE t.plan_id = l.plan_id AND t.meter = l.meter) AS tiers
         FROM price_plan_lines l WHERE l.plan_id = $1 ORDER BY l.meter`,
      [p.id],
    );
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
        tiers: (l.tiers ?? []).map(
          (t): PriceTier => ({ upTo: t.up_to === null ? null : BigInt(t.up_to), perMillion: BigInt(t.per_million_nano) }),
        ),
      })),
    };
  }
}
