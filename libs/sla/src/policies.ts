import { Inject, Injectable } from '@nestjs/common';
import { appendAudit } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { SLA_CLOCK, SlaClock } from './clock';
import { isMonth, monthOf, nextMonth } from './month';
import type { CreditBand, SlaPolicy } from './policy';
import { SlaSignals } from './signals';

export class PolicyRejectedError extends Error {}

export type NewPolicy = Omit<SlaPolicy, 'version' | 'effectiveFrom'> & { effectiveFrom: string };

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** What is wrong with a policy, or null. */
export function policyProblem(p: NewPolicy): string | null {
  const intIn = (v: unknown, lo: number, hi: number) => Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;
  if (!validZone(p.timeZone)) return 'timeZone must be an IANA time zone such as Asia/Shanghai';
  if (!intIn(p.targetPpm, 1, 1_000_000)) return 'targetPpm must be an integer in 1..1000000';
  if (!intIn(p.minOutageMinutes, 1, 1440)) return 'minOutageMinutes must be an integer in 1..1440';
  if (!intIn(p.noticePeriodSeconds, 0, 90 * 86_400)) return 'noticePeriodSeconds must be an integer in 0..7776000';
  if (!intIn(p.probeDownPct, 1, 100)) return 'probeDownPct must be an integer in 1..100';
  if (!intIn(p.errorRatioPct, 1, 100)) return 'errorRatioPct must be an integer in 1..100';
  if (!intIn(p.errorMinRequests, 1, 1_000_000)) return 'errorMinRequests must be an integer in 1..1000000';
  if (!intIn(p.coverageAlertPpm, 0, 1_000_000)) return 'coverageAlertPpm must be an integer in 0..1000000';
  if (!intIn(p.coverageWindowMinutes, 1, 44_640)) return 'coverageWindowMinutes must be an integer in 1..44640';
  if (!Array.isArray(p.creditBands) || p.creditBands.length === 0 || p.creditBands.length > 10) return 'creditBands must list 1 to 10 bands';
  const seen = new Set<number>();
  for (const b of p.creditBands as CreditBand[]) {
    if (!intIn(b?.belowPpm, 1, 1_000_000) || !intIn(b?.creditPct, 1, 1000)) return 'each band needs belowPpm (1..1000000) and creditPct (1..1000), integers';
    if (b.belowPpm > p.targetPpm) return 'no band may start above the target';
    if (seen.has(b.belowPpm)) return 'two bands with the same belowPpm';
    seen.add(b.belowPpm);
  }
  return null;
}

/**
 * The versions of the SLA policy. A new version applies from the first day of a month that has
 * not begun (in the zone of the policy in force now), so no month is ever judged by rules that
 * changed while it ran; versions are never edited.
 */
@Injectable()
export class SlaPolicies {
  constructor(
    private readonly pool: PgPool,
    private readonly signals: SlaSignals,
    @Inject(SLA_CLOCK) private readonly clock: SlaClock,
  ) {}

  async list(): Promise<SlaPolicy[]> {
    const { rows } = await this.pool.query<{ version: number }>(`SELECT version FROM sla_policies ORDER BY version`);
    return Promise.all(rows.map((r) => this.signals.policyVersion(r.version)));
  }

  async create(p: NewPolicy, actor: string, reason: string): Promise<SlaPolicy> {
    const problem = policyProblem(p);
    if (problem) throw new PolicyRejectedError(problem);
    const month = p.effectiveFrom.slice(0, 7);
    if (!isMonth(month) || p.effectiveFrom !== `${month}-01`) throw new PolicyRejectedError('effectiveFrom must be the first day of a month, YYYY-MM-01');
    const now = this.clock.now();
    const current = monthOf(now, (await this.signals.policyFor(monthOf(now, 'UTC'))).timeZone);
    if (month < nextMonth(current)) throw new PolicyRejectedError(`a new version can apply from ${nextMonth(current)} at the earliest (months that began keep their rules)`);
    const version = await inTransaction(this.pool, async (c) => {
      await c.query(`LOCK TABLE sla_policies IN SHARE ROW EXCLUSIVE MODE`);
      const { rows: taken } = await c.query(`SELECT version FROM sla_policies WHERE effective_from >= $1::date`, [p.effectiveFrom]);
      if (taken.length > 0) throw new PolicyRejectedError(`a version already applies from ${p.effectiveFrom} or later`);
      const { rows } = await c.query<{ version: number }>(
        `INSERT INTO sla_policies (version, effective_from, time_zone, target_ppm, min_outage_minutes, notice_period_seconds,
                                   probe_down_pct, error_ratio_pct, error_min_requests, coverage_alert_ppm, coverage_window_minutes,
                                   credit_bands)
         SELECT coalesce(max(version), 0) + 1, $1::date, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM sla_policies
         RETURNING version`,
        [
          p.effectiveFrom,
          p.timeZone,
          p.targetPpm,
          p.minOutageMinutes,
          p.noticePeriodSeconds,
          p.probeDownPct,
          p.errorRatioPct,
          p.errorMinRequests,
          p.coverageAlertPpm,
          p.coverageWindowMinutes,
          JSON.stringify(p.creditBands.map((b) => ({ belowPpm: b.belowPpm, creditPct: b.creditPct }))),
        ],
      );
      await appendAudit(c, { domain: 'sla', action: 'policy.create', actorKind: 'operator', actor, subject: `policy:${rows[0].version}`, reason, details: p });
      return rows[0].version;
    });
    return this.signals.policyVersion(version);
  }
}
