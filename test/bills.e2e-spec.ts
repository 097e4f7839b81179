import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import { loadConfigWith } from '@app/config';
import { PgPool, runMigrations } from '@app/db';
import { actionClass, Bill, BillClose, formatAmount, LedgerService, NANO_PER_UNIT, parseAmount, PlanCatalog, roundHalfUp, UsageApplier, UsageRecord } from '@app/billing';
import { expectEventually, scratchDatabase, TestStack } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';
import { BillsController } from '../apps/billing-api/src/bills/bills.controller';

/** A copy of a scratch database (no one may be connected to it meanwhile). */
async function copyOf(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const source = new URL(url).pathname.slice(1);
  const name = `${source}_copy`;
  const run = async (sql: string) => {
    const c = new Client({ connectionString: process.env.CMQ_TEST_ADMIN_DATABASE_URL! });
    await c.connect();
    await c.query(sql);
    await c.end();
  };
  await run(`CREATE DATABASE ${name} TEMPLATE ${source}`);
  const copy = new URL(url);
  copy.pathname = `/${name}`;
  return { url: copy.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Monthly bills on a database of their own (the close bills every account there is). The ledger's
 * created_at is the database's now(), so the month under test is the one that holds "now" in
 * the billing zone; the close's clock is a test clock set past that month's end.
 */
describe('monthly bills: reconciliation to the nano, idempotent and resumable close, late usage', () => {
  const TZ = 'Asia/Shanghai';
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let ledger: LedgerService;
  let applier: UsageApplier;
  let bills: BillClose;
  let api: BillsController;
  let stack: TestStack;
  let copy: { url: string; drop: () => Promise<void> };
  let copyPool: Pool;
  let copyBills: BillClose;
  /** the internal API over HTTP (the billing-api on the scratch database, with the test clock) */
  const http = async (method: string, path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(stack.billingUrl + path, { method, headers: { authorization: `Bearer ${stack.config.adminToken}`, ...headers } });
    return { status: res.status, body: (await res.json()) as any };
  };
  let now = Date.now();
  const clock = { now: () => now };
  let MONTH: string;
  let NEXT: string;
  let nextStart: number;
  let afterNextStart: number;
  const ids = Array.from({ length: 5 }, () => randomUUID()).sort();

  const record = (accountId: string, region: string, action: string, calls: number, at: number): UsageRecord => ({
    accountId,
    region,
    resource: 'q1',
    action,
    outcome: 'ok',
    calls,
    messages: calls,
    bytesIn: 0,
    bytesOut: 0,
    billable: { size_bands: calls, per_64k: calls },
    at,
  });
  const ledgerCount = async () => Number((await pool.query(`SELECT count(*) AS n FROM ledger_entries`)).rows[0].n);
  const billRows = async (month: string) =>
    (await pool.query(`SELECT * FROM bills WHERE month = $1::date ORDER BY account_id`, [`${month}-01`])).rows.map((r) => ({ ...r, created_at: undefined }));
  const lineRows = async (month: string) =>
    (await pool.query(`SELECT * FROM bill_lines WHERE month = $1::date ORDER BY account_id, usage_month, region, action_class`, [`${month}-01`])).rows;
  const sumOf = async (sql: string, params: unknown[] = []) => BigInt((await pool.query(sql, params)).rows[0].s ?? 0);

  beforeAll(async () => {
    db = await scratchDatabase();
    const config = loadConfigWith({ DATABASE_URL: db.url, BILLING_TIME_ZONE: TZ });
    await runMigrations(config);
    const connect = () => {
      pool = new Pool({ connectionString: db.url, max: 6 });
      pool.on('error', () => undefined);
      const pg = pool as unknown as PgPool;
      ledger = new LedgerService(pg);
      applier = new UsageApplier(config, pg, new PlanCatalog(pg), ledger);
      bills = new BillClose(config, pg, ledger, clock);
      api = new BillsController(bills);
    };
    connect();
    const { rows } = await pool.query(
      `SELECT to_char(now() AT TIME ZONE $1, 'YYYY-MM') AS month,
              to_char((now() AT TIME ZONE $1) + interval '1 month', 'YYYY-MM') AS next,
              extract(epoch FROM (date_trunc('month', now() AT TIME ZONE $1) + interval '1 month') AT TIME ZONE $1) * 1000 AS next_start,
              extract(epoch FROM (date_trunc('month', now() AT TIME ZONE $1) + interval '2 months') AT TIME ZONE $1) * 1000 AS after_next_start,
              extract(epoch FROM date_trunc('month', now() AT TIME ZONE $1) AT TIME ZONE $1) * 1000 AS start`,
      [TZ],
    );
    MONTH = rows[0].month;
    NEXT = rows[0].next;
    nextStart = Number(rows[0].next_start);
    afterNextStart = Number(rows[0].after_next_start);
    const monthStart = Number(rows[0].start);

    for (const [i, id] of ids.entries()) {
      await pool.query(`INSERT INTO accounts (id, name, region, created_at) VALUES ($1, $2, 'gz', '2026-01-01T00:00:00Z')`, [id, `bill-${i}-${id.slice(0, 6)}`]);
    }
    // a month of activity: top-ups, usage in two regions and several action classes, an adjustment, an SLA credit
    for (const [i, id] of ids.entries()) {
      if (i !== 4) await ledger.post({ accountId: id, kind: 'topup', cashDelta: parseAmount(`${100 + i}.00`), idempotencyKey: `t-top:${id}`, request: { i } });
    }
    await ledger.post({
      accountId: ids[0],
      kind: 'voucher_grant',
      voucherDelta: parseAmount('0.0123'),
      idempotencyKey: `t-sla:${ids[0]}`,
      request: {},
      meta: { sla: { month: '2026-10', revision: 1 } },
    });
    await ledger.post({ accountId: ids[1], kind: 'adjustment', cashDelta: parseAmount('-1.234567891'), idempotencyKey: `t-adj:${ids[1]}`, request: {}, reason: 'test' });
    const hours = Math.max(1, Math.floor((Date.now() - monthStart) / 3_600_000));
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor(seed / 65_536) % n;
    };
    for (let b = 0; b < 12; b++) {
      const records: UsageRecord[] = [];
      for (let k = 0; k < 40; k++) {
        const id = ids[rand(4)]; // account 4: no usage, no top-up (an account whose balance stays 0 gets no bill)
        const at = Date.now() - (1 + rand(Math.min(hours, 24 * 10))) * 3_600_000 + rand(3_000_000);
        records.push(record(id, ['gz', 'hk'][rand(2)], ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'CreateQueue'][rand(4)], 1 + rand(97_531), Math.max(at, monthStart)));
      }
      await applier.apply(`t-batch-${b}`, records);
    }
    await pool.query(`INSERT INTO balances (account_id) VALUES ($1) ON CONFLICT DO NOTHING`, [ids[4]]);
    // an identical copy of the data, closed without interruption to compare with
    await pool.end();
    copy = await copyOf(db.url);
    copyPool = new Pool({ connectionString: copy.url, max: 2 });
    copyPool.on('error', () => undefined);
    const copyPg = copyPool as unknown as PgPool;
    copyBills = new BillClose(config, copyPg, new LedgerService(copyPg), clock);
    connect();
    stack = await TestStack.start({ DATABASE_URL: db.url, BILLING_TIME_ZONE: TZ }, { clock });
  }, 120_000);

  afterAll(async () => {
    await copyPool?.end();
    await copy?.drop();
    await stack?.stop();
    await pool?.end();
    await db?.drop();
  });

  it('the worker closes the month BILL_CLOSE_DELAY_SECONDS (300) after it ends in the billing zone', () => {
    now = nextStart + 60_000;
    expect(bills.monthToClose()).not.toBe(MONTH);
    now = nextStart + 301_000;
    expect(bills.monthToClose()).toBe(MONTH);
  });

  it('refuses a month that has not ended', async () => {
    now = Date.now();
    await expect(bills.close(MONTH)).rejects.toThrow(/has not ended/);
    await expect(api.close(MONTH, 'ops@test')).rejects.toMatchObject({ status: 409 });
    expect((await http('POST', `/v1/bills/${MONTH}/close`, { 'x-operator': 'ops@test' })).status).toBe(409);
    expect((await http('POST', `/v1/bills/${MONTH}/close`)).status).toBe(400); // no X-Operator
    expect((await http('POST', `/v1/bills/2026-13/close`, { 'x-operator': 'ops@test' })).status).toBe(400);
    expect((await fetch(`${stack.billingUrl}/v1/accounts/${ids[0]}/bills`)).status).toBe(401);
  });

  it('an interrupted close resumes to the figures the ledger gives, reconciled to the nano', async () => {
    now = nextStart + 10 * 60_000;
    const entriesBefore = await ledgerCount();
    // independent figures, from the ledger as it is before the close
    const expected = new Map<string, { usage: bigint; topups: bigint; sla: bigint; adj: bigint; vouchersUsed: bigint; balance: bigint }>();
    for (const id of ids) {
      const q = (where: string, col = 'cash_delta_nano + voucher_delta_nano') =>
        sumOf(`SELECT sum(${col}) AS s FROM ledger_entries WHERE account_id = $1 AND ${where}`, [id]);
      expected.set(id, {
        usage: -(await q(`kind = 'usage_charge'`)),
        topups: await q(`kind = 'topup'`),
        sla: await q(`kind = 'voucher_grant'`, 'voucher_delta_nano'),
        adj: await q(`kind = 'adjustment'`),
        vouchersUsed: -(await q(`kind = 'usage_charge'`, 'voucher_delta_nano')),
        balance: await q('true'),
      });
    }
    await expect(
      bills.close(MONTH, {
        pageSize: 2,
        afterPage: (p) => {
          if (p === 1) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(await bills.isClosed(MONTH)).toBe(false);
    expect((await billRows(MONTH)).length).toBeGreaterThan(0);
    const r = await bills.close(MONTH, { pageSize: 2 });
    expect(r.closed).toBe(true);
    expect(await bills.isClosed(MONTH)).toBe(true);

    const stored = await billRows(MONTH);
    // the same bills, lines and rounding entries as an uninterrupted close of an identical copy
    expect((await copyBills.close(MONTH, { pageSize: 500 })).closed).toBe(true);
    const copied = async (sql: string) => (await copyPool.query(sql, [`${MONTH}-01`])).rows.map((r) => ({ ...r, created_at: undefined }));
    expect(await copied(`SELECT * FROM bills WHERE month = $1::date ORDER BY account_id`)).toEqual(stored);
    expect(await copied(`SELECT * FROM bill_lines WHERE month = $1::date ORDER BY account_id, usage_month, region, action_class`)).toEqual(
      await lineRows(MONTH),
    );
    const roundingOf = async (p: Pool) =>
      (await p.query(`SELECT idempotency_key, cash_delta_nano FROM ledger_entries WHERE kind = 'rounding' ORDER BY idempotency_key`)).rows;
    expect(await roundingOf(copyPool)).toEqual(await roundingOf(pool));
    expect(stored.map((b) => b.account_id)).toEqual(ids.slice(0, 4)); // account 4: no activity, no balance
    let totals = 0n;
    let rounding = 0n;
    for (const id of ids.slice(0, 4)) {
      const bill = (await bills.get(id, MONTH)) as Bill;
      const e = expected.get(id)!;
      expect(bill.usageTotal).toBe(e.usage);
      expect(bill.total).toBe(e.usage);
      expect(bill.topups).toBe(e.topups);
      expect(bill.slaCredits).toBe(e.sla);
      expect(bill.adjustments).toBe(e.adj);
      expect(bill.vouchersUsed).toBe(e.vouchersUsed);
      expect(bill.vouchersUsed + bill.cashCharged).toBe(bill.usageTotal);
      expect(bill.openingBalance).toBe(0n);
      expect(bill.lateUsage).toBe(0n);
      // closing = opening + movements, and the ledger (with the rounding entry) agrees
      expect(bill.closingBalance).toBe(bill.openingBalance + bill.topups - bill.usageTotal + bill.slaCredits + bill.otherVouchers + bill.adjustments + bill.refunds - bill.rounding);
      const bal = await ledger.balance(id);
      expect(bal.cash + bal.vouchers).toBe(bill.closingBalance);
      expect(bill.closingBalance).toBe(e.balance - bill.rounding);
      // the amount due: the exact total rounded half-up, the rounding entry makes it exact
      expect(parseAmount(bill.amountDue)).toBe(roundHalfUp(bill.total));
      expect(bill.total + bill.rounding).toBe(parseAmount(bill.amountDue));
      expect(parseAmount(bill.amountDue) % (NANO_PER_UNIT / 100n)).toBe(0n);
      const roundingEntry = await sumOf(`SELECT sum(cash_delta_nano) AS s FROM ledger_entries WHERE idempotency_key = $1`, [`bill-rounding:${id}:${MONTH}`]);
      expect(roundingEntry).toBe(-bill.rounding);
      // lines: by region and action class, summing to the usage; by region equal to the month's rating
      expect(bill.lines!.length).toBeGreaterThan(1);
      expect(bill.lines!.reduce((s, l) => s + l.amount, 0n)).toBe(bill.usageTotal);
      for (const region of ['gz', 'hk']) {
        const rated = await sumOf(`SELECT sum(charged_nano) AS s FROM usage_monthly WHERE account_id = $1 AND region = $2`, [id, region]);
        expect(bill.lines!.filter((l) => l.region === region).reduce((s, l) => s + l.amount, 0n)).toBe(rated);
      }
      const calls = await sumOf(`SELECT sum(calls) AS s FROM usage_hourly WHERE account_id = $1`, [id]);
      expect(bill.lines!.reduce((s, l) => s + l.calls, 0n)).toBe(calls);
      // the API says the same, as decimal strings
      const { status, body: view } = await http('GET', `/v1/accounts/${id}/bills/${MONTH}`);
      expect(status).toBe(200);
      expect(view.total).toBe(formatAmount(bill.total));
      expect(view.amountDue).toBe(bill.amountDue);
      expect(view.closingBalance).toBe(formatAmount(bill.closingBalance));
      expect(view.lines.length).toBe(bill.lines!.length);
      expect(view.lines.reduce((t: bigint, l: { amount: string }) => t + parseAmount(l.amount), 0n)).toBe(bill.usageTotal);
      totals += parseAmount(view.total);
      rounding += bill.rounding;
    }
    const usageInLedger = -(await sumOf(`SELECT sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE kind = 'usage_charge'`));
    expect(totals).toBe(usageInLedger);
    expect(r.totalNano).toBe(usageInLedger);
    // only the rounding entries were added to the ledger
    const roundings = Number((await pool.query(`SELECT count(*) AS n FROM ledger_entries WHERE kind = 'rounding'`)).rows[0].n);
    expect(await ledgerCount()).toBe(entriesBefore + roundings);
    expect(roundings).toBe(stored.filter((b) => b.rounding_nano !== '0').length);
    expect(roundings).toBeGreaterThan(0);
    expect(rounding).toBe(stored.reduce((s, b) => s + BigInt(b.rounding_nano), 0n));
    expect((await ledger.reconcile()).length).toBe(0);
  });

  it('a second close (and a re-run of every page) changes nothing', async () => {
    const before = { bills: await billRows(MONTH), lines: await lineRows(MONTH), entries: await ledgerCount() };
    expect((await bills.close(MONTH)).closed).toBe(false);
    // as if the process died after the last page and before the month was marked closed
    await pool.query(`UPDATE bill_closes SET closed_at = NULL WHERE month = $1::date`, [`${MONTH}-01`]);
    expect((await bills.close(MONTH, { pageSize: 3 })).closed).toBe(true);
    expect(await billRows(MONTH)).toEqual(before.bills);
    expect(await lineRows(MONTH)).toEqual(before.lines);
    expect(await ledgerCount()).toBe(before.entries);
    const close = await http('POST', `/v1/bills/${MONTH}/close`, { 'x-operator': 'ops@test' });
    expect(close).toEqual({ status: 200, body: { month: MONTH, closed: false, accounts: 0, total: '0.00' } });
    expect(await ledgerCount()).toBe(before.entries);
  });

  it('usage that arrives after the close is a late line in the next month; the closed bill stays', async () => {
    const frozen = { bills: await billRows(MONTH), lines: await lineRows(MONTH) };
    const id = ids[2];
    const prev = (await bills.get(id, MONTH))!;
    await applier.apply('t-late', [record(id, 'gz', 'SendMessage', 12_345, nextStart - 2 * 3_600_000)]);
    const late = -(await sumOf(`SELECT sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE idempotency_key LIKE 'usage:t-late:%'`));
    expect(late).toBeGreaterThan(0n);
    now = afterNextStart + 10 * 60_000;
    const r = await bills.close(NEXT);
    expect(r.closed).toBe(true);
    expect(await billRows(MONTH)).toEqual(frozen.bills);
    expect(await lineRows(MONTH)).toEqual(frozen.lines);
    const bill = (await bills.get(id, NEXT))!;
    expect(bill.openingBalance).toBe(prev.closingBalance);
    expect(bill.lateUsage).toBe(late);
    expect(bill.usageTotal).toBe(late);
    expect(bill.lines!.filter((l) => l.late)).toEqual([
      { usageMonth: MONTH, region: 'gz', actionClass: actionClass('SendMessage'), calls: 12_345n, billableCalls: 12_345n, amount: late, late: true },
    ]);
    expect(bill.lines!.reduce((t, l) => t + l.amount, 0n)).toBe(bill.usageTotal);
    expect(bill.closingBalance).toBe(prev.closingBalance - late - bill.rounding);
    const bal = await ledger.balance(id);
    expect(bal.cash + bal.vouchers).toBe(bill.closingBalance);
    // accounts without activity carry their balance into a bill of their own
    const quiet = (await bills.get(ids[0], NEXT))!;
    expect(quiet.openingBalance).toBe(quiet.closingBalance);
    // months close in order: not one before the last closed, not one with the month before it open
    const { rows: around } = await pool.query(
      `SELECT to_char(($1::date - interval '1 month'), 'YYYY-MM') AS before, to_char(($1::date + interval '3 months'), 'YYYY-MM') AS after_next`,
      [`${MONTH}-01`],
    );
    await expect(bills.close(around[0].before)).rejects.toThrow(/in order/);
    now = afterNextStart + 95 * 24 * 3_600_000;
    await expect(bills.close(around[0].after_next)).rejects.toThrow(/in order/);
    expect((await http('POST', `/v1/bills/${around[0].after_next}/close`, { 'x-operator': 'ops@test' })).status).toBe(409);
    now = afterNextStart + 10 * 60_000;
    // all bills together: exactly the usage in the ledger
    const allTotals = await sumOf(`SELECT sum(total_nano) AS s FROM bills`);
    expect(allTotals).toBe(-(await sumOf(`SELECT sum(cash_delta_nano + voucher_delta_nano) AS s FROM ledger_entries WHERE kind = 'usage_charge'`)));
    // the list, newest first, with a cursor
    const page1 = (await http('GET', `/v1/accounts/${id}/bills?limit=1`)).body;
    expect(page1.bills.map((b: { month: string }) => b.month)).toEqual([NEXT]);
    const page2 = (await http('GET', `/v1/accounts/${id}/bills?limit=1&cursor=${page1.nextCursor}`)).body;
    expect(page2.bills.map((b: { month: string }) => b.month)).toEqual([MONTH]);
    expect(page2.nextCursor).toBeNull();
    expect((await http('GET', `/v1/accounts/${id}/bills?limit=0`)).status).toBe(400);
    const unknown = await http('GET', `/v1/accounts/${randomUUID()}/bills`);
    expect([unknown.status, unknown.body.detail]).toEqual([404, expect.stringMatching(/^account .* does not exist$/)]);
    expect((await http('GET', `/v1/accounts/${ids[4]}/bills`)).body).toEqual({ bills: [], nextCursor: null }); // known, never billed
    expect((await http('GET', `/v1/accounts/${ids[4]}/bills/${MONTH}`)).status).toBe(404);
    // the API's totals over all bills: the ledger's usage, to the nano
    let apiTotal = 0n;
    for (const a of ids) {
      for (const b of (await http('GET', `/v1/accounts/${a}/bills?limit=100`)).body.bills) apiTotal += parseAmount(b.total);
    }
    expect(apiTotal).toBe(allTotals);
  });
  it('the worker closes the next month on its own, shortly after it ends', async () => {
    const { rows } = await pool.query(
      `SELECT to_char(($1::date + interval '2 months'), 'YYYY-MM') AS m,
              extract(epoch FROM (($1::date + interval '3 months')::timestamp AT TIME ZONE $2)) * 1000 AS ends`,
      [`${MONTH}-01`, TZ],
    );
    const month = rows[0].m as string;
    now = Number(rows[0].ends) + 301_000; // BILL_CLOSE_DELAY_SECONDS (300) after its end
    const config = loadConfigWith({
      DATABASE_URL: db.url,
      BILLING_TIME_ZONE: TZ,
      REDIS_PREFIX: `bills-spec-${randomUUID().slice(0, 8)}`, // a queue of its own: no other worker takes the job
      SLA_CLOSE_CHECK_MS: '200',
      SWEEP_INTERVAL_MS: '600000',
    });
    const worker = await createWorker(config, { clock });
    await worker.listen(0, '127.0.0.1');
    try {
      await expectEventually(async () => expect(await bills.isClosed(month)).toBe(true), 20_000, 200);
    } finally {
      await worker.close();
    }
    const prev = (await bills.get(ids[0], NEXT))!;
    const bill = (await bills.get(ids[0], month))!;
    expect(bill.openingBalance).toBe(prev.closingBalance);
    expect(bill.closingBalance).toBe(prev.closingBalance);
    expect(bill.usageTotal).toBe(0n);
  }, 60_000);
});
