import { TestStack, TestTenant } from '@app/testing';

/**
 * The web console's server side: sign-in with an access key pair, the account-scoped access of
 * a sign-in to the internal API (its own account only: another id is unknown to it, operator
 * routes are forbidden), its CMQ calls made as the signed-in key, sign-out, and the files it is
 * served from.
 */
describe('web console: sign-in, account-scoped access, CMQ calls, assets', () => {
  let stack: TestStack;
  let mine: TestTenant;
  let other: TestTenant;
  beforeAll(async () => {
    stack = await TestStack.start();
    mine = await stack.tenant('console mine');
    other = await stack.tenant('console other');
  });
  afterAll(() => stack.stop());

  const call = async (method: string, path: string, token?: string, body?: unknown) => {
    const res = await fetch(stack.billingUrl + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        'idempotency-key': `k-${Math.random()}`,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      // text answers (CSV, HTML)
    }
    return { status: res.status, body: json, type: res.headers.get('content-type') ?? '' };
  };
  const signIn = async (t: Pick<TestTenant, 'secretId' | 'secretKey'>) => {
    const r = await call('POST', '/console/api/session', undefined, { secretId: t.secretId, secretKey: t.secretKey });
    expect(r.status).toBe(201);
    return r.body.token as string;
  };

  it('signs in with a key pair, and only with a right, enabled one', async () => {
    const r = await call('POST', '/console/api/session', undefined, { secretId: mine.secretId, secretKey: mine.secretKey });
    expect(r).toMatchObject({ status: 201, body: { kind: 'account', accountId: mine.accountId, secretId: mine.secretId, token: expect.stringMatching(/^cs_/) } });
    expect(await call('GET', '/console/api/session', r.body.token)).toMatchObject({
      status: 200,
      body: { kind: 'account', accountId: mine.accountId, secretId: mine.secretId },
    });
    const wrong = await call('POST', '/console/api/session', undefined, { secretId: mine.secretId, secretKey: mine.secretKey + 'x' });
    expect(wrong.status).toBe(401);
    expect(wrong.type).toMatch(/problem\+json/);
    expect(wrong.body.detail).toMatch(/do not sign in/);
    expect((await call('POST', '/console/api/session', undefined, { secretId: 'AKIDnobodyhas', secretKey: 'x' })).status).toBe(401);
    expect((await call('POST', '/console/api/session', undefined, { secretId: 'not-an-id', secretKey: 'x' })).status).toBe(400);
    expect((await call('GET', '/console/api/session', 'cs_' + 'A'.repeat(43))).status).toBe(401);
  });

  it("reaches its own account's pages and no other account's, whatever the URL says", async () => {
    const token = await signIn(mine);
    const own = mine.accountId;
    const theirs = other.accountId;
    const month = new Date().toISOString().slice(0, 7);
    const ownRoutes = [
      `/v1/accounts/${own}`,
      `/v1/accounts/${own}/keys`,
      `/v1/accounts/${own}/balance`,
      `/v1/accounts/${own}/ledger`,
      `/v1/accounts/${own}/notifications`,
      `/v1/accounts/${own}/bills`,
      `/v1/accounts/${own}/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z`,
      `/v1/accounts/${own}/statements?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z`,
      `/v1/accounts/${own}/plans`,
      `/v1/accounts/${own}/data-rights`,
      `/v1/accounts/${own}/audit-records`,
      `/v1/sla/accounts/${own}/months/${month}`,
      `/v1/sla/accounts/${own}/months/${month}/report.html`,
      `/v1/exports/ledger.csv?from=2026-01-01&to=2026-01-02&accountId=${own}`,
      `/v1/exports/bills.csv?from=2026-01&to=2026-02&accountId=${own}`,
      `/v1/exports/bill-lines.csv?from=2026-01&to=2026-02&accountId=${own}`,
      `/v1/exports/usage-hourly.csv?from=2026-01-01&to=2026-01-02&accountId=${own}`,
    ];
    for (const path of ownRoutes) {
      const r = await call('GET', path, token);
      expect([path, r.status]).toEqual([path, 200]);
      // the same route for the other account: unknown to this sign-in
      const swapped = path.replaceAll(own, theirs);
      const s = await call('GET', swapped, token);
      expect([swapped, s.status, s.body.detail]).toEqual([swapped, 404, 'no such account']);
    }
    // a download with no account named is every account's: not for a sign-in
    expect((await call('GET', '/v1/exports/bills.csv?from=2026-01&to=2026-02', token)).status).toBe(404);
    // operator routes
    for (const [method, path] of [
      ['GET', '/v1/accounts'],
      ['GET', '/v1/audit'],
      ['GET', `/v1/sla/months/${month}`],
      ['GET', '/v1/plans'],
      ['POST', `/v1/accounts/${own}/topups`],
      ['POST', `/v1/accounts/${own}/adjustments`],
      ['POST', '/v1/exports'],
      ['POST', '/v1/sla/maintenance'],
    ] as const) {
      const r = await call(method, path, token, method === 'POST' ? { amount: '100.00' } : undefined);
      expect([method, path, r.status, r.body.detail]).toEqual([method, path, 403, 'an account sign-in may not do this']);
    }
    // the balance did not move
    expect((await call('GET', `/v1/accounts/${own}/balance`, token)).body.cash).toBe('0.00');
  });

  it('makes CMQ calls as the signed-in key: its own queues only, every check applied, audited as the key', async () => {
    const token = await signIn(mine);
    const theirs = stack.client(other);
    expect((await theirs.call('CreateQueue', { queueName: 'theirs' })).code).toBe(0);
    const cmq = (action: string, params: Record<string, unknown> = {}) => call('POST', '/console/api/cmq', token, { action, params });
    expect(await cmq('CreateQueue', { queueName: 'from-console', visibilityTimeout: 5 })).toMatchObject({ status: 200, body: { code: 0, queueId: expect.any(String) } });
    expect(await cmq('SendMessage', { queueName: 'from-console', msgBody: 'hello' })).toMatchObject({ body: { code: 0 } });
    const got = await cmq('ReceiveMessage', { queueName: 'from-console' });
    expect(got.body).toMatchObject({ code: 0, msgBody: 'hello' });
    expect(await cmq('DeleteMessage', { queueName: 'from-console', receiptHandle: got.body.receiptHandle })).toMatchObject({ body: { code: 0 } });
    expect((await cmq('ListQueue')).body).toMatchObject({ code: 0, totalCount: 1, queueList: [{ queueName: 'from-console' }] });
    expect((await cmq('GetQueueAttributes', { queueName: 'theirs' })).body).toMatchObject({ code: 4440 });
    // the protocol's own errors come back as they are
    expect((await cmq('CreateQueue', { queueName: '1bad' })).body).toMatchObject({ code: 4000, message: '(10020)queue name format error' });
    // nothing of the signature is the console's to set, and only the console's actions go through
    expect(await cmq('ListQueue', { SecretId: other.secretId })).toMatchObject({ status: 403 });
    expect(await cmq('ListQueue', { Signature: 'x' })).toMatchObject({ status: 403 });
    expect(await cmq('QueryQueueRoute', { queueName: 'from-console' })).toMatchObject({ status: 403 });
    expect(await cmq('ListQueue', { x: { nested: true } })).toMatchObject({ status: 403 });
    // an operator token makes no CMQ calls: it has no key
    expect((await call('POST', '/console/api/cmq', stack.config.adminToken, { action: 'ListQueue' })).status).toBe(403);
    const { rows } = await stack.db.query(
      `SELECT action, actor_kind, actor, via FROM audit_trail WHERE account_id = $1 AND subject = 'queue:gz/from-console'`,
      [mine.accountId],
    );
    expect(rows).toEqual([{ action: 'queue.create', actor_kind: 'user', actor: mine.secretId, via: 'cmq' }]);
  });

  it('manages its own keys: a new one shown once, audited as the signed-in key through the console', async () => {
    const t = await stack.tenant('console keys');
    const token = await signIn(t);
    const created = await call('POST', `/v1/accounts/${t.accountId}/keys`, token);
    expect(created).toMatchObject({ status: 201, body: { secretId: expect.stringMatching(/^AKID/), secretKey: expect.any(String) } });
    expect((await call('GET', `/v1/accounts/${t.accountId}/keys`, token)).body.map((k: any) => k.secretKey)).toEqual([undefined, undefined]);
    expect((await call('POST', `/v1/accounts/${t.accountId}/keys/${created.body.secretId}/disable`, token)).status).toBe(200);
    expect((await call('DELETE', `/v1/accounts/${t.accountId}/keys/${created.body.secretId}`, token)).status).toBe(204);
    // another account's key by this account's path: not found
    expect((await call('POST', `/v1/accounts/${other.accountId}/keys`, token)).status).toBe(404);
    const { rows } = await stack.db.query(`SELECT action, actor_kind, actor, via FROM audit_trail WHERE account_id = $1 AND domain = 'accounts' ORDER BY id`, [t.accountId]);
    expect(rows.filter((r) => r.actor_kind === 'user')).toEqual([
      { action: 'key.create', actor_kind: 'user', actor: t.secretId, via: 'console' },
      { action: 'key.disable', actor_kind: 'user', actor: t.secretId, via: 'console' },
      { action: 'key.delete', actor_kind: 'user', actor: t.secretId, via: 'console' },
    ]);
  });

  it('ends a sign-in on sign-out, and when its key is disabled', async () => {
    const t = await stack.tenant('console ends');
    const first = await signIn(t);
    expect((await call('DELETE', '/console/api/session', first)).status).toBe(204);
    expect((await call('GET', '/console/api/session', first)).status).toBe(401);
    const second = await signIn(t);
    expect((await call('GET', `/v1/accounts/${t.accountId}`, second)).status).toBe(200);
    expect((await stack.admin('POST', `/v1/accounts/${t.accountId}/keys/${t.secretId}/disable`)).status).toBe(200);
    expect((await call('GET', `/v1/accounts/${t.accountId}`, second)).status).toBe(401);
    expect((await call('POST', '/console/api/session', undefined, { secretId: t.secretId, secretKey: t.secretKey })).status).toBe(401);
  });

  it('tells an operator token who it is', async () => {
    expect(await call('GET', '/console/api/session', stack.config.adminToken)).toMatchObject({ status: 200, body: { kind: 'operator', name: 'admin', role: 'admin' } });
  });

  it('serves the console and its charting library from the service itself, and nothing else of the package', async () => {
    const page = await fetch(`${stack.billingUrl}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('/console/app.js');
    expect(html).not.toMatch(/https?:\/\//);
    const lib = await fetch(`${stack.billingUrl}/console/vendor/chart.umd.min.js`);
    expect(lib.status).toBe(200);
    expect((await lib.text()).length).toBeGreaterThan(100_000);
    expect((await fetch(`${stack.billingUrl}/console/vendor/chart.js`)).status).toBe(404);
    expect((await fetch(`${stack.billingUrl}/console/vendor/../package.json`)).status).toBe(404);
    const redirect = await fetch(`${stack.billingUrl}/console`, { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([302, '/console/']);
  });
});
