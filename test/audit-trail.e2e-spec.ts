import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { parseCsv, scratchDatabase, TestStack, TestTenant } from '@app/testing';

/**
 * The audit trail (append-only, hash-chained): user operations through CMQ, operator actions
 * through the internal API and component events each recorded once, with who and through
 * what, in the change's own transaction; listed and paged; an account sees only its own; and
 * verification finds a changed, removed, forged or cut-off entry. A database of its own, since
 * the spec tampers with the chain.
 */
describe('audit trail: recorded, paged, verified', () => {
  const opsToken = randomBytes(24).toString('base64url');
  const financeToken = randomBytes(24).toString('base64url');
  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;
  let pool: Pool;
  let tenant: TestTenant;
  let other: TestTenant;

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, token?: string) => {
    const res = await fetch(stack.billingUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${token ?? stack.config.adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const trail = async () =>
    (
      await pool.query(
        `SELECT id::text, chain, seq::text, domain, action, actor_kind, actor, via, account_id, subject, reason, details FROM audit_trail ORDER BY audit_trail.id`,
      )
    ).rows;
  /** Runs SQL as a database owner would, past the append-only trigger (what verification must catch). */
  const tamper = async (sql: string, params: unknown[] = []) => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL session_replication_role = replica');
      const r = await c.query(sql, params);
      await c.query('COMMIT');
      return r;
    } finally {
      c.release();
    }
  };
  const verify = async () => {
    const r = await api('GET', '/v1/audit/verify', undefined, {}, financeToken);
    expect(r.status).toBe(200);
    return r.body;
  };

  beforeAll(async () => {
    db = await scratchDatabase();
    // a Redis prefix of its own: the export job it makes is no other spec's worker's to take
    const overrides = {
      DATABASE_URL: db.url,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:audit-trail`,
      API_TOKENS: `ops-on-call:ops:${opsToken},finance-team:finance:${financeToken}`,
    };
    await runMigrations(loadConfigWith(overrides));
    stack = await TestStack.start(overrides);
    pool = new Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    tenant = await stack.tenant('audited');
    other = await stack.tenant('other');
  });

  afterAll(async () => {
    await pool?.end();
    await stack?.stop();
    await db?.drop();
  });

  it('records user operations through CMQ, as the key that made them, with the account', async () => {
    const cmq = stack.client(tenant);
    expect((await cmq.call('CreateQueue', { queueName: 'orders', visibilityTimeout: 45 })).code).toBe(0);
    expect((await cmq.call('SetQueueAttributes', { queueName: 'orders', maxMsgSize: 1024 })).code).toBe(0);
    expect((await cmq.call('CreateQueue', { queueName: 'orders' })).code).not.toBe(0); // refused: nothing recorded
    expect((await cmq.call('DeleteQueue', { queueName: 'orders' })).code).toBe(0);
    const rows = (await trail()).filter((r) => r.domain === 'queues' && r.account_id === tenant.accountId);
    expect(rows.map((r) => [r.action, r.actor_kind, r.actor, r.via, r.subject])).toEqual([
      ['queue.create', 'user', tenant.secretId, 'cmq', 'queue:gz/orders'],
      ['queue.set', 'user', tenant.secretId, 'cmq', 'queue:gz/orders'],
      ['queue.delete', 'user', tenant.secretId, 'cmq', 'queue:gz/orders'],
    ]);
    expect(rows[0].details).toMatchObject({ attributes: { visibilityTimeout: 45 }, deadLetter: null });
    expect(rows[1].details).toMatchObject({ changed: { maxMsgSize: 1024 } });

    // a dead-letter binding removed, and a rewind
    expect((await cmq.call('CreateQueue', { queueName: 'dead' })).code).toBe(0);
    const policy = JSON.stringify({ deadLetterQueue: 'dead', policy: 0, maxReceiveCount: 3 });
    expect((await cmq.call('CreateQueue', { queueName: 'jobs', rewindSeconds: 3600, deadLetterPolicy: policy })).code).toBe(0);
    expect((await cmq.call('UnbindDeadLetterQueue', { queueName: 'jobs' })).code).toBe(0);
    expect((await cmq.call('RewindQueue', { queueName: 'jobs', startConsumeTime: Math.floor(Date.now() / 1000) - 60 })).code).toBe(0);
    const more = (await trail()).filter((r) => r.domain === 'queues' && r.subject === 'queue:gz/jobs');
    expect(more.map((r) => [r.action, r.actor])).toEqual([
      ['queue.create', tenant.secretId],
      ['queue.unbind-dead-letter', tenant.secretId],
      ['queue.rewind', tenant.secretId],
    ]);
    expect(more[0].details.deadLetter).toMatchObject({ deadLetterQueue: 'dead', policy: 0, maxReceiveCount: 3 });
    expect(more[2].details).toMatchObject({ restored: 0, requeued: 0 });
  });

  it('records operator actions with the operator and the token they came through; a replayed top-up is recorded once', async () => {
    const key = randomUUID();
    const topup = () => api('POST', `/v1/accounts/${tenant.accountId}/topups`, { amount: '10.00' }, { 'idempotency-key': key, 'x-operator': 'alice' }, opsToken);
    expect((await topup()).status).toBe(201);
    expect((await topup()).status).toBe(201);
    const keys = await api('POST', `/v1/accounts/${tenant.accountId}/keys`);
    expect(keys.status).toBe(201);
    expect((await api('POST', `/v1/accounts/${tenant.accountId}/keys/${keys.body.secretId}/disable`, undefined, { 'x-operator': 'bob' }, opsToken)).status).toBe(200);
    expect((await api('POST', `/v1/accounts/${tenant.accountId}/keys/${keys.body.secretId}/disable`, undefined, {}, opsToken)).status).toBe(200);
    const release = await api('POST', '/v1/audit/releases', { version: '2026.12.1', description: 'group commit tuning', components: ['queue-api'] }, {}, opsToken);
    expect(release.status).toBe(201);
    expect(release.body).toMatchObject({ domain: 'system', action: 'release.deploy', actorKind: 'operator', actor: 'ops-on-call', via: 'api:ops-on-call' });

    const rows = await trail();
    const of = (action: string) => rows.filter((r) => r.action === action && (r.account_id === tenant.accountId || r.account_id === null));
    expect(of('ledger.topup').map((r) => [r.actor_kind, r.actor, r.via, r.details.cashDelta])).toEqual([['operator', 'alice', 'api:ops-on-call', '10.00']]);
    expect(of('key.create').map((r) => [r.actor, r.via])).toContainEqual(['admin', 'api:admin']);
    // disabled once: the second call changed nothing and records nothing
    expect(of('key.disable').map((r) => [r.actor, r.via, r.subject])).toEqual([['bob', 'api:ops-on-call', `key:${keys.body.secretId}`]]);
    expect(of('account.create').map((r) => r.subject)).toEqual([`account:${tenant.accountId}`]);
    // no secret is ever recorded
    expect(JSON.stringify(rows)).not.toContain(keys.body.secretKey);
    expect(JSON.stringify(rows)).not.toContain(tenant.secretKey);
  });

  it('records the standing changes as component events: overdue, then restored by a top-up', async () => {
    const t = await stack.tenant('standing');
    expect((await api('POST', `/v1/accounts/${t.accountId}/adjustments`, { amount: '-1.00', reason: 'overdue drill' }, { 'idempotency-key': randomUUID() })).status).toBe(201);
    expect((await api('POST', `/v1/accounts/${t.accountId}/topups`, { amount: '5.00' }, { 'idempotency-key': randomUUID() })).status).toBe(201);
    const rows = (await trail()).filter((r) => r.account_id === t.accountId && r.domain === 'billing');
    expect(rows.map((r) => [r.action, r.actor_kind, r.actor])).toEqual([
      ['ledger.adjustment', 'operator', 'admin'],
      ['account.overdue', 'component', 'arrears'],
      ['ledger.topup', 'operator', 'admin'],
      ['account.restore', 'component', 'arrears'],
    ]);
    expect(rows[0].reason).toBe('overdue drill');
  });

  it('commits a change with its entry or not at all', async () => {
    await pool.query(`
      CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.actor = 'audit-breaker' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_trail FOR EACH ROW EXECUTE FUNCTION audit_refuse();`);
    try {
      const before = (await pool.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1`, [tenant.accountId])).rows[0].n;
      const r = await api('POST', `/v1/accounts/${tenant.accountId}/topups`, { amount: '1.00' }, { 'idempotency-key': randomUUID(), 'x-operator': 'audit-breaker' });
      expect(r.status).toBe(500);
      expect((await pool.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1`, [tenant.accountId])).rows[0].n).toBe(before);
      const k = await api('POST', `/v1/accounts/${tenant.accountId}/keys`, undefined, { 'x-operator': 'audit-breaker' });
      expect(k.status).toBe(500);
      expect((await pool.query(`SELECT count(*)::int AS n FROM access_keys WHERE account_id = $1`, [tenant.accountId])).rows[0].n).toBe(2);
    } finally {
      await pool.query(`DROP TRIGGER audit_refuse ON audit_trail; DROP FUNCTION audit_refuse();`);
    }
  });

  it('lists newest first in cursor pages without gaps or repeats, filtered; an account sees only its own', async () => {
    const all = await trail();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: any } = await api('GET', `/v1/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`, undefined, {}, financeToken);
      expect(page.status).toBe(200);
      seen.push(...page.body.entries.map((e: { id: string }) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.map((r) => r.id).reverse());

    const mine = await api('GET', `/v1/accounts/${tenant.accountId}/audit-records?limit=100`);
    expect(mine.body.entries.length).toBeGreaterThan(4);
    expect(mine.body.entries.every((e: { accountId: string }) => e.accountId === tenant.accountId)).toBe(true);
    const theirs = await api('GET', `/v1/accounts/${other.accountId}/audit-records?limit=100`);
    expect(theirs.body.entries.map((e: { action: string }) => e.action).sort()).toEqual(['account.create', 'key.create']);
    expect(JSON.stringify(theirs.body)).not.toContain(tenant.accountId);

    const queues = await api('GET', `/v1/audit?domain=queues&accountId=${tenant.accountId}`);
    expect(queues.body.entries.map((e: { action: string }) => e.action)).toEqual(['queue.rewind', 'queue.unbind-dead-letter', 'queue.create', 'queue.create', 'queue.delete', 'queue.set', 'queue.create']);
    const components = await api('GET', '/v1/audit?actorKind=component&limit=100');
    expect(components.body.entries.every((e: { actorKind: string }) => e.actorKind === 'component')).toBe(true);
    const e = queues.body.entries[0];
    expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(e.prevHash).toMatch(/^[0-9a-f]{64}$/);

    for (const [q, reason] of [
      ['domain=nope', /domain must be one of/],
      ['actorKind=robot', /actorKind must be one of/],
      ['accountId=42', /accountId must be a UUID/],
      ['from=yesterday', /from must be an ISO 8601 time/],
      ['from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', /from must be before to/],
      ['limit=0', /limit must be an integer from 1 to 100/],
      ['cursor=!!', /cursor is not valid/],
      [`cursor=${Buffer.from(JSON.stringify(['bills', '2026-01'])).toString('base64url')}`, /cursor is not valid/],
    ] as const) {
      const r = await api('GET', `/v1/audit?${q}`);
      expect([q, r.status]).toEqual([q, 400]);
      expect(r.body.detail).toMatch(reason);
    }
  });

  it('exports the trail as CSV for auditors (a download and an export job), and records who exported what', async () => {
    const from = new Date(Date.now() - 300 * 86_400_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const before = await trail();
    const res = await fetch(`${stack.billingUrl}/v1/exports/audit.csv?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&bom=true`, {
      headers: { authorization: `Bearer ${financeToken}`, 'x-operator': 'carol@finance' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const raw = Buffer.from(await res.arrayBuffer());
    expect([...raw.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = raw.subarray(3).toString('utf8');
    expect(text.startsWith('id,chain,seq,at,domain,action,actor_kind,actor,via,account_id,subject,reason,details,prev_hash,hash\r\n')).toBe(true);
    const lines = text.split('\r\n').filter(Boolean).slice(1);
    // the download is recorded first, so the file holds it too
    expect(lines).toHaveLength(before.length + 1);
    const last = lines[lines.length - 1];
    expect(last).toMatch(new RegExp(`^\\d+,0,\\d+,\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z,system,export.download,operator,carol@finance,api:finance-team,,export:audit,,`));
    expect(last).toMatch(/,[0-9a-f]{64},[0-9a-f]{64}$/);
    const hashes = (await pool.query(`SELECT encode(hash, 'hex') AS h FROM audit_trail ORDER BY audit_trail.id`)).rows.map((r) => r.h);
    expect(lines.map((l) => l.slice(-64))).toEqual(hashes);

    // one account's entries, as an export job (what the worker runs)
    const job = await api('POST', '/v1/exports', { kind: 'audit', from, to, accountId: tenant.accountId }, { 'x-operator': 'carol@finance' }, financeToken);
    expect(job.status).toBe(202);
    const { ExportJobStore } = await import('@app/billing/exports');
    const dir = await mkdtemp(join(tmpdir(), 'audit-export-'));
    try {
      const done = await new ExportJobStore(pool).run(job.body.id, dir);
      const own = (await pool.query(`SELECT count(*)::int AS n FROM audit_trail WHERE account_id = $1`, [tenant.accountId])).rows[0].n;
      expect(done).toMatchObject({ status: 'done', rows: own });
      const file = await readFile(join(dir, `${job.body.id}.csv`), 'utf8');
      const [header, ...records] = parseCsv(file);
      const account = header.indexOf('account_id');
      expect(records).toHaveLength(own);
      expect(records.every((r) => r[account] === tenant.accountId)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const recorded = (await trail()).filter((r) => r.action.startsWith('export.'));
    expect(recorded.map((r) => [r.action, r.actor, r.via, r.subject, r.account_id])).toEqual([
      ['export.download', 'carol@finance', 'api:finance-team', 'export:audit', null],
      ['export.create', 'carol@finance', 'api:finance-team', 'export:audit', tenant.accountId],
    ]);
    expect((await api('GET', '/v1/exports/audit.csv?from=2026-02-01&to=2026-01-01')).status).toBe(400);
  });

  it('is append-only: an UPDATE, a DELETE or a TRUNCATE is refused', async () => {
    await expect(pool.query(`UPDATE audit_trail SET actor = 'mallory' WHERE id = 1`)).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(pool.query(`DELETE FROM audit_trail WHERE id = 1`)).rejects.toThrow(/append-only: DELETE refused/);
    await expect(pool.query(`TRUNCATE audit_trail`)).rejects.toThrow(/append-only: TRUNCATE refused/);
  });

  it('verification holds on the chains as written, and finds each kind of tampering at its entry', async () => {
    const clean = await verify();
    const rows = await trail();
    expect(clean).toMatchObject({ ok: true, entries: rows.length, firstBreak: null });
    expect(clean.heads).toHaveLength(16);
    expect(clean.heads.reduce((n: number, h: { seq: string }) => n + Number(h.seq), 0)).toBe(rows.length);

    const victim = (await pool.query(`SELECT chain, seq::text, details, hash FROM audit_trail WHERE action = 'ledger.topup' ORDER BY audit_trail.id LIMIT 1`)).rows[0];
    const at = [victim.chain, victim.seq];
    // a changed amount
    await tamper(`UPDATE audit_trail SET details = jsonb_set(details, '{cashDelta}', '"1000.00"') WHERE chain = $1 AND seq = $2`, at);
    expect((await verify()).firstBreak).toMatchObject({ chain: victim.chain, seq: victim.seq, problem: 'hash' });
    // the forger recomputes that entry's hash: the next entry no longer links to it
    await tamper(`UPDATE audit_trail SET hash = sha256(hash) WHERE chain = $1 AND seq = $2`, at);
    const forged = await verify();
    expect(forged.ok).toBe(false);
    expect(forged.firstBreak).toMatchObject({ chain: victim.chain });
    expect(['hash', 'link']).toContain(forged.firstBreak.problem);
    await tamper(`UPDATE audit_trail SET details = $3, hash = $4 WHERE chain = $1 AND seq = $2`, [...at, victim.details, victim.hash]);
    expect((await verify()).ok).toBe(true);

    // an entry removed from the middle of the audited tenant's chain
    const chain = rows.find((r) => r.account_id === tenant.accountId)!.chain;
    const length = rows.filter((r) => r.chain === chain).length;
    expect(length).toBeGreaterThan(3);
    const middle = (await pool.query(`SELECT * FROM audit_trail WHERE chain = $1 AND seq = 2`, [chain])).rows[0];
    await tamper(`DELETE FROM audit_trail WHERE chain = $1 AND seq = 2`, [chain]);
    expect((await verify()).firstBreak).toMatchObject({ chain, seq: '3', problem: 'gap' });
    await tamper(`INSERT INTO audit_trail OVERRIDING SYSTEM VALUE SELECT * FROM jsonb_populate_record(NULL::audit_trail, $1::jsonb)`, [
      JSON.stringify({ ...middle, prev_hash: `\\x${middle.prev_hash.toString('hex')}`, hash: `\\x${middle.hash.toString('hex')}` }),
    ]);
    expect((await verify()).ok).toBe(true);

    // a chain's head row removed
    const head = (await pool.query(`SELECT * FROM audit_heads WHERE chain = $1`, [chain])).rows[0];
    await tamper(`DELETE FROM audit_heads WHERE chain = $1`, [chain]);
    expect((await verify()).firstBreak).toMatchObject({ chain, problem: 'head' });
    await tamper(`INSERT INTO audit_heads (chain, seq, hash, updated_at) VALUES ($1, $2, $3, $4)`, [head.chain, head.seq, head.hash, head.updated_at]);
    expect((await verify()).ok).toBe(true);

    // the latest entry cut off the end of the chain
    await tamper(`DELETE FROM audit_trail WHERE chain = $1 AND seq = $2`, [chain, length]);
    expect((await verify()).firstBreak).toMatchObject({ chain, seq: String(length), problem: 'head' });
  });
});
