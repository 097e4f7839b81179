import { randomUUID } from 'node:crypto';
import { loadConfigWith } from '@app/config';
import { PgPool, runMigrations } from '@app/db';
import { SlaClock, SlaOperations, SlaOperationsError, SlaOperationsErrorCode } from '@app/sla';
import { scratchDatabase, TestStack } from '@app/testing';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** An instant `ms` from now, on a whole minute (the API echoes instants to the millisecond). */
const ahead = (ms: number) => new Date(Math.floor((Date.now() + ms) / 60_000) * 60_000).toISOString();

/**
 * The operators' SLA inputs (sla.md §3) through the billing-api, against Postgres: maintenance
 * windows, attributions, their audit. On a database of this spec's own: the month close of other
 * specs must not see these windows, and row counts before and after a refusal are exact.
 */
describe('SLA operations: maintenance windows, attributions, audit', () => {
  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;

  beforeAll(async () => {
    db = await scratchDatabase();
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    stack = await TestStack.start({ DATABASE_URL: db.url, REGIONS: 'gz,sh' });
  });
  afterAll(async () => {
    await stack?.stop();
    await db?.drop();
  });

  /** An internal API call with the admin token and, unless null, an X-Operator. */
  const call = async (method: string, path: string, body?: unknown, operator: string | null = 'alice') => {
    const res = await fetch(stack.billingUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${stack.config.adminToken}`,
        ...(operator !== null ? { 'x-operator': operator } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  /** The reason of a refusal: the problem's detail (the validator's messages joined). */
  const reasonOf = (body: any) => String(body?.detail ?? '');

  const counts = async () =>
    (
      await stack.db.query(
        `SELECT (SELECT count(*) FROM sla_maintenance)::int AS maintenance,
                (SELECT count(*) FROM sla_attributions)::int AS attributions,
                (SELECT count(*) FROM sla_attributions WHERE withdrawn_at IS NOT NULL)::int AS withdrawn,
                (SELECT count(*) FROM sla_maintenance WHERE cancelled_at IS NOT NULL)::int AS cancelled,
                (SELECT count(*) FROM audit_trail WHERE domain = 'sla')::int AS audit`,
      )
    ).rows[0];

  const auditOf = async (subject: string) =>
    (
      await stack.db.query(
        `SELECT actor, action, reason, details FROM audit_trail WHERE domain = 'sla' AND subject = $1 ORDER BY id`,
        [subject],
      )
    ).rows;

  const announce = (body: Record<string, unknown>, operator = 'alice') =>
    call('POST', '/v1/sla/maintenance', { reason: 'storage upgrade', ...body }, operator);

  it('announces a window, reads it back, lists it, and audits it with its actor and reason', async () => {
    const startsAt = ahead(6 * DAY);
    const endsAt = ahead(6 * DAY + 2 * HOUR);
    const before = Date.now();
    const res = await announce({ region: 'gz', startsAt, endsAt, reason: 'gz storage cluster upgrade' });
    const after = Date.now();
    expect(res.status).toBe(201);
    const { id, announcedAt, ...rest } = res.body;
    expect(id).toMatch(/^[1-9]\d*$/);
    expect(rest).toEqual({
      region: 'gz',
      startsAt,
      endsAt,
      reason: 'gz storage cluster upgrade',
      createdBy: 'alice',
      cancelledAt: null,
      cancelledBy: null,
      policyVersion: 1,
      noticePeriodSeconds: 86400,
      excludesUnderPolicy: true,
    });
    expect(Date.parse(announcedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(announcedAt)).toBeLessThanOrEqual(after);

    expect(await call('GET', `/v1/sla/maintenance/${id}`)).toEqual({ status: 200, body: res.body });
    const listed = await call('GET', `/v1/sla/maintenance?from=${encodeURIComponent(startsAt)}&to=${encodeURIComponent(endsAt)}`);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([res.body]);
    // a range that ends when the window starts does not overlap it
    const earlier = await call('GET', `/v1/sla/maintenance?from=${encodeURIComponent(ahead(6 * DAY - HOUR))}&to=${encodeURIComponent(startsAt)}`);
    expect(earlier.body.map((m: any) => m.id)).not.toContain(id);

    expect(await auditOf(`maintenance:${id}`)).toEqual([
      { actor: 'alice', action: 'maintenance.announce', reason: 'gz storage cluster upgrade', details: res.body },
    ]);
    const audit = await call('GET', '/v1/sla/audit?limit=1');
    expect(audit.status).toBe(200);
    expect(audit.body.entries).toHaveLength(1);
    expect(audit.body.entries[0]).toMatchObject({
      actor: 'alice',
      action: 'maintenance.announce',
      subject: `maintenance:${id}`,
      reason: 'gz storage cluster upgrade',
      details: res.body,
      at: announcedAt,
      domain: 'sla',
      actorKind: 'operator',
    });
    expect(audit.body.nextCursor).toBeNull(); // the only SLA write so far: the last page
  });

  it('says whether a window excludes under the notice period: not when 1 h ahead, yes when 48 h ahead', async () => {
    const soon = await announce({ startsAt: ahead(HOUR), endsAt: ahead(2 * HOUR) });
    const early = await announce({ startsAt: ahead(48 * HOUR), endsAt: ahead(49 * HOUR) });
    expect([soon.status, early.status]).toEqual([201, 201]);
    expect(soon.body).toMatchObject({ region: null, policyVersion: 1, noticePeriodSeconds: 86400, excludesUnderPolicy: false });
    expect(early.body).toMatchObject({ region: null, policyVersion: 1, noticePeriodSeconds: 86400, excludesUnderPolicy: true });
  });

  it('cancels a window once: the second cancel answers the same and writes nothing; listings hide it unless asked', async () => {
    const startsAt = ahead(3 * DAY);
    const endsAt = ahead(3 * DAY + HOUR);
    const m = (await announce({ region: 'sh', startsAt, endsAt })).body;
    const first = await call('POST', `/v1/sla/maintenance/${m.id}/cancel`, { reason: 'upgrade postponed' }, 'bob');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ ...m, cancelledBy: 'bob', excludesUnderPolicy: false, cancelledAt: expect.any(String) });
    expect(Date.parse(first.body.cancelledAt)).toBeGreaterThanOrEqual(Date.parse(m.announcedAt));

    const before = await counts();
    const second = await call('POST', `/v1/sla/maintenance/${m.id}/cancel`, { reason: 'again' }, 'carol');
    expect(second).toEqual({ status: 200, body: first.body });
    expect(await counts()).toEqual(before);

    expect(await auditOf(`maintenance:${m.id}`)).toEqual([
      { actor: 'alice', action: 'maintenance.announce', reason: 'storage upgrade', details: m },
      { actor: 'bob', action: 'maintenance.cancel', reason: 'upgrade postponed', details: first.body },
    ]);
    const range = `from=${encodeURIComponent(startsAt)}&to=${encodeURIComponent(endsAt)}`;
    expect((await call('GET', `/v1/sla/maintenance?${range}`)).body).toEqual([]);
    expect((await call('GET', `/v1/sla/maintenance?${range}&includeCancelled=true`)).body).toEqual([first.body]);
  });

  it('refuses to cancel a window that has ended (409), an unknown one (404), and stores nothing', async () => {
    const { rows } = await stack.db.query(
      `INSERT INTO sla_maintenance (region, starts_at, ends_at, announced_at, reason, created_by)
       VALUES (NULL, now() - interval '3 hours', now() - interval '1 hour', now() - interval '3 days', 'past window', 'alice')
       RETURNING id::text`,
    );
    const before = await counts();
    const ended = await call('POST', `/v1/sla/maintenance/${rows[0].id}/cancel`, { reason: 'too late' });
    expect(ended.status).toBe(409);
    expect(ended.body.detail).toMatch(new RegExp(`^maintenance window ${rows[0].id} ended at .*: only a window that has not ended can be cancelled$`));
    const unknown = await call('POST', '/v1/sla/maintenance/999999999/cancel', { reason: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.detail).toBe('maintenance window 999999999 does not exist');
    expect((await call('POST', '/v1/sla/maintenance/abc/cancel', { reason: 'x' })).status).toBe(404);
    expect((await call('GET', '/v1/sla/maintenance/999999999')).status).toBe(404);
    expect(await counts()).toEqual(before);
  });

  it('attributes outage time to a cause for an account, lists it, withdraws it once, and audits both', async () => {
    const tenant = await stack.tenant('sla-attribution');
    const startsAt = ahead(-3 * HOUR);
    const endsAt = ahead(-2 * HOUR);
    const res = await call(
      'POST',
      '/v1/sla/attributions',
      { region: 'sh', accountId: tenant.accountId, startsAt, endsAt, cause: 'third_party', reason: 'carrier fibre cut, INC-4411' },
      'dave',
    );
    expect(res.status).toBe(201);
    const { id, createdAt, ...rest } = res.body;
    expect(id).toMatch(/^[1-9]\d*$/);
    expect(Math.abs(Date.parse(createdAt) - Date.now())).toBeLessThan(60_000);
    expect(rest).toEqual({
      region: 'sh',
      accountId: tenant.accountId,
      startsAt,
      endsAt,
      cause: 'third_party',
      reason: 'carrier fibre cut, INC-4411',
      createdBy: 'dave',
      withdrawnAt: null,
      withdrawnBy: null,
    });
    const range = `from=${encodeURIComponent(startsAt)}&to=${encodeURIComponent(endsAt)}`;
    expect(await call('GET', `/v1/sla/attributions?${range}`)).toEqual({ status: 200, body: [res.body] });

    const withdrawn = await call('POST', `/v1/sla/attributions/${id}/withdraw`, { reason: 'the carrier was not at fault' }, 'erin');
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body).toMatchObject({ ...res.body, withdrawnBy: 'erin', withdrawnAt: expect.any(String) });
    const before = await counts();
    expect(await call('POST', `/v1/sla/attributions/${id}/withdraw`, { reason: 'again' }, 'frank')).toEqual({
      status: 200,
      body: withdrawn.body,
    });
    expect(await counts()).toEqual(before);

    expect(await auditOf(`attribution:${id}`)).toEqual([
      { actor: 'dave', action: 'attribution.create', reason: 'carrier fibre cut, INC-4411', details: res.body },
      { actor: 'erin', action: 'attribution.withdraw', reason: 'the carrier was not at fault', details: withdrawn.body },
    ]);
    expect((await call('GET', `/v1/sla/attributions?${range}`)).body).toEqual([]);
    expect((await call('GET', `/v1/sla/attributions?${range}&includeWithdrawn=true`)).body).toEqual([withdrawn.body]);
    expect((await call('POST', '/v1/sla/attributions/999999999/withdraw', { reason: 'x' })).status).toBe(404);
  });

  it('gives the month close the windows and attributions in force, cancelled and withdrawn ones left out', async () => {
    const ops = stack.billingApi.get(SlaOperations);
    const base = Math.floor((Date.now() + 10 * DAY) / 60_000) * 60_000;
    const at = (h: number) => new Date(base + h * HOUR).toISOString();
    const kept = (await announce({ region: 'gz', startsAt: at(1), endsAt: at(2), reason: 'kept' })).body;
    const all = (await announce({ startsAt: at(3), endsAt: at(4), reason: 'all regions' })).body;
    const cancelled = (await announce({ startsAt: at(1), endsAt: at(5), reason: 'to cancel' })).body;
    expect((await call('POST', `/v1/sla/maintenance/${cancelled.id}/cancel`, { reason: 'not needed' })).status).toBe(200);
    const outside = (await announce({ startsAt: at(6), endsAt: at(7), reason: 'outside' })).body;

    expect(await ops.activeMaintenance(base, base + 6 * HOUR)).toEqual([
      { id: kept.id, region: 'gz', startsAt: base + HOUR, endsAt: base + 2 * HOUR, announcedAt: Date.parse(kept.announcedAt), reason: 'kept' },
      { id: all.id, region: null, startsAt: base + 3 * HOUR, endsAt: base + 4 * HOUR, announcedAt: Date.parse(all.announcedAt), reason: 'all regions' },
    ]);
    expect((await ops.activeMaintenance(base, base + 7 * HOUR)).map((m) => m.id)).toEqual([kept.id, all.id, outside.id]);

    const tenant = await stack.tenant('sla-active');
    const pastBase = base - 20 * DAY;
    const pat = (h: number) => new Date(pastBase + h * HOUR).toISOString();
    const attribute = async (body: Record<string, unknown>) =>
      (await call('POST', '/v1/sla/attributions', { cause: 'user', reason: 'r', ...body })).body;
    const user = await attribute({ accountId: tenant.accountId, startsAt: pat(1), endsAt: pat(2), reason: 'customer deleted its own queues' });
    const fm = await attribute({ region: 'sh', startsAt: pat(2), endsAt: pat(3), cause: 'force_majeure', reason: 'typhoon' });
    const gone = await attribute({ startsAt: pat(1), endsAt: pat(3) });
    expect((await call('POST', `/v1/sla/attributions/${gone.id}/withdraw`, { reason: 'mistaken' })).status).toBe(200);

    expect(await ops.activeAttributions(pastBase, pastBase + 6 * HOUR)).toEqual([
      {
        id: user.id,
        region: null,
        accountId: tenant.accountId,
        cause: 'user',
        startsAt: pastBase + HOUR,
        endsAt: pastBase + 2 * HOUR,
        reason: 'customer deleted its own queues',
      },
      { id: fm.id, region: 'sh', accountId: null, cause: 'force_majeure', startsAt: pastBase + 2 * HOUR, endsAt: pastBase + 3 * HOUR, reason: 'typhoon' },
    ]);
    // [from, to) is half-open: an attribution ending at `from` is out
    expect((await ops.activeAttributions(pastBase + 2 * HOUR, pastBase + 6 * HOUR)).map((a) => a.id)).toEqual([fm.id]);
  });

  describe('refuses bad input with a 4xx and a reason, storing nothing', () => {
    const cases: Array<[string, string, string, Record<string, unknown> | (() => Record<string, unknown>), string | null, number, RegExp]> = [
      ['maintenance without X-Operator', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: 'r' }), null, 400, /X-Operator header is required/],
      ['maintenance with an empty X-Operator', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: 'r' }), '', 400, /X-Operator header is required/],
      ['maintenance with a 129-character X-Operator', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: 'r' }), 'o'.repeat(129), 400, /X-Operator must be 1-128/],
      ['maintenance ending before it starts', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY + HOUR), endsAt: ahead(DAY), reason: 'r' }), 'alice', 400, /endsAt .* must be after startsAt/],
      ['maintenance ending when it starts', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY), reason: 'r' }), 'alice', 400, /endsAt .* must be after startsAt/],
      ['maintenance in an unknown region', 'POST', '/v1/sla/maintenance', () => ({ region: 'bj', startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: 'r' }), 'alice', 400, /region "bj" is not served here/],
      ['maintenance in a malformed region', 'POST', '/v1/sla/maintenance', () => ({ region: 'GZ!', startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: 'r' }), 'alice', 400, /region must be a region code/],
      ['maintenance starting in the past', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(-HOUR), endsAt: ahead(HOUR), reason: 'r' }), 'alice', 400, /startsAt .* is before now .*announced ahead of its start/],
      ['maintenance with an empty reason', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: '' }), 'alice', 400, /reason is required/],
      ['maintenance with a blank reason', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: '   ' }), 'alice', 400, /reason is required/],
      ['maintenance without a reason', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR) }), 'alice', 400, /reason/],
      ['maintenance with a date and no time', 'POST', '/v1/sla/maintenance', () => ({ startsAt: '2027-01-01', endsAt: ahead(DAY + HOUR), reason: 'r' }), 'alice', 400, /startsAt must be an ISO 8601 instant/],
      ['maintenance with a local time and no offset', 'POST', '/v1/sla/maintenance', () => ({ startsAt: '2027-01-01T00:00:00', endsAt: '2027-01-01T02:00:00Z', reason: 'r' }), 'alice', 400, /startsAt must be an ISO 8601 instant/],
      ['maintenance with an impossible date', 'POST', '/v1/sla/maintenance', () => ({ startsAt: '2027-02-30T00:00:00Z', endsAt: '2027-03-01T02:00:00Z', reason: 'r' }), 'alice', 400, /startsAt must be an ISO 8601 instant/],
      ['maintenance with an unknown field', 'POST', '/v1/sla/maintenance', () => ({ startsAt: ahead(DAY), endsAt: ahead(DAY + HOUR), reason: 'r', excludes: true }), 'alice', 400, /property excludes should not exist/],
      ['attribution without X-Operator', 'POST', '/v1/sla/attributions', () => ({ startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r' }), null, 400, /X-Operator header is required/],
      ['attribution ending before it starts', 'POST', '/v1/sla/attributions', () => ({ startsAt: ahead(-HOUR), endsAt: ahead(-2 * HOUR), cause: 'user', reason: 'r' }), 'alice', 400, /endsAt .* must be after startsAt/],
      ['attribution in an unknown region', 'POST', '/v1/sla/attributions', () => ({ region: 'bj', startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r' }), 'alice', 400, /region "bj" is not served here/],
      ['attribution to an unknown account', 'POST', '/v1/sla/attributions', () => ({ accountId: '00000000-0000-4000-8000-000000000000', startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r' }), 'alice', 400, /account 00000000-0000-4000-8000-000000000000 does not exist/],
      ['attribution to a malformed account id', 'POST', '/v1/sla/attributions', () => ({ accountId: 'acme', startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r' }), 'alice', 400, /accountId must be an account id/],
      ['attribution with a bad cause', 'POST', '/v1/sla/attributions', () => ({ startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'act_of_god', reason: 'r' }), 'alice', 400, /cause must be one of user, third_party, force_majeure/],
      ['attribution with an empty reason', 'POST', '/v1/sla/attributions', () => ({ startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: '' }), 'alice', 400, /reason is required/],
      ['attribution with a 1001-character reason', 'POST', '/v1/sla/attributions', () => ({ startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r'.repeat(1001) }), 'alice', 400, /reason must be shorter than or equal to 1000 characters/],
      ['a listing with to before from', 'GET', `/v1/sla/maintenance?from=2027-01-02T00:00:00Z&to=2027-01-01T00:00:00Z`, {}, 'alice', 400, /to must be after from/],
      ['a listing with a bad includeCancelled', 'GET', `/v1/sla/maintenance?includeCancelled=yes`, {}, 'alice', 400, /includeCancelled must be true or false/],
      ['an audit page of 101', 'GET', '/v1/sla/audit?limit=101', {}, 'alice', 400, /limit must be an integer from 1 to 100/],
    ];
    it.each(cases)('%s', async (_name, method, path, body, operator, status, reason) => {
      const before = await counts();
      const res = await call(method, path, method === 'GET' ? undefined : typeof body === 'function' ? body() : body, operator);
      expect(res.status).toBe(status);
      expect(reasonOf(res.body)).toMatch(reason);
      expect(await counts()).toEqual(before);
    });

    it('a cancel or withdrawal without X-Operator or reason changes nothing', async () => {
      const m = (await announce({ startsAt: ahead(4 * DAY), endsAt: ahead(4 * DAY + HOUR) })).body;
      const a = (await call('POST', '/v1/sla/attributions', { startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r' })).body;
      const before = await counts();
      const tries = [
        [`/v1/sla/maintenance/${m.id}/cancel`, { reason: 'x' }, null, /X-Operator header is required/],
        [`/v1/sla/maintenance/${m.id}/cancel`, { reason: ' ' }, 'alice', /reason is required/],
        [`/v1/sla/maintenance/${m.id}/cancel`, {}, 'alice', /reason/],
        [`/v1/sla/attributions/${a.id}/withdraw`, { reason: 'x' }, null, /X-Operator header is required/],
        [`/v1/sla/attributions/${a.id}/withdraw`, { reason: '' }, 'alice', /reason is required/],
      ] as const;
      for (const [path, body, operator, reason] of tries) {
        const res = await call('POST', path, body, operator);
        expect([path, res.status]).toEqual([path, 400]);
        expect(reasonOf(res.body)).toMatch(reason);
      }
      expect(await counts()).toEqual(before);
    });
  });

  it('commits a write with its audit row or not at all', async () => {
    await stack.db.query(`
      CREATE FUNCTION sla_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.actor = 'audit-breaker' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER sla_audit_refuse BEFORE INSERT ON audit_trail FOR EACH ROW EXECUTE FUNCTION sla_audit_refuse();`);
    try {
      const m = (await announce({ startsAt: ahead(5 * DAY), endsAt: ahead(5 * DAY + HOUR) })).body;
      const before = await counts();
      const refused = await announce({ startsAt: ahead(5 * DAY), endsAt: ahead(5 * DAY + HOUR) }, 'audit-breaker');
      expect(refused.status).toBe(500);
      expect(refused.body.errorId).toMatch(/^[0-9a-f-]{36}$/);
      const cancel = await call('POST', `/v1/sla/maintenance/${m.id}/cancel`, { reason: 'x' }, 'audit-breaker');
      expect(cancel.status).toBe(500);
      const attribution = await call(
        'POST',
        '/v1/sla/attributions',
        { startsAt: ahead(-2 * HOUR), endsAt: ahead(-HOUR), cause: 'user', reason: 'r' },
        'audit-breaker',
      );
      expect(attribution.status).toBe(500);
      expect(await counts()).toEqual(before);
      expect((await call('GET', `/v1/sla/maintenance/${m.id}`)).body.cancelledAt).toBeNull();
    } finally {
      await stack.db.query(`DROP TRIGGER sla_audit_refuse ON audit_trail; DROP FUNCTION sla_audit_refuse();`);
    }
  });

  it('pages the audit newest first', async () => {
    const page1 = await call('GET', '/v1/sla/audit?limit=2');
    const page2 = await call('GET', `/v1/sla/audit?limit=2&cursor=${page1.body.nextCursor}`);
    const all = (await stack.db.query(`SELECT id::text FROM audit_trail WHERE domain = 'sla' ORDER BY audit_trail.id DESC LIMIT 4`)).rows.map((r) => r.id);
    expect([...page1.body.entries, ...page2.body.entries].map((e: any) => e.id)).toEqual(all);
    expect([...page1.body.entries, ...page2.body.entries].every((e: any) => e.domain === 'sla')).toBe(true);
    expect((await call('GET', '/v1/sla/audit?limit=2', undefined, null)).status).toBe(200);
    const unauthorised = await fetch(`${stack.billingUrl}/v1/sla/audit`);
    expect(unauthorised.status).toBe(401);
  });

  describe('on the SLA clock', () => {
    let now: number;
    const clock: SlaClock = { now: () => now };
    let ops: SlaOperations;
    const t = (s: string) => Date.parse(s);
    const code = (err: unknown) => (err instanceof SlaOperationsError ? err.code : err);

    beforeAll(() => {
      ops = new SlaOperations(stack.db as unknown as PgPool, stack.config, clock);
    });

    it('stamps announcements, cancels, attributions and withdrawals, and their audit, with its time', async () => {
      now = t('2030-03-10T00:00:00Z');
      const m = await ops.announceMaintenance({
        region: null,
        startsAt: new Date('2030-03-12T00:00:00Z'),
        endsAt: new Date('2030-03-12T04:00:00Z'),
        reason: 'clocked',
        actor: 'alice',
      });
      expect(m.announcedAt.toISOString()).toBe('2030-03-10T00:00:00.000Z');
      expect(m.excludesUnderPolicy).toBe(true);

      // a window may start exactly now, but not a millisecond before
      now = t('2030-03-12T00:00:00Z');
      await expect(
        ops.announceMaintenance({ region: null, startsAt: new Date(now - 1), endsAt: new Date(now + HOUR), reason: 'late', actor: 'alice' }),
      ).rejects.toThrow(/is before now/);
      const onTime = await ops.announceMaintenance({ region: 'gz', startsAt: new Date(now), endsAt: new Date(now + HOUR), reason: 'now', actor: 'alice' });
      expect(onTime.excludesUnderPolicy).toBe(false);

      // in progress: may still be cancelled
      now = t('2030-03-12T01:00:00Z');
      const cancelled = await ops.cancelMaintenance(m.id, 'bob', 'ran short');
      expect(cancelled.cancelledAt?.toISOString()).toBe('2030-03-12T01:00:00.000Z');
      // ended: no longer
      now = t('2030-03-12T01:00:00Z') + HOUR;
      await expect(ops.cancelMaintenance(onTime.id, 'bob', 'too late').catch((e) => Promise.reject(code(e)))).rejects.toBe(
        SlaOperationsErrorCode.CONFLICT,
      );
      // the window ended at the same instant it is judged: ended
      now = onTime.endsAt.getTime();
      await expect(ops.cancelMaintenance(onTime.id, 'bob', 'too late')).rejects.toThrow(/only a window that has not ended/);

      now = t('2030-03-13T00:00:00Z');
      const a = await ops.attribute({
        region: null,
        accountId: null,
        startsAt: new Date('2030-03-12T05:00:00Z'),
        endsAt: new Date('2030-03-12T05:30:00Z'),
        cause: 'third_party',
        reason: 'DNS provider outage',
        actor: 'carol',
      });
      expect(a.createdAt.toISOString()).toBe('2030-03-13T00:00:00.000Z');
      now = t('2030-03-14T00:00:00Z');
      const w = await ops.withdrawAttribution(a.id, 'dave', 'provider was up');
      expect(w.withdrawnAt?.toISOString()).toBe('2030-03-14T00:00:00.000Z');

      const audit = (
        await stack.db.query(`SELECT subject, action, at AS created_at FROM audit_trail WHERE subject IN ($1, $2, $3) ORDER BY id`, [
          `maintenance:${m.id}`,
          `maintenance:${onTime.id}`,
          `attribution:${a.id}`,
        ])
      ).rows.map((r) => [r.subject, r.action, (r.created_at as Date).toISOString()]);
      expect(audit).toEqual([
        [`maintenance:${m.id}`, 'maintenance.announce', '2030-03-10T00:00:00.000Z'],
        [`maintenance:${onTime.id}`, 'maintenance.announce', '2030-03-12T00:00:00.000Z'],
        [`maintenance:${m.id}`, 'maintenance.cancel', '2030-03-12T01:00:00.000Z'],
        [`attribution:${a.id}`, 'attribution.create', '2030-03-13T00:00:00.000Z'],
        [`attribution:${a.id}`, 'attribution.withdraw', '2030-03-14T00:00:00.000Z'],
      ]);
      expect(await ops.activeMaintenance(t('2030-03-12T00:00:00Z'), t('2030-03-13T00:00:00Z'))).toEqual([
        {
          id: onTime.id,
          region: 'gz',
          startsAt: t('2030-03-12T00:00:00Z'),
          endsAt: t('2030-03-12T01:00:00Z'),
          announcedAt: t('2030-03-12T00:00:00Z'),
          reason: 'now',
        },
      ]);
      expect(await ops.activeAttributions(t('2030-03-12T00:00:00Z'), t('2030-03-13T00:00:00Z'))).toEqual([]);
    });

    it('judges a window by the notice period of the policy in force in the month it starts, read in that policy zone', async () => {
      // version 2, from June 2030: a 30-day notice period
      await stack.db.query(
        `INSERT INTO sla_policies (version, effective_from, time_zone, target_ppm, min_outage_minutes, notice_period_seconds,
                                   probe_down_pct, error_ratio_pct, error_min_requests, coverage_alert_ppm,
                                   coverage_window_minutes, credit_bands)
         SELECT 2, '2030-06-01', time_zone, target_ppm, min_outage_minutes, 30 * 86400, probe_down_pct, error_ratio_pct,
                error_min_requests, coverage_alert_ppm, coverage_window_minutes, credit_bands
           FROM sla_policies WHERE version = 1`,
      );
      now = t('2030-05-20T00:00:00Z');
      const window = (startsAt: string) =>
        ops.announceMaintenance({ region: null, startsAt: new Date(startsAt), endsAt: new Date(t(startsAt) + HOUR), reason: 'policy', actor: 'alice' });
      const may = await window('2030-05-25T00:00:00Z');
      // 17:00 UTC on 31 May is 01:00 on 1 June in Asia/Shanghai
      const juneInZone = await window('2030-05-31T17:00:00Z');
      const mayInZone = await window('2030-05-31T15:00:00Z');
      const june = await window('2030-06-25T00:00:00Z');
      expect([may, mayInZone, juneInZone, june].map((m) => [m.policyVersion, m.noticePeriodSeconds, m.excludesUnderPolicy])).toEqual([
        [1, 86400, true],
        [1, 86400, true],
        [2, 30 * 86400, false],
        [2, 30 * 86400, true],
      ]);
    });

    it('validates its input when called directly, as over HTTP', async () => {
      now = t('2030-03-10T00:00:00Z');
      const base = { region: null, accountId: null, startsAt: new Date(now - HOUR), endsAt: new Date(now), reason: 'r', actor: 'alice' };
      const before = await counts();
      await expect(ops.attribute({ ...base, cause: 'nope' as any })).rejects.toThrow(/cause must be one of/);
      await expect(ops.attribute({ ...base, cause: 'user', actor: '' })).rejects.toThrow(/operator must be 1-128/);
      await expect(ops.attribute({ ...base, cause: 'user', accountId: randomUUID() })).rejects.toThrow(/does not exist/);
      await expect(ops.attribute({ ...base, cause: 'user', region: 'mars' })).rejects.toThrow(/region "mars" is not served here/);
      await expect(ops.announceMaintenance({ ...base, startsAt: new Date(now), endsAt: new Date(NaN) })).rejects.toThrow(/endsAt must be an instant/);
      await expect(ops.withdrawAttribution('1 OR 1=1', 'alice', 'x')).rejects.toThrow(/does not exist/);
      expect(await counts()).toEqual(before);
    });
  });
});
