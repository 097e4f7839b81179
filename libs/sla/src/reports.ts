import { Inject, Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { formatAmount } from '@app/billing';
import { exportCsv, SLA_RESULTS_CSV_COLUMNS } from '@app/billing/exports';
import { evaluateMonth, type Outage } from './evaluate';
import { localIso, MINUTE_MS, monthBounds, nextMonth } from './month';
import { MonthClose } from './month-close';
import { SlaSignals } from './signals';
import { ActiveMaintenance, SlaOperations } from './operations';

export interface OutageView {
  startUtc: string;
  endUtc: string;
  startLocal: string;
  endLocal: string;
  minutes: number;
  monthMinutes: number;
  counted: boolean;
  countedMinutes: number;
  exclusions: Outage['exclusions'];
}

export interface MaintenanceView {
  id: string;
  region: string | null;
  startsAt: string;
  endsAt: string;
  announcedAt: string;
  reason: string;
  /** announced at least the notice period ahead: its minutes are excluded */
  inTime: boolean;
  /** it excluded minutes of this account's outages */
  applied: boolean;
}

export interface AccountReport {
  accountId: string;
  month: string;
  timeZone: string;
  policyVersion: number;
  /** the result's revision; null while the month is open */
  revision: number | null;
  closed: boolean;
  target: string;
  totalMinutes: number;
  downtimeMinutes: number;
  unknownMinutes: number;
  availability: string;
  availabilityPpm: number;
  meetsTarget: boolean;
  coverage: string;
  coverageAlert: boolean;
  servicePeriod: boolean;
  creditPercent: number;
  feeBase: string;
  credit: string;
  outages: OutageView[];
  maintenance: MaintenanceView[];
  persistence: PersistenceView;
  reason: string | null;
  computedAt: string;
}

export interface PersistenceView {
  /** canary sends acknowledged in the month */
  acknowledged: number;
  /** of them, not received back */
  lost: number;
  /** 1 − lost ÷ acknowledged, as a percentage with six decimals rounded down; null with no sends */
  persistence: string | null;
}

export interface FleetReport {
  month: string;
  timeZone: string;
  policyVersion: number;
  closed: boolean;
  revision: number | null;
  regions: Array<{
    region: string;
    availability: string;
    downtimeMinutes: number;
    unknownMinutes: number;
    coverage: string;
    /** some coverage window of the month is under the policy's alert line */
    coverageAlert: boolean;
    probes: number;
    failedProbes: number;
    outages: OutageView[];
  }>;
  accounts: { evaluated: number; affected: number; belowTarget: number; credited: number } | null;
  creditsTotal: string | null;
  persistence: PersistenceView;
}

/** Columns of the SLA results CSV, in their documented order (the `sla_results` export's). */
export const SLA_CSV_COLUMNS = SLA_RESULTS_CSV_COLUMNS;

interface ResultRow {
  account_id: string;
  revision: number;
  policy_version: number;
  total_minutes: number;
  downtime_minutes: number;
  unknown_minutes: number;
  availability_ppm: number;
  availability: string;
  meets_target: boolean;
  coverage_ppm: number;
  coverage_alert: boolean;
  service_period: boolean;
  credit_pct: number;
  fee_base_nano: string;
  credit_nano: string;
  credit_delta_nano: string;
  outages: Outage[];
  maintenance: { applied: string[]; refused: string[] };
  reason: string | null;
  computed_at: Date;
}

const pct = (ppm: number) => {
  const whole = Math.floor(ppm / 10_000);
  return `${whole}.${String(ppm % 10_000).padStart(4, '0')}`;
};

/** ppm with two more decimals, for 99.999999% figures: rounded down. */
function persistenceOf(acknowledged: number, lost: number): string | null {
  if (acknowledged === 0) return null;
  const kept = BigInt(acknowledged - lost) * 100_000_000n / BigInt(acknowledged); // percent × 10⁶
  return `${kept / 1_000_000n}.${(kept % 1_000_000n).toString().padStart(6, '0')}`;
}

export class MonthNotFoundError extends Error {}

function maintenanceView(w: ActiveMaintenance, noticeMs: number, applied: boolean): MaintenanceView {
  return {
    id: w.id,
    region: w.region,
    startsAt: new Date(w.startsAt).toISOString(),
    endsAt: new Date(w.endsAt).toISOString(),
    announcedAt: new Date(w.announcedAt).toISOString(),
    reason: w.reason,
    inTime: w.announcedAt <= w.startsAt - noticeMs,
    applied,
  };
}

/**
 * The SLA reports of sla.md §6: per account and month (the closed month's latest revision, or
 * the open month so far), the fleet view, the finance CSV and a printable page.
 */
@Injectable()
export class SlaReports {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly signals: SlaSignals,
    private readonly close: MonthClose,
    private readonly operations: SlaOperations,
  ) {}

  private async closedRevision(month: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ revision: number }>(`SELECT revision FROM sla_month_closes WHERE month = $1::date`, [`${month}-01`]);
    return rows[0]?.revision ?? null;
  }

  private outageViews(outages: Outage[], timeZone: string): OutageView[] {
    return outages.map((o) => ({
      startUtc: new Date(o.start * MINUTE_MS).toISOString(),
      endUtc: new Date(o.end * MINUTE_MS).toISOString(),
      startLocal: localIso(o.start * MINUTE_MS, timeZone),
      endLocal: localIso(o.end * MINUTE_MS, timeZone),
      minutes: o.minutes,
      monthMinutes: o.monthMinutes,
      counted: o.counted,
      countedMinutes: o.countedMinutes,
      exclusions: o.exclusions,
    }));
  }

  async persistence(month: string, timeZone: string, region?: string): Promise<PersistenceView> {
    const b = monthBounds(month, timeZone);
    const { rows } = await this.pool.query<{ acked: number; lost: number }>(
      `SELECT count(*) FILTER (WHERE failed_step IS DISTINCT FROM 'send')::int AS acked, count(*) FILTER (WHERE lost)::int AS lost
         FROM sla_probes WHERE minute >= $1 AND minute < $2 AND ($3::text IS NULL OR region = $3)`,
      [new Date(b.start * MINUTE_MS), new Date(b.end * MINUTE_MS), region ?? null],
    );
    return { acknowledged: rows[0].acked, lost: rows[0].lost, persistence: persistenceOf(rows[0].acked, rows[0].lost) };
  }

  /** null: no such account, or it did not exist in the month. */
  async account(accountId: string, month: string): Promise<AccountReport | null> {
    const revision = await this.closedRevision(month);
    if (revision !== null) {
      const { rows } = await this.pool.query<ResultRow>(
        `SELECT * FROM sla_results WHERE account_id = $1 AND month = $2::date AND revision <= $3 ORDER BY revision DESC LIMIT 1`,
        [accountId, `${month}-01`, revision],
      );
      const r = rows[0];
      if (!r) return null;
      const policy = await this.signals.policyVersion(r.policy_version);
      const bounds = monthBounds(month, policy.timeZone);
      const windows = await this.operations.activeMaintenance((bounds.start - policy.minOutageMinutes) * MINUTE_MS, (bounds.end + policy.minOutageMinutes) * MINUTE_MS);
      const applied = new Set(r.maintenance.applied);
      const notice = policy.noticePeriodSeconds * 1000;
      return {
        accountId,
        month,
        timeZone: policy.timeZone,
        policyVersion: policy.version,
        revision: r.revision,
        closed: true,
        target: pct(policy.targetPpm),
        totalMinutes: r.total_minutes,
        downtimeMinutes: r.downtime_minutes,
        unknownMinutes: r.unknown_minutes,
        availability: r.availability,
        availabilityPpm: r.availability_ppm,
        meetsTarget: r.meets_target,
        coverage: pct(r.coverage_ppm),
        coverageAlert: r.coverage_alert,
        servicePeriod: r.service_period,
        creditPercent: r.credit_pct,
        feeBase: formatAmount(BigInt(r.fee_base_nano)),
        credit: formatAmount(BigInt(r.credit_nano)),
        outages: this.outageViews(r.outages, policy.timeZone),
        maintenance: windows
          .filter((w) => applied.has(w.id) || r.maintenance.refused.includes(w.id))
          .map((w) => maintenanceView(w, notice, applied.has(w.id))),
        persistence: await this.persistence(month, policy.timeZone),
        reason: r.reason,
        computedAt: r.computed_at.toISOString(),
      };
    }
    const live = await this.close.preview(accountId, month);
    if (!live) return null;
    const policy = await this.signals.policyFor(month);
    const bounds = monthBounds(month, policy.timeZone);
    const windows = await this.operations.activeMaintenance((bounds.start - policy.minOutageMinutes) * MINUTE_MS, (bounds.end + policy.minOutageMinutes) * MINUTE_MS);
    const notice = policy.noticePeriodSeconds * 1000;
    const shown = new Set([...live.result.maintenanceApplied, ...live.result.maintenanceRefused]);
    return {
      accountId,
      month,
      timeZone: policy.timeZone,
      policyVersion: policy.version,
      revision: null,
      closed: false,
      target: pct(policy.targetPpm),
      totalMinutes: live.result.totalMinutes,
      downtimeMinutes: live.result.downtimeMinutes,
      unknownMinutes: live.result.unknownMinutes,
      availability: live.result.availability,
      availabilityPpm: live.result.availabilityPpm,
      meetsTarget: live.result.meetsTarget,
      coverage: pct(live.result.coveragePpm),
      coverageAlert: live.result.coverageAlert,
      servicePeriod: live.servicePeriod,
      creditPercent: live.result.creditPct,
      feeBase: formatAmount(live.feeNano),
      credit: formatAmount(live.creditNano),
      outages: this.outageViews(live.result.outages, policy.timeZone),
      maintenance: windows
        .filter((w) => shown.has(w.id))
        .map((w) => maintenanceView(w, notice, live.result.maintenanceApplied.includes(w.id))),
      persistence: await this.persistence(month, policy.timeZone),
      reason: null,
      computedAt: new Date().toISOString(),
    };
  }

  /** Per region availability from the probes (same rules), and the accounts' results when closed. */
  async fleet(month: string): Promise<FleetReport> {
    const ctx = await this.close.context(month);
    const revision = await this.closedRevision(month);
    const regions: FleetReport['regions'] = [];
    for (const region of this.config.regions) {
      const states = ctx.regions.get(region)!;
      const r = evaluateMonth({
        policy: ctx.policy,
        bounds: ctx.bounds,
        down: states.down,
        unknown: states.unknown,
        maintenance: ctx.maintenance.filter((w) => w.region === null || w.region === region),
        attributions: ctx.attributions.filter((a) => a.accountId === null && (a.region === null || a.region === region)),
      });
      regions.push({
        region,
        availability: r.availability,
        downtimeMinutes: r.downtimeMinutes,
        unknownMinutes: r.unknownMinutes,
        coverage: pct(r.coveragePpm),
        coverageAlert: r.coverageAlert,
        probes: states.attempts,
        failedProbes: states.failures,
        outages: this.outageViews(r.outages, ctx.policy.timeZone),
      });
    }
    let accounts: FleetReport['accounts'] = null;
    let creditsTotal: string | null = null;
    if (revision !== null) {
      const { rows } = await this.pool.query<{ evaluated: number; affected: number; below: number; credited: number; credits: string }>(
        `SELECT count(*)::int AS evaluated, count(*) FILTER (WHERE downtime_minutes > 0)::int AS affected,
                count(*) FILTER (WHERE NOT meets_target)::int AS below, count(*) FILTER (WHERE credit_nano > 0)::int AS credited,
                coalesce(sum(credit_nano), 0)::text AS credits
           FROM (SELECT DISTINCT ON (account_id) * FROM sla_results WHERE month = $1::date AND revision <= $2
                  ORDER BY account_id, revision DESC) r`,
        [`${month}-01`, revision],
      );
      accounts = { evaluated: rows[0].evaluated, affected: rows[0].affected, belowTarget: rows[0].below, credited: rows[0].credited };
      creditsTotal = formatAmount(BigInt(rows[0].credits));
    }
    return {
      month,
      timeZone: ctx.policy.timeZone,
      policyVersion: ctx.policy.version,
      closed: revision !== null,
      revision,
      regions,
      accounts,
      creditsTotal,
      persistence: await this.persistence(month, ctx.policy.timeZone),
    };
  }

  /**
   * The month's latest result per account as the finance CSV of kind `sla_results` (RFC 4180,
   * UTF-8, money as decimal strings, times in ISO 8601 UTC; columns SLA_RESULTS_CSV_COLUMNS),
   * streamed in keyset pages by account from one snapshot, so memory stays flat however many
   * accounts there are. The same stream as the export job of that kind over a range of months.
   */
  async csv(month: string, opts: { bom?: boolean } = {}): Promise<Readable> {
    const revision = await this.closedRevision(month);
    if (revision === null) throw new MonthNotFoundError(`month ${month} is not closed`);
    return exportCsv(this.pool, 'sla_results', { from: `${month}-01`, to: `${nextMonth(month)}-01` }, { bom: opts.bom ?? false });
  }

  /** The account report as a printable HTML page. */
  html(r: AccountReport): string {
    const e = (s: unknown) =>
      String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
    const outages = r.outages
      .map(
        (o) => `<tr><td>${e(o.startUtc)}<br><small>${e(o.startLocal)}</small></td><td>${e(o.endUtc)}<br><small>${e(o.endLocal)}</small></td>
<td>${o.minutes}</td><td>${o.monthMinutes}</td><td>${o.counted ? 'yes' : 'no (under the minimum)'}</td><td>${o.countedMinutes}</td>
<td>${o.exclusions.map((x) => `${e(x.cause)} #${e(x.id)}: ${x.minutes} min — ${e(x.reason)}`).join('<br>') || '—'}</td></tr>`,
      )
      .join('\n');
    const windows = r.maintenance
      .map(
        (w) => `<tr><td>#${e(w.id)}</td><td>${e(w.region ?? 'all regions')}</td><td>${e(w.startsAt)}</td><td>${e(w.endsAt)}</td>
<td>${e(w.announcedAt)}</td><td>${w.inTime ? 'yes' : 'no (announced too late)'}</td><td>${e(w.reason)}</td></tr>`,
      )
      .join('\n');
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SLA report ${e(r.month)} — ${e(r.accountId)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eee}
.breach{color:#a00;font-weight:bold}@media print{body{margin:0}}</style></head><body>
<h1>SLA report, ${e(r.month)}</h1>
<p>Account <code>${e(r.accountId)}</code> · month in ${e(r.timeZone)} · policy version ${r.policyVersion} ·
${r.closed ? `revision ${r.revision}` : 'month still open (figures so far)'}</p>
<table><tr><th>Minutes in the month</th><td>${r.totalMinutes}</td></tr>
<tr><th>Downtime counted</th><td>${r.downtimeMinutes} min</td></tr>
<tr><th>Availability</th><td class="${r.meetsTarget ? '' : 'breach'}">${e(r.availability)}% (target ${e(r.target)}%)</td></tr>
<tr><th>Coverage</th><td>${e(r.coverage)}%${r.coverageAlert ? ' — below the alert line' : ''} (${r.unknownMinutes} min without signal)</td></tr>
<tr><th>Service period</th><td>${r.servicePeriod ? 'whole month' : 'partial month: figures for information, no credit'}</td></tr>
<tr><th>Credit</th><td>${r.creditPercent}% of the cash fee ${e(r.feeBase)} = ${e(r.credit)}</td></tr>
<tr><th>Persistence</th><td>${r.persistence.persistence === null ? 'no canary sends' : `${e(r.persistence.persistence)}% (${r.persistence.lost} lost of ${r.persistence.acknowledged} acknowledged canary sends)`}</td></tr>
${r.reason ? `<tr><th>Revision reason</th><td>${e(r.reason)}</td></tr>` : ''}</table>
<h2>Outages</h2>
${r.outages.length === 0 ? '<p>None.</p>' : `<table><tr><th>Start (UTC / local)</th><th>End</th><th>Minutes</th><th>In this month</th><th>Counts (5-minute rule)</th><th>Counted minutes</th><th>Exclusions</th></tr>\n${outages}</table>`}
<h2>Maintenance windows</h2>
${r.maintenance.length === 0 ? '<p>None applied.</p>' : `<table><tr><th>Window</th><th>Region</th><th>Starts</th><th>Ends</th><th>Announced</th><th>In time</th><th>Reason</th></tr>\n${windows}</table>`}
<p><small>Computed ${e(r.computedAt)}.</small></p>
</body></html>`;
  }
}

