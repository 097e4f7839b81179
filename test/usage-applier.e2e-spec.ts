import { randomUUID } from 'node:crypto';
import {
  billableCalls,
  LedgerService,
  METERING_RULES,
  monthlyCharge,
  outcomeOf,
  parseAmount,
  PlanCatalog,
  PlanLine,
  UsageApplier,
  UsageRecord,
} from '@app/billing';
import type { PgPool } from '@app/db';
import { TestStack } from '@app/testing';

const KIB = 1024;
/** one size inside every band of the size rule, and both edges of some */
const SIZES = [1, 2 * KIB, 2 * KIB + 1, 3 * KIB, 4 * KIB + 1, 16 * KIB, 16 * KIB + 1, 64 * KIB, 100 * KIB, 100 * KIB + 1, 700 * KIB, 1024 * KIB];
const ACTIONS = ['SendMessage', 'BatchSendMessage', 'ReceiveMessage', 'BatchReceiveMessage', 'DeleteMessage', 'BatchDeleteMessage', 'CreateQueue', 'GetQueueAttributes'];
const CODES = [0, 0, 0, 0, 7000, 4000, 4420, 4300, 6000];

const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)];

function randomRecord(accountId: string, region: string, at: number): UsageRecord {
  const action = pick(ACTIONS);
  const outcome = outcomeOf(pick(CODES));
  const batch = action.startsWith('Batch') ? 1 + Math.floor(Math.random() * 16) : 1;
  const carries = outcome === 'ok' && !action.includes('Delete') && !action.includes('Queue');
  const sizes = carries ? Array.from({ length: batch }, () => pick(SIZES)) : [];
  const handles = action.includes('Delete') ? batch : undefined;
  const req = { action, outcome, messageBytes: sizes, handles };
  const bytes = sizes.reduce((a, b) => a + b, 0);
  return {
    accountId,
    region,
    resource: action.includes('Queue') && Math.random() < 0.5 ? '' : `q${Math.floor(Math.random() * 3)}`,
    action,
    outcome,
    messages: sizes.length || (handles ?? 0),
    bytesIn: action.includes('Send') ? bytes : 0,
    bytesOut: action.includes('Receive') ? bytes : 0,
    calls: 1,
    billable: Object.fromEntries(METERING_RULES.map((r) => [r, billableCalls(r, req)])) as UsageRecord['billable'],
    at,
  };
}

describe('usage batches: aggregates, cumulative rating and charges, each batch once', () => {
  let stack: TestStack;
  let applier: UsageApplier;
  let ledger: LedgerService;
  let plans: PlanCatalog;
  const tiered: PlanLine = {
    meter: 'calls',
    freeQuota: 500n,
    tiers: [
      { upTo: 2_000n, perMillion: parseAmount('2000.00') },
      { upTo: 20_000n, perMillion: parseAmount('1000.000000001') },
      { upTo: null, perMillion: parseAmount('333.333333333') },
    ],
  };

  beforeAll(async () => {
    stack = await TestStack.start();
    const pool = stack.db as unknown as PgPool;
    plans = new PlanCatalog(pool);
    ledger = new LedgerService(pool);
    applier = new UsageApplier(stack.config, pool, plans, ledger);
    // a tiered plan with a free quota for the region `tst` (per 64 KiB counting), as data
    const { rows } = await stack.db.query(
      `INSERT INTO price_plans (code, region_group, version, currency, metering_rule, effective_from)
       VALUES ('default', 'test', 1, 'CNY', 'per_64k', '2020-01-01T00:00:00Z') RETURNING id`,
    );
    await stack.db.query(`INSERT INTO price_plan_regions VALUES ($1, 'tst')`, [rows[0].id]);
    await stack.db.query(`INSERT INTO price_plan_lines VALUES ($1, 'calls', $2)`, [rows[0].id, tiered.freeQuota.toString()]);
    for (const [i, t] of tiered.tiers.entries()) {
      await stack.db.query(`INSERT INTO price_plan_tiers VALUES ($1, 'calls', $2, $3, $4)`, [
        rows[0].id,
        i,
        t.upTo?.toString() ?? null,
        t.perMillion.toString(),
      ]);
    }
  });
  afterAll(() => stack.stop());

  it('thousands of mixed records in random batches, some delivered twice or at once: exact to the nano', async () => {
    const accounts = await Promise.all([0, 1, 2].map((i) => stack.tenant(`usage-${i}`)));
    for (const a of accounts) {
      await ledger.post({ accountId: a.accountId, kind: 'topup', cashDelta: parseAmount('1000.00'), idempotencyKey: `u-top:${a.accountId}`, request: {} });
    }
    await ledger.post({
      accountId: accounts[0].accountId,
      kind: 'voucher_grant',
      voucherDelta: parseAmount('0.05'),
      idempotencyKey: `u-voucher:${accounts[0].accountId}`,
      request: {},
    });
    const now = Date.now();
    const records: UsageRecord[] = [];
    for (let i = 0; i < 4000; i++) {
      records.push(randomRecord(pick(accounts).accountId, pick(['gz', 'hk', 'tst']), now - Math.floor(Math.random() * 50 * 60_000)));
    }
    const batches: Array<{ id: string; records: UsageRecord[] }> = [];
    for (let at = 0; at < records.length; ) {
      const n = 1 + Math.floor(Math.random() * 150);
      batches.push({ id: randomUUID(), records: records.slice(at, at + n) });
      at += n;
    }
    // two at a time; about one batch in five delivered again
    for (let i = 0; i < batches.length; i += 2) {
      const results = await Promise.all(batches.slice(i, i + 2).map((b) => applier.apply(b.id, b.records)));
      for (const r of results) expect(r.applied).toBe(true);
      if (Math.random() < 0.2) expect((await applier.apply(batches[i].id, batches[i].records)).applied).toBe(false);
    }
    expect((await applier.apply(batches[0].id, batches[0].records)).applied).toBe(false);

    // independent computation: each account's month per region, priced once as a whole
    const now0 = new Date(now);
    const lines = new Map<string, { line: PlanLine; rule: 'size_bands' | 'per_64k' }>();
    for (const region of ['gz', 'hk', 'tst']) {
      const p = await plans.effective('default', region, now0);
      lines.set(region, { line: p.lines[0], rule: p.rule });
    }
    expect(lines.get('tst')!.line).toEqual(tiered);
    for (const a of accounts) {
      let expected = 0n;
      for (const region of ['gz', 'hk', 'tst']) {
        const { line, rule } = lines.get(region)!;
        const mine = records.filter((r) => r.accountId === a.accountId && r.region === region);
        const total = mine.reduce((n, r) => n + BigInt(r.billable[rule]), 0n);
        const charge = monthlyCharge(line, total);
        expected += charge;
        const { rows } = await stack.db.query(
          `SELECT coalesce(sum(billable_calls), 0)::text AS calls, coalesce(sum(charged_nano), 0)::text AS charged
             FROM usage_monthly WHERE account_id = $1 AND region = $2`,
          [a.accountId, region],
        );
        expect([BigInt(rows[0].calls), BigInt(rows[0].charged)]).toEqual([total, charge]);
      }
      const b = await ledger.balance(a.accountId);
      const vouchersGranted = a === accounts[0] ? parseAmount('0.05') : 0n;
      const fromVouchers = expected < vouchersGranted ? expected : vouchersGranted;
      expect(b.vouchers).toBe(vouchersGranted - fromVouchers);
      expect(b.cash).toBe(parseAmount('1000.00') - (expected - fromVouchers));
      expect(b.lastUsageAt).not.toBeNull();
      const { rows } = await stack.db.query(
        `SELECT (-coalesce(sum(cash_delta_nano + voucher_delta_nano), 0))::text AS charged FROM ledger_entries
          WHERE account_id = $1 AND kind = 'usage_charge'`,
        [a.accountId],
      );
      expect(BigInt(rows[0].charged)).toBe(expected);

      // hourly aggregates against a plain count
      const { rows: hourly } = await stack.db.query(
        `SELECT region, resource, action_class, action, extract(epoch FROM hour)::bigint * 1000 AS hour, calls::int, billable_calls::int, messages::int,
                amount_nano::text AS amount
           FROM usage_hourly WHERE account_id = $1`,
        [a.accountId],
      );
      // the hours' amounts: the account's usage charges, to the nano
      expect(hourly.reduce((t, h) => t + BigInt(h.amount), 0n)).toBe(expected);
      const want = new Map<string, number[]>();
      for (const r of records.filter((r) => r.accountId === a.accountId)) {
        const cls = /Send/.test(r.action) ? 'send' : /Receive/.test(r.action) ? 'consume' : /Delete/.test(r.action) ? 'ack' : 'management';
        const k = `${r.region}/${r.resource}/${cls}/${r.action}/${Math.floor(r.at / 3_600_000) * 3_600_000}`;
        const v = want.get(k) ?? [0, 0, 0];
        v[0]++;
        v[1] += r.billable[lines.get(r.region)!.rule];
        v[2] += r.messages;
        want.set(k, v);
      }
      const got = new Map(hourly.map((h) => [`${h.region}/${h.resource}/${h.action_class}/${h.action}/${h.hour}`, [h.calls, h.billable_calls, h.messages]]));
      expect(got).toEqual(want);
    }
    // per-minute outcomes add up to every record, once
    const { rows: minutes } = await stack.db.query(
      `SELECT coalesce(sum(requests), 0)::int AS n FROM usage_minutely WHERE account_id = ANY($1::uuid[])`,
      [accounts.map((a) => a.accountId)],
    );
    expect(minutes[0].n).toBe(records.length);
    expect(await ledger.reconcile()).toEqual([]);
  }, 120_000);

  it('records without billable calls change aggregates, not money', async () => {
    const t = await stack.tenant('free-usage');
    const r = randomRecord(t.accountId, 'gz', Date.now());
    const free: UsageRecord = { ...r, action: 'ListQueue', outcome: 'ok', billable: { size_bands: 0, per_64k: 0 } };
    expect((await applier.apply(randomUUID(), [free, { ...free, outcome: 'throttled' }])).charges.get(t.accountId)).toBe(0n);
    expect((await ledger.balance(t.accountId)).cash).toBe(0n);
    const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1`, [t.accountId]);
    expect(rows[0].n).toBe(0);
  });
});

describe('POST /v1/usage-events', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(() => stack.stop());

  const event = (accountId: string, id: string, billableCalls = 1_000_000) => ({ id, accountId, region: 'gz', action: 'PushDelivery', billableCalls });

  it('charges each event once, however often and however concurrently it is sent', async () => {
    const t = await stack.tenant('events');
    const body = { events: Array.from({ length: 10 }, (_, i) => event(t.accountId, `e${i}`)) };
    const replies = await Promise.all(Array.from({ length: 6 }, () => stack.admin('POST', '/v1/usage-events', body)));
    for (const r of replies) expect(r.status).toBe(200);
    expect(replies.reduce((n, r) => n + r.body.accepted, 0)).toBe(10);
    expect(replies.reduce((n, r) => n + r.body.duplicates, 0)).toBe(50);
    // 10 million calls at 2.00 per million
    expect((await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`)).body).toMatchObject({ cash: '-20.00' });
    const again = await stack.admin('POST', '/v1/usage-events', { events: [event(t.accountId, 'e3'), event(t.accountId, 'new'), event(t.accountId, 'new')] });
    expect(again.body).toEqual({ accepted: 1, duplicates: 2 });
    expect((await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`)).body.cash).toBe('-22.00');
  });

  it('an id is remembered for 35 days: counted again after that (then remembered anew), and forgotten by the prune', async () => {
    const t = await stack.tenant('events-expiry');
    expect((await stack.admin('POST', '/v1/usage-events', { events: [event(t.accountId, 'old'), event(t.accountId, 'recent')] })).body).toEqual({
      accepted: 2,
      duplicates: 0,
    });
    await stack.db.query(`UPDATE usage_event_ids SET received_at = now() - interval '36 days' WHERE account_id = $1 AND client_id = 'old'`, [
      t.accountId,
    ]);
    await stack.db.query(`UPDATE usage_event_ids SET received_at = now() - interval '34 days' WHERE account_id = $1 AND client_id = 'recent'`, [
      t.accountId,
    ]);
    const again = { events: [event(t.accountId, 'old'), event(t.accountId, 'recent')] };
    expect((await stack.admin('POST', '/v1/usage-events', again)).body).toEqual({ accepted: 1, duplicates: 1 });
    expect((await stack.admin('POST', '/v1/usage-events', again)).body).toEqual({ accepted: 0, duplicates: 2 });
    expect((await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`)).body.cash).toBe('-6.00');

    await stack.db.query(`UPDATE usage_event_ids SET received_at = now() - interval '40 days' WHERE account_id = $1 AND client_id = 'recent'`, [
      t.accountId,
    ]);
    const applier = new UsageApplier(stack.config, stack.db as unknown as PgPool, new PlanCatalog(stack.db as unknown as PgPool), new LedgerService(stack.db as unknown as PgPool));
    expect(await applier.pruneEventIds(1000)).toBeGreaterThanOrEqual(1);
    const { rows } = await stack.db.query(`SELECT client_id FROM usage_event_ids WHERE account_id = $1 ORDER BY client_id`, [t.accountId]);
    expect(rows.map((r) => r.client_id)).toEqual(['old']);
  });

  it('batches sent at once are answered each on its own: one refused, the others counted', async () => {
    const t = await stack.tenant('events-together');
    const bodies = Array.from({ length: 12 }, (_, k) => ({
      events: Array.from({ length: 5 }, (_, i) => (k === 7 && i === 2 ? { ...event(t.accountId, `k${k}-${i}`), region: 'mars' } : event(t.accountId, `k${k}-${i}`))),
    }));
    // the same batch twice more: its events count once
    bodies.push(bodies[3], bodies[3]);
    const replies = await Promise.all(bodies.map((b) => stack.admin('POST', '/v1/usage-events', b)));
    replies.forEach((r, k) => expect(r.status).toBe(k === 7 ? 400 : 200));
    expect(replies[7].body.detail).toMatch(/no plan default covers/);
    expect(replies.filter((r) => r.status === 200).reduce((n, r) => n + r.body.accepted, 0)).toBe(55);
    expect(replies.filter((r) => r.status === 200).reduce((n, r) => n + r.body.duplicates, 0)).toBe(10);
    const { rows } = await stack.db.query(`SELECT client_id FROM usage_event_ids WHERE account_id = $1 AND client_id LIKE 'k7-%'`, [t.accountId]);
    expect(rows).toEqual([]);
    // 55 events of a million calls each at 2.00 per million
    expect((await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`)).body.cash).toBe('-110.00');
  });

  it('refuses events no price plan covers (region or time) with 400, storing nothing of the batch', async () => {
    const t = await stack.tenant('unpriced');
    for (const unpriced of [
      { ...event(t.accountId, 'a'), region: 'mars' },
      { ...event(t.accountId, 'a'), time: '2019-06-01T00:00:00+08:00' },
    ]) {
      const r = await stack.admin('POST', '/v1/usage-events', { events: [event(t.accountId, 'fine'), unpriced] });
      expect(r.status).toBe(400);
      expect(r.body.detail).toMatch(/no plan default covers/);
    }
    const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM usage_event_ids WHERE account_id = $1`, [t.accountId]);
    expect(rows[0].n).toBe(0);
    expect((await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`)).body.cash).toBe('0.00');
  });

  it.each([
    [{ events: [] }, /events/],
    [{ events: Array.from({ length: 1001 }, (_, i) => ({ id: `x${i}`, accountId: '00000000-0000-4000-8000-000000000000', region: 'gz', action: 'A', billableCalls: 1 })) }, /events/],
    [{ events: [{ id: 'a', accountId: 'nope', region: 'gz', action: 'A', billableCalls: 1 }] }, /accountId/],
    [{ events: [{ id: 'a', accountId: '00000000-0000-4000-8000-000000000000', region: 'gz', action: 'A', billableCalls: -1 }] }, /billableCalls/],
    [{ events: [{ id: 'a', accountId: '00000000-0000-4000-8000-000000000000', region: 'gz', action: 'A', billableCalls: 1.5 }] }, /billableCalls/],
    [{ events: [{ id: 'a', accountId: '00000000-0000-4000-8000-000000000000', region: 'gz', action: 'A', billableCalls: 1, outcome: 'great' }] }, /outcome/],
    [{ events: [{ id: 'a', accountId: '00000000-0000-4000-8000-000000000000', region: 'gz', action: 'A', billableCalls: 1 }] }, /unknown accountId/],
  ])('refuses %#: 400 with a reason, nothing stored', async (body, reason) => {
    const r = await stack.admin('POST', '/v1/usage-events', body);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body.detail)).toMatch(reason);
    const after = await stack.db.query(`SELECT count(*)::int AS n FROM usage_event_ids WHERE client_id IN ('a', 'x0')`);
    expect(after.rows[0].n).toBe(0);
  });
});
