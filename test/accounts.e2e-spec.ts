import { TestStack } from '@app/testing';

describe('internal API: accounts and access keys', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(() => stack.stop());

  it('refuses calls without the admin bearer token (401 with a reason)', async () => {
    const none = await stack.admin('POST', '/v1/accounts', { name: 'x' }, '');
    expect(none.status).toBe(401);
    expect(none.body.detail).toBe('missing bearer token');
    const wrong = await stack.admin('POST', '/v1/accounts', { name: 'x' }, 'not-the-token');
    expect(wrong.status).toBe(401);
    expect(wrong.body.detail).toBe('invalid bearer token');
  });

  it('creates an account in the default region and reads it back', async () => {
    const res = await stack.admin('POST', '/v1/accounts', { name: 'Acme' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'Acme', region: 'gz', status: 'active' });
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const got = await stack.admin('GET', `/v1/accounts/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it.each([
    [{}, /name/],
    [{ name: '' }, /name/],
    [{ name: 'x'.repeat(129) }, /name/],
    [{ name: 42 }, /name/],
    [{ name: 'bad-region', region: 'GZ!' }, /region/],
    [{ name: 'bad-extra', extra: 1 }, /extra/],
  ])('refuses a bad account body %j with 400 and a reason, storing nothing', async (body, reason) => {
    // other spec files create accounts in the same database meanwhile: look for this body's own
    const since = (await stack.db.query('SELECT now() AS t')).rows[0].t;
    const res = await stack.admin('POST', '/v1/accounts', body);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.detail)).toMatch(reason);
    const name = String((body as { name?: unknown }).name ?? '');
    const stored = await stack.db.query('SELECT count(*)::int AS n FROM accounts WHERE name = $1 AND created_at >= $2', [name, since]);
    expect(stored.rows[0].n).toBe(0);
  });

  it('refuses malformed JSON and a region this deployment does not serve', async () => {
    const bad = await stack.admin('POST', '/v1/accounts', '{"name":');
    expect(bad.status).toBe(400);
    const region = await stack.admin('POST', '/v1/accounts', { name: 'a', region: 'sh' });
    expect(region.status).toBe(400);
    expect(region.body.detail).toMatch(/region "sh" is not served here/);
  });

  it.each([
    ['an array nested 100,000 deep', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, 'the JSON body nests deeper than 32 levels'],
    ['an object nested 33 deep in a field', `{"name":"deep","x":${'{"a":'.repeat(33)}1${'}'.repeat(33)}}`, 'the JSON body nests deeper than 32 levels'],
    ['a NUL in a value', JSON.stringify({ name: 'a\u0000b' }), 'text must not contain NUL characters (U+0000)'],
    ['a NUL in a key', JSON.stringify({ name: 'nul-key', 'k\u0000': 1 }), 'text must not contain NUL characters (U+0000)'],
  ])('refuses a body with %s: 400 with the reason, never a 500, storing nothing', async (_what, body, detail) => {
    const since = (await stack.db.query('SELECT now() AS t')).rows[0].t;
    const res = await stack.admin('POST', '/v1/accounts', body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ type: 'about:blank', title: 'Bad Request', status: 400, detail, instance: '/v1/accounts' });
    const stored = await stack.db.query(`SELECT count(*)::int AS n FROM accounts WHERE name IN ('deep', 'nul-key') AND created_at >= $1`, [since]);
    expect(stored.rows[0].n).toBe(0);
  });

  it('refuses a NUL in a query (400), never a 500', async () => {
    const res = await stack.admin('GET', '/v1/accounts?search=a%00b');
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe('text must not contain NUL characters (U+0000)');
    const nested = await stack.admin('POST', '/v1/accounts', { name: 'shallow', tags: [[['fine']]] });
    // a shallow body goes on to validation as before
    expect([nested.status, nested.body.detail]).toEqual([400, 'property tags should not exist']);
  });

  it('answers 404 for unknown accounts and 400 for malformed ids', async () => {
    expect((await stack.admin('GET', '/v1/accounts/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const bad = await stack.admin('GET', '/v1/accounts/not-a-uuid');
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/uuid/);
  });

  it('answers a malformed URL with a problem too, before any route runs', async () => {
    const res = await fetch(`${stack.billingUrl}/v1/sla/maintenance/%E0%A4%A`, { headers: { authorization: `Bearer ${stack.config.adminToken}` } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ type: 'about:blank', title: 'Bad Request', status: 400, instance: '/v1/sla/maintenance/%E0%A4%A' });
  });

  it('issues keys, shows the secret once, lists, disables, enables and deletes them', async () => {
    const acc = (await stack.admin('POST', '/v1/accounts', { name: 'keys' })).body;
    const created = await stack.admin('POST', `/v1/accounts/${acc.id}/keys`);
    expect(created.status).toBe(201);
    expect(created.body.secretId).toMatch(/^AKID[A-Za-z0-9]{32}$/);
    expect(created.body.secretKey).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(created.body.status).toBe('enabled');

    const list = await stack.admin('GET', `/v1/accounts/${acc.id}/keys`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual([{ secretId: created.body.secretId, status: 'enabled', createdAt: created.body.createdAt }]);
    expect(JSON.stringify(list.body)).not.toContain(created.body.secretKey);

    const path = `/v1/accounts/${acc.id}/keys/${created.body.secretId}`;
    expect((await stack.admin('POST', `${path}/disable`)).body.status).toBe('disabled');
    expect((await stack.admin('POST', `${path}/enable`)).body.status).toBe('enabled');
    expect((await stack.admin('DELETE', path)).status).toBe(204);
    expect((await stack.admin('DELETE', path)).status).toBe(404);
    expect((await stack.admin('GET', `/v1/accounts/${acc.id}/keys`)).body).toEqual([]);
  });

  it("does not let one account's path reach another account's key", async () => {
    const a = await stack.tenant('a');
    const b = await stack.tenant('b');
    const res = await stack.admin('POST', `/v1/accounts/${b.accountId}/keys/${a.secretId}/disable`);
    expect(res.status).toBe(404);
    const keys = await stack.admin('GET', `/v1/accounts/${a.accountId}/keys`);
    expect(keys.body[0].status).toBe('enabled');
  });

  it('stores SecretKeys encrypted: a dump of the table does not contain them', async () => {
    const t = await stack.tenant('dump');
    const { rows } = await stack.db.query(
      `SELECT secret_id, encode(secret_key_enc, 'escape') AS enc, secret_key_enc FROM access_keys WHERE account_id = $1`,
      [t.accountId],
    );
    expect(rows).toHaveLength(1);
    const dump = JSON.stringify(rows) + rows[0].secret_key_enc.toString('latin1') + rows[0].secret_key_enc.toString('base64');
    expect(dump).not.toContain(t.secretKey);
    expect(rows[0].secret_key_enc.length).toBeGreaterThan(32);
  });

  it('serves health and the OpenAPI document', async () => {
    const health = await fetch(`${stack.billingUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', info: { postgres: { status: 'up' }, redis: { status: 'up' } } });
    const q = await fetch(`${stack.cmqEndpoint}/health`);
    expect(q.status).toBe(200);
    const docs = await fetch(`${stack.billingUrl}/docs-json`);
    expect(docs.status).toBe(200);
    expect(Object.keys(((await docs.json()) as { paths: object }).paths)).toContain('/v1/accounts/{id}/keys');
  });

  it('finds accounts by part of the name, by id or appId, in cursor pages by creation', async () => {
    const tag = `find-${Date.now()}`;
    const made = [];
    for (const n of ['Alpha', 'beta', 'Gamma']) made.push((await stack.admin('POST', '/v1/accounts', { name: `${tag} ${n}` })).body);
    const all = await stack.admin('GET', `/v1/accounts?search=${tag.toUpperCase()}`);
    expect(all.status).toBe(200);
    expect(all.body.accounts.map((a: any) => a.id)).toEqual(made.map((a) => a.id));
    expect(all.body.nextCursor).toBeNull();
    const first = await stack.admin('GET', `/v1/accounts?search=${tag}&limit=2`);
    expect(first.body.accounts).toHaveLength(2);
    const rest = await stack.admin('GET', `/v1/accounts?search=${tag}&limit=2&cursor=${first.body.nextCursor}`);
    expect(rest.body).toMatchObject({ accounts: [{ id: made[2].id }], nextCursor: null });
    expect((await stack.admin('GET', `/v1/accounts?search=${made[1].appId}`)).body.accounts).toEqual([made[1]]);
    expect((await stack.admin('GET', `/v1/accounts?search=${made[2].id}`)).body.accounts).toEqual([made[2]]);
    // % and _ are literal
    expect((await stack.admin('GET', `/v1/accounts?search=${encodeURIComponent(tag + '%')}`)).body.accounts).toEqual([]);
    expect((await stack.admin('GET', '/v1/accounts?cursor=bogus')).status).toBe(400);
    expect((await stack.admin('GET', '/v1/accounts?limit=0')).status).toBe(400);
  });
});
