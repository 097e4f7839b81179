import { randomUUID } from 'node:crypto';
import {
  actionClass,
  billableCalls,
  formatAmount,
  LedgerService,
  METERING_RULES,
  monthlyCharge,
  parseAmount,
  PlanCatalog,
  PlanLine,
  UsageApplier,
  UsageRecord,
} from '@app/billing';
import { exportCsv } from '@app/billing/exports';
import type { PgPool } from '@app/db';
import { TestStack } from '@app/testing';
import type { Pool } from 'pg';

/**
 * Hourly statements with exact amounts (billing.md §6): every batch's charge of a plan line is
 * spread over the hourly rows it covers, so the amounts of an account add up to its usage
 * charges in the ledger to the nano, whatever the batches; the usage query (filters, groupBy,
 * hour and day buckets in the billing zone, cursor pages) and the statements with their total.
 */

const HOUR = 3_600_000;
const KIB = 1024;

const streamText = async (s: NodeJS.ReadableStream) => {
  let text = '';
  for await (const c of s) text += typeof c === 'string' ? c : (c as Buffer).toString('utf8');
  return text;
};
const SIZES = [1, 2 * KIB, 2 * KIB + 1, 3 * KIB, 4 * KIB + 1, 16 * KIB + 1, 64 * KIB, 100 * KIB + 1, 700 * KIB];
const ACTIONS = ['SendMessage', 'BatchSendMessage', 'ReceiveMessage', 'BatchReceiveMessage', 'DeleteMessage', 'BatchDeleteMessage', 'CreateQueue', 'ListQueue'];

/** A seeded pseudo-random integer in [0, n) (mulberry32: the spec is the same on every run). */
function rng(seed: number) {
  return (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function record(accountId: string, region: string, action: string, at: number, opts: { resource?: string; n?: number; sizes?: number[] } = {}): UsageRecord {
  const sizes = opts.sizes ?? [];
  const n = opts.n ?? 1;
  const req = { action, outcome: 'ok' as const, messageBytes: sizes, handles: action.includes('Delete') ? Math.max(1, sizes.length) : undefined };
  const bytes = sizes.reduce((a, b) => a + b, 0);
  return {
    accountId,
    region,
    resource: opts.resource ?? 'q0',
    action,
    outcome: 'ok',
    calls: n,
    messages: n * Math.max(sizes.length, action.includes('Delete') ? 1 : 0),
    bytesIn: action.includes('Send') ? n * bytes : 0,
    bytesOut: action.includes('Receive') ? n * bytes : 0,
    billable: Object.fromEntries(METERING_RULES.map((r) => [r, n * billableCalls(r, req)])) as UsageRecord['billable'],
    at,
  };
}

describe('hourly statements and usage', () => {
  let stack: TestStack;
  let applier: UsageApplier;
  let plans: PlanCatalog;
  /** the tiered plan of the region `stm` (free quota, graduated tiers with prices that leave remainders) */
  const tiered: PlanLine = {
    meter: 'calls',
    freeQuota: 1000n,
    tiers: [
      { upTo: 5_000n, perMillion: parseAmount('3.333333333') },
      { upTo: 50_000n, perMillion: parseAmount('1.000000001') },
      { upTo: null, perMillion: parseAmount('0.7') },
    ],
  };

  const usageCharges = async (accountId: string, keyLike = 'usage:%') =>
    -BigInt(
      (
        await stack.db.query(
          `SELECT coalesce(sum(cash_delta_nano + voucher_delta_nano), 0)::text AS s FROM ledger_entries
            WHERE account_id = $1 AND kind = 'usage_charge' AND idempotency_key LIKE $2`,
          [accountId, keyLike],
        )
      ).rows[0].s,
    );
  const hourlyAmounts = async (accountId: string) =>
    BigInt((await stack.db.query(`SELECT coalesce(sum(amount_nano), 0)::text AS s FROM usage_hourly WHERE account_id = $1`, [accountId])).rows[0].s);
  const get = (path: string) => stack.admin('GET', path);

  beforeAll(async () => {
    stack = await TestStack.start({ BILLING_TIME_ZONE: 'Asia/Shanghai' });
    const pool = stack.db as unknown as PgPool;
    plans = new PlanCatalog(pool);
    applier = new UsageApplier(stack.config, pool, plans, new LedgerService(pool));
    const { rows } = await stack.db.query(
      `INSERT INTO price_plans (code, region_group, version, currency, metering_rule, effective_from)
       VALUES ('default', 'statements-spec', 1, 'CNY', 'size_bands', '2020-01-01T00:00:00Z') RETURNING id`,
    );
    await stack.db.query(`INSERT INTO price_plan_regions VALUES ($1, 'stm')`, [rows[0].id]);
    await stack.db.query(`INSERT INTO price_plan_lines VALUES ($1, 'calls', $2)`, [rows[0].id, tiered.freeQuota.toString()]);
    for (const [i, t] of tiered.tiers.entries()) {
      await stack.db.query(`INSERT INTO price_plan_tiers VALUES ($1, 'calls', $2, $3, $4)`, [rows[0].id, i, t.upTo?.toString() ?? null, t.perMillion.toString()]);
    }
  });
  afterAll(() => stack.stop());

  it('one batch: each plan line charge is spread over its hours by billable calls, exactly (free quota and tiers included)', async () => {
    const t = await stack.tenant('spread');
    const h1 = Date.parse('2026-10-20T03:00:00Z');
    // 700 calls in one hour, 900 in the next: 600 beyond the free quota at 3.333333333 per million
    await applier.apply(randomUUID(), [
      record(t.accountId, 'stm', 'SendMessage', h1 + 59 * 60_000, { n: 700, sizes: [100] }),
      record(t.accountId, 'stm', 'ReceiveMessage', h1 + HOUR + 60_000, { n: 900, sizes: [100], resource: 'q1' }),
    ]);
    const charge = monthlyCharge(tiered, 1600n);
    expect(charge).toBe(1_999_999n); // 600 × 3.333333333 / 1e6, floored to the nano
    const { rows } = await stack.db.query(
      `SELECT hour, action, amount_nano::text AS amount FROM usage_hourly WHERE account_id = $1 ORDER BY hour`,
      [t.accountId],
    );
    // 1,999,999 × 7/16 = 874,999.56 and × 9/16 = 1,124,999.44: the one nano left goes to the larger remainder
    expect(rows.map((r) => [r.hour.toISOString(), r.action, r.amount])).toEqual([
      ['2026-10-20T03:00:00.000Z', 'SendMessage', '875000'],
      ['2026-10-20T04:00:00.000Z', 'ReceiveMessage', '1124999'],
    ]);
    expect(await usageCharges(t.accountId)).toBe(charge);
  });

  it('across many batches, hours and tiers, the hourly amounts are the ledger usage charges to the nano', async () => {
    const accounts = await Promise.all([0, 1, 2].map((i) => stack.tenant(`amounts-${i}`)));
    const rand = rng(42);
    // an hour boundary in the middle of the traffic: records from 90 minutes before to 90 minutes after it
    const boundary = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const records: UsageRecord[] = [];
    for (let i = 0; i < 3000; i++) {
      const action = ACTIONS[rand(ACTIONS.length)];
      const sizes = action.includes('Queue') ? [] : Array.from({ length: action.startsWith('Batch') ? 1 + rand(16) : 1 }, () => SIZES[rand(SIZES.length)]);
      records.push(
        record(accounts[rand(3)].accountId, ['stm', 'stm', 'gz'][rand(3)], action, boundary - 90 * 60_000 + rand(180 * 60_000), {
          resource: `q${rand(4)}`,
          sizes,
          n: 1 + rand(40),
        }),
      );
    }
    const batches: UsageRecord[][] = [];
    for (let at = 0; at < records.length; ) {
      const n = 1 + rand(120);
      batches.push(records.slice(at, at + n));
      at += n;
    }
    // two at a time (they lock the same month rows: one waits for the other)
    for (let i = 0; i < batches.length; i += 2) {
      await Promise.all(batches.slice(i, i + 2).map((b) => applier.apply(randomUUID(), b)));
    }
    const plan = (region: string) => (region === 'stm' ? tiered : { meter: 'calls' as const, freeQuota: 0n, tiers: [{ upTo: null, perMillion: parseAmount('2.00') }] });
    for (const a of accounts) {
      const mine = records.filter((r) => r.accountId === a.accountId);
      // independent: the month's usage per region priced once as a whole
      const months = new Map<string, bigint>();
      for (const r of mine) {
        const k = `${r.region}/${new Date(r.at + 8 * HOUR).toISOString().slice(0, 7)}`;
        months.set(k, (months.get(k) ?? 0n) + BigInt(r.billable.size_bands));
      }
      let expected = 0n;
      for (const [k, calls] of months) expected += monthlyCharge(plan(k.split('/')[0]), calls);
      expect(await usageCharges(a.accountId)).toBe(expected);
      expect(await hourlyAmounts(a.accountId)).toBe(expected);
      // per region and month: the hours hold exactly the month's rating
      const { rows } = await stack.db.query(
        `SELECT h.region, sum(h.amount_nano)::text AS amount,
                (SELECT sum(m.charged_nano) FROM usage_monthly m WHERE m.account_id = $1 AND m.region = h.region)::text AS rated
           FROM usage_hourly h WHERE h.account_id = $1 GROUP BY h.region`,
        [a.accountId],
      );
      for (const r of rows) expect(r.amount).toBe(r.rated);
      // at a flat 2.00 per million (gz) a call is exactly 2,000 nano: every hourly row holds its own calls' price
      const { rows: flat } = await stack.db.query(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE amount_nano <> billable_calls * 2000)::int AS off
           FROM usage_hourly WHERE account_id = $1 AND region = 'gz'`,
        [a.accountId],
      );
      expect(flat[0]).toEqual({ n: expect.any(Number), off: 0 });
      expect(flat[0].n).toBeGreaterThan(20);
      // both sides of the boundary were charged, and the tiers were crossed in stm
      const { rows: sides } = await stack.db.query(
        `SELECT (hour >= $2) AS after, sum(amount_nano)::text AS amount FROM usage_hourly WHERE account_id = $1 GROUP BY 1 ORDER BY 1`,
        [a.accountId, new Date(boundary)],
      );
      expect(sides.map((s) => BigInt(s.amount) > 0n)).toEqual([true, true]);
      expect(months.get([...months.keys()].find((k) => k.startsWith('stm'))!)! > 50_000n).toBe(true);
      // the statements say the same over the whole range, and their lines add up to their total
      const from = new Date(boundary - 2 * HOUR).toISOString();
      const to = new Date(boundary + 2 * HOUR).toISOString();
      const s = await get(`/v1/accounts/${a.accountId}/statements?from=${from}&to=${to}&limit=1000`);
      expect(s.status).toBe(200);
      expect(s.body.total).toBe(formatAmount(expected));
      expect(s.body.lines.reduce((t: bigint, l: { amount: string }) => t + parseAmount(l.amount), 0n)).toBe(expected);
      expect(s.body.nextCursor).toBeNull();
    }
  }, 120_000);

  describe('GET /v1/accounts/{id}/usage', () => {
    let acc: string;
    const recs: UsageRecord[] = [];
    // around midnights in Asia/Shanghai (16:00 UTC): 23:30 local on the 14th is still the 14th
    const times = ['2026-10-14T15:30:00Z', '2026-10-14T16:10:00Z', '2026-10-14T16:50:00Z', '2026-10-15T02:00:00Z', '2026-10-15T15:59:00Z', '2026-10-15T16:00:00Z', '2026-10-16T09:00:00Z'];
    const FROM = '2026-10-14T00:00:00+08:00';
    const TO = '2026-10-17T00:00:00+08:00';
    const all = async (path: string, limit: number) => {
      const rows: any[] = [];
      const cursors = new Set<string>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await get(`${path}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(r.status).toBe(200);
        expect(r.body.usage.length).toBeLessThanOrEqual(limit);
        rows.push(...r.body.usage);
        cursor = r.body.nextCursor;
        if (cursor) {
          expect(cursors.has(cursor)).toBe(false);
          cursors.add(cursor);
        }
        pages++;
      } while (cursor);
      return { rows, pages };
    };
    const sum = (rows: any[], f: string) => rows.reduce((t: bigint, r: any) => t + (f === 'amount' ? parseAmount(r[f]) : BigInt(r[f])), 0n);

    beforeAll(async () => {
      acc = (await stack.tenant('usage-query')).accountId;
      const rand = rng(7);
      for (const [i, t] of times.entries()) {
        for (const region of ['gz', 'stm']) {
          for (const resource of ['orders', 'audit']) {
            for (const action of ['SendMessage', 'BatchReceiveMessage', 'DeleteMessage', 'GetQueueAttributes']) {
              if (rand(5) === 0) continue;
              recs.push(record(acc, region, action, Date.parse(t) + i * 1000, { resource, n: 1 + rand(500), sizes: action.includes('Attributes') ? [] : [100 + rand(5000)] }));
            }
          }
        }
      }
      // one batch per record time, so the amounts come from several batches
      for (const [i, t] of times.entries()) await applier.apply(randomUUID(), recs.filter((r) => r.at === Date.parse(t) + i * 1000));
    });

    it('hourly rows per region, resource and action by default, with every count and the amount', async () => {
      const { rows } = await all(`/v1/accounts/${acc}/usage?from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}`, 1000);
      const want = new Map<string, number[]>();
      for (const r of recs) {
        const k = `${new Date(Math.floor(r.at / HOUR) * HOUR).toISOString().replace('.000Z', 'Z')}\t${r.region}\t${r.resource}\t${r.action}`;
        const v = want.get(k) ?? [0, 0, 0, 0, 0];
        [r.calls, r.billable.size_bands, r.messages, r.bytesIn, r.bytesOut].forEach((x, j) => (v[j] += x));
        want.set(k, v);
      }
      expect(new Map(rows.map((r) => [`${r.period}\t${r.region}\t${r.resource}\t${r.action}`, [r.calls, r.billableCalls, r.messages, r.bytesIn, r.bytesOut].map(Number)]))).toEqual(want);
      // ordered by period, then region, resource, action (tab: below every character of a name)
      expect(rows.map((r) => `${r.period}\t${r.region}\t${r.resource}\t${r.action}`)).toEqual([...want.keys()].sort());
      expect(sum(rows, 'amount')).toBe(await usageCharges(acc));
      expect(rows.find((r) => r.action === 'GetQueueAttributes').amount).toBe('0.00');
      expect(rows[0].period).toBe('2026-10-14T15:00:00Z');
    });

    it('day buckets are days of Asia/Shanghai, shown with their offset', async () => {
      const r = await get(`/v1/accounts/${acc}/usage?granularity=day&groupBy=none&from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}`);
      expect(r.status).toBe(200);
      expect(r.body.usage.map((x: any) => x.period)).toEqual(['2026-10-14T00:00:00+08:00', '2026-10-15T00:00:00+08:00', '2026-10-16T00:00:00+08:00']);
      const localDay = (at: number) => new Date(at + 8 * HOUR).toISOString().slice(0, 10);
      for (const row of r.body.usage) {
        expect([row.region, row.resource, row.action]).toEqual([null, null, null]);
        const inDay = recs.filter((x) => localDay(x.at) === row.period.slice(0, 10));
        expect(BigInt(row.calls)).toBe(BigInt(inDay.reduce((t, x) => t + x.calls, 0)));
      }
      // 23:30 local on the 14th is the 14th; 00:10 local on the 15th is the 15th
      expect(localDay(Date.parse(times[0]))).toBe('2026-10-14');
      expect(localDay(Date.parse(times[1]))).toBe('2026-10-15');
      expect(sum(r.body.usage, 'amount')).toBe(await usageCharges(acc));
      // a day starts at midnight in the billing zone: a UTC midnight is refused
      const bad = await get(`/v1/accounts/${acc}/usage?granularity=day&from=2026-10-14T00:00:00Z&to=${encodeURIComponent(TO)}`);
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toMatch(/midnight in the billing time zone Asia\/Shanghai/);
    });

    it('groupBy keeps the named dimensions and sums over the others; filters narrow the rows', async () => {
      const q = `from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}`;
      const byAction = (await get(`/v1/accounts/${acc}/usage?${q}&granularity=day&groupBy=action`)).body.usage;
      expect(new Set(byAction.map((r: any) => r.action))).toEqual(new Set(['SendMessage', 'BatchReceiveMessage', 'DeleteMessage', 'GetQueueAttributes']));
      expect(byAction.every((r: any) => r.region === null && r.resource === null)).toBe(true);
      for (const r of byAction) {
        const day = r.period.slice(0, 10);
        const mine = recs.filter((x) => x.action === r.action && new Date(x.at + 8 * HOUR).toISOString().slice(0, 10) === day);
        expect(Number(r.billableCalls)).toBe(mine.reduce((t, x) => t + x.billable.size_bands, 0));
      }
      const byQueue = (await get(`/v1/accounts/${acc}/usage?${q}&groupBy=resource,region`)).body.usage;
      expect(byQueue.every((r: any) => r.action === null && ['orders', 'audit'].includes(r.resource) && ['gz', 'stm'].includes(r.region))).toBe(true);
      expect(sum(byQueue, 'amount')).toBe(sum(byAction, 'amount'));
      expect(sum(byQueue, 'calls')).toBe(BigInt(recs.reduce((t, x) => t + x.calls, 0)));
      // the order: period, then the kept dimensions in their own order (region before resource)
      const keys = byQueue.map((r: any) => `${r.period}\t${r.region}\t${r.resource}`);
      expect(keys).toEqual([...keys].sort());

      const filtered = async (f: string, keep: (r: UsageRecord) => boolean) => {
        const r = await get(`/v1/accounts/${acc}/usage?${q}&${f}&groupBy=none`);
        expect(r.status).toBe(200);
        expect(sum(r.body.usage, 'calls')).toBe(BigInt(recs.filter(keep).reduce((t, x) => t + x.calls, 0)));
        expect(sum(r.body.usage, 'calls')).toBeGreaterThan(0n);
        return r.body.usage;
      };
      await filtered('region=gz', (r) => r.region === 'gz');
      await filtered('resource=audit', (r) => r.resource === 'audit');
      await filtered('action=DeleteMessage', (r) => r.action === 'DeleteMessage');
      const consume = await filtered('actionClass=consume', (r) => actionClass(r.action) === 'consume');
      const mgmt = await filtered('actionClass=management&region=stm', (r) => r.region === 'stm' && actionClass(r.action) === 'management');
      expect(sum(mgmt, 'amount')).toBe(0n);
      expect(sum(consume, 'amount')).toBeGreaterThan(0n);
      expect((await get(`/v1/accounts/${acc}/usage?${q}&action=PushDelivery`)).body).toEqual({ usage: [], nextCursor: null });
    });

    it('cursor pages: every row once, in order, however small the pages', async () => {
      for (const shape of ['', '&groupBy=action', '&granularity=day', '&granularity=day&groupBy=region,resource', '&groupBy=none']) {
        const path = `/v1/accounts/${acc}/usage?from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}${shape}`;
        const whole = (await get(`${path}&limit=1000`)).body;
        expect(whole.nextCursor).toBeNull();
        for (const limit of [1, 3, 7]) {
          const { rows, pages } = await all(path, limit);
          expect(rows).toEqual(whole.usage);
          expect(pages).toBe(Math.max(1, Math.ceil(whole.usage.length / limit)));
        }
      }
      // the default page is 100 rows
      const d = await get(`/v1/accounts/${acc}/usage?from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}`);
      expect(d.body.usage.length).toBe(Math.min(100, (await all(`/v1/accounts/${acc}/usage?from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}`, 1000)).rows.length));
    });

    it.each([
      ['to=2026-10-15T00:00:00Z', /from is required/],
      ['from=2026-10-15T00:00:00Z', /to is required/],
      ['from=yesterday&to=2026-10-15T00:00:00Z', /from must be ISO 8601/],
      ['from=2026-10-15T00:00:00Z&to=2026-10-14T00:00:00Z', /from must be before to/],
      ['from=2025-01-01T00:00:00Z&to=2026-10-14T00:00:00Z', /more than 400 days/],
      ['from=2026-10-14T00:30:00Z&to=2026-10-15T00:00:00Z', /from must be on a whole hour/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&granularity=week', /granularity must be hour or day/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&groupBy=queue', /groupBy must be a comma list of region, resource, action/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&groupBy=action,action', /groupBy names a dimension twice/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&actionClass=publish', /actionClass must be one of send, consume, ack, management/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&region=G%20Z', /region must be a region code/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&action=Send%20Message', /action must be a CMQ action/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&limit=0', /limit must be an integer from 1 to 1000/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&limit=1001', /limit must be an integer from 1 to 1000/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&cursor=nonsense', /cursor is not valid/],
      ['from=2026-10-14T00:00:00Z&to=2026-10-15T00:00:00Z&colour=red', /colour should not exist/],
    ])('%s is 400 with its reason', async (q, reason) => {
      const r = await get(`/v1/accounts/${acc}/usage?${q}`);
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.body)).toMatch(reason);
    });

    it('a cursor of another query shape is refused; an unknown account is 404, a bad id 400', async () => {
      const q = `from=${encodeURIComponent(FROM)}&to=${encodeURIComponent(TO)}`;
      const first = (await get(`/v1/accounts/${acc}/usage?${q}&groupBy=action&limit=1`)).body;
      expect(first.nextCursor).toEqual(expect.any(String));
      const other = await get(`/v1/accounts/${acc}/usage?${q}&groupBy=resource&cursor=${first.nextCursor}`);
      expect(other.status).toBe(400);
      expect(JSON.stringify(other.body)).toMatch(/cursor is not valid/);
      const statements = await get(`/v1/accounts/${acc}/statements?${q}&cursor=${first.nextCursor}`);
      expect(statements.status).toBe(400);
      // a cursor of the right shape whose period is no time
      const forged = Buffer.from(JSON.stringify(['usage:hour:action', 1e300, 'SendMessage'])).toString('base64url');
      expect((await get(`/v1/accounts/${acc}/usage?${q}&groupBy=action&cursor=${forged}`)).status).toBe(400);
      const unknown = await get(`/v1/accounts/${randomUUID()}/usage?${q}`);
      expect(unknown.status).toBe(404);
      expect(JSON.stringify(unknown.body)).toMatch(/does not exist/);
      expect((await get(`/v1/accounts/${randomUUID()}/statements?${q}`)).status).toBe(404);
      expect((await get(`/v1/accounts/not-a-uuid/usage?${q}`)).status).toBe(400);
      expect((await fetch(`${stack.billingUrl}/v1/accounts/${acc}/usage?${q}`)).status).toBe(401);
    });
  });

  describe('GET /v1/accounts/{id}/statements', () => {
    it('lines per hour, region, resource and action class; the total of a range is the ledger charges of its hours, to the nano', async () => {
      const acc = (await stack.tenant('statements')).accountId;
      const h0 = Date.parse('2026-10-21T22:00:00Z');
      const rand = rng(99);
      const batchHour = new Map<string, number>();
      const recs: UsageRecord[] = [];
      // three batches in each of five hours, each batch within its hour
      for (let h = 0; h < 5; h++) {
        for (let b = 0; b < 3; b++) {
          const batch: UsageRecord[] = [];
          for (let k = 0; k < 25; k++) {
            const action = ['SendMessage', 'BatchSendMessage', 'ReceiveMessage', 'BatchDeleteMessage', 'DeleteMessage', 'ListQueue'][rand(6)];
            batch.push(record(acc, ['stm', 'gz'][rand(2)], action, h0 + h * HOUR + rand(HOUR), { resource: action === 'ListQueue' ? '' : `q${rand(3)}`, n: 1 + rand(3000), sizes: action === 'ListQueue' ? [] : [10] }));
          }
          const id = randomUUID();
          batchHour.set(id, h);
          recs.push(...batch);
          await applier.apply(id, batch);
        }
      }
      const ledgerOf = async (hours: number[]) => {
        let t = 0n;
        for (const [id, h] of batchHour) if (hours.includes(h)) t += await usageCharges(acc, `usage:${id}:%`);
        return t;
      };
      const iso = (h: number) => new Date(h0 + h * HOUR).toISOString();
      const whole = await get(`/v1/accounts/${acc}/statements?from=${iso(0)}&to=${iso(5)}&limit=1000`);
      expect(whole.status).toBe(200);
      expect(whole.body.total).toBe(formatAmount(await ledgerOf([0, 1, 2, 3, 4])));
      expect(parseAmount(whole.body.total)).toBe(await usageCharges(acc));
      // a line per hour, region, resource and action class (actions of a class summed), in that order
      const want = new Map<string, number[]>();
      for (const r of recs) {
        const k = `${new Date(Math.floor(r.at / HOUR) * HOUR).toISOString().replace('.000Z', 'Z')}\t${r.region}\t${r.resource}\t${actionClass(r.action)}`;
        const v = want.get(k) ?? [0, 0];
        v[0] += r.calls;
        v[1] += r.billable.size_bands;
        want.set(k, v);
      }
      const lines = whole.body.lines;
      expect(lines.map((l: any) => `${l.hour}\t${l.region}\t${l.resource}\t${l.actionClass}`)).toEqual([...want.keys()].sort());
      for (const l of lines) expect([Number(l.calls), Number(l.billableCalls)]).toEqual(want.get(`${l.hour}\t${l.region}\t${l.resource}\t${l.actionClass}`));
      expect(Object.keys(lines[0]).sort()).toEqual(['actionClass', 'amount', 'billableCalls', 'calls', 'hour', 'region', 'resource']);

      // a part of the range: its total is the charges of the batches of its hours, on every page
      const part = `/v1/accounts/${acc}/statements?from=${encodeURIComponent(new Date(h0 + HOUR).toISOString().replace('Z', '+00:00'))}&to=${iso(3)}`;
      const expected = await ledgerOf([1, 2]);
      expect(expected).toBeGreaterThan(0n);
      const seen: any[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await get(`${part}&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
        expect(r.status).toBe(200);
        expect(r.body.total).toBe(formatAmount(expected));
        seen.push(...r.body.lines);
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor);
      expect(seen).toEqual(lines.filter((l: any) => l.hour >= iso(1).replace('.000Z', 'Z') && l.hour < iso(3).replace('.000Z', 'Z')));
      expect(pages).toBe(Math.ceil(seen.length / 4));
      expect(seen.reduce((t: bigint, l: any) => t + parseAmount(l.amount), 0n)).toBe(expected);
      // the usage-hourly CSV carries the same actions and amounts
      const csv = await fetch(`${stack.billingUrl}/v1/exports/usage-hourly.csv?from=${iso(0)}&to=${iso(5)}&accountId=${acc}`, {
        headers: { authorization: `Bearer ${stack.config.adminToken}` },
      });
      const [header, ...rows] = (await csv.text()).trimEnd().split('\r\n').map((x) => x.split(','));
      expect(header.slice(-2)).toEqual(['action', 'amount']);
      expect(new Set(rows.map((x) => x[10]))).toEqual(new Set(['SendMessage', 'BatchSendMessage', 'ReceiveMessage', 'BatchDeleteMessage', 'DeleteMessage', 'ListQueue']));
      expect(rows.reduce((t, x) => t + parseAmount(x[11]), 0n)).toBe(parseAmount(whole.body.total));
      // keyset pages over the key with the action (several actions of a class in an hour): nothing lost or repeated
      const filter = { from: iso(0), to: iso(5), accountId: acc };
      const paged = await streamText(exportCsv(stack.db as unknown as Pool, 'usage_hourly', filter, { pageRows: 3 }));
      expect(paged).toBe(await streamText(exportCsv(stack.db as unknown as Pool, 'usage_hourly', filter)));
      expect(paged.split('\r\n').length - 2).toBe(rows.length);

      for (const bad of [`from=${iso(0)}`, `from=${iso(0)}&to=${new Date(h0 + 90 * 60_000).toISOString()}`, `from=${iso(3)}&to=${iso(1)}`, `from=${iso(0)}&to=${iso(5)}&limit=5000`]) {
        const r = await get(`/v1/accounts/${acc}/statements?${bad}`);
        expect(r.status).toBe(400);
        expect(JSON.stringify(r.body)).toMatch(/to is required|whole hour|from must be before to|limit must be an integer/);
      }
    });
  });
});
