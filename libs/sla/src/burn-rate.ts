import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import { insertNotifications, NewNotification, NotificationDispatcher } from '@app/billing';
import { SLA_CLOCK, SlaClock } from './clock';
import { Interval, mergeIntervals } from './evaluate';
import { MINUTE_MS, monthBounds, monthOf } from './month';
import { intersect, SlaSignals } from './signals';

/**
 * One rule of a multi-window burn-rate alert: the month's error budget (T × (1 − target)) is
 * being spent at least `rate` times faster than it may be, over both the long and the short
 * window (the short one confirms it is still happening).
 */
export interface BurnRule {
  severity: 'page' | 'ticket';
  longMinutes: number;
  shortMinutes: number;
  /** ×1000, an integer: 14,400 is 14.4 */
  rateMilli: number;
}

/** The usual pair: 2% of a month's budget in an hour, 5% in six hours. */
export const BURN_RULES: readonly BurnRule[] = [
  { severity: 'page', longMinutes: 60, shortMinutes: 5, rateMilli: 14_400 },
  { severity: 'ticket', longMinutes: 360, shortMinutes: 30, rateMilli: 6_000 },
];

export interface BurnAlert {
  accountId: string;
  severity: BurnRule['severity'];
  longRateMilli: number;
  shortRateMilli: number;
  budgetMinutes: string;
}

/**
 * burn rate × 1000 of `down` minutes over the window [end − minutes, end): the share of the
 * window that was down, divided by the share of the month the SLA allows (1 − target).
 */
export function burnRateMilli(downMinutes: number, windowMinutes: number, targetPpm: number): number {
  const allowedPpm = 1_000_000 - targetPpm;
  if (allowedPpm <= 0) return downMinutes > 0 ? Number.MAX_SAFE_INTEGER : 0;
  return Math.floor((downMinutes * 1_000_000 * 1000) / (windowMinutes * allowedPpm));
}

const minutesIn = (list: readonly Interval[], from: number, to: number) =>
  intersect(list, [{ start: from, end: to }]).reduce((n, i) => n + i.end - i.start, 0);

/**
 * Early warning (sla.md, Step 4): every account whose down minutes (the raw signal, before the
 * 5-minute rule: a warning must come early) burn its month's error budget too fast over both
 * windows of a rule gets an `sla_burn_rate` notification, at most one per rule and account an hour.
 * Only accounts that can be burning are looked at: those with resources in a region down in the
 * longest window, and those with server-error minutes in it.
 */
@Injectable()
export class BurnRateAlerts {
  private readonly logger = new Logger(BurnRateAlerts.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly signals: SlaSignals,
    @Inject(SLA_CLOCK) private readonly clock: SlaClock,
    @Optional() private readonly notifier?: NotificationDispatcher,
  ) {}

  /**
   * Each region's coverage over the policy's coverage window up to now (minutes with a probe
   * result ÷ minutes); one under the alert line is logged as an error for the operators: the
   * SLA is being measured blind there (sla.md §2). The window starts no earlier than the
   * region's first probe ever, so the minutes before a deployment existed are not lost coverage;
   * a region that has never been probed is blind over the whole window.
   */
  async coverage(): Promise<Array<{ region: string; coveragePpm: number; alert: boolean; windowMinutes: number }>> {
    const nowMs = this.clock.now();
    const now = Math.floor(nowMs / MINUTE_MS);
    const policy = await this.signals.policyFor(monthOf(nowMs, 'UTC'));
    const from = now - policy.coverageWindowMinutes;
    const regions = await this.signals.regionStates(this.config.regions, from, now, policy);
    const firstProbe = await this.signals.firstProbeMinutes(this.config.regions, now);
    const out = [...regions.values()].map((r) => {
      const first = firstProbe.get(r.region);
      const start = first === undefined ? from : Math.max(from, first);
      const window = now - start;
      const blind = minutesIn(r.unknown, start, now);
      const coveragePpm = window === 0 ? 1_000_000 : Math.floor(((window - blind) * 1_000_000) / window);
      return { region: r.region, coveragePpm, alert: coveragePpm < policy.coverageAlertPpm, windowMinutes: window };
    });
    for (const r of out.filter((x) => x.alert)) {
      this.logger.error(
        { region: r.region, coveragePpm: r.coveragePpm, windowMinutes: r.windowMinutes },
        `SLA coverage of ${r.region} is ${(r.coveragePpm / 10_000).toFixed(2)}% over the last ${r.windowMinutes} minutes: probes are missing`,
      );
    }
    return out;
  }

  async run(rules: readonly BurnRule[] = BURN_RULES): Promise<BurnAlert[]> {
    const nowMs = this.clock.now();
    const now = Math.floor(nowMs / MINUTE_MS); // the minute in progress is not judged yet
    const month = monthOf(nowMs, 'UTC');
    const policy = await this.signals.policyFor(month);
    const bounds = monthBounds(monthOf(nowMs, policy.timeZone), policy.timeZone);
    const longest = Math.max(...rules.map((r) => r.longMinutes));
    const from = now - longest;
    const regions = await this.signals.regionStates(this.config.regions, from, now, policy);
    const downRegions = [...regions.values()].filter((r) => r.down.length > 0).map((r) => r.region);
    const { rows } = await this.pool.query<{ id: string; c: string; r: string | null }>(
      `SELECT a.id, (extract(epoch FROM a.created_at) * 1000)::bigint AS c, (extract(epoch FROM b.released_at) * 1000)::bigint AS r
         FROM accounts a LEFT JOIN balances b ON b.account_id = a.id
        WHERE NOT a.system AND b.released_at IS NULL AND (
              a.id IN (SELECT account_id FROM queues WHERE region = ANY($1) AND created_at < $3 AND (deleted_at IS NULL OR deleted_at > $2))
           OR a.id IN (SELECT account_id FROM usage_minutely WHERE minute >= $2 AND minute < $3 AND outcome = 'server_error'))`,
      [downRegions, new Date(from * MINUTE_MS), new Date(now * MINUTE_MS)],
    );
    if (rows.length === 0) return [];
    const accounts = rows.map((r) => ({ id: r.id, createdAt: Number(r.c), releasedAt: r.r === null ? null : Number(r.r) }));
    const alerts: BurnAlert[] = [];
    const budget = (bounds.totalMinutes * (1_000_000 - policy.targetPpm)) / 1_000_000;
    for (let i = 0; i < accounts.length; i += 2000) {
      const page = await this.signals.accountSignals(accounts.slice(i, i + 2000), from, now, bounds.start, bounds.end, policy);
      for (const s of page) {
        const down: Interval[] = [...s.errorMinutes];
        for (const [region, held] of s.resources) down.push(...intersect(regions.get(region)?.down ?? [], held));
        const merged = mergeIntervals(down);
        if (merged.length === 0) continue;
        for (const rule of rules) {
          const longRate = burnRateMilli(minutesIn(merged, now - rule.longMinutes, now), rule.longMinutes, policy.targetPpm);
          const shortRate = burnRateMilli(minutesIn(merged, now - rule.shortMinutes, now), rule.shortMinutes, policy.targetPpm);
          if (longRate >= rule.rateMilli && shortRate >= rule.rateMilli) {
            alerts.push({ accountId: s.accountId, severity: rule.severity, longRateMilli: longRate, shortRateMilli: shortRate, budgetMinutes: budget.toFixed(1) });
            break; // the most urgent rule that fires speaks for the account
          }
        }
      }
    }
    if (alerts.length === 0) return alerts;
    const hour = Math.floor(nowMs / 3_600_000);
    const list: NewNotification[] = alerts.map((a) => ({
      accountId: a.accountId,
      kind: 'sla_burn_rate',
      idempotencyKey: `sla-burn:${a.accountId}:${a.severity}:${hour}`,
      payload: {
        severity: a.severity,
        burnRate: (a.longRateMilli / 1000).toFixed(1),
        shortWindowBurnRate: (a.shortRateMilli / 1000).toFixed(1),
        monthlyBudgetMinutes: a.budgetMinutes,
        at: new Date(nowMs).toISOString(),
      },
    }));
    const ids = await inTransaction(this.pool, (c) => insertNotifications(c, list));
    await this.notifier?.dispatch(ids);
    if (ids.length > 0) this.logger.warn(`SLA burn-rate alerts: ${ids.length} accounts`);
    return alerts;
  }
}

