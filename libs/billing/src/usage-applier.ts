import { Inject, Injectable, Optional } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import { LedgerService } from './ledger.service';
import { NotificationDispatcher } from './notifications';
import { actionClass, MeteringRule, Outcome } from './metering';
import { allocate, Nano } from './money';
import { PlanCatalog } from './plan-catalog';
import { deduction, PlanLine, PricePlan } from './rating';
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

/** A usage event from elsewhere: a usage record with its producer's id. */
export type UsageEvent = UsageRecord & { clientId: string };

/** What became of a batch of usage events. */
export interface EventsResult {
  accepted: number;
  duplicates: number;
}

/** Transactions of usage events one process runs at once; more batches wait and go together. */
export const EVENT_TRANSACTIONS = 2;
/** Events one transaction takes at most (whole batches: a larger batch goes alone). */
export const EVENTS_PER_TRANSACTION = 10_000;

export interface ApplyResult {
  applied: boolean;
  /** charge per account, in nano */
  charges: Map<string, Nano>;
  /** ids of the notifications the charges stored (an account became overdue, a low-balance alert) */
  notifications: string[];
}

/** A batch's rating as far as it goes before any lock (see UsageApplier.prepareRating). */
interface Rating {
  /** a zero charge for every account of the batch, in the order of the records */
  charges: Map<string, Nano>;
  /** each record's billable calls under its plan's rule */
  billed: bigint[];
  /** each record's rating group (account, region, month, plan); undefined when it bills nothing */
  groupOf: Array<string | undefined>;
  /** the calls per account, region, month and plan line, in key order */
  lines: Array<{ group: string; accountId: string; region: string; month: string; plan: PricePlan; line: PlanLine; calls: bigint }>;
}

/** A batch's hourly and per-minute aggregates, before the amounts are known. */
interface Aggregates {
  /** hourly keys (account, region, resource, action class, action, hour), in key order */
  hourKeys: string[];
  hourly: Map<string, { calls: number; billable: number; messages: number; bytesIn: number; bytesOut: number }>;
  /** per rating group: the billable calls of each hourly row it holds (what its charges are spread over) */
  parts: Map<string, Map<string, bigint>>;
  minutely: unknown[][];
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * Applies a batch of usage records in one transaction: the batch id goes in first under a
 * unique key (a batch delivered again changes nothing), then the month's cumulative rating per
 * account, region and plan line (each charge is F(after) − F(before)), the hourly aggregates
 * (per account, region, resource, action class, action and hour, each with its share of the
 * charges: every plan line's charge spread exactly over the hourly rows it covers, by billable
 * calls, so an account's hourly amounts add up to its usage charges to the nano) and per-minute
 * outcomes, and one `usage_charge` ledger entry per account, vouchers first.
 * Rows are locked in a fixed order (months, then balances, sorted), so concurrent batches for
 * the same accounts wait for each other instead of deadlocking. Each step is one statement for
 * the whole batch (plan lookups, month rows, aggregates, charges), however many accounts it holds:
 * a batch's locks are held for a few round trips, not a few per account.
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
   * The batch is named after its lowest row id, which no other batch can hold. The transaction
   * commits without waiting for the WAL flush (see inside). `lagSeconds`: for each row applied,
   * the time from its commit to the commit of its application (by the database's clock up to the
   * delete, by this process's after it), for the usage-to-balance lag metric.
   */
  async applyOutbox(ids: readonly string[]): Promise<{ rows: number; charges: Map<string, Nano>; lagSeconds: number[] }> {
    let deletedAt = 0;
    const result = await inTransaction(this.pool, async (c) => {
      // Not waiting for the WAL flush is safe here: a transaction lost in a crash is lost whole,
      // its outbox rows are back, and the resend applies them again; it spares the hot path's
      // commits an fsync per job.
      await c.query(`SET LOCAL synchronous_commit = off`);
      const { rows } = await c.query<{ id: string; created_at: Date; records: OutboxRow[]; age: number }>(
        `DELETE FROM usage_outbox o USING (
           SELECT id FROM usage_outbox WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE SKIP LOCKED
         ) t WHERE o.id = t.id
         RETURNING o.id, o.created_at, o.records, extract(epoch FROM clock_timestamp() - o.created_at)::float8 AS age`,
        [ids],
      );
      deletedAt = performance.now();
      if (rows.length === 0) return { rows: 0, charges: new Map<string, Nano>(), notifications: [] as string[], ages: [] as number[] };
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
      return { rows: rows.length, charges, notifications, ages: rows.map((r) => r.age) };
    });
    const sinceDelete = (performance.now() - deletedAt) / 1000;
    const lagSeconds = result.ages.map((age) => age + sinceDelete);
    await this.notifier?.dispatch(result.notifications);
    return { rows: result.rows, charges: result.charges, lagSeconds };
  }

  /**
   * Usage events from elsewhere (billing.md §7): an event whose client id this account sent in
   * the last 35 days is acknowledged and not counted again. The ids are recorded in the same
   * transaction as the usage, never before it.
   *
   * Batches that arrive while {@link EVENT_TRANSACTIONS} transactions of events are running wait,
   * and are then applied together in one transaction (up to {@link EVENTS_PER_TRANSACTION}
   * events), each answered with its own counts: every batch touches the month, aggregate and
   * balance rows of its accounts, which concurrent transactions can only take one after another,
   * so many batches per transaction is what lifts the rate. A shared transaction that fails is
   * rolled back whole and its batches are applied again one by one, so a batch that is refused
   * (no plan covers it) is refused alone, as if it had come alone.
   */
  applyEvents(events: UsageEvent[]): Promise<EventsResult> {
    return new Promise((resolve, reject) => {
      this.eventBatches.push({ events, resolve, reject });
      this.runEventBatches();
    });
  }

  private readonly eventBatches: Array<{ events: UsageEvent[]; resolve: (r: EventsResult) => void; reject: (err: unknown) => void }> = [];
  private eventTransactions = 0;

  private runEventBatches(): void {
    while (this.eventTransactions < EVENT_TRANSACTIONS && this.eventBatches.length > 0) {
      const group = [this.eventBatches.shift()!];
      let n = group[0].events.length;
      while (this.eventBatches.length > 0 && n + this.eventBatches[0].events.length <= EVENTS_PER_TRANSACTION) {
        const b = this.eventBatches.shift()!;
        group.push(b);
        n += b.events.length;
      }
      this.eventTransactions++;
      void this.applyEventGroup(group).finally(() => {
        this.eventTransactions--;
        this.runEventBatches();
      });
    }
  }

  private async applyEventGroup(group: typeof this.eventBatches): Promise<void> {
    if (group.length > 1) {
      try {
        const results = await this.applyEventBatches(group.map((b) => b.events));
        group.forEach((b, i) => b.resolve(results[i]));
        return;
      } catch {
        // nothing of the group is stored: each batch alone, with its own answer
      }
    }
    for (const b of group) {
      await this.applyEventBatches([b.events]).then(
        ([r]) => b.resolve(r),
        (err: unknown) => b.reject(err),
      );
    }
  }

  /**
   * Batches of events in one transaction; each batch's accepted and duplicate counts. The
   * notifications the charges stored go out once the transaction committed.
   */
  private async applyEventBatches(batches: UsageEvent[][]): Promise<EventsResult[]> {
    const { results, notifications } = await inTransaction(this.pool, async (c) => {
      const events = batches.length === 1 ? batches[0] : batches.flat();
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
      const records: UsageEvent[] = [];
      const results = batches.map((batch) => {
        let accepted = 0;
        for (const e of batch) {
          const k = `${e.accountId}/${e.clientId}`;
          if (!fresh.has(k) || taken.has(k)) continue;
          taken.add(k);
          records.push(e);
          accepted++;
        }
        return { accepted, duplicates: batch.length - accepted };
      });
      const applied = records.length > 0 ? await this.applyWithin(c, `events:${randomUUID()}`, records) : null;
      return { results, notifications: applied?.notifications ?? [] };
    });
    await this.notifier?.dispatch(notifications);
    return results;
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
    // everything that takes no lock first: plans, billable calls, the aggregates' rows
    const rating = await this.prepareRating(records);
    const aggregates = this.aggregates(records, rating);
    // then the rows other batches of the same accounts wait for, each kind in key order
    const { charges, lineCharges } = await this.rate(c, rating);
    await this.writeAggregates(c, aggregates, hourlyAmounts(rating.lines, lineCharges, aggregates.parts));
    const accounts = [...charges.keys()].sort();
    const postings = accounts
      .filter((accountId) => charges.get(accountId)! > 0n)
      .map((accountId) => {
        const charge = charges.get(accountId)!;
        return {
          accountId,
          kind: 'usage_charge' as const,
          charge,
          idempotencyKey: `usage:${batchId}:${accountId}`,
          request: { batchId, accountId, charge },
          meta: { batchId },
        };
      });
    const posted = await this.ledger.postChargesWithin(c, accounts, postings);
    if (!posted) throw new Error(`usage charge of batch ${batchId} posted twice at once`);
    return { applied: true, charges, notifications: posted.notifications };
  }

  /**
   * The hourly and per-minute aggregates of a batch (hourly: account, region, resource, action
   * class, action and hour), and for each rating group the billable calls of the hourly rows it
   * covers, over which its charges are spread once they are known.
   */
  private aggregates(records: UsageRecord[], { billed, groupOf }: Rating): Aggregates {
    const hourly: Aggregates['hourly'] = new Map();
    const parts: Aggregates['parts'] = new Map();
    const minutely = new Map<string, number>();
    records.forEach((r, i) => {
      const hour = Math.floor(r.at / HOUR) * HOUR;
      const hk = `${r.accountId}\u0000${r.region}\u0000${r.resource}\u0000${actionClass(r.action)}\u0000${r.action}\u0000${hour}`;
      let h = hourly.get(hk);
      if (h === undefined) hourly.set(hk, (h = { calls: 0, billable: 0, messages: 0, bytesIn: 0, bytesOut: 0 }));
      h.calls += r.calls;
      h.billable += Number(billed[i]);
      h.messages += r.messages;
      h.bytesIn += r.bytesIn;
      h.bytesOut += r.bytesOut;
      const group = groupOf[i];
      if (group !== undefined) {
        let p = parts.get(group);
        if (p === undefined) parts.set(group, (p = new Map()));
        p.set(hk, (p.get(hk) ?? 0n) + billed[i]);
      }
      const mk = `${r.accountId}\u0000${r.region}\u0000${Math.floor(r.at / MINUTE) * MINUTE}\u0000${r.outcome}`;
      minutely.set(mk, (minutely.get(mk) ?? 0) + r.calls);
    });
    const mk = [...minutely.keys()].sort();
    const mcols = mk.map((k) => k.split('\u0000'));
    return {
      hourKeys: [...hourly.keys()].sort(),
      hourly,
      parts,
      minutely: [mcols.map((k) => k[0]), mcols.map((k) => k[1]), mcols.map((k) => k[2]), mcols.map((k) => k[3]), mk.map((k) => minutely.get(k)!)],
    };
  }

  /** The aggregates' upserts: hourly rows with the amounts they were charged, per-minute outcomes. */
  private async writeAggregates(c: PoolClient, a: Aggregates, amounts: Map<string, Nano>): Promise<void> {
    const cols = a.hourKeys.map((k) => k.split('\u0000'));
    const sums = a.hourKeys.map((k) => a.hourly.get(k)!);
    await c.query(
      `INSERT INTO usage_hourly AS u (account_id, region, resource, action_class, action, hour, calls, billable_calls, messages, bytes_in, bytes_out, amount_nano)
       SELECT a, r, res, cls, act, to_timestamp(h::bigint / 1000.0), n, b, m, bi, bo, amt
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::bigint[], $12::bigint[])
              AS t(a, r, res, cls, act, h, n, b, m, bi, bo, amt)
       ON CONFLICT (account_id, region, resource, action_class, action, hour) DO UPDATE
         SET calls = u.calls + excluded.calls, billable_calls = u.billable_calls + excluded.billable_calls,
             messages = u.messages + excluded.messages, bytes_in = u.bytes_in + excluded.bytes_in,
             bytes_out = u.bytes_out + excluded.bytes_out, amount_nano = u.amount_nano + excluded.amount_nano`,
      [
        cols.map((k) => k[0]),
        cols.map((k) => k[1]),
        cols.map((k) => k[2]),
        cols.map((k) => k[3]),
        cols.map((k) => k[4]),
        cols.map((k) => k[5]),
        sums.map((h) => h.calls),
        sums.map((h) => h.billable),
        sums.map((h) => h.messages),
        sums.map((h) => h.bytesIn),
        sums.map((h) => h.bytesOut),
        a.hourKeys.map((k) => (amounts.get(k) ?? 0n).toString()),
      ],
    );
    await c.query(
      `INSERT INTO usage_minutely AS u (account_id, region, minute, outcome, requests)
       SELECT a, r, to_timestamp(m::bigint / 1000.0), o, n
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS t(a, r, m, o, n)
       ON CONFLICT (account_id, region, minute, outcome) DO UPDATE SET requests = u.requests + excluded.requests`,
      a.minutely,
    );
  }

  /**
   * What rating a batch needs before any lock: each record's plan (one lookup per account,
   * region and hour, all at once) and billable calls under its rule, the calls per account,
   * region, month and plan line in key order, and a zero charge for every account of the batch.
   */
  private async prepareRating(records: UsageRecord[]): Promise<Rating> {
    const planKeys = new Map<string, number>();
    const lookups: Array<{ accountId: string; region: string; at: Date }> = [];
    const planIndex = records.map((r) => {
      const hour = Math.floor(r.at / HOUR);
      const key = `${r.accountId}\u0000${r.region}\u0000${hour}`;
      let i = planKeys.get(key);
      if (i === undefined) {
        planKeys.set(key, (i = lookups.length));
        lookups.push({ accountId: r.accountId, region: r.region, at: new Date(hour * HOUR) });
      }
      return i;
    });
    const plans = await this.plans.forAccounts(lookups);
    // the billing month of a minute (time zones are offset by whole minutes)
    const months = new Map<number, string>();
    const monthAt = (ms: number) => {
      const minute = Math.floor(ms / MINUTE);
      let m = months.get(minute);
      if (m === undefined) months.set(minute, (m = this.monthOf(ms)));
      return m;
    };
    type Group = { accountId: string; region: string; month: string; plan: PricePlan; calls: bigint };
    const groups = new Map<string, Group>();
    const charges = new Map<string, Nano>();
    const billed: bigint[] = [];
    const groupOf: Array<string | undefined> = [];
    records.forEach((r, i) => {
      charges.set(r.accountId, charges.get(r.accountId) ?? 0n);
      const plan = plans[planIndex[i]];
      const calls = BigInt(r.billable[plan.rule]);
      billed.push(calls);
      if (calls === 0n) {
        groupOf.push(undefined);
        return;
      }
      const month = monthAt(r.at);
      const key = `${r.accountId}\u0000${r.region}\u0000${month}\u0000${plan.id}`;
      groupOf.push(key);
      const g = groups.get(key) ?? { accountId: r.accountId, region: r.region, month, plan, calls: 0n };
      g.calls += calls;
      groups.set(key, g);
    });
    // one row per group and plan line, in key order: the order the rows are locked in
    const lines = [...groups.keys()].sort().flatMap((group) => {
      const g = groups.get(group)!;
      return g.plan.lines.map((line) => ({ ...g, group, line }));
    });
    return { charges, billed, groupOf, lines };
  }

  /**
   * The month's cumulative rating per account, region, month and plan line (rows made if
   * missing, locked in key order, moved on by the batch's calls): the charges per account.
   */
  private async rate(c: PoolClient, { charges, lines }: Rating): Promise<{ charges: Map<string, Nano>; lineCharges: Nano[] }> {
    const lineCharges: Nano[] = new Array<Nano>(lines.length).fill(0n);
    if (lines.length === 0) return { charges, lineCharges };
    const keyColumns = [
      lines.map((l) => l.accountId),
      lines.map((l) => l.region),
      lines.map((l) => l.month),
      lines.map((l) => l.line.meter),
      lines.map((l) => l.plan.id),
    ];
    await c.query(
      `INSERT INTO usage_monthly (account_id, region, month, meter, plan_id)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[], $5::uuid[])
       ON CONFLICT DO NOTHING`,
      keyColumns,
    );
    const { rows } = await c.query<{ i: string; billable_calls: string }>(
      `SELECT t.i, m.billable_calls
         FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[], $5::uuid[]) WITH ORDINALITY AS t(a, r, mo, me, p, i)
         JOIN usage_monthly m ON m.account_id = t.a AND m.region = t.r AND m.month = t.mo AND m.meter = t.me AND m.plan_id = t.p
        ORDER BY t.i
        FOR UPDATE OF m`,
      keyColumns,
    );
    if (rows.length !== lines.length) throw new Error(`usage_monthly: ${rows.length} rows locked for ${lines.length} plan lines`);
    const after: string[] = [];
    const charged: string[] = [];
    rows.forEach((row, k) => {
      const l = lines[Number(row.i) - 1];
      const before = BigInt(row.billable_calls);
      const total = before + l.calls;
      const charge = deduction(l.line, before, total);
      after[k] = total.toString();
      charged[k] = charge.toString();
      lineCharges[Number(row.i) - 1] = charge;
      charges.set(l.accountId, charges.get(l.accountId)! + charge);
    });
    await c.query(
      `UPDATE usage_monthly m SET billable_calls = t.b, charged_nano = m.charged_nano + t.c
         FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[], $5::uuid[], $6::bigint[], $7::bigint[]) AS t(a, r, mo, me, p, b, c)
        WHERE m.account_id = t.a AND m.region = t.r AND m.month = t.mo AND m.meter = t.me AND m.plan_id = t.p`,
      [...keyColumns, after, charged],
    );
    return { charges, lineCharges };
  }
}

/**
 * The amount of each hourly row of a batch: every plan line's charge spread over the hourly rows
 * its rating group holds, in proportion to their billable calls, exactly ({@link allocate}), so
 * the amounts add up to the charges to the nano. An hourly row in two groups (an hour across a
 * month's start in a zone offset by half an hour) gets its share of each.
 */
export function hourlyAmounts(
  lines: ReadonlyArray<{ group: string }>,
  lineCharges: readonly Nano[],
  parts: ReadonlyMap<string, ReadonlyMap<string, bigint>>,
): Map<string, Nano> {
  const amounts = new Map<string, Nano>();
  lines.forEach((l, k) => {
    const charge = lineCharges[k];
    if (charge === 0n) return;
    const group = parts.get(l.group);
    if (!group || group.size === 0) throw new Error(`a charge of ${charge} nano with no hourly usage to hold it`);
    const keys = [...group.keys()].sort();
    const shares = allocate(
      charge,
      keys.map((hk) => group.get(hk)!),
    );
    keys.forEach((hk, j) => amounts.set(hk, (amounts.get(hk) ?? 0n) + shares[j]));
  });
  return amounts;
}
