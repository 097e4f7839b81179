import { randomBytes, randomUUID } from 'node:crypto';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { MINUTE_MS, monthBounds, monthOf, nextMonth } from '@app/common';
import { placeholderPath, scratchDatabase, TestStack } from '@app/testing';

type Json = any;
type Schema = Record<string, any>;

const PROBLEM = 'application/problem+json';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/**
 * What is wrong with `value` as an instance of `schema` (an OpenAPI 3.0 schema of `doc`), as
 * strictly as the document claims: every required property present, no property it does not
 * declare, every value of its declared type (null only where nullable), enums kept. Empty: it
 * conforms.
 */
function problemsOf(doc: Json, value: unknown, schema: Schema, at = '$'): string[] {
  if (schema.$ref) {
    const target = resolve(doc, schema.$ref);
    return target ? problemsOf(doc, value, target, at) : [`${at}: $ref ${schema.$ref} does not resolve`];
  }
  if (value === null) return schema.nullable ? [] : [`${at}: null, but the schema is not nullable`];
  if (schema.allOf) return (schema.allOf as Schema[]).flatMap((s) => problemsOf(doc, value, s, at));
  if (schema.oneOf) {
    const each = (schema.oneOf as Schema[]).map((s) => problemsOf(doc, value, s, at));
    return each.some((p) => p.length === 0) ? [] : [`${at}: matches none of oneOf (${each.map((p) => p.join(', ')).join(' | ')})`];
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) return [`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`];
  switch (schema.type) {
    case 'string':
      return typeof value === 'string' ? [] : [`${at}: ${JSON.stringify(value)} is not a string`];
    case 'integer':
      return Number.isInteger(value) ? [] : [`${at}: ${JSON.stringify(value)} is not an integer`];
    case 'number':
      return typeof value === 'number' ? [] : [`${at}: ${JSON.stringify(value)} is not a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at}: ${JSON.stringify(value)} is not a boolean`];
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      return value.flatMap((v, i) => problemsOf(doc, v, schema.items ?? {}, `${at}[${i}]`));
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
      if (!schema.properties) return []; // a free-form object (details, payload)
      const props = schema.properties as Record<string, Schema>;
      const obj = value as Record<string, unknown>;
      const out: string[] = [];
      for (const k of schema.required ?? []) if (!(k in obj)) out.push(`${at}.${k}: required, missing`);
      for (const [k, v] of Object.entries(obj)) {
        if (!props[k]) out.push(`${at}.${k}: not declared by the schema`);
        else out.push(...problemsOf(doc, v, props[k], `${at}.${k}`));
      }
      return out;
    }
    default:
      return [`${at}: the schema has no type (${JSON.stringify(schema)})`];
  }
}

function resolve(doc: Json, ref: string): Schema | undefined {
  const m = /^#\/components\/schemas\/([^/]+)$/.exec(ref);
  return m ? doc.components?.schemas?.[m[1]] : undefined;
}

/** Every `$ref` anywhere under `node`. */
function refsIn(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refsIn(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

/**
 * The billing-api's OpenAPI document (/docs-json) against itself and against the API: every
 * operation documents its success answer with a schema, its parameters, its error answers as
 * problem details and its security; and what the API really answers (bodies of the calls made
 * here, from a closed bill and a closed SLA month to the problems of refusals) is exactly what
 * the document declares for that operation and status. On a database of its own (it closes
 * months) and a queue prefix of its own (its export job must not reach another spec's worker).
 */
describe('OpenAPI document of the billing-api: complete, and what the API answers', () => {
  const TZ = 'Asia/Shanghai';
  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;
  let doc: Json;
  /** the test clock of both apps: the system's until the spec moves it past the month */
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  const month = monthOf(Date.now(), TZ);
  const checked = new Set<string>();
  const tokens = { ops: randomBytes(24).toString('base64url'), finance: randomBytes(24).toString('base64url') };

  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([m]) => METHODS.includes(m))
        .map(([method, op]) => ({ method: method.toUpperCase(), path, op, key: `${method.toUpperCase()} ${path}` })),
    );

  /** The documented operation a concrete request goes to. */
  const operationOf = (method: string, url: string) => {
    const path = url.split('?')[0];
    const matches = operations().filter(
      (o) => o.method === method && new RegExp(`^${o.path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path),
    );
    // a literal segment wins over a parameter (/v1/exports/ledger.csv, not /v1/exports/{id})
    matches.sort((a, b) => (a.path.match(/\{/g)?.length ?? 0) - (b.path.match(/\{/g)?.length ?? 0));
    return matches[0];
  };

  /**
   * Calls the API (admin token unless `token` says otherwise) and checks the answer against the
   * document: its status is one the operation documents, its content type the documented one,
   * a JSON body exactly the documented schema. Answers the status, headers and body.
   */
  const call = async (
    method: string,
    url: string,
    opts: { body?: unknown; headers?: Record<string, string>; token?: string | null } = {},
  ): Promise<{ status: number; headers: Headers; body: Json }> => {
    const op = operationOf(method, url);
    expect([method, url, op ? 'documented' : 'not in the document']).toEqual([method, url, 'documented']);
    const token = opts.token === undefined ? stack.config.adminToken : opts.token;
    const res = await fetch(stack.billingUrl + url, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    const where = `${method} ${url} → ${res.status}`;
    const documented = op.op.responses[String(res.status)];
    expect([where, documented ? 'status documented' : `undocumented status (body ${text.slice(0, 300)})`]).toEqual([where, 'status documented']);
    const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    if (res.status === 204) {
      expect([where, text]).toEqual([where, '']);
      expect([where, documented.content]).toEqual([where, undefined]);
      checked.add(op.key);
      return { status: res.status, headers: res.headers, body: undefined };
    }
    expect([where, Object.keys(documented.content ?? {})]).toEqual([where, [type]]);
    const schema = documented.content[type].schema;
    let body: Json = text;
    if (type === 'application/json' || type === PROBLEM) {
      body = JSON.parse(text);
      expect([where, problemsOf(doc, body, schema)]).toEqual([where, []]);
    } else {
      expect([where, schema.type]).toEqual([where, 'string']);
    }
    checked.add(op.key);
    return { status: res.status, headers: res.headers, body };
  };

  beforeAll(async () => {
    db = await scratchDatabase();
    const overrides = {
      DATABASE_URL: db.url,
      BILLING_TIME_ZONE: TZ,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:openapi`,
      API_TOKENS: `ops-openapi:ops:${tokens.ops},finance-openapi:finance:${tokens.finance}`,
    };
    await runMigrations(loadConfigWith(overrides));
    stack = await TestStack.start(overrides, { clock });
    const res = await fetch(`${stack.billingUrl}/docs-json`);
    expect(res.status).toBe(200);
    doc = await res.json();
  });

  afterAll(async () => {
    await stack?.stop();
    await db?.drop();
  });

  describe('the document itself', () => {
    it('serves every route of the API (more than 50 operations)', () => {
      expect(operations().length).toBeGreaterThan(50);
    });

    it('every operation documents a 2xx answer with content and a schema (JSON, text/csv or text/html); 204 without content', () => {
      const wrong: string[] = [];
      for (const { key, op } of operations()) {
        const ok = Object.entries(op.responses ?? {}).filter(([s]) => /^2\d\d$/.test(s)) as Array<[string, Json]>;
        if (ok.length !== 1) {
          wrong.push(`${key}: ${ok.length} success answers`);
          continue;
        }
        const [status, response] = ok[0];
        if (!response.description) wrong.push(`${key}: ${status} has no description`);
        if (status === '204') {
          if (response.content) wrong.push(`${key}: 204 with content`);
          continue;
        }
        const content = Object.entries(response.content ?? {}) as Array<[string, Json]>;
        if (content.length === 0) wrong.push(`${key}: ${status} has no content`);
        for (const [type, media] of content) {
          const schema = media.schema ?? {};
          if (type === 'application/json') {
            if (!schema.$ref && !schema.type) wrong.push(`${key}: ${status} JSON without a schema`);
            if (schema.type === 'array' && !schema.items?.$ref && !schema.items?.type) wrong.push(`${key}: ${status} an array of nothing`);
          } else if (type === 'text/csv' || type === 'text/html') {
            if (schema.type !== 'string') wrong.push(`${key}: ${status} ${type} without a string schema`);
          } else wrong.push(`${key}: ${status} answers ${type}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('every {param} of a path is a required path parameter, and every path parameter is in the path', () => {
      const wrong: string[] = [];
      for (const { key, path, op } of operations()) {
        const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
        const declared = (op.parameters ?? []).filter((p: Json) => p.in === 'path');
        if (JSON.stringify(declared.map((p: Json) => p.name).sort()) !== JSON.stringify(inPath)) {
          wrong.push(`${key}: path parameters ${declared.map((p: Json) => p.name).join(',')}`);
        }
        for (const p of declared) if (p.required !== true) wrong.push(`${key}: ${p.name} not required`);
      }
      expect(wrong).toEqual([]);
    });

    it('every path, query and header parameter has a description, an example and a typed schema', () => {
      const wrong: string[] = [];
      for (const { key, op } of operations()) {
        const names = new Set<string>();
        for (const p of op.parameters ?? []) {
          const id = `${key} ${p.in} ${p.name}`;
          if (names.has(`${p.in}:${p.name}`)) wrong.push(`${id}: declared twice`);
          names.add(`${p.in}:${p.name}`);
          if (!['path', 'query', 'header'].includes(p.in)) wrong.push(`${id}: in ${p.in}`);
          if (typeof p.required !== 'boolean') wrong.push(`${id}: required not said`);
          if (!p.description) wrong.push(`${id}: no description`);
          if (p.example === undefined && p.schema?.example === undefined && !p.examples) wrong.push(`${id}: no example`);
          if (!p.schema?.type && !p.schema?.enum && !p.schema?.$ref) wrong.push(`${id}: untyped`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('every $ref resolves to a component schema', () => {
      const refs = [...new Set(refsIn(doc))];
      expect(refs.length).toBeGreaterThan(30);
      expect(refs.filter((r) => !resolve(doc, r))).toEqual([]);
    });

    it('every property of every component schema has a type (or a $ref); free-form objects only where meant', () => {
      // a `string | null` property without an explicit type comes out as a free-form object
      const FREE_FORM = ['AuditEntryView.details', 'NotificationView.payload'];
      const wrong: string[] = [];
      for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, Schema>)) {
        if (schema.type !== 'object' || !schema.properties) wrong.push(`${name}: not an object with properties`);
        for (const [prop, s] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
          if (!s.type && !s.$ref && !s.allOf && !s.oneOf) wrong.push(`${name}.${prop}: untyped`);
          const freeForm = s.type === 'object' && !s.properties && !s.allOf;
          if (freeForm !== FREE_FORM.includes(`${name}.${prop}`)) wrong.push(`${name}.${prop}: ${freeForm ? 'a free-form object' : 'not free-form'}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('a Problem schema: type, title, status, detail, instance required; code, errors, errorId optional', () => {
      const p = doc.components.schemas.Problem;
      expect(p).toBeDefined();
      expect([...p.required].sort()).toEqual(['detail', 'instance', 'status', 'title', 'type']);
      expect(Object.keys(p.properties).sort()).toEqual(['code', 'detail', 'errorId', 'errors', 'instance', 'status', 'title', 'type']);
      expect(p.properties.errors).toMatchObject({ type: 'array', items: { type: 'string' } });
    });

    it('every operation: bearer security, and 401 and 403 (and every other error answer) as problem+json Problems', () => {
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      const wrong: string[] = [];
      for (const { key, op } of operations()) {
        if (JSON.stringify(op.security) !== JSON.stringify([{ bearer: [] }])) wrong.push(`${key}: security ${JSON.stringify(op.security)}`);
        for (const status of ['401', '403']) if (!op.responses[status]) wrong.push(`${key}: no ${status}`);
        const roles = op['x-allowed-roles'];
        if (!Array.isArray(roles) || !roles.includes('admin')) wrong.push(`${key}: x-allowed-roles ${JSON.stringify(roles)}`);
        else if (!op.responses['403']?.description?.includes(roles.join(', '))) wrong.push(`${key}: 403 does not name ${roles.join(', ')}`);
        for (const [status, response] of Object.entries(op.responses) as Array<[string, Json]>) {
          if (!/^[45]\d\d$/.test(status)) continue;
          if (!response.description) wrong.push(`${key}: ${status} has no description`);
          if (JSON.stringify(response.content) !== JSON.stringify({ [PROBLEM]: { schema: { $ref: '#/components/schemas/Problem' } } })) {
            wrong.push(`${key}: ${status} is not a Problem`);
          }
        }
        const takesInput = (op.parameters ?? []).length > 0 || op.requestBody;
        if (takesInput && !op.responses['400'] && key !== 'GET /v1/sla/maintenance/{id}') wrong.push(`${key}: takes input, no 400`);
        if (op.requestBody && (!op.responses['413'] || !op.responses['415'])) wrong.push(`${key}: takes a body, no 413/415`);
      }
      expect(wrong).toEqual([]);
    });

    it('the statuses the handlers throw: 404 where they look something up, 409 and 503 where they refuse', () => {
      const has = (key: string, status: string) => {
        const o = operations().find((x) => x.key === key);
        return o ? Boolean(o.op.responses[status]) : `${key}: no such operation`;
      };
      for (const key of [
        'GET /v1/accounts/{id}',
        'DELETE /v1/accounts/{id}/keys/{secretId}',
        'GET /v1/accounts/{id}/balance',
        'GET /v1/accounts/{id}/bills/{month}',
        'GET /v1/sla/accounts/{id}/months/{month}',
        'GET /v1/sla/maintenance/{id}',
        'GET /v1/exports/{id}',
        'GET /v1/exports/{id}/file',
        'GET /v1/plans/{code}',
        'PUT /v1/accounts/{id}/queues/{queueName}/qps-limit',
      ]) {
        expect([key, has(key, '404')]).toEqual([key, true]);
      }
      for (const key of [
        'POST /v1/accounts/{id}/topups',
        'POST /v1/accounts/{id}/adjustments',
        'POST /v1/bills/{month}/close',
        'POST /v1/sla/months/{month}/close',
        'POST /v1/sla/months/{month}/recompute',
        'GET /v1/sla/months/{month}/results.csv',
        'POST /v1/sla/maintenance/{id}/cancel',
      ]) {
        expect([key, has(key, '409')]).toEqual([key, true]);
      }
      for (const key of ['GET /v1/exports/ledger.csv', 'GET /v1/exports/usage-hourly.csv', 'GET /v1/exports/bills.csv', 'GET /v1/exports/audit.csv']) {
        expect([key, has(key, '503')]).toEqual([key, true]);
      }
    });

    it('unique operationIds', () => {
      const ids = operations().map((o) => o.op.operationId);
      expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
      expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    });

    it('the description names the roles and what each may do', () => {
      for (const role of ['admin', 'ops', 'finance']) expect(doc.info.description).toContain(`\`${role}\``);
      expect(doc.info.description).toContain('application/problem+json');
    });

    it('the schema checker refuses what does not conform (a missing, an undeclared, a mistyped property)', () => {
      const schema = { $ref: '#/components/schemas/AccountView' };
      const good = { id: randomUUID(), appId: '1', name: 'n', region: 'gz', status: 'active', createdAt: new Date().toISOString() };
      expect(problemsOf(doc, good, schema)).toEqual([]);
      expect(problemsOf(doc, { ...good, extra: 1 }, schema)).toEqual(['$.extra: not declared by the schema']);
      expect(problemsOf(doc, { ...good, name: undefined }, schema)).not.toEqual([]);
      const { name: _name, ...missing } = good;
      expect(problemsOf(doc, missing, schema)).toEqual(['$.name: required, missing']);
      expect(problemsOf(doc, { ...good, status: 'gone' }, schema)).not.toEqual([]);
      expect(problemsOf(doc, { ...good, createdAt: null }, schema)).not.toEqual([]);
    });
  });

  describe('what the API answers is what the document declares', () => {
    let accountId: string;
    let secretId: string;
    const hour = (ms: number) => new Date(Math.floor(ms / 3_600_000) * 3_600_000).toISOString();

    it('accounts, keys, money, plans, usage, notifications, data rights', async () => {
      const created = await call('POST', '/v1/accounts', { body: { name: 'openapi' }, headers: { 'x-operator': 'openapi-spec' } });
      expect(created.status).toBe(201);
      accountId = created.body.id;
      expect((await call('GET', `/v1/accounts/${accountId}`)).status).toBe(200);
      const found = await call('GET', `/v1/accounts?search=${accountId}`);
      expect(found.body).toMatchObject({ accounts: [{ id: accountId, name: 'openapi' }], nextCursor: null });
      const page = await call('GET', '/v1/accounts?limit=1');
      expect(page.body.accounts).toHaveLength(1);
      const key = await call('POST', `/v1/accounts/${accountId}/keys`);
      expect(key.status).toBe(201);
      secretId = key.body.secretId;
      expect((await call('GET', `/v1/accounts/${accountId}/keys`)).body).toHaveLength(1);
      expect((await call('POST', `/v1/accounts/${accountId}/keys/${secretId}/disable`)).body.status).toBe('disabled');
      expect((await call('POST', `/v1/accounts/${accountId}/keys/${secretId}/enable`)).body.status).toBe('enabled');
      const spare = await call('POST', `/v1/accounts/${accountId}/keys`);
      expect((await call('DELETE', `/v1/accounts/${accountId}/keys/${spare.body.secretId}`)).status).toBe(204);

      const idem = randomUUID();
      const topup = await call('POST', `/v1/accounts/${accountId}/topups`, { body: { amount: '100.00' }, headers: { 'idempotency-key': idem } });
      expect(topup.status).toBe(201);
      const replay = await call('POST', `/v1/accounts/${accountId}/topups`, { body: { amount: '100.00' }, headers: { 'idempotency-key': idem } });
      expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
      const conflict = await call('POST', `/v1/accounts/${accountId}/topups`, { body: { amount: '5.00' }, headers: { 'idempotency-key': idem } });
      expect(conflict.status).toBe(409);
      expect((await call('PUT', `/v1/accounts/${accountId}/alert-threshold`, { body: { amount: '99.00' } })).status).toBe(200);
      const adjusted = await call('POST', `/v1/accounts/${accountId}/adjustments`, {
        body: { amount: '-2.50', reason: 'openapi spec' },
        headers: { 'idempotency-key': randomUUID() },
      });
      expect(adjusted.status).toBe(201);
      const balance = await call('GET', `/v1/accounts/${accountId}/balance`);
      expect(balance.body).toMatchObject({ accountId, cash: '97.50', alertThreshold: '99.00' });

      expect((await call('PUT', `/v1/accounts/${accountId}/webhook`, { body: { url: 'http://127.0.0.1:9/hook', secret: 'openapi-spec-secret-1' } })).status).toBe(200);
      expect((await call('GET', `/v1/accounts/${accountId}/webhook`)).body.url).toBe('http://127.0.0.1:9/hook');
      const notifications = await call('GET', `/v1/accounts/${accountId}/notifications?limit=5`);
      expect(notifications.body.notifications.length).toBeGreaterThan(0); // the low-balance alert
      expect((await call('DELETE', `/v1/accounts/${accountId}/webhook`)).status).toBe(204);
      expect((await call('GET', `/v1/accounts/${accountId}/webhook`)).status).toBe(404);

      const plans = await call('GET', '/v1/plans?limit=2');
      expect(plans.body.plans.length).toBeGreaterThan(0);
      const code = plans.body.plans[0].code;
      expect((await call('GET', `/v1/plans/${code}`)).body.code).toBe(code);
      expect((await call('PUT', `/v1/accounts/${accountId}/plans/gz`, { body: { plan: code, reason: 'openapi spec' } })).status).toBe(200);
      expect((await call('GET', `/v1/accounts/${accountId}/plans`)).body.length).toBeGreaterThan(0);
      const version = await call('POST', '/v1/plans', {
        body: {
          code: 'openapi',
          currency: 'CNY',
          meteringRule: 'size_bands',
          regions: ['gz'],
          effectiveFrom: new Date((Math.floor(Date.now() / 3_600_000) + 2) * 3_600_000).toISOString(),
          lines: [{ meter: 'calls', freeQuota: '1000', tiers: [{ upTo: '1000000', perMillion: '2.00' }, { upTo: null, perMillion: '1.50' }] }],
          reason: 'openapi spec',
        },
        headers: { 'x-operator': 'openapi-spec' },
      });
      expect(version.body).toMatchObject({ code: 'openapi', version: 1, createdBy: 'openapi-spec' });

      const used = await call('POST', '/v1/usage-events', {
        body: {
          events: [
            { id: `openapi-${randomUUID()}`, accountId, region: 'gz', resource: 'orders', action: 'SendMessage', billableCalls: 3, messages: 3 },
            { id: `openapi-${randomUUID()}`, accountId, region: 'gz', action: 'PushDelivery', billableCalls: 1 },
          ],
        },
      });
      expect(used.body).toEqual({ accepted: 2, duplicates: 0 });
      const range = `from=${hour(Date.now() - 3_600_000)}&to=${hour(Date.now() + 3_600_000)}`;
      const usage = await call('GET', `/v1/accounts/${accountId}/usage?${range}&limit=10`);
      expect(usage.body.usage.length).toBeGreaterThan(0);
      const summed = await call('GET', `/v1/accounts/${accountId}/usage?${range}&groupBy=none`);
      expect(summed.body.usage[0]).toMatchObject({ region: null, resource: null, action: null });
      const statements = await call('GET', `/v1/accounts/${accountId}/statements?${range}`);
      expect(statements.body.lines.length).toBeGreaterThan(0);

      expect((await call('GET', `/v1/accounts/${accountId}/data-rights`)).body.homeRegion).toBe('gz');
      expect((await call('GET', `/v1/accounts/${accountId}/audit-records?limit=3`)).body.entries.length).toBe(3);
      expect((await call('PUT', `/v1/accounts/${accountId}/queues/no-such-queue/qps-limit`, { body: { qpsLimit: 10 } })).status).toBe(404);
    });

    it('audit trail, releases, exports', async () => {
      expect((await call('POST', '/v1/audit/releases', { body: { version: '2026.12.1', description: 'openapi spec', components: ['billing-api'] } })).status).toBe(201);
      const page = await call('GET', `/v1/audit?accountId=${accountId}&limit=2`);
      expect(page.body.entries).toHaveLength(2);
      expect(typeof page.body.nextCursor).toBe('string');
      expect((await call('GET', `/v1/audit?cursor=${page.body.nextCursor}&limit=2`)).status).toBe(200);
      expect((await call('GET', '/v1/audit/verify')).body.ok).toBe(true);

      const job = await call('POST', '/v1/exports', { body: { kind: 'ledger', from: '2026-01-01', to: '2027-01-01', accountId } });
      expect(job.status).toBe(202);
      expect((await call('GET', `/v1/exports/${job.body.id}`)).body).toMatchObject({ id: job.body.id, kind: 'ledger', status: 'pending' });
      expect((await call('GET', `/v1/exports/${job.body.id}/file`)).status).toBe(404);
      const csv = await call('GET', `/v1/exports/ledger.csv?from=${hour(Date.now() - 3_600_000)}&to=${hour(Date.now() + 3_600_000)}&accountId=${accountId}&bom=false`);
      expect(csv.status).toBe(200);
      expect(csv.body.split('\r\n')[0]).toBe(csv.headers.get('x-csv-columns'));
      expect((await call('GET', '/v1/exports/ledger.csv?from=2026-01-01')).status).toBe(400);
      const today = new Date(Date.now()).toISOString().slice(0, 10);
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      for (const name of ['usage-hourly', 'audit']) {
        const r = await call('GET', `/v1/exports/${name}.csv?from=${today}&to=${tomorrow}&accountId=${accountId}`);
        expect(r.body.split('\r\n')[0]).toBe(r.headers.get('x-csv-columns'));
      }
      expect((await call('GET', `/v1/exports/bill-lines.csv?from=${month}&to=${nextMonth(month)}&bom=true`)).status).toBe(200);
    });

    it('SLA operations and the open month', async () => {
      const at = (ms: number) => new Date(Math.floor((clock.now() + ms) / MINUTE_MS) * MINUTE_MS).toISOString();
      const w = await call('POST', '/v1/sla/maintenance', {
        body: { region: 'gz', startsAt: at(2 * 86_400_000), endsAt: at(2 * 86_400_000 + 3_600_000), reason: 'openapi spec' },
        headers: { 'x-operator': 'openapi-spec' },
      });
      expect(w.status).toBe(201);
      expect((await call('GET', `/v1/sla/maintenance/${w.body.id}`)).body.id).toBe(w.body.id);
      expect((await call('GET', '/v1/sla/maintenance/not-an-id')).status).toBe(404);
      const cancelled = await call('POST', `/v1/sla/maintenance/${w.body.id}/cancel`, { body: { reason: 'postponed' }, headers: { 'x-operator': 'openapi-spec' } });
      expect(cancelled.body.cancelledBy).toBe('openapi-spec');
      expect((await call('GET', '/v1/sla/maintenance?includeCancelled=true')).body.length).toBeGreaterThan(0);
      const a = await call('POST', '/v1/sla/attributions', {
        body: { accountId, startsAt: at(-3_600_000), endsAt: at(-1_800_000), cause: 'third_party', reason: 'openapi spec' },
        headers: { 'x-operator': 'openapi-spec' },
      });
      expect(a.status).toBe(201);
      expect((await call('POST', `/v1/sla/attributions/${a.body.id}/withdraw`, { body: { reason: 'no' }, headers: { 'x-operator': 'openapi-spec' } })).body.withdrawnBy).toBe(
        'openapi-spec',
      );
      expect((await call('GET', '/v1/sla/attributions?includeWithdrawn=true')).body.length).toBeGreaterThan(0);
      expect((await call('GET', '/v1/sla/audit?limit=2')).body.entries).toHaveLength(2);
      const policies = await call('GET', '/v1/sla/policies');
      expect(policies.body.length).toBeGreaterThan(0);
      const { version: _v, effectiveFrom: _e, ...rules } = policies.body[policies.body.length - 1];
      const policy = await call('POST', '/v1/sla/policies', {
        body: { ...rules, effectiveFrom: `${nextMonth(nextMonth(month))}-01`, reason: 'openapi spec' },
        headers: { 'x-operator': 'openapi-spec' },
      });
      expect(policy.body).toMatchObject({ version: policies.body.length + 1, effectiveFrom: `${nextMonth(nextMonth(month))}-01` });

      const open = await call('GET', `/v1/sla/accounts/${accountId}/months/${month}`);
      expect(open.body).toMatchObject({ accountId, month, closed: false, revision: null });
      const html = await call('GET', `/v1/sla/accounts/${accountId}/months/${month}/report.html`);
      expect(html.body).toContain('<');
      expect((await call('GET', `/v1/sla/months/${month}`)).body).toMatchObject({ month, closed: false, accounts: null });
      expect((await call('GET', `/v1/sla/months/${month}/results.csv`)).status).toBe(409);
      expect((await call('POST', `/v1/sla/months/${month}/close`, { headers: { 'x-operator': 'openapi-spec' } })).status).toBe(409);
    });

    it('the month closed: bills and the SLA month', async () => {
      // the clock of both apps past the month's end (in its zone)
      offset = monthBounds(month, TZ).end * MINUTE_MS + 3_600_000 - Date.now();
      const bills = await call('POST', `/v1/bills/${month}/close`, { headers: { 'x-operator': 'openapi-spec' } });
      expect(bills.body).toMatchObject({ month, closed: true });
      const page = await call('GET', `/v1/accounts/${accountId}/bills?limit=1`);
      expect(page.body.bills).toHaveLength(1);
      const bill = await call('GET', `/v1/accounts/${accountId}/bills/${month}`);
      expect(bill.body.lines.length).toBeGreaterThan(0);
      expect((await call('GET', `/v1/accounts/${accountId}/bills/2020-01`)).status).toBe(404);
      expect((await call('GET', `/v1/exports/bills.csv?from=${month}&to=${nextMonth(month)}`)).status).toBe(200);

      const sla = await call('POST', `/v1/sla/months/${month}/close`, { headers: { 'x-operator': 'openapi-spec' } });
      expect(sla.body).toMatchObject({ month, closed: true });
      const closed = await call('GET', `/v1/sla/accounts/${accountId}/months/${month}`);
      expect(closed.body).toMatchObject({ accountId, month, closed: true });
      expect((await call('GET', `/v1/sla/months/${month}`)).body).toMatchObject({ month, closed: true });
      const results = await call('GET', `/v1/sla/months/${month}/results.csv?bom=true`);
      expect(results.status).toBe(200);
      const recomputed = await call('POST', `/v1/sla/months/${month}/recompute`, { body: { reason: 'openapi spec' }, headers: { 'x-operator': 'openapi-spec' } });
      expect(recomputed.body).toMatchObject({ month, revision: 2 });
    });

    it('refusals answer the documented problems', async () => {
      const none = await call('GET', `/v1/accounts/${accountId}/balance`, { token: null });
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      expect((await call('GET', `/v1/accounts/${randomUUID()}`)).status).toBe(404);
      expect((await call('GET', '/v1/accounts/not-a-uuid')).status).toBe(400);
      const invalid = await call('POST', '/v1/accounts', { body: { name: '', extra: 1 } });
      expect(invalid.status).toBe(400);
      expect(invalid.body.errors.length).toBeGreaterThan(1);
      expect((await call('DELETE', `/v1/accounts/${accountId}/keys/AKIDnotissued0000`)).status).toBe(404);
      expect((await call('POST', `/v1/bills/${month}/close`, { headers: { 'x-operator': 'openapi-spec' } })).body.closed).toBe(false);
    });

    it('every operation, called by each role with placeholder values, answers a documented status and body; 403 exactly for the roles x-allowed-roles leaves out', async () => {
      const refused: string[] = [];
      for (const who of ['admin', 'ops', 'finance'] as const) {
        for (const { method, path, op, key } of operations()) {
          const url = placeholderPath(path);
          // no X-Operator and an empty body: every write is refused before it changes anything
          const r = await call(method, url, {
            token: who === 'admin' ? stack.config.adminToken : tokens[who],
            body: method === 'GET' || method === 'DELETE' ? undefined : {},
          });
          const allowed = (op['x-allowed-roles'] as string[]).includes(who);
          if (!allowed || r.status === 403) refused.push(`${who} ${key} ${r.status}`);
          if (!allowed) expect([who, key, r.status]).toEqual([who, key, 403]);
          else expect([who, key, r.status]).not.toEqual([who, key, 403]);
        }
      }
      expect(refused.length).toBeGreaterThan(10);
    });

    it('called every operation of the document', () => {
      expect(operations().map((o) => o.key).filter((k) => !checked.has(k))).toEqual([]);
    });
  });
});

