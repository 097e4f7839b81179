import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { CLOCK, Clock, isMonth, monthOf, previousMonth } from '@app/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { appendAudit, chainOf, lockAuditChains } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { LedgerService } from './ledger.service';
import { allocate, formatAmount, Nano, roundHalfUp } from './money';

interface HourlyRow {
  region: string;
  action_class: string;
  calls: bigint;
  billable: bigint;
}

/**
 * An amount as lines: split over regions by their weights (the rating's charges; by billable
 * calls when none), then within a region by billable calls, exactly. No rows: one line
 * `fallback` (region '').
 */
function spread(amount: Nano, rows: HourlyRow[], regionWeights: Map<string, bigint>, usageMonth: string, late: boolean, fallback: string): BillLine[] {
  if (rows.length === 0) {
    return amount === 0n ? [] : [{ usageMonth, region: '', actionClass: fallback, calls: 0n, billableCalls: 0n, amount, late }];
  }
  const regions = [...new Set(rows.map((h) => h.region))];
  const rated = regions.map((r) => regionWeights.get(r) ?? 0n);
  const weights = rated.some((x) => x > 0n) ? rated : regions.map((r) => rows.filter((h) => h.region === r).reduce((t, h) => t + h.billable, 0n));
  const regionShares = allocate(amount, weights);
  const out: BillLine[] = [];
  regions.forEach((region, i) => {
    const inRegion = rows.filter((h) => h.region === region);
    const shares = allocate(regionShares[i], inRegion.map((h) => h.billable));
    inRegion.forEach((h, k) =>
      out.push({ usageMonth, region, actionClass: h.action_class, calls: h.calls, billableCalls: h.billable, amount: shares[k], late }),
    );
  });
  return out;
}

export interface BillLine {
  usageMonth: string;
  region: string;
  actionClass: string;
  calls: bigint;
  billableCalls: bigint;
  amount: Nano;
  late: boolean;
}

export interface Bill {
  accountId: string;
  month: string;
  currency: string;
  openingBalance: Nano;
  topups: Nano;
  usageTotal: Nano;
  vouchersUsed: Nano;
  cashCharged: Nano;
  slaCredits: Nano;
  otherVouchers: Nano;
  adjustments: Nano;
  refunds: Nano;
  rounding: Nano;
  closingBalance: Nano;
  total: Nano;
  /** decimal string with 2 decimals */
  amountDue: string;
  lateUsage: Nano;
  createdAt: Date;
  lines?: BillLine[];
}

export interface BillCloseResult {
  month: string;
  /** false: closed before (or being closed by another worker): nothing changed */
  closed: boolean;
  accounts: number;
  totalNano: bigint;
}

export class MonthNotEndedError extends Error {}
/** A month closed before the one before it, or after a later one. */
export class MonthOrderError extends Error {}

export interface BillCloseOptions {
  pageSize?: number;
  operator?: string;
  /** test hook: called after each page is committed (a throw interrupts the close) */
  afterPage?: (page: number) => void | Promise<void>;
}

interface Movements {
  account_id: string;
  currency: string;
  topups: string;
  usage: string;
  usage_voucher: string;
  usage_cash: string;
  late_usage: string;
  sla: string;
  other_vouchers: string;
  adjustments: string;
  refunds: string;
  all_moves: string;
  n: string;
}

/**
 * The monthly bill close (billing.md §6). A month is closed once, in the billing time zone, at a
 * ledger cut (the largest entry id when the close began, kept in bill_closes so a resumed close
 * uses the same cut). A bill holds the ledger entries up to the cut created before the month's
 * end and after the previous bill's; entries that arrived after the previous close but are dated
 * before this month are late (late usage becomes late lines, never an edit of a closed bill).
 * Accounts go in pages by id, each page one transaction; a page stored before is skipped by its
 * keys and each rounding entry has its own idempotency key (`bill-rounding:<account>:<month>`).
 */
@Injectable()
export class BillClose {
  private readonly logger = new Logger(BillClose.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly ledger: LedgerService,
    @Optional() @Inject(CLOCK) private readonly clock?: Clock,
  ) {}

  private now(): number {
    return this.clock ? this.clock.now() : Date.now();
  }

  get timeZone(): string {
    return this.config.billing.timeZone;
  }

  /** The month that ended `delaySeconds` ago in the billing zone. */
  monthToClose(delaySeconds = this.config.billing.closeDelaySeconds): string {
    return previousMonth(monthOf(this.now() - delaySeconds * 1000, this.timeZone));
  }

  async bounds(month: string): Promise<{ start: Date; end: Date }> {
    if (!isMonth(month)) throw new RangeError(`not a month: ${month}`);
    const { rows } = await this.pool.query<{ start: Date; end: Date }>(
      `SELECT ($1::date::timestamp AT TIME ZONE $2) AS start, (($1::date + interval '1 month')::timestamp AT TIME ZONE $2) AS "end"`,
      [`${month}-01`, this.timeZone],
    );
    return rows[0];
  }

  async ended(month: string): Promise<boolean> {
    return (await this.bounds(month)).end.getTime() <= this.now();
  }

  async isClosed(month: string): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT 1 FROM bill_closes WHERE month = $1::date AND closed_at IS NOT NULL`, [`${month}-01`]);
    return rows.length > 0;
  }

  async close(month: string, opts: BillCloseOptions = {}): Promise<BillCloseResult> {
    if (!(await this.ended(month))) throw new MonthNotEndedError(`${month} has not ended in ${this.timeZone}`);
    const lock = await this.pool.connect();
    try {
      const { rows: got } = await lock.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('bill-close'), hashtext($1)) AS ok`, [month]);
      if (!got[0].ok) return { month, closed: false, accounts: 0, totalNano: 0n };
      try {
        return await this.closeLocked(month, opts);
      } finally {
        await lock.query(`SELECT pg_advisory_unlock(hashtext('bill-close'), hashtext($1))`, [month]);
      }
    } finally {
      lock.release();
    }
  }

  private async closeLocked(month: string, opts: BillCloseOptions): Promise<BillCloseResult> {
    const day = `${month}-01`;
    const { rows: done } = await this.pool.query<{ closed_at: Date | null; cut_entry_id: string }>(
      `SELECT closed_at, cut_entry_id FROM bill_closes WHERE month = $1::date`,
      [day],
    );
    if (done[0]?.closed_at) return { month, closed: false, accounts: 0, totalNano: 0n };
    let cut: string;
    if (done[0]) cut = done[0].cut_entry_id;
    else {
      // months close in order: a bill's opening is the previous bill's closing, and what came
      // after the previous cut is this month's (or late)
      const { rows: order } = await this.pool.query<{ later: boolean; earlier: boolean; previous_closed: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM bill_closes WHERE month > $1::date) AS later,
                EXISTS (SELECT 1 FROM bill_closes WHERE month < $1::date) AS earlier,
                EXISTS (SELECT 1 FROM bill_closes WHERE month = ($1::date - interval '1 month')::date AND closed_at IS NOT NULL) AS previous_closed`,
        [day],
      );
      if (order[0].later) throw new MonthOrderError(`a month after ${month} has been closed (or is being closed): months close in order`);
      if (order[0].earlier && !order[0].previous_closed) {
        throw new MonthOrderError(`${previousMonth(month)} is not closed: months close in order`);
      }
      const { rows } = await this.pool.query<{ cut: string }>(
        `INSERT INTO bill_closes (month, time_zone, cut_entry_id, started_at, closed_by)
         VALUES ($1::date, $2, (SELECT coalesce(max(id), 0) FROM ledger_entries), $3, $4)
         ON CONFLICT (month) DO UPDATE SET month = excluded.month RETURNING cut_entry_id::text AS cut`,
        [day, this.timeZone, new Date(this.now()), opts.operator ?? 'worker'],
      );
      cut = rows[0].cut;
    }
    await this.settle();
    const { rows: prev } = await this.pool.query<{ cut: string }>(
      `SELECT cut_entry_id::text AS cut FROM bill_closes WHERE month < $1::date AND closed_at IS NOT NULL ORDER BY month DESC LIMIT 1`,
      [day],
    );
    const prevCut = prev[0]?.cut ?? null;
    const { start, end } = await this.bounds(month);
    const pageSize = opts.pageSize ?? 500;
    let after = '00000000-0000-0000-0000-000000000000';
    let page = 0;
    for (;;) {
      const { rows } = await this.pool.query<{ account_id: string }>(
        `SELECT account_id FROM balances WHERE account_id > $1 ORDER BY account_id LIMIT $2`,
        [after, pageSize],
      );
      if (rows.length === 0) break;
      const ids = rows.map((r) => r.account_id);
      after = ids[ids.length - 1];
      await inTransaction(this.pool, (c) => this.closePage(c, month, ids, { start, end, cut, prevCut }));
      page += 1;
      if (opts.afterPage) await opts.afterPage(page);
    }
    const { rows: fin } = await this.pool.query<{ accounts: number; total: string }>(
      `SELECT count(*)::int AS accounts, coalesce(sum(total_nano), 0)::text AS total FROM bills WHERE month = $1::date`,
      [day],
    );
    await inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query(`UPDATE bill_closes SET closed_at = $2, accounts = $3 WHERE month = $1::date AND closed_at IS NULL`, [
        day,
        new Date(this.now()),
        fin[0].accounts,
      ]);
      if (!rowCount) return;
      await appendAudit(c, {
        domain: 'billing',
        action: 'bills.close',
        actorKind: opts.operator ? 'operator' : 'component',
        actor: opts.operator ?? 'worker',
        subject: `bills:${month}`,
        details: { month, timeZone: this.timeZone, cutEntryId: cut, accounts: fin[0].accounts, total: formatAmount(BigInt(fin[0].total)) },
      });
    });
    this.logger.log(`bills of ${month} closed: ${fin[0].accounts} accounts, total ${formatAmount(BigInt(fin[0].total))}`);
    return { month, closed: true, accounts: fin[0].accounts, totalNano: BigInt(fin[0].total) };
  }

  /**
   * Waits until every transaction that was running when the cut was taken has ended: an entry
   * id is drawn when its row is inserted, so one below the cut may still be uncommitted then.
   * (Every posting locks its balance row first, so it holds a transaction id by then.)
   */
  private async settle(timeoutMs = 60_000): Promise<void> {
    const { rows } = await this.pool.query<{ x: string }>(`SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x`);
    const until = Date.now() + timeoutMs;
    for (;;) {
      const { rows: ok } = await this.pool.query<{ ok: boolean }>(`SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8 AS ok`, [rows[0].x]);
      if (ok[0].ok) return;
      if (Date.now() > until) throw new Error('transactions in flight at the ledger cut did not end in time');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async closePage(
    c: PoolClient,
    month: string,
    pageIds: string[],
    w: { start: Date; end: Date; cut: string; prevCut: string | null },
  ): Promise<void> {
    const day = `${month}-01`;
    const { rows: billed } = await c.query<{ account_id: string }>(
      `SELECT account_id FROM bills WHERE month = $1::date AND account_id = ANY($2::uuid[])`,
      [day, pageIds],
    );
    const skip = new Set(billed.map((r) => r.account_id));
    const ids = pageIds.filter((id) => !skip.has(id));
    if (ids.length === 0) return;
    // the page's balance rows first, in account order, then the heads of their audit chains: a
    // rounding entry below that moves an account's standing appends to the audit trail, and a
    // transaction must take its chain heads after its other locks and all at once, in chain
    // order (as every other posting does), never one chain now and another later
    await c.query(`SELECT 1 FROM balances WHERE account_id = ANY($1::uuid[]) ORDER BY account_id FOR UPDATE`, [ids]);
    await lockAuditChains(c, ids.map(chainOf));
    // the bill's entries: up to the cut, before the month's end, and after the previous bill's
    const inBill = `e.id <= $2::bigint AND e.created_at < $4 AND e.idempotency_key NOT LIKE 'bill-rounding:%'
      AND (e.created_at >= $3 OR ($5::bigint IS NOT NULL AND e.id > $5::bigint))`;
    const late = `(e.created_at < $3)`;
    const { rows: moves } = await c.query<Movements>(
      `SELECT b.account_id, b.currency,
              coalesce(sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind = 'topup'), 0)::text AS topups,
              coalesce(-sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind = 'usage_charge'), 0)::text AS usage,
              coalesce(-sum(e.voucher_delta_nano) FILTER (WHERE e.kind = 'usage_charge'), 0)::text AS usage_voucher,
              coalesce(-sum(e.cash_delta_nano) FILTER (WHERE e.kind = 'usage_charge'), 0)::text AS usage_cash,
              coalesce(-sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind = 'usage_charge' AND ${late}), 0)::text AS late_usage,
              coalesce(sum(e.voucher_delta_nano) FILTER (WHERE e.kind = 'voucher_grant' AND e.meta ? 'sla'), 0)::text AS sla,
              coalesce(sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind IN ('voucher_grant', 'voucher_use') AND NOT coalesce(e.meta ? 'sla', false)), 0)::text AS other_vouchers,
              coalesce(sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind IN ('adjustment', 'rounding')), 0)::text AS adjustments,
              coalesce(sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind = 'refund'), 0)::text AS refunds,
              coalesce(sum(e.cash_delta_nano + e.voucher_delta_nano), 0)::text AS all_moves, count(e.id)::text AS n
         FROM balances b LEFT JOIN ledger_entries e ON e.account_id = b.account_id AND ${inBill}
        WHERE b.account_id = ANY($1::uuid[])
        GROUP BY b.account_id, b.currency ORDER BY b.account_id`,
      [ids, w.cut, w.start, w.end, w.prevCut],
    );
    // opening: the latest earlier bill's closing, else the entries before the month (not late)
    const { rows: prevBills } = await c.query<{ account_id: string; closing: string }>(
      `SELECT DISTINCT ON (account_id) account_id, closing_balance_nano::text AS closing FROM bills
        WHERE account_id = ANY($1::uuid[]) AND month < $2::date ORDER BY account_id, month DESC`,
      [ids, day],
    );
    const prevClosing = new Map(prevBills.map((r) => [r.account_id, BigInt(r.closing)]));
    const { rows: before } = await c.query<{ account_id: string; sum: string }>(
      `SELECT e.account_id, sum(e.cash_delta_nano + e.voucher_delta_nano)::text AS sum FROM ledger_entries e
        WHERE e.account_id = ANY($1::uuid[]) AND e.id <= $2::bigint AND e.created_at < $3 AND ($4::bigint IS NULL OR e.id <= $4::bigint)
        GROUP BY e.account_id`,
      [ids, w.cut, w.start, w.prevCut],
    );
    const beforeSum = new Map(before.map((r) => [r.account_id, BigInt(r.sum)]));
    // what the ledger implies at the month's end (the check of closing = opening + movements)
    const { rows: implied } = await c.query<{ account_id: string; sum: string }>(
      `SELECT e.account_id, sum(e.cash_delta_nano + e.voucher_delta_nano)::text AS sum FROM ledger_entries e
        WHERE e.account_id = ANY($1::uuid[]) AND e.id <= $2::bigint AND e.created_at < $3 GROUP BY e.account_id`,
      [ids, w.cut, w.end],
    );
    const impliedSum = new Map(implied.map((r) => [r.account_id, BigInt(r.sum)]));
    // usage lines: calls by region and action class over the month's hours, amounts by the month's rating
    const { rows: hourly } = await c.query<{ account_id: string; region: string; action_class: string; calls: string; billable: string }>(
      `SELECT account_id, region, action_class, sum(calls)::text AS calls, sum(billable_calls)::text AS billable FROM usage_hourly
        WHERE account_id = ANY($1::uuid[]) AND hour >= $2 AND hour < $3
        GROUP BY account_id, region, action_class ORDER BY account_id, region, action_class`,
      [ids, w.start, w.end],
    );
    const { rows: rated } = await c.query<{ account_id: string; region: string; charged: string }>(
      `SELECT account_id, region, sum(charged_nano)::text AS charged FROM usage_monthly
        WHERE account_id = ANY($1::uuid[]) AND month = $2::date GROUP BY account_id, region`,
      [ids, day],
    );
    // late usage: by the month (in the zone) it was charged in, lines from what the hours hold beyond the bills
    const { rows: lateByMonth } = await c.query<{ account_id: string; usage_month: string; amount: string }>(
      `SELECT e.account_id, to_char(e.created_at AT TIME ZONE $6, 'YYYY-MM') AS usage_month,
              (-sum(e.cash_delta_nano + e.voucher_delta_nano))::text AS amount
         FROM ledger_entries e
        WHERE e.account_id = ANY($1::uuid[]) AND e.kind = 'usage_charge' AND ${inBill} AND e.created_at < $3
        GROUP BY 1, 2 ORDER BY 1, 2`,
      [ids, w.cut, w.start, w.end, w.prevCut, this.timeZone],
    );

    const lateKeys = [lateByMonth.map((l) => l.account_id), lateByMonth.map((l) => l.usage_month)];
    const { rows: lateHourly } = lateByMonth.length
      ? await c.query<{ account_id: string; usage_month: string; region: string; action_class: string; calls: string; billable: string }>(
          `SELECT t.a AS account_id, t.um AS usage_month, h.region, h.action_class, sum(h.calls)::text AS calls, sum(h.billable_calls)::text AS billable
             FROM unnest($1::uuid[], $2::text[]) AS t(a, um)
             JOIN usage_hourly h ON h.account_id = t.a
                                AND h.hour >= ((t.um || '-01')::date::timestamp AT TIME ZONE $3)
                                AND h.hour < (((t.um || '-01')::date + interval '1 month')::timestamp AT TIME ZONE $3)
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
          [...lateKeys, this.timeZone],
        )
      : { rows: [] };
    const { rows: lateBilled } = lateByMonth.length
      ? await c.query<{ account_id: string; usage_month: string; region: string; action_class: string; calls: string; billable: string; amount: string }>(
          `SELECT t.a AS account_id, t.um AS usage_month, l.region, l.action_class, sum(l.calls)::text AS calls,
                  sum(l.billable_calls)::text AS billable, sum(l.amount_nano)::text AS amount
             FROM unnest($1::uuid[], $2::text[]) AS t(a, um)
             JOIN bill_lines l ON l.account_id = t.a AND l.usage_month = (t.um || '-01')::date
            GROUP BY 1, 2, 3, 4`,
          lateKeys,
        )
      : { rows: [] };
    const { rows: lateRated } = lateByMonth.length
      ? await c.query<{ account_id: string; usage_month: string; region: string; charged: string }>(
          `SELECT t.a AS account_id, t.um AS usage_month, m.region, sum(m.charged_nano)::text AS charged
             FROM unnest($1::uuid[], $2::text[]) AS t(a, um)
             JOIN usage_monthly m ON m.account_id = t.a AND m.month = (t.um || '-01')::date
            GROUP BY 1, 2, 3`,
          lateKeys,
        )
      : { rows: [] };

    const bills: unknown[][] = Array.from({ length: 18 }, () => []);
    const lines: unknown[][] = Array.from({ length: 9 }, () => []);
    const pushLine = (accountId: string, l: BillLine) =>
      [accountId, day, `${l.usageMonth}-01`, l.region, l.actionClass, l.calls.toString(), l.billableCalls.toString(), l.amount.toString(), l.late].forEach(
        (v, k) => lines[k].push(v),
      );
    const groupBy = <T extends { account_id: string }>(rows: T[]) => {
      const by = new Map<string, T[]>();
      for (const r of rows) by.set(r.account_id, [...(by.get(r.account_id) ?? []), r]);
      return by;
    };
    const hourlyBy = groupBy(hourly);
    const ratedBy = groupBy(rated);
    for (const m of moves) {
      const a = m.account_id;
      const opening = prevClosing.get(a) ?? beforeSum.get(a) ?? 0n;
      const usage = BigInt(m.usage);
      const lateUsage = BigInt(m.late_usage);
      const moved = BigInt(m.all_moves);
      const accountHourly = hourlyBy.get(a) ?? [];
      if (opening === 0n && m.n === '0' && accountHourly.length === 0) continue; // no activity, no balance: no bill
      // lines of the month: the month's usage (not late) over regions by their rating, then by billable calls
      const current = usage - lateUsage;
      const byRegion = new Map((ratedBy.get(a) ?? []).map((r) => [r.region, BigInt(r.charged)]));
      const currentRows = accountHourly.map((h) => ({ region: h.region, action_class: h.action_class, calls: BigInt(h.calls), billable: BigInt(h.billable) }));
      for (const l of spread(current, currentRows, byRegion, month, false, 'usage')) pushLine(a, l);
      // late lines: what the hours of the earlier month hold beyond what its bills (and late lines) billed
      for (const l of lateByMonth.filter((x) => x.account_id === a)) {
        const key = `${a}\u0000${l.usage_month}`;
        const billedHere = lateBilled.filter((b) => `${b.account_id}\u0000${b.usage_month}` === key);
        const billedOf = (region: string, cls: string) => billedHere.find((b) => b.region === region && b.action_class === cls);
        const rows = lateHourly
          .filter((h) => `${h.account_id}\u0000${h.usage_month}` === key)
          .map((h) => {
            const b = billedOf(h.region, h.action_class);
            return {
              region: h.region,
              action_class: h.action_class,
              calls: BigInt(h.calls) - BigInt(b?.calls ?? 0),
              billable: BigInt(h.billable) - BigInt(b?.billable ?? 0),
            };
          })
          .filter((h) => h.calls > 0n || h.billable > 0n);
        const weights = new Map<string, bigint>();
        for (const r of lateRated.filter((x) => `${x.account_id}\u0000${x.usage_month}` === key)) {
          const billedAmount = billedHere.filter((b) => b.region === r.region).reduce((t, b) => t + BigInt(b.amount), 0n);
          weights.set(r.region, BigInt(r.charged) - billedAmount);
        }
        for (const line of spread(BigInt(l.amount), rows, weights, l.usage_month, true, 'late')) pushLine(a, line);
      }
      const total = usage;
      const due = roundHalfUp(total);
      const rounding = due - total;
      if (rounding !== 0n) {
        const key = `bill-rounding:${a}:${month}`;
        const posted = await this.ledger.postWithin(c, {
          accountId: a,
          kind: 'rounding',
          cashDelta: -rounding,
          idempotencyKey: key,
          request: { month, rounding: rounding.toString() },
          reason: `bill ${month}: amount due rounded half-up to the minor unit`,
          meta: { bill: { month } },
        });
        if (!posted) throw new Error(`rounding of ${a} ${month} posted twice at once`);
      }
      const closing = opening + moved - rounding;
      const expected = (impliedSum.get(a) ?? 0n) - rounding;
      if (closing !== expected) {
        throw new Error(`bill ${a} ${month}: closing ${closing} differs from the ledger's ${expected}`);
      }
      [
        a,
        day,
        m.currency,
        opening.toString(),
        m.topups,
        m.usage,
        m.usage_voucher,
        m.usage_cash,
        m.sla,
        m.other_vouchers,
        m.adjustments,
        m.refunds,
        rounding.toString(),
        closing.toString(),
        total.toString(),
        formatAmount(due, 2),
        lateUsage.toString(),
        new Date(this.now()),
      ].forEach((v, k) => bills[k].push(v));
    }
    if (bills[0].length === 0) return;
    await c.query(
      `INSERT INTO bills (account_id, month, currency, opening_balance_nano, topups_nano, usage_total_nano, vouchers_used_nano, cash_charged_nano,
                          sla_credits_nano, other_vouchers_nano, adjustments_nano, refunds_nano, rounding_nano, closing_balance_nano, total_nano,
                          amount_due, late_usage_nano, created_at)
       SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[],
                            $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::numeric[], $17::bigint[],
                            $18::timestamptz[])
       ON CONFLICT (account_id, month) DO NOTHING`,
      bills,
    );
    if (lines[0].length > 0) {
      await c.query(
        `INSERT INTO bill_lines (account_id, month, usage_month, region, action_class, calls, billable_calls, amount_nano, late)
         SELECT * FROM unnest($1::uuid[], $2::date[], $3::date[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bool[])
         ON CONFLICT DO NOTHING`,
        lines,
      );
    }
  }

  async hasAccount(accountId: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1) AS ok`, [accountId]);
    return rows[0].ok;
  }

  /** Bills of an account, newest first; `before` is the cursor (a month, exclusive). */
  async list(accountId: string, limit: number, before?: string): Promise<Bill[]> {
    const { rows } = await this.pool.query<BillRow>(
      `SELECT ${BILL_COLUMNS} FROM bills WHERE account_id = $1 AND ($2::date IS NULL OR month < $2::date) ORDER BY month DESC LIMIT $3`,
      [accountId, before ? `${before}-01` : null, limit],
    );
    return rows.map(toBill);
  }

  async get(accountId: string, month: string): Promise<Bill | null> {
    const { rows } = await this.pool.query<BillRow>(`SELECT ${BILL_COLUMNS} FROM bills WHERE account_id = $1 AND month = $2::date`, [accountId, `${month}-01`]);
    if (!rows[0]) return null;
    const bill = toBill(rows[0]);
    const { rows: lines } = await this.pool.query<{
      usage_month: string;
      region: string;
      action_class: string;
      calls: string;
      billable_calls: string;
      amount_nano: string;
      late: boolean;
    }>(
      `SELECT to_char(usage_month, 'YYYY-MM') AS usage_month, region, action_class, calls::text, billable_calls::text, amount_nano::text, late
         FROM bill_lines WHERE account_id = $1 AND month = $2::date ORDER BY late, usage_month, region, action_class`,
      [accountId, `${month}-01`],
    );
    bill.lines = lines.map((l) => ({
      usageMonth: l.usage_month,
      region: l.region,
      actionClass: l.action_class,
      calls: BigInt(l.calls),
      billableCalls: BigInt(l.billable_calls),
      amount: BigInt(l.amount_nano),
      late: l.late,
    }));
    return bill;
  }
}

const BILL_COLUMNS = `account_id, to_char(month, 'YYYY-MM') AS month, currency, opening_balance_nano::text, topups_nano::text, usage_total_nano::text,
  vouchers_used_nano::text, cash_charged_nano::text, sla_credits_nano::text, other_vouchers_nano::text, adjustments_nano::text, refunds_nano::text,
  rounding_nano::text, closing_balance_nano::text, total_nano::text, amount_due::text, late_usage_nano::text, created_at`;

interface BillRow {
  account_id: string;
  month: string;
  currency: string;
  opening_balance_nano: string;
  topups_nano: string;
  usage_total_nano: string;
  vouchers_used_nano: string;
  cash_charged_nano: string;
  sla_credits_nano: string;
  other_vouchers_nano: string;
  adjustments_nano: string;
  refunds_nano: string;
  rounding_nano: string;
  closing_balance_nano: string;
  total_nano: string;
  amount_due: string;
  late_usage_nano: string;
  created_at: Date;
}

function toBill(r: BillRow): Bill {
  return {
    accountId: r.account_id,
    month: r.month,
    currency: r.currency,
    openingBalance: BigInt(r.opening_balance_nano),
    topups: BigInt(r.topups_nano),
    usageTotal: BigInt(r.usage_total_nano),
    vouchersUsed: BigInt(r.vouchers_used_nano),
    cashCharged: BigInt(r.cash_charged_nano),
    slaCredits: BigInt(r.sla_credits_nano),
    otherVouchers: BigInt(r.other_vouchers_nano),
    adjustments: BigInt(r.adjustments_nano),
    refunds: BigInt(r.refunds_nano),
    rounding: BigInt(r.rounding_nano),
    closingBalance: BigInt(r.closing_balance_nano),
    total: BigInt(r.total_nano),
    amountDue: r.amount_due,
    lateUsage: BigInt(r.late_usage_nano),
    createdAt: r.created_at,
  };
}
