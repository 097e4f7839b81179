import { randomUUID } from 'node:crypto';
import { formatAmount, LedgerService, NoPlanError, parseAmount, PlanCatalog } from '@app/billing';
import type { PgPool } from '@app/db';
import { loadConfigWith } from '@app/config';
import { expectEventually, TestStack, TestTenant } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

describe('price plans, the ledger, top-ups and adjustments', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let plans: PlanCatalog;
  let ledger: LedgerService;

  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('ledger');
    plans = new PlanCatalog(stack.db as unknown as PgPool);
    ledger = new LedgerService(stack.db as unknown as PgPool);
  });
  afterAll(() => stack.stop());

  const topup = (accountId: string, body: unknown, key?: string) =>
    fetch(`${stack.billingUrl}/v1/accounts/${accountId}/topups`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stack.config.adminToken}`,
        'content-type': 'application/json',
        ...(key !== undefined ? { 'idempotency-key': key } : {}),
      },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any, replayed: r.headers.get('idempotent-replayed') }));

  it('the default plan is seeded per region group, as data', async () => {
    const now = new Date();
    const gz = await plans.effective('default', 'gz', now);
    expect(gz).toMatchObject({ code: 'default', version: 1, currency: 'CNY', rule: 'size_bands' });
    expect(gz.regions).toEqual(['bj', 'cd', 'gz', 'nj', 'sh']);
    expect(gz.lines).toEqual([{ meter: 'calls', freeQuota: 0n, tiers: [{ upTo: null, perMillion: parseAmount('2.00') }] }]);
    expect((await plans.effective('default', 'usw', now)).lines[0].tiers[0].perMillion).toBe(parseAmount('2.60'));
    expect((await plans.effective('default', 'shjr', now)).lines[0].tiers[0].perMillion).toBe(parseAmount('3.20'));
    await expect(plans.effective('default', 'mars', now)).rejects.toThrow(NoPlanError);
    await expect(plans.effective('default', 'gz', new Date('2025-06-01T00:00:00Z'))).rejects.toThrow(NoPlanError);
  });

  it('a newer version takes over from its effective time, the older one keeps its past', async () => {
    const db = stack.db;
    const add = async (version: number, from: string, to: string | null, perMillion: string) => {
      const { rows } = await db.query(
        `INSERT INTO price_plans (code, region_group, version, currency, metering_rule, effective_from, effective_to)
         VALUES ('versioned', 'g', $1, 'CNY', 'per_64k', $2, $3) RETURNING id`,
        [version, from, to],
      );
      await db.query(`INSERT INTO price_plan_regions VALUES ($1, 'gz')`, [rows[0].id]);
      await db.query(`INSERT INTO price_plan_lines VALUES ($1, 'calls', 1000000)`, [rows[0].id]);
      await db.query(`INSERT INTO price_plan_tiers VALUES ($1, 'calls', 0, NULL, $2)`, [rows[0].id, parseAmount(perMillion).toString()]);
    };
    await add(1, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', '2.00');
    await add(2, '2027-01-01T00:00:00Z', null, '1.80');
    const old = await plans.effective('versioned', 'gz', new Date('2026-12-31T23:59:59Z'));
    const next = await plans.effective('versioned', 'gz', new Date('2027-01-01T00:00:00Z'));
    expect([old.version, old.lines[0].tiers[0].perMillion, old.lines[0].freeQuota]).toEqual([1, parseAmount('2.00'), 1_000_000n]);
    expect([next.version, next.lines[0].tiers[0].perMillion, next.rule]).toEqual([2, parseAmount('1.80'), 'per_64k']);
  });

  it('a top-up is idempotent by its key: same body same answer, other body 409, concurrent retries count once', async () => {
    const t = await stack.tenant('topups');
    const first = await topup(t.accountId, { amount: '100.00' }, 'order-1');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ kind: 'topup', amount: '100.00', cash: '100.00', vouchers: '0.00' });
    const again = await topup(t.accountId, { amount: '100.00' }, 'order-1');
    expect(again).toMatchObject({ status: 201, body: first.body, replayed: 'true' });
    const other = await topup(t.accountId, { amount: '100.01' }, 'order-1');
    expect(other.status).toBe(409);
    expect(other.body.detail).toMatch(/Idempotency-Key/);

    const retries = await Promise.all(Array.from({ length: 20 }, () => topup(t.accountId, { amount: '0.000000001' }, 'tiny')));
    expect(new Set(retries.map((r) => r.body.entryId)).size).toBe(1);
    const many = await Promise.all(Array.from({ length: 30 }, (_, i) => topup(t.accountId, { amount: '0.10' }, `k${i}`)));
    for (const r of many) expect(r.status).toBe(201);
    const balance = await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`);
    expect(balance).toMatchObject({ status: 200, body: { cash: '103.000000001', vouchers: '0.00', currency: 'CNY', status: 'active', lastUsageAppliedAt: null } });
    const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1`, [t.accountId]);
    expect(rows[0].n).toBe(32);
  });

  it('keys are per account: the same key on two accounts is two top-ups', async () => {
    const a = await stack.tenant('key-a');
    const b = await stack.tenant('key-b');
    expect((await topup(a.accountId, { amount: '1.00' }, 'same')).status).toBe(201);
    expect((await topup(b.accountId, { amount: '2.00' }, 'same')).body).toMatchObject({ cash: '2.00' });
  });

  it.each([
    [{ amount: '100.00' }, undefined, 400, /Idempotency-Key header is required/],
    [{ amount: '100.00' }, 'bad key with spaces', 400, /Idempotency-Key must be/],
    [{ amount: 100 }, 'k', 400, /decimal string/],
    [{ amount: '1e3' }, 'k', 400, /decimal string/],
    [{ amount: '0.0000000001' }, 'k', 400, /decimal string/],
    [{ amount: '0.00' }, 'k', 400, /more than 0/],
    [{ amount: '-5.00' }, 'k', 400, /more than 0/],
    [{ amount: '5.00', extra: true }, 'k', 400, /extra/],
  ])('refuses top-up %j (key %j) with %d and a reason, storing nothing', async (body, key, status, reason) => {
    const r = await topup(tenant.accountId, body, key);
    expect(r.status).toBe(status);
    expect(JSON.stringify(r.body.detail)).toMatch(reason);
    const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1`, [tenant.accountId]);
    expect(rows[0].n).toBe(0);
  });

  it('an unknown account is 404', async () => {
    const r = await topup('00000000-0000-4000-8000-000000000000', { amount: '1.00' }, 'k');
    expect(r.status).toBe(404);
  });

  it('adjustments need a reason and may take money away; the balance can go below zero', async () => {
    const t = await stack.tenant('adjusted');
    const adjust = (body: unknown, key: string) =>
      fetch(`${stack.billingUrl}/v1/accounts/${t.accountId}/adjustments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    expect((await adjust({ amount: '-5.00' }, 'a1')).status).toBe(400);
    expect((await adjust({ amount: '0', reason: 'nothing' }, 'a2')).status).toBe(400);
    const r = await adjust({ amount: '-5.25', reason: 'correction of ticket 7' }, 'a3');
    expect(r).toMatchObject({ status: 201, body: { kind: 'adjustment', amount: '-5.25', cash: '-5.25', reason: 'correction of ticket 7' } });
    expect((await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`)).body.cash).toBe('-5.25');
  });

  it('a charge spends vouchers before cash, to the nano, and is idempotent', async () => {
    const t = await stack.tenant('vouchers');
    const post = (p: Omit<Parameters<LedgerService['post']>[0], 'accountId'>) => ledger.post({ accountId: t.accountId, ...p });
    await post({ kind: 'topup', cashDelta: parseAmount('10.00'), idempotencyKey: `v-top:${t.accountId}`, request: {} });
    await post({ kind: 'voucher_grant', voucherDelta: parseAmount('1.50'), idempotencyKey: `v-grant:${t.accountId}`, request: {} });
    const first = await post({ kind: 'usage_charge', charge: parseAmount('1.000000001'), idempotencyKey: `v-use1:${t.accountId}`, request: { n: 1 } });
    expect(first.entry).toMatchObject({ cashDelta: 0n, voucherDelta: -parseAmount('1.000000001'), voucherAfter: parseAmount('0.499999999') });
    const second = await post({ kind: 'usage_charge', charge: parseAmount('2.00'), idempotencyKey: `v-use2:${t.accountId}`, request: { n: 2 } });
    expect(second.entry).toMatchObject({
      voucherDelta: -parseAmount('0.499999999'),
      cashDelta: -parseAmount('1.500000001'),
      cashAfter: parseAmount('8.499999999'),
      voucherAfter: 0n,
    });
    const replay = await post({ kind: 'usage_charge', charge: parseAmount('2.00'), idempotencyKey: `v-use2:${t.accountId}`, request: { n: 2 } });
    expect(replay).toEqual({ entry: second.entry, replayed: true });
    const b = await ledger.balance(t.accountId);
    expect([formatAmount(b.cash), formatAmount(b.vouchers)]).toEqual(['8.499999999', '0.00']);
  });

  it('lists an account’s entries newest first in cursor pages, by time and kind; no one else’s', async () => {
    const t = await stack.tenant('listed');
    const other = await stack.tenant('other-listed');
    for (let i = 1; i <= 5; i++) expect((await topup(t.accountId, { amount: `${i}.00` }, `list-${i}`)).status).toBe(201);
    expect((await topup(other.accountId, { amount: '9.00' }, 'list-other')).status).toBe(201);
    await ledger.post({ accountId: t.accountId, kind: 'usage_charge', charge: parseAmount('0.000000007'), idempotencyKey: `list-charge-${t.accountId}`, request: {} });
    const seen: Array<{ kind: string; amount: string; voucherAmount: string; cash: string }> = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: any } = await stack.admin('GET', `/v1/accounts/${t.accountId}/ledger?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.entries);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen.map((e) => [e.kind, e.amount, e.voucherAmount, e.cash])).toEqual([
      ['usage_charge', '-0.000000007', '0.00', '14.999999993'],
      ['topup', '5.00', '0.00', '15.00'],
      ['topup', '4.00', '0.00', '10.00'],
      ['topup', '3.00', '0.00', '6.00'],
      ['topup', '2.00', '0.00', '3.00'],
      ['topup', '1.00', '0.00', '1.00'],
    ]);
    const charges = await stack.admin('GET', `/v1/accounts/${t.accountId}/ledger?kind=usage_charge,refund`);
    expect(charges.body.entries.map((e: { kind: string }) => e.kind)).toEqual(['usage_charge']);
    const future = await stack.admin('GET', `/v1/accounts/${t.accountId}/ledger?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future.body).toEqual({ entries: [], nextCursor: null });
    for (const [q, reason] of [
      ['kind=gift', /kind must be entry kinds/],
      ['from=yesterday', /from must be an ISO 8601 time/],
      ['from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', /from must be before to/],
      ['cursor=abc', /cursor is not valid/],
      ['limit=101', /limit must be an integer from 1 to 100/],
    ] as const) {
      const r = await stack.admin('GET', `/v1/accounts/${t.accountId}/ledger?${q}`);
      expect([q, r.status]).toEqual([q, 400]);
      expect(r.body.detail).toMatch(reason);
    }
    expect((await stack.admin('GET', `/v1/accounts/${randomUUID()}/ledger`)).status).toBe(404);
  });

  it('the ledger is append-only and the balances reconcile with it', async () => {
    await expect(stack.db.query(`UPDATE ledger_entries SET reason = 'edited'`)).rejects.toThrow(/append-only/);
    await expect(stack.db.query(`DELETE FROM ledger_entries`)).rejects.toThrow(/append-only/);
    expect(await ledger.reconcile()).toEqual([]);
    // a balance changed behind the ledger's back is found
    const t = await stack.tenant('drift');
    await ledger.post({ accountId: t.accountId, kind: 'topup', cashDelta: parseAmount('1.00'), idempotencyKey: `drift:${t.accountId}`, request: {} });
    await stack.db.query(`UPDATE balances SET cash_nano = cash_nano + 1 WHERE account_id = $1`, [t.accountId]);
    const drift = await ledger.reconcile();
    expect(drift).toEqual([
      { accountId: t.accountId, cash: parseAmount('1.000000001'), entriesCash: parseAmount('1.00'), vouchers: 0n, entriesVouchers: 0n },
    ]);
    await stack.db.query(`UPDATE balances SET cash_nano = cash_nano - 1 WHERE account_id = $1`, [t.accountId]);
    expect(formatAmount((await ledger.balance(t.accountId)).cash)).toBe('1.00');
  });

  it('the worker reconciles on a schedule and /health/ledger reports it', async () => {
    const worker = await createWorker(loadConfigWith({ RECONCILE_INTERVAL_MS: '300', SWEEP_INTERVAL_MS: '600000' }));
    await worker.listen(0, '127.0.0.1');
    try {
      await expectEventually(async () => {
        const h = await stack.admin('GET', '/health/ledger');
        expect(h.status).toBe(200);
        expect(h.body.info.ledger).toMatchObject({ status: 'up', mismatched: 0, accountsChecked: expect.any(Number) });
      }, 10_000, 200);
      const t = await stack.tenant('drift-health');
      await ledger.post({ accountId: t.accountId, kind: 'topup', cashDelta: parseAmount('3.00'), idempotencyKey: `dh:${t.accountId}`, request: {} });
      await stack.db.query(`UPDATE balances SET voucher_nano = voucher_nano + 7 WHERE account_id = $1`, [t.accountId]);
      await expectEventually(async () => {
        const h = await stack.admin('GET', '/health/ledger');
        expect(h.status).toBe(503);
        expect(h.body.error.ledger).toMatchObject({ status: 'down', mismatched: 1, accounts: [t.accountId] });
      }, 10_000, 200);
      await stack.db.query(`UPDATE balances SET voucher_nano = voucher_nano - 7 WHERE account_id = $1`, [t.accountId]);
      await expectEventually(async () => expect((await stack.admin('GET', '/health/ledger')).status).toBe(200), 10_000, 200);
    } finally {
      await worker.close();
    }
  }, 60_000);
});
