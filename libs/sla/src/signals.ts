import { Injectable } from '@nestjs/common';
import { PgPool } from '@app/db';
import type { Interval } from './evaluate';
import { mergeIntervals } from './evaluate';
import { MINUTE_MS } from './month';
import type { CreditBand, SlaPolicy } from './policy';

/** The minutes of one region over a span: down and unknown (no probe result), as merged intervals. */
export interface RegionStates {
  region: string;
  down: Interval[];
  unknown: Interval[];
  /** probe attempts and failures in the span, for the report */
  attempts: number;
  failures: number;
}


/** What the month close needs of one account beyond the fleet-wide signals. */
export interface AccountSignals {
  accountId: string;
  createdAt: number;
  releasedAt: number | null;
  /** per region, the minutes in which the account had a resource there */
  resources: Map<string, Interval[]>;
  /** minutes whose server-error ratio made the account down (sla.md §2) */
  errorMinutes: Interval[];
  /** cash spent on usage in the month, nano (the credit base, billing.md §4) */
  feeNano: bigint;
}

interface PolicyRow {
  version: number;
  effective_from: string;
  time_zone: string;
  target_ppm: number;
  min_outage_minutes: number;
  notice_period_seconds: number;
  probe_down_pct: number;
  error_ratio_pct: number;
  error_min_requests: number;
  coverage_alert_ppm: number;
  coverage_window_minutes: number;
  credit_bands: CreditBand[];
}

function toPolicy(r: PolicyRow): SlaPolicy {
  return {
    version: r.version,
    effectiveFrom: r.effective_from,
    timeZone: r.time_zone,
    targetPpm: r.target_ppm,
    minOutageMinutes: r.min_outage_minutes,
    noticePeriodSeconds: r.notice_period_seconds,
    probeDownPct: r.probe_down_pct,
    errorRatioPct: r.error_ratio_pct,
    errorMinRequests: r.error_min_requests,
    coverageAlertPpm: r.coverage_alert_ppm,
    coverageWindowMinutes: r.coverage_window_minutes,
    creditBands: r.credit_bands,
  };
}

const ts = (minute: number) => new Date(minute * MINUTE_MS);

/** Sorted, merged intervals ∩ sorted, merged intervals. */
export function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const start = Math.max(a[i].start, b[j].start);
    const end = Math.min(a[i].end, b[j].end);
    if (start < end) out.push({ start, end });
    if (a[i].end < b[j].end) i++;
    else j++;
  }
  return out;
}

/** Sorted, merged intervals minus sorted, merged intervals. */
export function difference(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const x of a) {
    let start = x.start;
    while (j < b.length && b[j].end <= start) j++;
    let k = j;
    while (k < b.length && b[k].start < x.end) {
      if (b[k].start > start) out.push({ start, end: b[k].start });
      start = Math.max(start, b[k].end);
      k++;
    }
    if (start < x.end) out.push({ start, end: x.end });
  }
  return out;
}

/**
 * Reads the SLA signals out of Postgres as minute intervals: the policy of a month, each region's
 * down and unknown minutes from the probes, and per account its resources, its error minutes
 * from the usage stream, and its month's cash fee.
 */
@Injectable()
export class SlaSignals {
  constructor(private readonly pool: PgPool) {}

  /** The policy version in force for `month` ('YYYY-MM'): the latest whose first month is not after it. */
  async policyFor(month: string): Promise<SlaPolicy> {
    const { rows } = await this.pool.query<PolicyRow>(
      `SELECT version, to_char(effective_from, 'YYYY-MM-DD') AS effective_from, time_zone, target_ppm, min_outage_minutes,
              notice_period_seconds, probe_down_pct, error_ratio_pct, error_min_requests, coverage_alert_ppm,
              coverage_window_minutes, credit_bands
         FROM sla_policies WHERE effective_from <= $1::date ORDER BY effective_from DESC LIMIT 1`,
      [`${month}-01`],
    );
    if (!rows[0]) throw new Error(`no SLA policy in force for ${month}`);
    return toPolicy(rows[0]);
  }

  async policyVersion(version: number): Promise<SlaPolicy> {
    const { rows } = await this.pool.query<PolicyRow>(
      `SELECT version, to_char(effective_from, 'YYYY-MM-DD') AS effective_from, time_zone, target_ppm, min_outage_minutes,
              notice_period_seconds, probe_down_pct, error_ratio_pct, error_min_requests, coverage_alert_ppm,
              coverage_window_minutes, credit_bands
         FROM sla_policies WHERE version = $1`,
      [version],
    );
    if (!rows[0]) throw new Error(`no SLA policy version ${version}`);
    return toPolicy(rows[0]);
  }

  /**
   * Each region's minutes in [from, to): down when failed probes × 100 ≥ attempts × the policy's
   * percentage, unknown when no probe result arrived in it (a probe refused with a 4xxx code, a
   * fault of the prober's own, is no result).
   */
  async regionStates(regions: readonly string[], from: number, to: number, policy: SlaPolicy): Promise<Map<string, RegionStates>> {
    const { rows } = await this.pool.query<{ region: string; m: string; attempts: number; failures: number }>(
      `SELECT region, (extract(epoch FROM minute) / 60)::bigint AS m, count(*)::int AS attempts,
              count(*) FILTER (WHERE NOT ok)::int AS failures
         FROM sla_probes WHERE minute >= $1 AND minute < $2 AND region = ANY($3)
          -- a 4xxx answer is the prober's own mistake (sla.md §1: client errors are not failures
          -- of the service), e.g. its clock outside the signature window: no result for that minute
          AND (ok OR code IS NULL OR code NOT BETWEEN 4000 AND 4999)
        GROUP BY region, minute ORDER BY region, minute`,
      [ts(from), ts(to), regions],
    );
    const out = new Map<string, RegionStates>();
    for (const region of regions) out.set(region, { region, down: [], unknown: [], attempts: 0, failures: 0 });
    const seen = new Map<string, Interval[]>();
    for (const r of rows) {
      const s = out.get(r.region)!;
      const m = Number(r.m);
      s.attempts += r.attempts;
      s.failures += r.failures;
      if (r.failures * 100 >= r.attempts * policy.probeDownPct) s.down.push({ start: m, end: m + 1 });
      const list = seen.get(r.region) ?? [];
      list.push({ start: m, end: m + 1 });
      seen.set(r.region, list);
    }
    for (const s of out.values()) {
      s.down = mergeIntervals(s.down);
      s.unknown = difference([{ start: from, end: to }], mergeIntervals(seen.get(s.region) ?? []));
    }
    return out;
  }

  /** The minute of each region's first probe before minute `to` (regions not probed by then are absent). */
  async firstProbeMinutes(regions: readonly string[], to: number): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ region: string; m: string | null }>(
      `SELECT r.region, (SELECT (extract(epoch FROM p.minute) / 60)::bigint FROM sla_probes p
                          WHERE p.region = r.region AND p.minute < $2 ORDER BY p.minute LIMIT 1) AS m
         FROM unnest($1::text[]) AS r(region)`,
      [regions, ts(to)],
    );
    return new Map(rows.filter((r) => r.m !== null).map((r) => [r.region, Number(r.m)]));
  }

  /**
   * Accounts that existed in [monthStart, monthEnd) and were not released before it, in id
   * order after `after`, at most `limit`.
   */
  async accountPage(after: string | null, limit: number, monthStart: number, monthEnd: number): Promise<Array<{ id: string; createdAt: number; releasedAt: number | null }>> {
    // both sides bounded by `after`: a merge join then starts at the page on either index, not
    // at the first account (which made every page cost as much as all the pages before it)
    const { rows } = await this.pool.query<{ id: string; c: string; r: string | null }>(
      `SELECT a.id, (extract(epoch FROM a.created_at) * 1000)::bigint AS c, (extract(epoch FROM b.released_at) * 1000)::bigint AS r
         FROM accounts a LEFT JOIN balances b ON b.account_id = a.id ${after === null ? '' : 'AND b.account_id > $4::uuid'}
        WHERE ${after === null ? '' : 'a.id > $4::uuid AND'} a.created_at < $2 AND (b.released_at IS NULL OR b.released_at >= $1)
          AND NOT a.system
        ORDER BY a.id LIMIT $3`,
      after === null ? [ts(monthStart), ts(monthEnd), limit] : [ts(monthStart), ts(monthEnd), limit, after],
    );
    return rows.map((r) => ({ id: r.id, createdAt: Number(r.c), releasedAt: r.r === null ? null : Number(r.r) }));
  }

  /** Resources, error minutes and the month's cash fee of `accounts`, over [from, to) (fee: [monthStart, monthEnd)). */
  async accountSignals(
    accounts: ReadonlyArray<{ id: string; createdAt: number; releasedAt: number | null }>,
    from: number,
    to: number,
    monthStart: number,
    monthEnd: number,
    policy: SlaPolicy,
  ): Promise<AccountSignals[]> {
    const ids = accounts.map((a) => a.id);
    const [queues, errors, fees] = await Promise.all([
      this.pool.query<{ account_id: string; region: string; s: string; e: string | null }>(
        `SELECT account_id, region, floor(extract(epoch FROM created_at) / 60)::bigint AS s,
                ceil(extract(epoch FROM deleted_at) / 60)::bigint AS e
           FROM queues WHERE account_id = ANY($1::uuid[]) AND created_at < $3 AND (deleted_at IS NULL OR deleted_at > $2)`,
        [ids, ts(from), ts(to)],
      ),
      // a minute can be down by its error ratio only if it has server errors (the ratio is at
      // least 1%): only the accounts with a server_error row in the span are summed, found by a
      // partial index of those rows, not by reading every usage row of the page's accounts
      this.pool.query<{ account_id: string; m: string }>(
        `SELECT account_id, (extract(epoch FROM minute) / 60)::bigint AS m
           FROM usage_minutely
          WHERE account_id = ANY (ARRAY(SELECT DISTINCT account_id FROM usage_minutely
                                         WHERE outcome = 'server_error' AND account_id = ANY($1::uuid[]) AND minute >= $2 AND minute < $3))
            AND minute >= $2 AND minute < $3
          GROUP BY account_id, minute
         HAVING sum(requests) >= $4 AND coalesce(sum(requests) FILTER (WHERE outcome = 'server_error'), 0) * 100 >= sum(requests) * $5
          ORDER BY account_id, minute`,
        [ids, ts(from), ts(to), policy.errorMinRequests, policy.errorRatioPct],
      ),
      this.pool.query<{ account_id: string; fee: string }>(
        `SELECT account_id, (-sum(cash_delta_nano))::text AS fee
           FROM ledger_entries WHERE account_id = ANY($1::uuid[]) AND kind = 'usage_charge' AND created_at >= $2 AND created_at < $3
          GROUP BY account_id`,
        [ids, ts(monthStart), ts(monthEnd)],
      ),
    ]);
    const byId = new Map<string, AccountSignals>();
    for (const a of accounts) {
      byId.set(a.id, { accountId: a.id, createdAt: a.createdAt, releasedAt: a.releasedAt, resources: new Map(), errorMinutes: [], feeNano: 0n });
    }
    for (const q of queues.rows) {
      const s = byId.get(q.account_id)!;
      const list = s.resources.get(q.region) ?? [];
      list.push({ start: Math.max(Number(q.s), from), end: q.e === null ? to : Math.min(Number(q.e), to) });
      s.resources.set(q.region, list);
    }
    for (const s of byId.values()) for (const [region, list] of s.resources) s.resources.set(region, mergeIntervals(list));
    for (const e of errors.rows) {
      const m = Number(e.m);
      byId.get(e.account_id)!.errorMinutes.push({ start: m, end: m + 1 });
    }
    for (const f of fees.rows) {
      const fee = BigInt(f.fee);
      byId.get(f.account_id)!.feeNano = fee > 0n ? fee : 0n;
    }
    return [...byId.values()];
  }
}
