import { Inject, Injectable, Optional } from '@nestjs/common';
import { CLOCK, Clock } from '@app/common';
import { appendAudit } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { METERING_RULES, MeteringRule } from './metering';
import { formatAmount, MoneyFormatError, parseAmount } from './money';
import { LineRow, PlanRow, toPlan } from './plan-catalog';
import { checkTiers, PlanError, PricePlan, PriceTier } from './rating';

/**
 * Price plan versions for operators (billing.md §2): a plan code has versions 1, 2, …; each
 * version is a region group in one currency with its metering rule and priced lines, effective
 * from a whole hour. A new version is added, never edited: from its start it is the newest
 * version covering its regions, which is what rating takes (PlanCatalog), so earlier versions
 * stay open and simply stop applying there. Each version records who made it and why.
 */

/** A version as shown: the plan as rating uses it, and its audit. */
export interface PlanVersion extends PricePlan {
  regionGroup: string;
  createdAt: Date;
  createdBy: string | null;
  reason: string | null;
}

/** A new version as asked for (money and counts as strings; checked by {@link checkNewPlan}). */
export interface NewPlanVersion {
  code: string;
  regionGroup?: string;
  currency: string;
  meteringRule: string;
  regions: string[];
  /** ISO 8601 with an offset, a whole hour in the future */
  effectiveFrom: string;
  lines: Array<{ meter: string; freeQuota?: string; tiers: Array<{ upTo: string | null; perMillion: string }> }>;
}

/** A new version, checked and parsed. */
export interface CheckedPlan {
  code: string;
  regionGroup: string;
  currency: string;
  rule: MeteringRule;
  regions: string[];
  effectiveFrom: Date;
  lines: Array<{ meter: 'calls'; freeQuota: bigint; tiers: PriceTier[] }>;
}

export const PLAN_CODE_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const REGION_RE = /^[a-z][a-z0-9-]{1,15}$/;
const GROUP_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const CURRENCY_RE = /^[A-Z]{3}$/;
const COUNT_RE = /^\d{1,18}$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})$/;
const METERS = ['calls'] as const;
const HOUR = 3_600_000;
export const MAX_PLAN_REGIONS = 64;
export const MAX_PLAN_TIERS = 32;

/** The region group of a version when none is given. */
export const DEFAULT_REGION_GROUP = 'custom';

/**
 * Checks a new version against the rules that need no database: codes and regions, the rule, a
 * whole hour after `now`, one line per meter with its free quota and tiers ({@link checkTiers}).
 * Throws {@link PlanError} with the reason.
 */
export function checkNewPlan(p: NewPlanVersion, now: number): CheckedPlan {
  if (typeof p.code !== 'string' || !PLAN_CODE_RE.test(p.code)) throw new PlanError('code must be a plan code (lower-case letters, digits, _ and -)');
  const regionGroup = p.regionGroup ?? DEFAULT_REGION_GROUP;
  if (typeof regionGroup !== 'string' || !GROUP_RE.test(regionGroup)) throw new PlanError('regionGroup must be a name of lower-case letters, digits, _ and -');
  if (typeof p.currency !== 'string' || !CURRENCY_RE.test(p.currency)) throw new PlanError('currency must be an ISO 4217 code such as CNY');
  if (!(METERING_RULES as readonly string[]).includes(p.meteringRule)) throw new PlanError(`meteringRule must be one of ${METERING_RULES.join(', ')}`);
  if (!Array.isArray(p.regions) || p.regions.length === 0 || p.regions.length > MAX_PLAN_REGIONS) {
    throw new PlanError(`regions must list 1 to ${MAX_PLAN_REGIONS} regions`);
  }
  for (const r of p.regions) if (typeof r !== 'string' || !REGION_RE.test(r)) throw new PlanError(`regions: ${JSON.stringify(r).slice(0, 40)} is not a region code such as gz`);
  if (new Set(p.regions).size !== p.regions.length) throw new PlanError('regions lists a region twice');
  if (typeof p.effectiveFrom !== 'string' || !ISO_8601.test(p.effectiveFrom)) {
    throw new PlanError('effectiveFrom must be ISO 8601 with an offset, e.g. 2027-01-01T00:00:00+08:00');
  }
  const from = new Date(p.effectiveFrom).getTime();
  // Date rolls 2031-02-30 over into March: the day must be one of its month
  if (Number.isNaN(from) || new Date(`${p.effectiveFrom.slice(0, 10)}T00:00:00Z`).toISOString().slice(0, 10) !== p.effectiveFrom.slice(0, 10)) {
    throw new PlanError(`effectiveFrom is not a valid time: ${p.effectiveFrom}`);
  }
  if (from % HOUR !== 0 || /\.\d*[1-9]/.test(p.effectiveFrom)) throw new PlanError('effectiveFrom must be a whole hour (plans apply per hour of usage)');
  if (from <= now) throw new PlanError(`effectiveFrom must be in the future (now ${new Date(now).toISOString()}): usage already rated is never re-priced`);
  if (!Array.isArray(p.lines) || p.lines.length === 0) throw new PlanError('lines must price at least one meter');
  const lines = p.lines.map((l) => {
    if (!(METERS as readonly string[]).includes(l?.meter)) throw new PlanError(`a line's meter must be one of ${METERS.join(', ')}`);
    const freeText = l.freeQuota ?? '0';
    if (typeof freeText !== 'string' || !COUNT_RE.test(freeText)) throw new PlanError('freeQuota must be a non-negative integer string, e.g. "1000000"');
    if (!Array.isArray(l.tiers) || l.tiers.length === 0 || l.tiers.length > MAX_PLAN_TIERS) throw new PlanError(`a line needs 1 to ${MAX_PLAN_TIERS} tiers`);
    const tiers = l.tiers.map((t): PriceTier => {
      let upTo: bigint | null = null;
      if (t?.upTo !== null) {
        if (typeof t?.upTo !== 'string' || !COUNT_RE.test(t.upTo) || BigInt(t.upTo) === 0n) {
          throw new PlanError('a tier\'s upTo must be a positive integer string (calls beyond the free quota), or null for the last tier');
        }
        upTo = BigInt(t.upTo);
      }
      let perMillion: bigint;
      try {
        if (typeof t.perMillion !== 'string') throw new MoneyFormatError('');
        perMillion = parseAmount(t.perMillion);
      } catch {
        throw new PlanError('a tier\'s perMillion must be a decimal string of the price per million calls, e.g. "2.00" (at most 9 decimals)');
      }
      return { upTo, perMillion };
    });
    checkTiers(tiers);
    return { meter: l.meter as 'calls', freeQuota: BigInt(freeText), tiers };
  });
  if (new Set(lines.map((l) => l.meter)).size !== lines.length) throw new PlanError('lines prices a meter twice');
  return { code: p.code, regionGroup, currency: p.currency, rule: p.meteringRule as MeteringRule, regions: [...p.regions].sort(), effectiveFrom: new Date(from), lines };
}

/** The versions' columns, regions and lines (as PlanCatalog reads them), for `FROM price_plans p`. */
const VERSION_COLUMNS = `p.id, p.code, p.version, p.region_group, p.currency, p.metering_rule, p.effective_from, p.effective_to,
       p.created_at, p.created_by, p.reason,
       (SELECT array_agg(r2.region ORDER BY r2.region) FROM price_plan_regions r2 WHERE r2.plan_id = p.id) AS regions,
       (SELECT json_agg(json_build_object('meter', l.meter, 'free_quota', l.free_quota::text, 'tiers',
                 (SELECT json_agg(json_build_object('up_to', t2.up_to::text, 'per_million_nano', t2.per_million_nano::text) ORDER BY t2.ord)
                    FROM price_plan_tiers t2 WHERE t2.plan_id = l.plan_id AND t2.meter = l.meter)) ORDER BY l.meter)
          FROM price_plan_lines l WHERE l.plan_id = p.id) AS lines`;

type VersionRow = PlanRow & { region_group: string; created_at: Date; created_by: string | null; reason: string | null; lines: LineRow[] | null };

const toVersion = (r: VersionRow): PlanVersion => ({
  ...toPlan({ ...r, regions: r.regions ?? [] }, r.lines ?? []),
  regionGroup: r.region_group,
  createdAt: r.created_at,
  createdBy: r.created_by,
  reason: r.reason,
});

/** The keyset of the listing of every version: code, version, region group. */
export type PlanKey = [string, number, string];

@Injectable()
export class PricePlans {
  constructor(
    private readonly pool: PgPool,
    @Optional() @Inject(CLOCK) private readonly clock?: Clock,
  ) {}

  private now(): number {
    return this.clock ? this.clock.now() : Date.now();
  }

  /** Every version of every plan, by code, version and region group, up to `limit` after `after`. */
  async list(limit: number, after?: PlanKey): Promise<PlanVersion[]> {
    const { rows } = await this.pool.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM price_plans p
        WHERE $1::text IS NULL OR (p.code, p.version, p.region_group) > ($1::text, $2::int, $3::text)
        ORDER BY p.code, p.version, p.region_group LIMIT $4`,
      [after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, limit],
    );
    return rows.map(toVersion);
  }

  /** The versions of plan `code`, oldest first (none: an empty list). */
  async versions(code: string): Promise<PlanVersion[]> {
    const { rows } = await this.pool.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM price_plans p WHERE p.code = $1 ORDER BY p.version, p.region_group`,
      [code],
    );
    return rows.map(toVersion);
  }

  /**
   * Adds the next version of `input.code` (1 for a new code) after {@link checkNewPlan}; its
   * regions' earlier versions of the code must all start before it (a plan's timeline only goes
   * forward), and a code keeps its currency. Throws {@link PlanError} with the reason.
   */
  async create(input: NewPlanVersion, createdBy: string, reason: string): Promise<PlanVersion> {
    const p = checkNewPlan(input, this.now());
    const id = await inTransaction(this.pool, async (c) => {
      // one new version of a code at a time: the version numbers and the checks below hold
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('price-plan'), hashtext($1))`, [p.code]);
      const { rows: prev } = await c.query<{ version: number | null; currency: string | null }>(
        `SELECT max(version) AS version, (SELECT currency FROM price_plans WHERE code = $1 ORDER BY version DESC LIMIT 1) AS currency
           FROM price_plans WHERE code = $1`,
        [p.code],
      );
      if (prev[0].currency !== null && prev[0].currency !== p.currency) {
        throw new PlanError(`plan ${p.code} is priced in ${prev[0].currency}: a new version cannot change the currency`);
      }
      const { rows: later } = await c.query<{ version: number; region: string; effective_from: Date }>(
        `SELECT p.version, r.region, p.effective_from FROM price_plans p JOIN price_plan_regions r ON r.plan_id = p.id
          WHERE p.code = $1 AND r.region = ANY($2::text[]) AND p.effective_from > $3
          ORDER BY p.effective_from DESC, p.version DESC LIMIT 1`,
        [p.code, p.regions, p.effectiveFrom],
      );
      if (later[0]) {
        throw new PlanError(
          `version ${later[0].version} of plan ${p.code} covers ${later[0].region} from ${later[0].effective_from.toISOString()}: ` +
            'a new version covering it must start at or after that',
        );
      }
      const version = (prev[0].version ?? 0) + 1;
      const { rows } = await c.query<{ id: string }>(
        `INSERT INTO price_plans (code, region_group, version, currency, metering_rule, effective_from, created_by, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
        [p.code, p.regionGroup, version, p.currency, p.rule, p.effectiveFrom, createdBy, reason],
      );
      const planId = rows[0].id;
      await c.query(`INSERT INTO price_plan_regions (plan_id, region) SELECT $1, unnest($2::text[])`, [planId, p.regions]);
      await c.query(`INSERT INTO price_plan_lines (plan_id, meter, free_quota) SELECT $1, unnest($2::text[]), unnest($3::bigint[])`, [
        planId,
        p.lines.map((l) => l.meter),
        p.lines.map((l) => l.freeQuota.toString()),
      ]);
      const tiers = p.lines.flatMap((l) => l.tiers.map((t, ord) => ({ meter: l.meter, ord, t })));
      await c.query(
        `INSERT INTO price_plan_tiers (plan_id, meter, ord, up_to, per_million_nano)
         SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[])`,
        [planId, tiers.map((x) => x.meter), tiers.map((x) => x.ord), tiers.map((x) => x.t.upTo?.toString() ?? null), tiers.map((x) => x.t.perMillion.toString())],
      );
      await appendAudit(c, {
        domain: 'billing',
        action: 'plan.create',
        actorKind: 'operator',
        actor: createdBy,
        subject: `plan:${p.code}/v${version}`,
        reason,
        details: {
          code: p.code,
          version,
          regionGroup: p.regionGroup,
          currency: p.currency,
          rule: p.rule,
          regions: p.regions,
          effectiveFrom: p.effectiveFrom.toISOString(),
          lines: p.lines.map((l) => ({
            meter: l.meter,
            freeQuota: l.freeQuota.toString(),
            tiers: l.tiers.map((t) => ({ upTo: t.upTo?.toString() ?? null, perMillion: formatAmount(t.perMillion) })),
          })),
        },
      });
      return planId;
    });
    const { rows } = await this.pool.query<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM price_plans p WHERE p.id = $1`, [id]);
    return toVersion(rows[0]);
  }
}
