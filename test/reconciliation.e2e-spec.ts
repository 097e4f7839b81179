import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { loadConfigWith } from '@app/config';
import { PgPool, runMigrations } from '@app/db';
import { formatAmount, LedgerService, Nano, parseAmount, PlanCatalog, roundHalfUp, UsageApplier, UsageRecord } from '@app/billing';
import { parseCsv, scratchDatabase, TestStack, TestTenant } from '@app/testing';

/**
 * Finance reconciliation (issue: "the sum of the bills' totals = the sum of usage charges in the
 * ledger = the CSV export totals = the API totals, to the minor unit"). A month of activity on a
 * database of its own: accounts made through the API, on the default plan and on a graduated
 * plan with a free quota made through the API, usage in every hour of the month so far in two
 * regions and every action class (applied batch by batch as the worker applies them, and
 * through the usage-events ingest), top-ups, an adjustment, vouchers that pay part of the usage.
 * The month is closed through the API; then every figure finance can get is compared, in nano.
 */
describe('reconciliation: bills = ledger usage charges = CSV totals = API totals, to the nano', () => {
  const TZ = 'Asia/Shanghai';
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let stack: TestStack;
  let applier: UsageApplier;
  let ledger: LedgerService;
  let now = Date.now();
  const clock = { now: () => now };
  let MONTH: string;
  let NEXT: string;
  let monthStart: number;
  let nextStart: number;
  const tenants: TestTenant[] = [];

  const http = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(stack.billingUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${stack.config.adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, text, body: type.includes('json') && text ? JSON.parse(text) : undefined };
  };
  const ok = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await http(method, path, body, headers);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r;
  };
  /** A CSV download as records keyed by its header. */
  const csv = async (path: string) => {
    const [header, ...rows] = parseCsv((await ok('GET', path)).text);
    return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
  };
  const sum = (xs: Nano[]) => xs.reduce((a, b) => a + b, 0n);
  const nanoOf = async (sql: string, params: unknown[] = []) => BigInt((await pool.query(sql, params)).rows[0].s ?? 0);

  beforeAll(async () => {
    db = await scratchDatabase();
    const overrides = { DATABASE_URL: db.url, BILLING_TIME_ZONE: TZ, REGIONS: 'gz,hk' };
    const config = loadConfigWith(overrides);
    await runMigrations(config);
    pool = new Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    const pg = pool as unknown as PgPool;
    ledger = new LedgerService(pg);
    applier = new UsageApplier(config, pg, new PlanCatalog(pg), ledger);
    const { rows } = await pool.query(
      `SELECT to_char(now() AT TIME ZONE $1, 'YYYY-MM') AS month,
              to_char((now() AT TIME ZONE $1) + interval '1 month', 'YYYY-MM') AS next,
              extract(epoch FROM date_trunc('month', now() AT TIME ZONE $1) AT TIME ZONE $1) * 1000 AS start,
              extract(epoch FROM (date_trunc('month', now() AT TIME ZONE $1) + interval '1 month') AT TIME ZONE $1) * 1000 AS next_start`,
      [TZ],
    );
    MONTH = rows[0].month;
    NEXT = rows[0].next;
    monthStart = Number(rows[0].start);
    nextStart = Number(rows[0].next_start);
    stack = await TestStack.start(overrides, { clock });

    for (let i = 0; i < 6; i++) tenants.push(await stack.tenant(`recon-${i}`));
    const ids = tenants.map((t) => t.accountId);
    // a graduated plan with a free quota from the next hour, for two of them: the month mixes
    // both plans, as a mid-month change does
    const nextHour = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000;
    const plan = await ok(
      'POST',
      '/v1/plans',
      {
        code: `recon-${randomUUID().slice(0, 8)}`,
        currency: 'CNY',
        meteringRule: 'size_bands',
        regions: ['gz', 'hk'],
        effectiveFrom: new Date(nextHour).toISOString(),
        reason: 'reconciliation spec',
        lines: [{ meter: 'calls', freeQuota: '100000', tiers: [{ upTo: '2000000', perMillion: '1.70' }, { upTo: null, perMillion: '1.3333333' }] }],
      },
      { 'x-operator': 'finance@test' },
    );
    for (const id of ids.slice(0, 2)) await ok('PUT', `/v1/accounts/${id}/plans/gz`, { plan: plan.body.code, reason: 'contract' });
    // money: top-ups for all but the last (it runs into arrears), an adjustment, vouchers that pay part of the usage
    for (const [i, id] of ids.entries()) {
      if (i < 5) await ok('POST', `/v1/accounts/${id}/topups`, { amount: `${50 + i}.00` }, { 'idempotency-key': `recon-top-${i}` });
    }
    await ok('POST', `/v1/accounts/${ids[2]}/adjustments`, { amount: '-0.333333333', reason: 'correction, with a comma' }, { 'idempotency-key': 'recon-adj' });
    await ledger.post({ accountId: ids[3], kind: 'voucher_grant', voucherDelta: parseAmount('0.05'), idempotencyKey: `recon-voucher:${ids[3]}`, request: {} });

    // usage in every hour of the month so far, in batches as the worker applies them
    const hours = Math.max(1, Math.floor((Date.now() - monthStart) / 3_600_000));
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor(seed / 65_536) % n;
    };
    const actions = ['SendMessage', 'BatchSendMessage', 'ReceiveMessage', 'BatchReceiveMessage', 'DeleteMessage', 'BatchDeleteMessage', 'CreateQueue', 'ListQueue'];
    const record = (accountId: string, hour: number): UsageRecord => {
      const calls = 1 + rand(5_000);
      const action = actions[rand(actions.length)];
      const billable = action === 'CreateQueue' || action === 'ListQueue' ? 0 : calls * (1 + rand(3));
      return {
        accountId,
        region: ['gz', 'hk'][rand(2)],
        resource: `q${rand(3)}`,
        action,
        outcome: 'ok',
        calls,
        messages: calls,
        bytesIn: calls * 100,
        bytesOut: 0,
        billable: { size_bands: billable, per_64k: billable },
        at: monthStart + hour * 3_600_000 + rand(3_600_000),
      };
    };
    let batch = 0;
    for (let h = 0; h < hours; h += 6) {
      const records: UsageRecord[] = [];
      for (let k = 0; k < 30; k++) records.push(record(ids[rand(ids.length)], Math.min(hours - 1, h + rand(6))));
      await applier.apply(`recon-batch-${batch++}`, records);
    }
    // the two on the graduated plan, in the next hour (while it is still this month), past the
    // free quota and into the second tier, over several batches
    if (nextHour < nextStart) {
      for (let b = 0; b < 4; b++) {
        const records = ids.slice(0, 2).flatMap((id) =>
          Array.from({ length: 5 }, () => ({ ...record(id, 0), region: 'gz', action: 'SendMessage', billable: { size_bands: 150_000, per_64k: 150_000 }, at: nextHour + rand(3_600_000) })),
        );
        await applier.apply(`recon-tiered-${b}`, records);
      }
    }
    // and usage from elsewhere through the ingest endpoint
    const events = Array.from({ length: 200 }, (_, i) => ({
      id: `recon-ev-${i}`,
      accountId: ids[i % ids.length],
      region: 'gz',
      action: 'SendMessage',
      billableCalls: 1 + (i % 7) * 1_000,
      resource: 'pushed',
      time: new Date(monthStart + (i % hours) * 3_600_000 + 1_000).toISOString(),
    }));
    await ok('POST', '/v1/usage-events', { events });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    await pool?.end();
    await db?.drop();
  });

  it('closes the month and every total finance can get agrees to the nano', async () => {
    const ids = tenants.map((t) => t.accountId);
    now = nextStart + 10 * 60_000;
    const close = await ok('POST', `/v1/bills/${MONTH}/close`, undefined, { 'x-operator': 'finance@test' });
    expect(close.body).toMatchObject({ month: MONTH, closed: true, accounts: ids.length });

    // 1. the ledger: every usage charge of the month (nothing late here: all of it is this month's)
    const ledgerUsage = await nanoOf(
      `SELECT -sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE kind = 'usage_charge' AND created_at >= $1 AND created_at < $2`,
      [new Date(monthStart), new Date(nextStart)],
    );
    expect(ledgerUsage).toBeGreaterThan(parseAmount('1.00'));
    // the graduated plan priced its accounts' usage past the free quota and into its second tier
    const tiered = await pool.query(
      `SELECT m.billable_calls::bigint AS calls FROM usage_monthly m JOIN price_plans p ON p.id = m.plan_id WHERE p.code LIKE 'recon-%' AND m.charged_nano > 0`,
    );
    if (Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000 < nextStart) {
      expect(tiered.rows.map((r) => Number(r.calls) > 2_000_000)).toEqual([true, true]);
    }
    expect(await nanoOf(`SELECT -sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE kind = 'usage_charge'`)).toBe(ledgerUsage);

    // 2. the bills as stored
    const billsTotal = await nanoOf(`SELECT sum(total_nano) AS s FROM bills WHERE month = $1::date`, [`${MONTH}-01`]);
    expect(billsTotal).toBe(ledgerUsage);

    // 3. the API: each account's bill, its lines, its statements and its daily usage
    const apiBills: Nano[] = [];
    const apiLines: Nano[] = [];
    const apiStatements: Nano[] = [];
    const apiUsage: Nano[] = [];
    const dayFrom = new Date(monthStart).toISOString();
    const dayTo = new Date(nextStart).toISOString();
    for (const id of ids) {
      const bill = (await ok('GET', `/v1/accounts/${id}/bills/${MONTH}`)).body;
      apiBills.push(parseAmount(bill.total));
      apiLines.push(sum(bill.lines.map((l: { amount: string }) => parseAmount(l.amount))));
      expect(bill.amountDue).toBe(formatAmount(roundHalfUp(parseAmount(bill.total)), 2));
      expect(parseAmount(bill.usageTotal)).toBe(parseAmount(bill.vouchersUsed) + parseAmount(bill.cashCharged));
      const statements = (await ok('GET', `/v1/accounts/${id}/statements?from=${encodeURIComponent(dayFrom)}&to=${encodeURIComponent(dayTo)}&limit=1`)).body;
      apiStatements.push(parseAmount(statements.total));
      let cursor: string | null = null;
      const amounts: Nano[] = [];
      do {
        const page: { body: { usage: Array<{ amount: string }>; nextCursor: string | null } } = await ok(
          'GET',
          `/v1/accounts/${id}/usage?granularity=day&groupBy=none&from=${encodeURIComponent(dayFrom)}&to=${encodeURIComponent(dayTo)}&limit=7${cursor ? `&cursor=${cursor}` : ''}`,
        );
        amounts.push(...page.body.usage.map((r) => parseAmount(r.amount)));
        cursor = page.body.nextCursor;
      } while (cursor);
      apiUsage.push(sum(amounts));
      // per account, too: its bill is its usage charges
      const own = await nanoOf(`SELECT -sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE kind = 'usage_charge' AND account_id = $1`, [id]);
      expect([id, apiBills[apiBills.length - 1]]).toEqual([id, own]);
      expect([id, apiStatements[apiStatements.length - 1]]).toEqual([id, own]);
    }
    expect(sum(apiBills)).toBe(ledgerUsage);
    expect(sum(apiLines)).toBe(ledgerUsage);
    expect(sum(apiStatements)).toBe(ledgerUsage);
    expect(sum(apiUsage)).toBe(ledgerUsage);

    // 4. the finance CSVs: bills, bill lines, the ledger and hourly usage
    const bills = await csv(`/v1/exports/bills.csv?from=${MONTH}&to=${NEXT}`);
    expect(bills).toHaveLength(ids.length);
    expect(sum(bills.map((b) => parseAmount(b.total)))).toBe(ledgerUsage);
    expect(sum(bills.map((b) => parseAmount(b.usage_total)))).toBe(ledgerUsage);
    const lines = await csv(`/v1/exports/bill-lines.csv?from=${MONTH}&to=${NEXT}`);
    expect(sum(lines.map((l) => parseAmount(l.amount)))).toBe(ledgerUsage);
    const entries = await csv(`/v1/exports/ledger.csv?from=${encodeURIComponent(dayFrom)}&to=${encodeURIComponent(new Date(now).toISOString())}`);
    const usageEntries = entries.filter((e) => e.kind === 'usage_charge');
    expect(-sum(usageEntries.map((e) => parseAmount(e.cash_delta) + parseAmount(e.voucher_delta)))).toBe(ledgerUsage);
    const hourly = await csv(`/v1/exports/usage-hourly.csv?from=${encodeURIComponent(dayFrom)}&to=${encodeURIComponent(dayTo)}`);
    expect(sum(hourly.map((h) => parseAmount(h.amount)))).toBe(ledgerUsage);

    // the amounts due and their rounding entries: bill and ledger agree on what is owed
    const roundings = await nanoOf(`SELECT sum(cash_delta_nano) AS s FROM ledger_entries WHERE kind = 'rounding'`);
    const due = sum(bills.map((b) => parseAmount(b.amount_due)));
    expect(due).toBe(ledgerUsage - roundings);
    expect(sum(bills.map((b) => parseAmount(b.rounding)))).toBe(-roundings);
    // and every bill's closing balance is the ledger's balance at the month's end
    for (const b of bills) {
      const balance = await nanoOf(`SELECT sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE account_id = $1`, [b.account_id]);
      expect([b.account_id, parseAmount(b.closing_balance)]).toEqual([b.account_id, balance]);
    }
  });
});
