import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { DEFAULT_POLICY, monthOf, nextMonth, SlaSignals } from '@app/sla';
import type { PgPool } from '@app/db';
import { scratchDatabase, TestStack } from '@app/testing';

/**
 * Versions of the SLA policy through the billing-api: the seeded default, a new version from a
 * month that has not begun, and refusals that store nothing. On a database of this spec's own,
 * so no other spec's month is judged by these versions.
 */
describe('SLA policies: versioned, from a month that has not begun', () => {
  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;
  const next = nextMonth(monthOf(Date.now(), 'Asia/Shanghai'));
  const later = nextMonth(next);
  const { version: _v, effectiveFrom: _e, ...rules } = DEFAULT_POLICY;
  const body = { ...rules, effectiveFrom: `${later}-01`, creditBands: [{ belowPpm: 999_900, creditPct: 10 }, { belowPpm: 999_000, creditPct: 30 }], targetPpm: 999_900, reason: 'premium tier: 99.99%' };
  const post = (b: unknown, operator: string | null = 'alice') =>
    fetch(`${stack.billingUrl}/v1/sla/policies`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', ...(operator ? { 'x-operator': operator } : {}) },
      body: JSON.stringify(b),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const count = async () => (await stack.db.query(`SELECT count(*)::int AS n FROM sla_policies`)).rows[0].n;

  beforeAll(async () => {
    db = await scratchDatabase();
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    stack = await TestStack.start({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await stack?.stop();
    await db?.drop();
  });

  it('lists the seeded default: 99.95%, 5 minutes, 24 h notice, the TDMQ bands, Asia/Shanghai', async () => {
    const r = await stack.admin('GET', '/v1/sla/policies');
    expect(r.status).toBe(200);
    expect(r.body).toEqual([DEFAULT_POLICY]);
  });

  it('refuses what would break a rule, storing nothing', async () => {
    const bad: Array<[unknown, string | null, RegExp]> = [
      [body, null, /X-Operator/],
      [{ ...body, effectiveFrom: `${monthOf(Date.now(), 'Asia/Shanghai')}-01` }, 'alice', /earliest/],
      [{ ...body, effectiveFrom: `${later}-02` }, 'alice', /first day of a month/],
      [{ ...body, timeZone: 'Mars/Olympus' }, 'alice', /IANA/],
      [{ ...body, targetPpm: 1_000_001 }, 'alice', /targetPpm/],
      [{ ...body, creditBands: [] }, 'alice', /creditBands/],
      [{ ...body, creditBands: [{ belowPpm: 999_950, creditPct: 10 }] }, 'alice', /above the target/],
      [{ ...body, minOutageMinutes: 1.5 }, 'alice', /minOutageMinutes/],
      [{ ...body, reason: '' }, 'alice', /reason/],
    ];
    const before = await count();
    for (const [b, who, why] of bad) {
      const r = await post(b, who);
      expect([r.status, JSON.stringify(r.body)]).toEqual([400, expect.stringMatching(why)]);
    }
    expect(await count()).toBe(before);
  });

  it('adds version 2 from a month ahead, audited; that month is judged by it, the months before by version 1', async () => {
    const r = await post(body);
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ version: 2, effectiveFrom: `${later}-01`, targetPpm: 999_900 });
    const signals = new SlaSignals(stack.db as unknown as PgPool);
    expect((await signals.policyFor(later)).version).toBe(2);
    expect((await signals.policyFor(next)).version).toBe(1);
    const audit = await stack.db.query(`SELECT actor, action, subject, reason FROM audit_trail WHERE action = 'policy.create'`);
    expect(audit.rows).toEqual([{ actor: 'alice', action: 'policy.create', subject: 'policy:2', reason: 'premium tier: 99.99%' }]);
    // versions are never edited: one from the same month again is refused
    expect((await post(body)).status).toBe(400);
  });
});
