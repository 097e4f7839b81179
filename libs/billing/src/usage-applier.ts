import { Inject, Injectable, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import { LedgerService } from './ledger.service';
import { NotificationDispatcher } from './notifications';
import { actionClass, MeteringRule, Outcome } from './metering';
import type { Nano } from './money';
import { PlanCatalog } from './plan-catalog';
import { deduction, PricePlan } from './rating';
import { decodeUsage } from './usage-outbox';

type OutboxRow = Parameters<typeof decodeUsage>[0][number];

/** One authenticated request's usage (billing.md §1). */
export interface UsageRecord {
  accountId: string;
  region: string;
  /** queue or topic name; '' for account-level actions */
  resource: string;
  action: string;
  outcome: Outcome;
  /** requests this record stands for (records of one key are summed) */
  calls: number;
  messages: number;
  bytesIn: number;
  bytesOut: number;
  /** billable calls under each counting rule (the plan picks one); 0 when not billed */
  billable: Record<MeteringRule, number>;
  /** server time, Unix ms */
  at: number;
}

export interface ApplyResult {
  applied: boolean;
  /** charge per account, in nano */
  charges: Map<string, Nano>;
  /** ids of the notifications the charges stored (an account became overdue, a low-balance alert) */
  notifications: string[];
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * Applies a batch of usage records in one transaction: the batch id goes in first under a
 * unique key (a batch delivered again changes nothing), then the hourly and per-minute
 * aggregates, the month's cumulative rating per account, region and plan line (each charge is
 * F(after) − F(before)), and one `usage_charge` ledger entry per account, vouchers first.
 * Rows are locked in a fixed order (months, then balances, sorted), so concurrent batches for
 * the same accounts wait for each other instead of deadlocking.
 */
@Injectable()
export class UsageApplier {
  private readonly monthOf: (ms: number) => string;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
    private readonly plans: PlanCatalog,
    private readonly ledger: LedgerService,
    /** without one (tools, tests) stored notifications are queued by the worker's arrears run */
    @Optional() private readonly notifier?: NotificationDispatcher,
  ) {
    const fmt = new Intl.DateTimeFormat('en-CA', { timeZone: config.billing.timeZone, year: 'numeric', month: '2-digit' });
    this.monthOf = (ms) => {
      const parts = fmt.formatToParts(new Date(ms));
      return `${parts.find((p) => p.type === 'year')!.value}-${parts.find((p) => p.type === 'month')!.value}-01`;
    };
  }

  async apply(batchId: string, records: UsageRecord[]): Promise<ApplyResult> {
    const result = await inTransaction(this.pool, (c) => this.applyWithin(c, batchId, records));
    await this.notifier?.dispatch(result.notifications);
    return result;
  }

  /**
   * Applies the usage outbox rows `ids` (one per group commit of the CMQ hot path) in one
   * transaction that also deletes them. A row can be deleted once only, so rows applied before,
   * or being applied by another worker right now (skipped, not waited for), change nothing: a
   * job delivered twice, re-sent after a timeout, or run by two workers counts each row once.
   * The batch is named after its lowest row id, which no other batch can hold.
   */
  async applyOutbox(ids: readonly string[]): Promise<{ rows: number; charges: Map<string, Nano> }> {
    const result = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ id: string; created_at: Date; records: OutboxRow[] }>(
        `DELETE FROM usage_outbox o USING (
           SELECT id FROM usage_outbox WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE SKIP LOCKED
         ) t WHERE o.id = t.id
         RETURNING o.id, o.created_at, o.records`,
        [ids],
      );
      if (rows.length === 0) return { rows: 0, charges: new Map<string, Nano>(), notifications: [] as string[] };
      rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
      const batchId = `outbox:${rows[0].id}`;
      const { charges, notifications } = await this.applyWithin(
        c,
        batchId,
        rows.flatMap((r) => decodeUsage(r.records)),
      );
      const oldest = rows.reduce((m, r) => (r.created_at < m ? r.created_at : m), rows[0].created_at);
      await c.query(
        `UPDATE usage_batches_applied SET outbox_ids = $2::bigint[], oldest_at = $3, applied_at = clock_timestamp() WHERE batch_id = $1`,
        [batchId, rows.map((r) => r.id), oldest],
      );
      return { rows: rows.length, charges, notifications };
    });
    await this.notifier?.dispatch(result.notifications);
    return { rows: result.rows, charges: result.charges };
  }

  /**
   * Usage events from elsewhere (billing.md §7): an event whose client id this account sent in
   * the last 35 days is acknowledged and not counted again. The ids are recorded in the same
   * transaction as the usage, never before it.
   */
  async applyEvents(events: Array<UsageRecord & { clientId: string }>): Promise<{ accepted: number; duplicates: number }> {
    const notifications: string[] = [];
    const result = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ account_id: string; client_id: string }>(
        `INSERT INTO usage_event_ids (account_id, client_id)
         SELECT DISTINCT a, id FROM unnest($1::uuid[], $2::text[]) AS t(a, id)
         ON CONFLICT (account_id, client_id) DO UPDATE SET received_at = now()
           WHERE usage_event_ids.received_at < now() - interval '35 days'
         RETURNING account_id, client_id`,
        [events.map((e) => e.accountId), events.map((e) => e.clientId)],
      );
      const fresh = new Set(rows.map((r) => `${r.account_id}/${r.client_id}`));
      const taken = new Set<string>();
      const records = events.filter((e) => {
        const k = `${e.accountId}/${e.clientId}`;
        if (!fresh.has(k) || taken.has(k)) return false;
        taken.add(k);
        return true;
      });
      if (records.length > 0) notifications.push(...(await this.applyWithin(c, `events:${randomUUID()}`, records)).notifications);
      return { accepted: records.length, duplicates: events.length - records.length };
    });
    await this.notifier?.dispatch(notifications);
    return result;
  }

  /** Forgets client ids of usage events older than the 35 days they are remembered for. */
  async pruneEventIds(limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM usage_event_ids WHERE ctid = ANY (ARRAY(
         SELECT ctid FROM usage_event_ids WHERE received_at < now() - interval '35 days' LIMIT $1))`,
      [limit],
    );
    return rowCount ?? 0;
  }

  /** {@link apply} inside the caller's transaction (a batch seen before rolls nothing back: it is skipped). */
  async applyWithin(c: PoolClient, batchId: string, records: UsageRecord[]): Promise<ApplyResult> {
    const first = await c.query(
      `INSERT INTO usage_batches_applied (batch_id, records) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING RETURNING 1`,
      [batchId, records.length],
    );
    if (!first.rowCount) return { applied: false, charges: new Map(), notifications: [] };
    const { charges, billed } = await this.rate(c, records);
    await this.aggregate(c, records, billed);
    const notifications: string[] = [];
    for (const accountId of [...charges.keys()].sort()) {
      const charge = charges.get(accountId)!;
      if (charge > 0n) {
        const posted = await this.ledger.postWithin(c, {
          accountId,
          kind: 'usage_charge',
          charge,
          idempotencyKey: `usage:${batchId}:${accountId}`,
          request: { batchId, accountId, charge },
          meta: { batchId },
        });
        if (!posted) throw new Error(`usage charge of batch ${batchId} posted twice at once`);
        if (posted.notifications) notifications.push(...posted.notifications);
      } else {
        await c.query(`INSERT INTO balances (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING`, [accountId]);
      }
      await c.query(`UPDATE balances SET last_usage_at = now() WHERE account_id = $1`, [accountId]);
    }
    return { applied: true, charges, notifications };
  }

  private async aggregate(c: PoolClient, records: UsageRecord[], billed: bigint[]): Promise<void> {
    type Hourly = { calls: number; billable: number; messages: number; bytesIn: number; bytesOut: number };
    const hourly = new Map<string, Hourly>();
    const minutely = new Map<string, number>();
    records.forEach((r, i) => {
      const hour = Math.floor(r.at / HOUR) * HOUR;
      const hk = `${r.accountId}\u0000${r.region}\u0000${r.resource}\u0000${actionClass(r.action)}\u0000${hour}`;
      const h = hourly.get(hk) ?? { calls: 0, billable: 0, messages: 0, bytesIn: 0, bytesOut: 0 };
      h.calls += r.calls;
      h.billable += Number(billed[i]);
      h.messages += r.messages;
      h.bytesIn += r.bytesIn;
      h.bytesOut += r.bytesOut;
      hourly.set(hk, h);
      const mk = `${r.accountId}\u0000${r.region}\u0000${Math.floor(r.at / MINUTE) * MINUTE}\u0000${r.outcome}`;
      minutely.set(mk, (minutely.get(mk) ?? 0) + r.calls);
    });
    const hk = [...hourly.keys()].sort();
    const cols = hk.map((k) => k.split('\u0000'));
    await c.query(
      `INSERT INTO usage_hourly AS u (account_id, region, resource, action_class, hour, calls, billable_calls, messages, bytes_in, bytes_out)
       SELECT a, r, res, cls, to_timestamp(h::bigint / 1000.0), n, b, m, bi, bo
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
              AS t(a, r, res, cls, h, n, b, m, bi, bo)
       ON CONFLICT (account_id, region, resource, action_class, hour) DO UPDATE
         SET calls = u.calls + excluded.calls, billable_calls = u.billable_calls + excluded.billable_calls,
             messages = u.messages + excluded.messages, bytes_in = u.bytes_in + excluded.bytes_in,
             bytes_out = u.bytes_out + excluded.bytes_out`,
      [
        cols.map((k) => k[0]),
        cols.map((k) => k[1]),
        cols.map((k) => k[2]),
        cols.map((k) => k[3]),
        cols.map((k) => k[4]),
        hk.map((k) => hourly.get(k)!.calls),
        hk.map((k) => hourly.get(k)!.billable),
        hk.map((k) => hourly.get(k)!.messages),
        hk.map((k) => hourly.get(k)!.bytesIn),
        hk.map((k) => hourly.get(k)!.bytesOut),
      ],
    );
    const mk = [...minutely.keys()].sort();
    const mcols = mk.map((k) => k.split('\u0000'));
    await c.query(
      `INSERT INTO usage_minutely AS u (account_id, region, minute, outcome, requests)
       SELECT a, r, to_timestamp(m::bigint / 1000.0), o, n
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS t(a, r, m, o, n)
       ON CONFLICT (account_id, region, minute, outcome) DO UPDATE SET requests = u.requests + excluded.requests`,
      [mcols.map((k) => k[0]), mcols.map((k) => k[1]), mcols.map((k) => k[2]), mcols.map((k) => k[3]), mk.map((k) => minutely.get(k)!)],
    );
  }

  /**
   * The month's cumulative rating per account, region, month and plan line: charges per account,
   * and each record's billable calls under its plan's rule.
   */
  private async rate(c: PoolClient, records: UsageRecord[]): Promise<{ charges: Map<string, Nano>; billed: bigint[] }> {
    const planCache = new Map<string, Promise<PricePlan>>();
    // plans change on the hour only, so one lookup per account, region and hour
    const planAt = (accountId: string, region: string, at: number) => {
      const key = `${accountId}\u0000${region}\u0000${Math.floor(at / HOUR)}`;
      let p = planCache.get(key);
      if (!p) planCache.set(key, (p = this.plans.forAccount(accountId, region, new Date(Math.floor(at / HOUR) * HOUR))));
      return p;
    };
    type Group = { accountId: string; region: string; month: string; plan: PricePlan; calls: bigint };
    const groups = new Map<string, Group>();
    const charges = new Map<string, Nano>();
    const billed: bigint[] = [];
    for (const r of records) {
      charges.set(r.accountId, charges.get(r.accountId) ?? 0n);
      const plan = await planAt(r.accountId, r.region, r.at);
      const calls = BigInt(r.billable[plan.rule]);
      billed.push(calls);
      if (calls === 0n) continue;
      const month = this.monthOf(r.at);
      const key = `${r.accountId}\u0000${r.region}\u0000${month}\u0000${plan.id}`;
      const g = groups.get(key) ?? { accountId: r.accountId, region: r.region, month, plan, calls: 0n };
      g.calls += calls;
      groups.set(key, g);
    }
    for (const key of [...groups.keys()].sort()) {
      const g = groups.get(key)!;
      for (const line of g.plan.lines) {
        await c.query(
          `INSERT INTO usage_monthly (account_id, region, month, meter, plan_id) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING`,
          [g.accountId, g.region, g.month, line.meter, g.plan.id],
        );
        const { rows } = await c.query<{ billable_calls: string }>(
          `SELECT billable_calls FROM usage_monthly
            WHERE account_id = $1 AND region = $2 AND month = $3 AND meter = $4 AND plan_id = $5 FOR UPDATE`,
          [g.accountId, g.region, g.month, line.meter, g.plan.id],
        );
        const before = BigInt(rows[0].billable_calls);
        const after = before + g.calls;
        const charge = deduction(line, before, after);
        await c.query(
          `UPDATE usage_monthly SET billable_calls = $6, charged_nano = charged_nano + $7
            WHERE account_id = $1 AND region = $2 AND month = $3 AND meter = $4 AND plan_id = $5`,
          [g.accountId, g.region, g.month, line.meter, g.plan.id, after.toString(), charge.toString()],
        );
        charges.set(g.accountId, charges.get(g.accountId)! + charge);
      }
    }
    return { charges, billed };
  }
}
