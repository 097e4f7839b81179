import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Pool } from 'pg';
import { loadConfigWith } from '@app/config';
import { PgPool, runMigrations } from '@app/db';
import { BillClose, formatAmount, LedgerService, parseAmount, PlanCatalog, UsageApplier, UsageRecord } from '@app/billing';
import { BILL_LINES_CSV_COLUMNS, BILLS_CSV_COLUMNS, exportCsv } from '@app/billing/exports';
import { expectEventually, parseCsv, scratchDatabase, TestStack } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

/**
 * Finance CSVs of monthly bills and bill lines (billing.md §6) over a range of billing months:
 * every bill and line of the range once, in the documented columns, exactly the API's figures
 * (so their totals are the API's to the nano), the BOM only when asked, bad ranges refused with
 * their reason, and export jobs of both kinds run by the worker into files equal to the
 * downloads. A database of its own: a month close bills every account there is.
 */

const streamText = async (s: NodeJS.ReadableStream) => {
  let text = '';
  for await (const c of s) text += typeof c === 'string' ? c : (c as Buffer).toString('utf8');
  return text;
};

describe('finance CSVs of monthly bills and bill lines', () => {
  const TZ = 'Asia/Shanghai';
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let stack: TestStack;
  let worker: NestFastifyApplication | null = null;
  let exportDir: string;
  let overrides: Record<string, string>;
  let now = Date.now();
  const clock = { now: () => now };
  let MONTH: string;
  let NEXT: string;
  let AFTER: string;
  const ids = Array.from({ length: 4 }, () => randomUUID()).sort();

  const get = async (path: string) => {
    const res = await fetch(stack.billingUrl + path, { headers: { authorization: `Bearer ${stack.config.adminToken}` } });
    const buf = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, buf, text: buf.toString('utf8') };
  };
  /** Every bill of the API for the accounts, with its lines, as the API shows them. */
  const apiBills = async () => {
    const out: any[] = [];
    for (const id of ids) {
      for (const b of (await stack.admin('GET', `/v1/accounts/${id}/bills?limit=100`)).body.bills) {
        out.push((await stack.admin('GET', `/v1/accounts/${id}/bills/${b.month}`)).body);
      }
    }
    return out;
  };

  beforeAll(async () => {
    db = await scratchDatabase();
    exportDir = mkdtempSync(join(tmpdir(), 'cmq-bill-exports-'));
    overrides = { DATABASE_URL: db.url, BILLING_TIME_ZONE: TZ, EXPORT_DIR: exportDir, REDIS_PREFIX: `${process.env.REDIS_PREFIX}:bill-exports` };
    const config = loadConfigWith(overrides);
    await runMigrations(config);
    pool = new Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    const pg = pool as unknown as PgPool;
    const ledger = new LedgerService(pg);
    const applier = new UsageApplier(config, pg, new PlanCatalog(pg), ledger);
    const bills = new BillClose(config, pg, ledger, clock);
    const { rows } = await pool.query(
      `SELECT to_char(now() AT TIME ZONE $1, 'YYYY-MM') AS month,
              to_char((now() AT TIME ZONE $1) + interval '1 month', 'YYYY-MM') AS next,
              to_char((now() AT TIME ZONE $1) + interval '2 months', 'YYYY-MM') AS after,
              extract(epoch FROM date_trunc('month', now() AT TIME ZONE $1) AT TIME ZONE $1) * 1000 AS start,
              extract(epoch FROM (date_trunc('month', now() AT TIME ZONE $1) + interval '1 month') AT TIME ZONE $1) * 1000 AS next_start,
              extract(epoch FROM (date_trunc('month', now() AT TIME ZONE $1) + interval '2 months') AT TIME ZONE $1) * 1000 AS after_start`,
      [TZ],
    );
    MONTH = rows[0].month;
    NEXT = rows[0].next;
    AFTER = rows[0].after;
    const monthStart = Number(rows[0].start);
    const nextStart = Number(rows[0].next_start);
    for (const [i, id] of ids.entries()) {
      await pool.query(`INSERT INTO accounts (id, name, region, created_at) VALUES ($1, $2, 'gz', '2026-01-01T00:00:00Z')`, [id, `bill-export-${i}-${id.slice(0, 6)}`]);
      await ledger.post({ accountId: id, kind: 'topup', cashDelta: parseAmount(`${50 + i}.5`), idempotencyKey: `be-top:${id}`, request: {} });
    }
    await ledger.post({ accountId: ids[0], kind: 'voucher_grant', voucherDelta: parseAmount('0.0321'), idempotencyKey: `be-v:${ids[0]}`, request: {} });
    const record = (accountId: string, region: string, action: string, calls: number, at: number): UsageRecord => ({
      accountId,
      region,
      resource: 'q',
      action,
      outcome: 'ok',
      calls,
      messages: calls,
      bytesIn: 0,
      bytesOut: 0,
      billable: { size_bands: calls, per_64k: calls },
      at,
    });
    let seed = 3;
    const rand = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const hours = Math.max(1, Math.floor((Date.now() - monthStart) / 3_600_000));
    for (let b = 0; b < 8; b++) {
      const batch: UsageRecord[] = [];
      for (let k = 0; k < 30; k++) {
        const at = Math.max(monthStart, Date.now() - (1 + rand(Math.min(hours, 240))) * 3_600_000);
        batch.push(record(ids[rand(3)], ['gz', 'hk'][rand(2)], ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'CreateQueue'][rand(4)], 1 + rand(77_777), at));
      }
      await applier.apply(`be-batch-${b}`, batch);
    }
    now = nextStart + 10 * 60_000;
    expect((await bills.close(MONTH)).closed).toBe(true);
    // usage of the closed month arriving late: a late line of the next bill
    await applier.apply('be-late', [record(ids[1], 'gz', 'SendMessage', 54_321, nextStart - 3_600_000)]);
    now = Number(rows[0].after_start) + 10 * 60_000;
    expect((await bills.close(NEXT)).closed).toBe(true);
    stack = await TestStack.start(overrides, { clock });
  }, 120_000);

  afterAll(async () => {
    await worker?.close();
    await stack?.stop();
    await pool?.end();
    await db?.drop();
    rmSync(exportDir, { recursive: true, force: true });
  });

  it('bills.csv: every bill of the months once, the API’s figures column by column, totals to the nano', async () => {
    const r = await get(`/v1/exports/bills.csv?from=${MONTH}&to=${AFTER}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(r.headers.get('x-csv-columns')).toBe(BILLS_CSV_COLUMNS.join(','));
    expect(r.headers.get('content-disposition')).toBe(`attachment; filename="bills-${MONTH}-${AFTER}.csv"`);
    expect(r.buf[0]).not.toBe(0xef);
    const [header, ...rows] = parseCsv(r.text);
    expect(header).toEqual([...BILLS_CSV_COLUMNS]);
    const api = await apiBills();
    expect(api.length).toBeGreaterThanOrEqual(2 * 3);
    expect(rows).toHaveLength(api.length);
    // by month, then account
    expect(rows.map((x) => `${x[1]} ${x[0]}`)).toEqual(rows.map((x) => `${x[1]} ${x[0]}`).sort());
    const col = (x: string[], name: (typeof BILLS_CSV_COLUMNS)[number]) => x[BILLS_CSV_COLUMNS.indexOf(name)];
    for (const x of rows) {
      const b = api.find((v) => v.accountId === col(x, 'account_id') && v.month === col(x, 'month'));
      expect(b).toBeDefined();
      expect({
        currency: col(x, 'currency'),
        openingBalance: col(x, 'opening_balance'),
        topups: col(x, 'topups'),
        usageTotal: col(x, 'usage_total'),
        vouchersUsed: col(x, 'vouchers_used'),
        cashCharged: col(x, 'cash_charged'),
        slaCredits: col(x, 'sla_credits'),
        otherVouchers: col(x, 'other_vouchers'),
        adjustments: col(x, 'adjustments'),
        refunds: col(x, 'refunds'),
        rounding: col(x, 'rounding'),
        closingBalance: col(x, 'closing_balance'),
        total: col(x, 'total'),
        amountDue: col(x, 'amount_due'),
        lateUsage: col(x, 'late_usage'),
      }).toEqual({
        currency: b.currency,
        openingBalance: b.openingBalance,
        topups: b.topups,
        usageTotal: b.usageTotal,
        vouchersUsed: b.vouchersUsed,
        cashCharged: b.cashCharged,
        slaCredits: b.slaCredits,
        otherVouchers: b.otherVouchers,
        adjustments: b.adjustments,
        refunds: b.refunds,
        rounding: b.rounding,
        closingBalance: b.closingBalance,
        total: b.total,
        amountDue: b.amountDue,
        lateUsage: b.lateUsage,
      });
      expect(col(x, 'created_at')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
      expect(new Date(col(x, 'created_at')).getTime()).toBe(new Date(b.createdAt).getTime());
    }
    const sum = (values: string[]) => values.reduce((t, v) => t + parseAmount(v), 0n);
    const csvTotal = sum(rows.map((x) => col(x, 'total')));
    expect(csvTotal).toBe(sum(api.map((b) => b.total)));
    expect(sum(rows.map((x) => col(x, 'amount_due')))).toBe(sum(api.map((b) => b.amountDue)));
    // and the ledger's usage charges, to the nano
    const { rows: l } = await pool.query(`SELECT (-sum(cash_delta_nano + voucher_delta_nano))::text AS s FROM ledger_entries WHERE kind = 'usage_charge'`);
    expect(csvTotal).toBe(BigInt(l[0].s));
    expect(rows.some((x) => col(x, 'late_usage') !== '0.00')).toBe(true);
    expect(rows.some((x) => col(x, 'rounding') !== '0.00')).toBe(true);
  });

  it('bill-lines.csv: the lines of every bill, summing to each bill’s usage and to the API’s totals', async () => {
    const r = await get(`/v1/exports/bill-lines.csv?from=${MONTH}&to=${AFTER}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-csv-columns')).toBe(BILL_LINES_CSV_COLUMNS.join(','));
    const [header, ...rows] = parseCsv(r.text);
    expect(header).toEqual([...BILL_LINES_CSV_COLUMNS]);
    const api = await apiBills();
    const want = api.flatMap((b) =>
      b.lines.map((l: any) => [b.accountId, b.month, l.usageMonth, l.region, l.actionClass, String(l.late), l.calls, l.billableCalls, l.amount]),
    );
    const order = (x: string[]) => `${x[1]} ${x[0]} ${x[2]} ${x[3]}\t${x[4]}`;
    expect(rows.map(order)).toEqual(rows.map(order).sort());
    expect([...rows].sort((a, b) => (order(a) < order(b) ? -1 : 1))).toEqual(want.sort((a: string[], b: string[]) => (order(a) < order(b) ? -1 : 1)));
    for (const b of api) {
      const mine = rows.filter((x) => x[0] === b.accountId && x[1] === b.month);
      expect(mine.reduce((t, x) => t + parseAmount(x[8]), 0n)).toBe(parseAmount(b.usageTotal));
    }
    expect(rows.reduce((t, x) => t + parseAmount(x[8]), 0n)).toBe(api.reduce((t, b) => t + parseAmount(b.total), 0n));
    const late = rows.filter((x) => x[5] === 'true');
    expect(late).toEqual([[ids[1], NEXT, MONTH, 'gz', 'send', 'true', '54321', '54321', formatAmount(54_321n * 2_000n)]]);
  });

  it('filters by months [from, to) and by account; keyset pages lose and repeat nothing', async () => {
    const next = parseCsv((await get(`/v1/exports/bills.csv?from=${NEXT}&to=${AFTER}`)).text).slice(1);
    expect(next.length).toBeGreaterThan(0);
    expect(next.every((x) => x[1] === NEXT)).toBe(true);
    const first = parseCsv((await get(`/v1/exports/bills.csv?from=${MONTH}&to=${NEXT}&accountId=${ids[2]}`)).text).slice(1);
    expect(first.map((x) => [x[0], x[1]])).toEqual([[ids[2], MONTH]]);
    const lines = parseCsv((await get(`/v1/exports/bill-lines.csv?from=${MONTH}&to=${AFTER}&accountId=${ids[1].toUpperCase()}`)).text).slice(1);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.every((x) => x[0] === ids[1])).toBe(true);
    expect((await get(`/v1/exports/bills.csv?from=2020-01&to=2020-02`)).text).toBe(BILLS_CSV_COLUMNS.join(',') + '\r\n');
    for (const kind of ['bills', 'bill_lines'] as const) {
      const filter = { from: `${MONTH}-01`, to: `${AFTER}-01` };
      const small = await streamText(exportCsv(pool, kind, filter, { pageRows: 2 }));
      expect(small).toBe(await streamText(exportCsv(pool, kind, filter)));
      expect(parseCsv(small).length).toBeGreaterThan(4);
    }
  });

  it('the BOM only when asked', async () => {
    for (const path of ['bills.csv', 'bill-lines.csv']) {
      const plain = await get(`/v1/exports/${path}?from=${MONTH}&to=${AFTER}`);
      const bom = await get(`/v1/exports/${path}?from=${MONTH}&to=${AFTER}&bom=true`);
      expect([...bom.buf.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      expect(bom.buf.subarray(3).equals(plain.buf)).toBe(true);
    }
  });

  it.each([
    ['to=2026-12', /from is required/],
    ['from=2026-11', /to is required/],
    ['from=2026-13&to=2027-01', /from must be a billing month, YYYY-MM/],
    ['from=2026-11-01&to=2026-12-01', /from must be a billing month, YYYY-MM/],
    ['from=2026-11&to=2026-11', /from must be before to/],
    ['from=2026-12&to=2026-11', /from must be before to/],
    ['from=2025-01&to=2026-03', /more than 13 months/],
    ['from=2026-11&to=2026-12&accountId=nope', /accountId must be a UUID/],
    ['from=2026-11&to=2026-12&bom=yes', /bom must be true or false/],
  ])('a download with %s is 400 with its reason', async (q, reason) => {
    for (const path of ['bills.csv', 'bill-lines.csv']) {
      const r = await get(`/v1/exports/${path}?${q}`);
      expect(r.status).toBe(400);
      expect(r.text).toMatch(reason);
    }
  });

  it.each([
    [{ kind: 'bills', from: '2026-11-01T00:00:00+08:00', to: '2026-12-01T00:00:00+08:00' }, /from must be a billing month, YYYY-MM/],
    [{ kind: 'bill_lines', from: '2016-01', to: '2026-03' }, /more than 121 months/],
    [{ kind: 'bills', from: '2026-11', to: '2026-11' }, /from must be before to/],
  ])('an export job %j is 400 with its reason, nothing started', async (body, reason) => {
    const before = (await pool.query(`SELECT count(*)::int AS n FROM export_jobs`)).rows[0].n;
    const r = await stack.admin('POST', '/v1/exports', body);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(reason);
    expect((await pool.query(`SELECT count(*)::int AS n FROM export_jobs`)).rows[0].n).toBe(before);
  });

  it('export jobs of both kinds: done in the worker, their files the downloads', async () => {
    const bills = await stack.admin('POST', '/v1/exports', { kind: 'bills', from: MONTH, to: AFTER, bom: true });
    const lines = await stack.admin('POST', '/v1/exports', { kind: 'bill_lines', from: MONTH, to: AFTER, accountId: ids[1] });
    expect([bills.status, lines.status]).toEqual([202, 202]);
    expect((await stack.admin('GET', `/v1/exports/${bills.body.id}`)).body).toMatchObject({ kind: 'bills', status: 'pending', from: MONTH, to: AFTER, bom: true });
    worker = await createWorker(loadConfigWith(overrides), { clock });
    await worker.listen(0, '127.0.0.1');
    for (const [job, path, kind] of [
      [bills.body.id, `bills.csv?from=${MONTH}&to=${AFTER}&bom=true`, 'bills'],
      [lines.body.id, `bill-lines.csv?from=${MONTH}&to=${AFTER}&accountId=${ids[1]}`, 'bill_lines'],
    ]) {
      let view: any;
      await expectEventually(async () => {
        view = (await stack.admin('GET', `/v1/exports/${job}`)).body;
        expect(view.status).toBe('done');
      }, 20_000);
      const file = await get(`/v1/exports/${job}/file`);
      const direct = await get(`/v1/exports/${path}`);
      expect(file.status).toBe(200);
      expect(file.buf.equals(direct.buf)).toBe(true);
      expect(file.headers.get('content-disposition')).toBe(`attachment; filename="${kind === 'bills' ? 'bills' : 'bill-lines'}-${MONTH}-${AFTER}.csv"`);
      const text = kind === 'bills' ? direct.buf.subarray(3).toString('utf8') : direct.text;
      expect(view).toMatchObject({ kind, from: MONTH, to: AFTER, rows: parseCsv(text).length - 1, bytes: direct.buf.length, error: null });
      expect(view.rows).toBeGreaterThan(1);
    }
  });
});
