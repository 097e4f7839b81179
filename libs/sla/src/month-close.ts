import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { appendAudit } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { formatAmount, insertNotifications, LedgerService, NewNotification, NotificationDispatcher } from '@app/billing';
import { SLA_CLOCK, SlaClock } from './clock';
import { creditOf, evaluateMonth, Interval, mergeIntervals, MonthResult } from './evaluate';
import { MINUTE_MS, monthBounds, MonthBounds, monthOf, previousMonth } from './month';
import type { SlaPolicy } from './policy';
import { AccountSignals, difference, intersect, RegionStates, SlaSignals } from './signals';
import { ActiveAttribution, ActiveMaintenance, SlaOperations } from './operations';

/** One account's month, evaluated. */
export interface AccountMonth {
  accountId: string;
  /** read only: accounts whose months are alike share one (see {@link MonthClose.evaluate}) */
  result: MonthResult;
  servicePeriod: boolean;
  feeNano: bigint;
  creditNano: bigint;
}

/** What the fleet-wide signals of a month are, read once per close. */
export interface MonthContext {
  month: string;
  policy: SlaPolicy;
  bounds: MonthBounds;
  /** [from, to): the month and the policy's minimum outage on either side */
  from: number;
  to: number;
  regions: Map<string, RegionStates>;
  maintenance: ActiveMaintenance[];
  attributions: ActiveAttribution[];
  /** accounts that an attribution names (lower case) */
  attributed?: Set<string>;
  /**
   * results of accounts whose month depends on their resources alone, by those resources, the
   * most recently used kept (see {@link MonthClose.evaluate}); none: every account evaluated alone
   */
  alike?: Map<string, MonthResult>;
}

export interface CloseResult {
  month: string;
  /** false: the month was closed before (or is being closed by another worker); nothing changed */
  closed: boolean;
  revision: number;
  accounts: number;
  breaches: number;
  creditsNano: bigint;
  ms: number;
}

const PAGE = 2000;
/** distinct resource layouts whose result is kept for the accounts that share it */
const ALIKE_MAX = 256;

/** The minutes an account held resources in each region, as a key (regions in order). */
function resourcesKey(resources: Map<string, Interval[]>): string {
  let key = '';
  for (const region of [...resources.keys()].sort()) {
    key += `${region}:`;
    for (const i of resources.get(region)!) key += `${i.start}-${i.end},`;
    key += '|';
  }
  return key;
}

function sameResult(a: StoredResult, b: AccountMonth): boolean {
  return (
    a.downtime_minutes === b.result.downtimeMinutes &&
    a.unknown_minutes === b.result.unknownMinutes &&
    a.service_period === b.servicePeriod &&
    a.credit_pct === b.result.creditPct &&
    BigInt(a.fee_base_nano) === b.feeNano &&
    BigInt(a.credit_nano) === b.creditNano &&
    canonical(a.outages) === canonical(b.result.outages)
  );
}

/** JSON with object keys sorted at every level: jsonb gives keys back in its own order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

interface StoredResult {
  account_id: string;
  revision: number;
  downtime_minutes: number;
  unknown_minutes: number;
  service_period: boolean;
  credit_pct: number;
  fee_base_nano: string;
  credit_nano: string;
  outages: unknown;
}

/**
 * The month close (sla.md §4–§5): every account's month evaluated from the signals, stored as
 * revision 1, and each breach's credit granted as a voucher, in pages of accounts, each page one
 * transaction. Safe to run again: a closed month is not closed twice, a page stored before is
 * skipped by its keys, and each credit's ledger entry has its own idempotency key.
 * A later correction is a recompute: a new revision for the accounts whose result changed, and
 * a ledger entry for the difference of their credit only.
 */
@Injectable()
export class MonthClose {
  private readonly logger = new Logger(MonthClose.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly signals: SlaSignals,
    private readonly operations: SlaOperations,
    private readonly ledger: LedgerService,
    @Inject(SLA_CLOCK) private readonly clock: SlaClock,
    @Optional() private readonly notifier?: NotificationDispatcher,
  ) {}

  /** The month that ended most recently, `delaySeconds` ago, in the zone of the policy now in force. */
  async monthToClose(delaySeconds = this.config.sla.closeDelaySeconds): Promise<string> {
    const now = this.clock.now();
    const zone = (await this.signals.policyFor(monthOf(now, 'UTC'))).timeZone;
    return previousMonth(monthOf(now - delaySeconds * 1000, zone));
  }

  async isClosed(month: string): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT 1 FROM sla_month_closes WHERE month = $1::date`, [`${month}-01`]);
    return rows.length > 0;
  }

  /** The month is over in its policy's zone (by the clock). */
  async ended(month: string): Promise<boolean> {
    const policy = await this.signals.policyFor(month);
    return monthBounds(month, policy.timeZone).end * MINUTE_MS <= this.clock.now();
  }

  async context(month: string): Promise<MonthContext> {
    const policy = await this.signals.policyFor(month);
    const bounds = monthBounds(month, policy.timeZone);
    const from = bounds.start - policy.minOutageMinutes;
    const to = bounds.end + policy.minOutageMinutes;
    const [regions, maintenance, attributions] = await Promise.all([
      this.signals.regionStates(this.config.regions, from, to, policy),
      this.operations.activeMaintenance(from * MINUTE_MS, to * MINUTE_MS),
      this.operations.activeAttributions(from * MINUTE_MS, to * MINUTE_MS),
    ]);
    const attributed = new Set(attributions.flatMap((a) => (a.accountId === null ? [] : [a.accountId.toLowerCase()])));
    return { month, policy, bounds, from, to, regions, maintenance, attributions, attributed, alike: new Map() };
  }

  /**
   * One account's month from its signals and the fleet's. An account without error minutes of its
   * own and without an attribution naming it has the month of any other that held resources in
   * the same regions over the same minutes: in a fleet most accounts do (a queue or three, all
   * month), so their result is computed once and shared (`ctx.alike`, the most recently used
   * layouts), and only the fee and the credit are the account's.
   */
  evaluate(ctx: MonthContext, s: AccountSignals): AccountMonth {
    const alike = ctx.alike;
    const own = (id: string) =>
      s.errorMinutes.length > 0 ||
      (ctx.attributed ? ctx.attributed.has(id) : ctx.attributions.some((a) => a.accountId !== null && a.accountId.toLowerCase() === id));
    const key = alike && !own(s.accountId.toLowerCase()) ? resourcesKey(s.resources) : null;
    let result = key === null ? undefined : alike!.get(key);
    if (result && key !== null) {
      alike!.delete(key); // most recently used last
      alike!.set(key, result);
    } else {
      result = this.evaluateResult(ctx, s);
      if (key !== null) {
        alike!.set(key, result);
        if (alike!.size > ALIKE_MAX) alike!.delete(alike!.keys().next().value!);
      }
    }
    const servicePeriod = s.createdAt <= ctx.bounds.start * MINUTE_MS && (s.releasedAt === null || s.releasedAt >= ctx.bounds.end * MINUTE_MS);
    const creditNano = servicePeriod ? creditOf(s.feeNano, result.creditPct) : 0n;
    return { accountId: s.accountId, result, servicePeriod, feeNano: s.feeNano, creditNano };
  }

  private evaluateResult(ctx: MonthContext, s: AccountSignals): MonthResult {
    const down: Interval[] = [...s.errorMinutes];
    const unknown: Interval[] = [];
    for (const [region, held] of s.resources) {
      const states = ctx.regions.get(region);
      if (!states) continue;
      down.push(...intersect(states.down, held));
      unknown.push(...intersect(states.unknown, held));
    }
    const downMerged = mergeIntervals(down);
    const blind = difference(mergeIntervals(unknown), downMerged);
    const inRegion = (region: string | null) => region === null || s.resources.has(region);
    return evaluateMonth({
      policy: ctx.policy,
      bounds: ctx.bounds,
      down: downMerged,
      unknown: blind,
      maintenance: ctx.maintenance.filter((w) => inRegion(w.region)),
      attributions: ctx.attributions.filter((a) => inRegion(a.region) && (a.accountId === null || a.accountId === s.accountId)),
    });
  }

  /**
   * Every account's month, page by page (for the close, a recompute, the benchmark). The next
   * page's signals are read while the caller evaluates and stores this one.
   */
  async *evaluateAll(ctx: MonthContext): AsyncGenerator<AccountMonth[]> {
    const read = async (after: string | null) => {
      const page = await this.signals.accountPage(after, PAGE, ctx.bounds.start, ctx.bounds.end);
      if (page.length === 0) return null;
      const signals = await this.signals.accountSignals(page, ctx.from, ctx.to, ctx.bounds.start, ctx.bounds.end, ctx.policy);
      return { last: page[page.length - 1].id, signals };
    };
    let next = read(null);
    try {
      for (;;) {
        const current = await next;
        if (!current) return;
        next = read(current.last);
        next.catch(() => undefined); // awaited on the next turn, or below when the caller stops early
        yield current.signals.map((s) => this.evaluate(ctx, s));
      }
    } finally {
      await next.catch(() => undefined);
    }
  }

  /** One account's month as it stands (an open month: up to now), without storing anything. */
  async preview(accountId: string, month: string): Promise<AccountMonth | null> {
    const ctx = await this.context(month);
    const { rows } = await this.pool.query<{ id: string; c: string; r: string | null }>(
      `SELECT a.id, (extract(epoch FROM a.created_at) * 1000)::bigint AS c, (extract(epoch FROM b.released_at) * 1000)::bigint AS r
         FROM accounts a LEFT JOIN balances b ON b.account_id = a.id WHERE a.id = $1`,
      [accountId],
    );
    if (!rows[0]) return null;
    const account = { id: rows[0].id, createdAt: Number(rows[0].c), releasedAt: rows[0].r === null ? null : Number(rows[0].r) };
    const [signals] = await this.signals.accountSignals([account], ctx.from, ctx.to, ctx.bounds.start, ctx.bounds.end, ctx.policy);
    // minutes still to come are not blind: they have not happened
    const now = Math.floor(this.clock.now() / MINUTE_MS);
    for (const states of ctx.regions.values()) states.unknown = difference(states.unknown, [{ start: now, end: ctx.to }]);
    return this.evaluate(ctx, signals);
  }

  /**
   * Closes `month`: revision 1 of every account's result, credits granted. A month closed before
   * is left as it is (answers closed: false); so is one another process is closing right now.
   * The close is audited as the operator's (`operator`) or, without one, the worker's.
   */
  async close(month: string, operator?: string): Promise<CloseResult> {
    const t0 = Date.now();
    const lock = await this.pool.connect();
    try {
      const { rows: got } = await lock.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('sla-close'), hashtext($1)) AS ok`, [month]);
      if (!got[0].ok) return { month, closed: false, revision: 0, accounts: 0, breaches: 0, creditsNano: 0n, ms: Date.now() - t0 };
      try {
        const { rows: done } = await this.pool.query<{ revision: number }>(`SELECT revision FROM sla_month_closes WHERE month = $1::date`, [`${month}-01`]);
        if (done[0]) return { month, closed: false, revision: done[0].revision, accounts: 0, breaches: 0, creditsNano: 0n, ms: Date.now() - t0 };
        const ctx = await this.context(month);
        let accounts = 0;
        let breaches = 0;
        let credits = 0n;
        for await (const page of this.evaluateAll(ctx)) {
          accounts += page.length;
          const stored = await this.store(ctx, page, 1, () => 0n, null);
          breaches += page.filter((a) => !a.result.meetsTarget).length;
          credits += stored;
        }
        await inTransaction(this.pool, async (c) => {
          const { rowCount } = await c.query(
            `INSERT INTO sla_month_closes (month, policy_version, revision, accounts, closed_at) VALUES ($1::date, $2, 1, $3, $4)
             ON CONFLICT (month) DO NOTHING`,
            [`${month}-01`, ctx.policy.version, accounts, new Date(this.clock.now())],
          );
          if (!rowCount) return;
          await appendAudit(c, {
            domain: 'sla',
            action: 'month.close',
            actorKind: operator ? 'operator' : 'component',
            actor: operator ?? 'worker',
            subject: `month:${month}`,
            details: { policyVersion: ctx.policy.version, revision: 1, accounts, breaches, credits: formatAmount(credits) },
            at: new Date(this.clock.now()),
          });
        });
        const ms = Date.now() - t0;
        this.logger.log(`SLA month ${month} closed: ${accounts} accounts, ${breaches} below target, credits ${formatAmount(credits)} (${ms} ms)`);
        return { month, closed: true, revision: 1, accounts, breaches, creditsNano: credits, ms };
      } finally {
        await lock.query(`SELECT pg_advisory_unlock(hashtext('sla-close'), hashtext($1))`, [month]);
      }
    } finally {
      lock.release();
    }
  }

  /**
   * A closed month computed again after a correction (an attribution, a late probe batch): a new
   * revision for each account whose result changed, its credit adjusted by the difference only,
   * and the reason audited. Answers the new revision and how many accounts it changed.
   */
  async recompute(month: string, actor: string, reason: string): Promise<{ revision: number; changed: number; creditDeltaNano: bigint }> {
    const lock = await this.pool.connect();
    try {
      await lock.query(`SELECT pg_advisory_lock(hashtext('sla-close'), hashtext($1))`, [month]);
      try {
        const { rows: done } = await this.pool.query<{ revision: number }>(`SELECT revision FROM sla_month_closes WHERE month = $1::date`, [`${month}-01`]);
        if (!done[0]) throw new MonthNotClosedError(month);
        const revision = done[0].revision + 1;
        const ctx = await this.context(month);
        let changed = 0;
        let delta = 0n;
        for await (const page of this.evaluateAll(ctx)) {
          const latest = await this.latest(month, page.map((a) => a.accountId));
          const differing = page.filter((a) => {
            const prev = latest.get(a.accountId);
            return !prev || !sameResult(prev, a);
          });
          if (differing.length === 0) continue;
          changed += differing.length;
          delta += await this.store(ctx, differing, revision, (id) => BigInt(latest.get(id)?.credit_nano ?? '0'), reason);
        }
        await inTransaction(this.pool, async (c) => {
          await c.query(`UPDATE sla_month_closes SET revision = $2, revised_at = $3 WHERE month = $1::date`, [`${month}-01`, revision, new Date(this.clock.now())]);
          await appendAudit(c, {
            domain: 'sla',
            action: 'month.recompute',
            actorKind: 'operator',
            actor,
            subject: `month:${month}`,
            reason,
            details: { revision, changed, creditDelta: formatAmount(delta) },
          });
        });
        return { revision, changed, creditDeltaNano: delta };
      } finally {
        await lock.query(`SELECT pg_advisory_unlock(hashtext('sla-close'), hashtext($1))`, [month]);
      }
    } finally {
      lock.release();
    }
  }

  private async latest(month: string, ids: string[]): Promise<Map<string, StoredResult>> {
    const { rows } = await this.pool.query<StoredResult>(
      `SELECT DISTINCT ON (account_id) account_id, revision, downtime_minutes, unknown_minutes, service_period, credit_pct,
              fee_base_nano::text, credit_nano::text, outages
         FROM sla_results WHERE month = $1::date AND account_id = ANY($2::uuid[])
        ORDER BY account_id, revision DESC`,
      [`${month}-01`, ids],
    );
    return new Map(rows.map((r) => [r.account_id, r]));
  }

  /**
   * Stores `page` as `revision` and moves each account's credit from what it had (`before`) to
   * what it is owed, in one transaction. Answers the credit moved.
   */
  private async store(ctx: MonthContext, page: AccountMonth[], revision: number, before: (accountId: string) => bigint, reason: string | null): Promise<bigint> {
    const month = ctx.month;
    const notifications: NewNotification[] = [];
    // the outage lists and maintenance of the page as JSON documents, each once: accounts that
    // share a result share its documents, which go as one JSON array (no escaping into a text
    // array, which cost more than the insert) and are parsed once for the page
    const docs: string[] = [];
    const docOf = new Map<MonthResult, number>();
    const docIndex = (r: MonthResult) => {
      let i = docOf.get(r);
      if (i === undefined) {
        docs.push(JSON.stringify(r.outages), JSON.stringify({ applied: r.maintenanceApplied, refused: r.maintenanceRefused }));
        i = docs.length - 1; // 1-based index of the outages; the maintenance is the next
        docOf.set(r, i);
      }
      return i;
    };
    const result = await inTransaction(this.pool, async (c) => {
      const cols = page.map((a) => ({ a, delta: a.creditNano - before(a.accountId), doc: docIndex(a.result) }));
      const { rows: inserted } = await c.query<{ account_id: string }>(
        `WITH docs AS MATERIALIZED (SELECT n::int AS n, d FROM jsonb_array_elements($21::jsonb) WITH ORDINALITY AS x(d, n))
         INSERT INTO sla_results (account_id, month, revision, policy_version, total_minutes, downtime_minutes, unknown_minutes,
                                  availability_ppm, availability, meets_target, coverage_ppm, worst_window_coverage_ppm,
                                  coverage_alert, service_period, credit_pct, fee_base_nano, credit_nano, credit_delta_nano,
                                  outages, maintenance, reason, computed_at)
         SELECT t.account_id, $1::date, $2, $3, t.total, t.down, t.unknown, t.ppm, t.availability, t.meets, t.coverage, t.worst,
                t.alert, t.service, t.pct, t.fee, t.credit, t.delta, o.d, m.d, $4, $5
           FROM unnest($6::uuid[], $7::int[], $8::int[], $9::int[], $10::int[], $11::text[], $12::bool[], $13::int[], $14::int[],
                       $15::bool[], $16::bool[], $17::int[], $18::bigint[], $19::bigint[], $20::bigint[], $22::int[])
                AS t(account_id, total, down, unknown, ppm, availability, meets, coverage, worst, alert, service, pct, fee, credit,
                     delta, doc)
           JOIN docs o ON o.n = t.doc
           JOIN docs m ON m.n = t.doc + 1
         ON CONFLICT (account_id, month, revision) DO NOTHING
         RETURNING account_id`,
        [
          `${month}-01`,
          revision,
          ctx.policy.version,
          reason,
          new Date(this.clock.now()),
          cols.map(({ a }) => a.accountId),
          cols.map(({ a }) => a.result.totalMinutes),
          cols.map(({ a }) => a.result.downtimeMinutes),
          cols.map(({ a }) => a.result.unknownMinutes),
          cols.map(({ a }) => a.result.availabilityPpm),
          cols.map(({ a }) => a.result.availability),
          cols.map(({ a }) => a.result.meetsTarget),
          cols.map(({ a }) => a.result.coveragePpm),
          cols.map(({ a }) => a.result.worstWindowCoveragePpm),
          cols.map(({ a }) => a.result.coverageAlert),
          cols.map(({ a }) => a.servicePeriod),
          cols.map(({ a }) => a.result.creditPct),
          cols.map(({ a }) => a.feeNano.toString()),
          cols.map(({ a }) => a.creditNano.toString()),
          cols.map(({ delta }) => delta.toString()),
          `[${docs.join(',')}]`,
          cols.map(({ doc }) => doc),
        ],
      );
      // a page stored before (a close that stopped half way) has no credit to move again
      const fresh = new Set(inserted.map((r) => r.account_id));
      const credits = cols.filter(({ a, delta }) => fresh.has(a.accountId) && delta !== 0n);
      const { moved, standing } = await this.moveCredits(c, month, revision, credits);
      for (const { a, delta } of credits) {
        notifications.push({
          accountId: a.accountId,
          kind: 'sla_credit',
          idempotencyKey: `sla-credit:${a.accountId}:${month}:r${revision}`,
          payload: {
            month,
            revision,
            availability: a.result.availability,
            downtimeMinutes: a.result.downtimeMinutes,
            creditPercent: a.result.creditPct,
            credit: formatAmount(a.creditNano),
            change: formatAmount(delta),
          },
        });
      }
      const ids = [...standing, ...(await insertNotifications(c, notifications))];
      return { moved, ids };
    });
    await this.notifier?.dispatch(result.ids);
    return result.moved;
  }

  /**
   * The credits' changes as vouchers, one ledger entry each, all in a few statements: a grant for
   * an increase; for a decrease, the vouchers still unspent taken back, never cash (a voucher
   * already spent stays spent). Answers the vouchers moved, and the notifications the postings'
   * standing changes stored.
   */
  private async moveCredits(
    c: PoolClient,
    month: string,
    revision: number,
    credits: ReadonlyArray<{ a: AccountMonth; delta: bigint }>,
  ): Promise<{ moved: bigint; standing: string[] }> {
    if (credits.length === 0) return { moved: 0n, standing: [] };
    const posted = await this.ledger.postVoucherGrantsWithin(
      c,
      credits.map(({ a, delta }) => ({
        accountId: a.accountId,
        kind: delta > 0n ? 'voucher_grant' : 'adjustment',
        voucherDelta: delta,
        idempotencyKey: `sla-credit:${a.accountId}:${month}:r${revision}`,
        request: { month, revision, credit: a.creditNano.toString(), delta: delta.toString() },
        reason:
          delta > 0n
            ? `SLA credit for ${month}: availability ${a.result.availability}%, ${a.result.creditPct}% of the month's cash fee`
            : `SLA credit for ${month} revised down (revision ${revision})`,
        meta: { sla: { month, revision } },
      })),
    );
    if (posted === null) throw new Error(`SLA credits of ${month} (revision ${revision}) posted twice at once`);
    return { moved: posted.moved.reduce((n, v) => n + v, 0n), standing: posted.notifications };
  }
}

export class MonthNotClosedError extends Error {
  constructor(month: string) {
    super(`month ${month} is not closed yet`);
  }
}
