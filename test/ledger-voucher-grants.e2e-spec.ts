import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { IdempotencyConflictError, LedgerService, parseAmount, Posting } from '@app/billing';
import type { PgPool } from '@app/db';

/**
 * Voucher movements of many accounts in one call (the SLA month close's credits): the same
 * entries and balances as one posting at a time, in a few statements; replays, conflicts and
 * take-backs as the close relies on them. On the run's database, accounts of their own.
 */
describe('LedgerService.postVoucherGrantsWithin: voucher grants and take-backs of many accounts at once', () => {
  let pool: Pool;
  let ledger: LedgerService;

  beforeAll(() => {
    pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
    ledger = new LedgerService(pool as unknown as PgPool);
  });
  afterAll(() => pool.end());

  async function account(): Promise<string> {
    const id = randomUUID();
    await pool.query(`INSERT INTO accounts (id, name, region) VALUES ($1, $2, 'gz')`, [id, `vg-${id.slice(0, 8)}`]);
    return id;
  }
  const grant = (accountId: string, amount: string, key: string, request: unknown = { amount }): Posting => ({
    accountId,
    kind: 'voucher_grant',
    voucherDelta: parseAmount(amount),
    idempotencyKey: key,
    request,
    reason: `grant ${amount}`,
    meta: { test: true },
  });
  const takeBack = (accountId: string, amount: string, key: string): Posting => ({
    accountId,
    kind: 'adjustment',
    voucherDelta: -parseAmount(amount),
    idempotencyKey: key,
    request: { takeBack: amount },
  });
  async function within<T>(fn: (c: import('pg').PoolClient) => Promise<T>): Promise<T> {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    } finally {
      c.release();
    }
  }
  const entries = async (accountId: string) =>
    (
      await pool.query(
        `SELECT kind, cash_delta_nano::text AS cash, voucher_delta_nano::text AS v, cash_after_nano::text AS "cashAfter",
                voucher_after_nano::text AS "voucherAfter", idempotency_key AS key, reason, meta
           FROM ledger_entries WHERE account_id = $1 ORDER BY id`,
        [accountId],
      )
    ).rows;
  const balance = async (accountId: string) =>
    (await pool.query(`SELECT cash_nano::text AS cash, voucher_nano::text AS v, status, low_alert_armed AS armed FROM balances WHERE account_id = $1`, [accountId]))
      .rows[0];
  const key = () => `vg-${randomUUID()}`;

  it('grants to many accounts in one call: entries with the balances they leave, balance rows made or moved', async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    await ledger.post({ accountId: a, kind: 'topup', cashDelta: parseAmount('50.00'), idempotencyKey: key(), request: { topup: 50 } });
    await ledger.post({ accountId: b, kind: 'voucher_grant', voucherDelta: parseAmount('1.00'), idempotencyKey: key(), request: { v: 1 } });
    const keys = [key(), key(), key()];
    const out = await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(a, '10.00', keys[0]), grant(b, '2.50', keys[1]), grant(c, '0.000000001', keys[2])]));
    expect(out).toEqual({ moved: [parseAmount('10.00'), parseAmount('2.50'), 1n], replayed: [false, false, false], notifications: [] });

    expect((await entries(a)).slice(-1)).toEqual([
      { kind: 'voucher_grant', cash: '0', v: '10000000000', cashAfter: '50000000000', voucherAfter: '10000000000', key: keys[0], reason: 'grant 10.00', meta: { test: true } },
    ]);
    expect((await entries(b)).slice(-1)[0]).toMatchObject({ v: '2500000000', cashAfter: '0', voucherAfter: '3500000000' });
    expect(await entries(c)).toEqual([expect.objectContaining({ kind: 'voucher_grant', v: '1', cashAfter: '0', voucherAfter: '1' })]);
    expect(await balance(a)).toMatchObject({ cash: '50000000000', v: '10000000000', status: 'active' });
    expect(await balance(b)).toMatchObject({ cash: '0', v: '3500000000' });
    expect(await balance(c)).toMatchObject({ cash: '0', v: '1' });
    const mismatched = (await ledger.reconcile()).filter((m) => [a, b, c].includes(m.accountId));
    expect(mismatched).toEqual([]);
  });

  it('writes what postWithin writes, one posting at a time', async () => {
    const [x, y] = [await account(), await account()];
    for (const id of [x, y]) await ledger.post({ accountId: id, kind: 'topup', cashDelta: parseAmount('7.00'), idempotencyKey: key(), request: { t: 7 } });
    await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(x, '3.00', `same-${x}`)]));
    await within((cl) => ledger.postWithin(cl, grant(y, '3.00', `same-${y}`)));
    const strip = (rows: Array<Record<string, unknown>>) => rows.map(({ key: _k, ...r }) => r);
    expect(strip(await entries(x))).toEqual(strip(await entries(y)));
    expect(await balance(x)).toEqual(await balance(y));
    // and a replay through either answers the entry there: same request hash
    expect(await within((cl) => ledger.postWithin(cl, grant(x, '3.00', `same-${x}`)))).toMatchObject({ replayed: true });
    expect(await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(y, '3.00', `same-${y}`)]))).toMatchObject({ moved: [0n], replayed: [true] });
  });

  it('a replay moves nothing; the same key with another request is refused and nothing is written', async () => {
    const [a, b] = [await account(), await account()];
    const [ka, kb] = [key(), key()];
    await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(a, '5.00', ka)]));
    const again = await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(a, '5.00', ka), grant(b, '1.00', kb)]));
    expect(again).toEqual({ moved: [0n, parseAmount('1.00')], replayed: [true, false], notifications: [] });
    expect(await entries(a)).toHaveLength(1);
    expect(await balance(a)).toMatchObject({ v: '5000000000' });

    const c = await account();
    await expect(within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(c, '1.00', key()), grant(a, '6.00', ka)]))).rejects.toThrow(IdempotencyConflictError);
    expect(await entries(c)).toEqual([]);
    expect(await balance(a)).toMatchObject({ v: '5000000000' });
  });

  it('a take-back takes at most the unspent vouchers, never cash; with none left it writes nothing', async () => {
    const [a, b, none] = [await account(), await account(), await account()];
    await ledger.post({ accountId: a, kind: 'topup', cashDelta: parseAmount('20.00'), idempotencyKey: key(), request: { t: 20 } });
    await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(a, '4.00', key()), grant(b, '4.00', key())]));
    // b spends 3.00 of its vouchers
    await ledger.post({ accountId: b, kind: 'usage_charge', charge: parseAmount('3.00'), idempotencyKey: key(), request: { c: 3 } });
    const out = await within((cl) =>
      ledger.postVoucherGrantsWithin(cl, [takeBack(a, '1.50', key()), takeBack(b, '4.00', key()), takeBack(none, '2.00', key())]),
    );
    expect(out).toEqual({ moved: [-parseAmount('1.50'), -parseAmount('1.00'), 0n], replayed: [false, false, false], notifications: [] });
    expect((await entries(a)).slice(-1)[0]).toMatchObject({ kind: 'adjustment', cash: '0', v: '-1500000000', cashAfter: '20000000000', voucherAfter: '2500000000' });
    expect((await entries(b)).slice(-1)[0]).toMatchObject({ kind: 'adjustment', cash: '0', v: '-1000000000', cashAfter: '0', voucherAfter: '0' });
    expect(await entries(none)).toEqual([]);
    expect(await balance(b)).toMatchObject({ cash: '0', v: '0' });
    expect((await ledger.reconcile()).filter((m) => [a, b, none].includes(m.accountId))).toEqual([]);
  });

  it('moves the arrears standing as postWithin does: a low-balance alert re-armed by a grant, fired by a take-back', async () => {
    const a = await account();
    await ledger.post({ accountId: a, kind: 'topup', cashDelta: parseAmount('5.00'), idempotencyKey: key(), request: { t: 5 } });
    await ledger.setAlertThreshold(a, parseAmount('10.00'), { kind: 'operator', name: 'spec' });
    // funds 5.00 < 10.00: the threshold is armed, the next posting below it alerts and disarms
    await ledger.post({ accountId: a, kind: 'topup', cashDelta: 1n, idempotencyKey: key(), request: { t: 1 } });
    expect(await balance(a)).toMatchObject({ armed: false });
    const up = await within((cl) => ledger.postVoucherGrantsWithin(cl, [grant(a, '20.00', key())]));
    expect(up?.notifications).toEqual([]);
    expect(await balance(a)).toMatchObject({ armed: true });
    const down = await within((cl) => ledger.postVoucherGrantsWithin(cl, [takeBack(a, '20.00', key())]));
    expect(down?.notifications).toHaveLength(1);
    const note = await pool.query(`SELECT kind, payload FROM notifications WHERE id = $1`, [down!.notifications[0]]);
    expect(note.rows[0]).toMatchObject({ kind: 'low_balance', payload: expect.objectContaining({ vouchers: '0.00', threshold: '10.00' }) });
    expect(await balance(a)).toMatchObject({ armed: false, status: 'active' });
  });

  it('answers null when another transaction committed one of its keys while it waited for the balance lock', async () => {
    const a = await account();
    const k = key();
    const first = await pool.connect();
    const second = await pool.connect();
    try {
      await first.query('BEGIN');
      await second.query('BEGIN');
      await ledger.postVoucherGrantsWithin(first, [grant(a, '1.00', k)]);
      const waiting = ledger.postVoucherGrantsWithin(second, [grant(a, '1.00', k)]);
      await new Promise((r) => setTimeout(r, 100));
      await first.query('COMMIT');
      expect(await waiting).toBeNull();
      await second.query('ROLLBACK');
    } finally {
      first.release();
      second.release();
    }
    expect(await entries(a)).toHaveLength(1);
    expect(await balance(a)).toMatchObject({ v: '1000000000' });
  });

  it('refuses what it does not post: cash, charges, nothing, or two postings of one account', async () => {
    const a = await account();
    const bad: Posting[][] = [
      [{ ...grant(a, '1.00', key()), cashDelta: 1n }],
      [{ accountId: a, kind: 'voucher_grant', charge: 1n, idempotencyKey: key(), request: {} }],
      [{ accountId: a, kind: 'voucher_grant', voucherDelta: 0n, idempotencyKey: key(), request: {} }],
      [grant(a, '1.00', key()), grant(a.toUpperCase(), '1.00', key())],
    ];
    for (const postings of bad) await expect(within((cl) => ledger.postVoucherGrantsWithin(cl, postings))).rejects.toThrow(RangeError);
    expect(await within((cl) => ledger.postVoucherGrantsWithin(cl, []))).toEqual({ moved: [], replayed: [], notifications: [] });
    expect(await entries(a)).toEqual([]);
  });
});
