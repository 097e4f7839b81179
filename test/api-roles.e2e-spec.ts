import { randomBytes, randomUUID } from 'node:crypto';
import { runMigrations } from '@app/db';
import { loadConfigWith } from '@app/config';
import { placeholderPath, scratchDatabase, TestStack } from '@app/testing';

/**
 * The internal API's roles (admin, ops, finance), route by route, from the OpenAPI document
 * itself: every operation the API serves must be in the table below, so a route added without
 * deciding who may call it fails here. Each role calls each route; the ones it may not call
 * answer 403 (problem+json, with the reason), the others anything but 401/403. A scratch
 * database of its own, since admin calls really run (closes, top-ups).
 */
describe('internal API roles: admin, ops, finance (read-only)', () => {
  type Who = 'ops' | 'finance';
  /** Writes other roles than admin may call; every read is open to every role. */
  const WRITES: Record<string, Who[]> = {
    'POST /v1/accounts': [],
    'POST /v1/accounts/{id}/keys': [],
    'POST /v1/accounts/{id}/keys/{secretId}/disable': ['ops'],
    'POST /v1/accounts/{id}/keys/{secretId}/enable': ['ops'],
    'DELETE /v1/accounts/{id}/keys/{secretId}': [],
    'PUT /v1/accounts/{id}/queues/{queueName}/qps-limit': ['ops'],
    'POST /v1/accounts/{id}/topups': ['ops'],
    'POST /v1/accounts/{id}/adjustments': ['ops'],
    'POST /v1/usage-events': [],
    'PUT /v1/accounts/{id}/plans/{region}': [],
    'PUT /v1/accounts/{id}/webhook': [],
    'DELETE /v1/accounts/{id}/webhook': [],
    'PUT /v1/accounts/{id}/alert-threshold': [],
    'POST /v1/sla/maintenance': ['ops'],
    'POST /v1/sla/maintenance/{id}/cancel': ['ops'],
    'POST /v1/sla/attributions': ['ops'],
    'POST /v1/sla/attributions/{id}/withdraw': ['ops'],
    'POST /v1/sla/months/{month}/close': ['ops'],
    'POST /v1/sla/months/{month}/recompute': ['ops'],
    'POST /v1/sla/policies': [],
    'POST /v1/bills/{month}/close': ['ops'],
    'POST /v1/exports': ['ops', 'finance'],
    'POST /v1/audit/releases': ['ops'],
    'POST /v1/plans': [],
  };

  const tokens = { ops: randomBytes(24).toString('base64url'), finance: randomBytes(24).toString('base64url') };
  let stack: TestStack;
  let db: { url: string; drop: () => Promise<void> };
  let operations: Array<{ method: string; path: string }>;

  beforeAll(async () => {
    db = await scratchDatabase();
    const overrides = {
      DATABASE_URL: db.url,
      API_TOKENS: `ops-on-call:ops:${tokens.ops},finance-team:finance:${tokens.finance}`,
    };
    await runMigrations(loadConfigWith(overrides));
    stack = await TestStack.start(overrides);
    const doc = (await (await fetch(`${stack.billingUrl}/docs-json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })),
    );
  });

  afterAll(async () => {
    await stack?.stop();
    await db?.drop();
  });

  const tokenOf = (who: 'admin' | Who) => (who === 'admin' ? stack.config.adminToken : tokens[who]);
  const fill = placeholderPath;
  const call = async (method: string, path: string, token?: string) => {
    const res = await fetch(stack.billingUrl + fill(path), {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }),
        'x-operator': 'roles-spec',
        'idempotency-key': randomUUID(),
      },
      body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), body: text.startsWith('{') ? JSON.parse(text) : text };
  };

  it('judges every route the API serves (the table and the OpenAPI document name the same writes)', () => {
    expect(operations.length).toBeGreaterThan(30);
    const writes = operations.filter((o) => o.method !== 'GET').map((o) => `${o.method} ${o.path}`);
    expect(writes.sort()).toEqual(Object.keys(WRITES).sort());
  });

  it('without a token or with a wrong one every route answers 401 with a problem', async () => {
    for (const { method, path } of operations) {
      const none = await call(method, path);
      expect([method, path, none.status]).toEqual([method, path, 401]);
      expect(none.type).toMatch(/^application\/problem\+json/);
      expect(none.body).toMatchObject({ status: 401, title: 'Unauthorized', detail: 'missing bearer token' });
      const wrong = await call(method, path, tokens.ops + 'x');
      expect([method, path, wrong.status, wrong.body.detail]).toEqual([method, path, 401, 'invalid bearer token']);
    }
  });

  it.each(['admin', 'ops', 'finance'] as const)('%s: allowed routes pass the role check, the rest answer 403', async (who) => {
    const denied: string[] = [];
    for (const { method, path } of operations) {
      const key = `${method} ${path}`;
      const allowed = who === 'admin' || method === 'GET' || WRITES[key].includes(who as Who);
      const r = await call(method, path, tokenOf(who));
      if (allowed) {
        expect([key, r.status]).not.toEqual([key, 403]);
        expect([key, r.status]).not.toEqual([key, 401]);
      } else {
        expect([key, r.status]).toEqual([key, 403]);
        expect(r.type).toMatch(/^application\/problem\+json/);
        expect(r.body).toMatchObject({ type: 'about:blank', title: 'Forbidden', status: 403, instance: expect.stringMatching(/^\/v1\//) });
        expect(r.body.detail).toMatch(new RegExp(`^the ${who} role may not do this`));
        denied.push(key);
      }
    }
    const expected = Object.entries(WRITES)
      .filter(([, roles]) => who !== 'admin' && !roles.includes(who as Who))
      .map(([k]) => k)
      .sort();
    expect(denied.sort()).toEqual(expected);
  });

  it('finance is read-only: it reads balances and ledgers but moves no money', async () => {
    const t = await stack.tenant('roles');
    const topup = async (who: 'admin' | Who) =>
      (
        await fetch(`${stack.billingUrl}/v1/accounts/${t.accountId}/topups`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokenOf(who)}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          body: JSON.stringify({ amount: '10.00' }),
        })
      ).status;
    expect(await topup('finance')).toBe(403);
    expect(await topup('ops')).toBe(201);
    const balance = await fetch(`${stack.billingUrl}/v1/accounts/${t.accountId}/balance`, { headers: { authorization: `Bearer ${tokens.finance}` } });
    expect(balance.status).toBe(200);
    expect(((await balance.json()) as { cash: string }).cash).toBe('10.00');
  });

  it('health checks need no token', async () => {
    expect((await fetch(`${stack.billingUrl}/health`)).status).toBe(200);
  });
});
