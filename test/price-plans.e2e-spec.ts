import { randomBytes, randomUUID } from 'node:crypto';
import { LedgerService, parseAmount, PlanCatalog, UsageApplier, UsageRecord } from '@app/billing';
import type { PgPool } from '@app/db';
import { sleep, TestStack } from '@app/testing';

/**
 * Price plan versions for operators (billing.md §2): the listing and a code's versions, a new
 * version (the next number, who and why recorded, bad input refused with its reason and nothing
 * stored), and rating by the new version from its first hour on.
 */
describe('price plans: versions, audit, and rating from effectiveFrom', () => {
  const HOUR = 3_600_000;
  let stack: TestStack;
  let applier: UsageApplier;
  const code = `spec-${randomBytes(4).toString('hex')}`;
  let h1: number;

  const post = (body: unknown, operator: string | null = 'ops@test') =>
    fetch(`${stack.billingUrl}/v1/plans`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stack.config.adminToken}`,
        'content-type': 'application/json',
        ...(operator === null ? {} : { 'x-operator': operator }),
      },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const versionsOf = async (c: string) =>
    Number((await stack.db.query(`SELECT count(*) AS n FROM price_plans WHERE code = $1`, [c])).rows[0].n);
  const plan = (over: Record<string, unknown> = {}) => ({
    code,
    currency: 'CNY',
    meteringRule: 'size_bands',
    regions: ['gz'],
    effectiveFrom: new Date(h1).toISOString(),
    lines: [{ meter: 'calls', tiers: [{ upTo: null, perMillion: '5.00' }] }],
    reason: 'spec: a flat price',
    ...over,
  });

  beforeAll(async () => {
    // not in the last seconds of an hour: "the next hour" must not move while the spec sets up
    const left = HOUR - (Date.now() % HOUR);
    if (left < 15_000) await sleep(left + 100);
    h1 = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
    stack = await TestStack.start();
    const pool = stack.db as unknown as PgPool;
    applier = new UsageApplier(stack.config, pool, new PlanCatalog(pool), new LedgerService(pool));
  });
  afterAll(() => stack.stop());

  it('the seeded default plan: a version per region group, with its prices, regions and no operator', async () => {
    const r = await stack.admin('GET', '/v1/plans/default');
    expect(r.status).toBe(200);
    expect(r.body.code).toBe('default');
    const mainland = r.body.versions.find((v: any) => v.regionGroup === 'mainland');
    expect(mainland).toMatchObject({
      code: 'default',
      version: 1,
      currency: 'CNY',
      meteringRule: 'size_bands',
      regions: ['bj', 'cd', 'gz', 'nj', 'sh'],
      effectiveFrom: '2025-12-31T16:00:00.000Z',
      effectiveTo: null,
      lines: [{ meter: 'calls', freeQuota: '0', tiers: [{ upTo: null, perMillion: '2.00' }] }],
      createdBy: null,
      reason: null,
    });
    expect(r.body.versions.find((v: any) => v.regionGroup === 'finance').lines[0].tiers[0].perMillion).toBe('3.20');
    expect((await stack.admin('GET', '/v1/plans/no-such-plan-here')).status).toBe(404);
    const bad = await stack.admin('GET', '/v1/plans/Not!A!Code');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/code must be a plan code/);
  });

  it('creates version 1 of a new code, then 2, with who and why; versions are listed, never edited', async () => {
    const v1 = await post(plan());
    expect(v1.status).toBe(201);
    expect(v1.body).toMatchObject({
      code,
      version: 1,
      regionGroup: 'custom',
      currency: 'CNY',
      meteringRule: 'size_bands',
      regions: ['gz'],
      effectiveFrom: new Date(h1).toISOString(),
      effectiveTo: null,
      lines: [{ meter: 'calls', freeQuota: '0', tiers: [{ upTo: null, perMillion: '5.00' }] }],
      createdBy: 'ops@test',
      reason: 'spec: a flat price',
    });
    const v2 = await post(
      plan({
        regionGroup: 'south',
        effectiveFrom: new Date(h1 + HOUR).toISOString().replace('Z', '+00:00'),
        lines: [
          {
            meter: 'calls',
            freeQuota: '200000',
            tiers: [
              { upTo: '500000', perMillion: '7.00' },
              { upTo: null, perMillion: '1.000000001' },
            ],
          },
        ],
        reason: 'spec: a free quota and two tiers',
      }),
      'finance-lead@test',
    );
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({
      version: 2,
      regionGroup: 'south',
      createdBy: 'finance-lead@test',
      lines: [{ freeQuota: '200000', tiers: [{ upTo: '500000', perMillion: '7.00' }, { upTo: null, perMillion: '1.000000001' }] }],
    });
    const got = await stack.admin('GET', `/v1/plans/${code}`);
    expect(got.status).toBe(200);
    expect(got.body.versions.map((v: any) => [v.version, v.createdBy, v.reason])).toEqual([
      [1, 'ops@test', 'spec: a flat price'],
      [2, 'finance-lead@test', 'spec: a free quota and two tiers'],
    ]);
    // version 1 is not touched by version 2: it stays open, version 2 takes over gz from its start
    expect(got.body.versions[0]).toEqual(v1.body);

    // every version of every plan, in cursor pages ordered by code, version, region group
    const before = (await stack.db.query(`SELECT id FROM price_plans`)).rows.map((r) => r.id as string);
    const seen: any[] = [];
    let cursor: string | null = null;
    do {
      const page = await stack.admin('GET', `/v1/plans?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.plans.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.plans);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(seen.map((p) => p.id)).size).toBe(seen.length);
    for (const id of before) expect(seen.some((p) => p.id === id)).toBe(true);
    const keys = seen.map((p) => [p.code, p.version, p.regionGroup]);
    const sorted = [...keys].sort((a, b) => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] !== b[1] ? a[1] - b[1] : a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0));
    expect(keys).toEqual(sorted);
    expect(seen.filter((p) => p.code === code).map((p) => p.version)).toEqual([1, 2]);
    expect((await stack.admin('GET', '/v1/plans?limit=101')).status).toBe(400);
    expect((await stack.admin('GET', '/v1/plans?cursor=abc')).status).toBe(400);
  });

  it('rates usage by the version in force at the start of its hour: the default before, v1 from its hour, v2 from its own', async () => {
    const t = await stack.tenant('plan-rating');
    const assigned = await stack.admin('PUT', `/v1/accounts/${t.accountId}/plans/gz`, { plan: code, reason: 'spec' });
    expect(assigned.status).toBe(200);
    expect(assigned.body.effectiveFrom).toBe(new Date(h1).toISOString());
    const rec = (at: number, calls: number, action = 'SendMessage'): UsageRecord => ({
      accountId: t.accountId,
      region: 'gz',
      resource: 'q',
      action,
      outcome: 'ok',
      calls,
      messages: calls,
      bytesIn: calls,
      bytesOut: 0,
      billable: { size_bands: calls, per_64k: calls },
      at,
    });
    // the hour before: the default plan (2.00); v1's hour: 5.00 flat; v2's hour: 200,000 free, 500,000 at 7.00, the rest at 1.000000001
    await applier.apply(randomUUID(), [rec(h1 - 30 * 60_000, 1_000_000), rec(h1 + 10 * 60_000, 1_000_000), rec(h1 + HOUR + 10 * 60_000, 1_000_000, 'DeleteMessage')]);
    // 500,000 × 7.00 + 300,000 × 1.000000001 per million = 3.8000000003, floored to the nano once
    const v2Charge = parseAmount('3.80');
    const balance = await stack.admin('GET', `/v1/accounts/${t.accountId}/balance`);
    expect(parseAmount(balance.body.cash)).toBe(-(parseAmount('2.00') + parseAmount('5.00') + v2Charge));
    const st = await stack.admin('GET', `/v1/accounts/${t.accountId}/statements?from=${new Date(h1 - HOUR).toISOString()}&to=${new Date(h1 + 2 * HOUR).toISOString()}`);
    expect(st.status).toBe(200);
    expect(st.body.lines.map((l: any) => [l.hour, l.amount])).toEqual([
      [new Date(h1 - HOUR).toISOString().replace('.000Z', 'Z'), '2.00'],
      [new Date(h1).toISOString().replace('.000Z', 'Z'), '5.00'],
      [new Date(h1 + HOUR).toISOString().replace('.000Z', 'Z'), '3.80'],
    ]);
    const { rows } = await stack.db.query(
      `SELECT p.code, p.version, m.charged_nano::text AS charged FROM usage_monthly m JOIN price_plans p ON p.id = m.plan_id
        WHERE m.account_id = $1 ORDER BY p.code <> 'default', p.version`,
      [t.accountId],
    );
    expect(rows.map((r) => [r.code === 'default' ? 'default' : 'spec', r.version, r.charged])).toEqual([
      ['default', 1, '2000000000'],
      ['spec', 1, '5000000000'],
      ['spec', 2, v2Charge.toString()],
    ]);
  });

  const valid = () => plan({ effectiveFrom: new Date(h1 + 5 * HOUR).toISOString(), regions: ['sh'] });
  const tiers = (t: unknown[]) => ({ lines: [{ meter: 'calls', tiers: t }] });
  it.each([
    ['no X-Operator', {}, null, /X-Operator header is required/],
    ['no reason', { reason: undefined }, 'ops', /reason is required/],
    ['bounds that do not rise', tiers([{ upTo: '100', perMillion: '1' }, { upTo: '100', perMillion: '1' }, { upTo: null, perMillion: '1' }]), 'ops', /tier bounds must rise strictly/],
    ['a last tier that is not open', tiers([{ upTo: '100', perMillion: '1' }]), 'ops', /only the last tier is open/],
    ['an open tier before the last', tiers([{ upTo: null, perMillion: '1' }, { upTo: '100', perMillion: '1' }]), 'ops', /only the last tier is open/],
    ['a bound of 0', tiers([{ upTo: '0', perMillion: '1' }, { upTo: null, perMillion: '1' }]), 'ops', /upTo must be a positive integer/],
    ['a bound that is a number', tiers([{ upTo: 100, perMillion: '1' }, { upTo: null, perMillion: '1' }]), 'ops', /upTo must be an integer string/],
    ['a negative price', tiers([{ upTo: null, perMillion: '-1.00' }]), 'ops', /perMillion must be a non-negative decimal/],
    ['a price beyond the nano', tiers([{ upTo: null, perMillion: '1.0000000001' }]), 'ops', /perMillion must be a non-negative decimal/],
    ['no tiers', tiers([]), 'ops', /at least one tier/],
    ['a free quota that is not an integer', { lines: [{ meter: 'calls', freeQuota: '1.5', tiers: [{ upTo: null, perMillion: '1' }] }] }, 'ops', /freeQuota must be a non-negative integer/],
    ['another meter', { lines: [{ meter: 'gb_hours', tiers: [{ upTo: null, perMillion: '1' }] }] }, 'ops', /meter must be calls/],
    ['no lines', { lines: [] }, 'ops', /at least one meter/],
    ['a currency in lower case', { currency: 'cny' }, 'ops', /currency must be an ISO 4217 code/],
    ['another currency than the code’s', { currency: 'USD', code: 'default' }, 'ops', /priced in CNY: a new version cannot change the currency/],
    ['an unknown metering rule', { meteringRule: 'per_call' }, 'ops', /meteringRule must be one of size_bands, per_64k/],
    ['no regions', { regions: [] }, 'ops', /at least one region/],
    ['a region twice', { regions: ['sh', 'sh'] }, 'ops', /lists a region twice/],
    ['a region that is no code', { regions: ['Shanghai'] }, 'ops', /region must be a region code/],
    ['a start in the past', { effectiveFrom: '2026-01-01T00:00:00Z' }, 'ops', /effectiveFrom must be in the future/],
    ['a start off the hour', { effectiveFrom: '2031-01-01T00:30:00Z' }, 'ops', /effectiveFrom must be a whole hour/],
    ['a start without an offset', { effectiveFrom: '2031-01-01T00:00:00' }, 'ops', /effectiveFrom must be ISO 8601 with an offset/],
    ['a bad code', { code: 'Pro Plan' }, 'ops', /code must be a plan code/],
    ['an unknown field', { discount: '10%' }, 'ops', /discount should not exist/],
  ])('refuses %s: 400 with the reason, nothing stored', async (_, over, who, reason) => {
    const body = { ...valid(), ...(over as object) };
    const before = await versionsOf(body.code as string);
    const r = await post(body, who);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(reason);
    expect(await versionsOf(body.code as string)).toBe(before);
  });

  it('refuses a version that would start before a later version of the code covering one of its regions', async () => {
    const before = await versionsOf(code);
    expect(before).toBe(2);
    const r = await post(plan({ regions: ['sh', 'gz'], effectiveFrom: new Date(h1).toISOString() }));
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/version 2 of plan .* covers gz from .*: a new version covering it must start at or after that/);
    expect(await versionsOf(code)).toBe(before);
    // a region no later version covers may start earlier; the version number still grows
    const sh = await post(plan({ regions: ['sh'], effectiveFrom: new Date(h1).toISOString() }));
    expect(sh.status).toBe(201);
    expect(sh.body.version).toBe(3);
  });

  it('only with the admin token', async () => {
    const r = await fetch(`${stack.billingUrl}/v1/plans`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-operator': 'x' }, body: JSON.stringify(plan()) });
    expect(r.status).toBe(401);
  });
});
