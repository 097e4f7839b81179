import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { enqueueUsage } from '@app/billing';
import { bullConnection, JobQueue } from '@app/common';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { expectEventually, scratchDatabase, TestStack, TestTenant } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments left out). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * `/metrics` of the three apps: Prometheus text, the process defaults with the app's label, and
 * series that follow what the apps do (a SendMessage counted under its action, the group commit's
 * sizes, the billing-api's routes, the worker's BullMQ depths, outbox backlog, usage lag and
 * reconciliation). On a database and Redis prefix of its own: its worker applies only its usage,
 * and its reconciliation and outbox are its own.
 */
describe('Prometheus metrics on /metrics of every app', () => {
  const token = randomBytes(24).toString('base64url');
  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;
  let worker: NestFastifyApplication;
  let tenant: TestTenant;
  const started = Date.now();
  const urls = {} as Record<'queue-api' | 'billing-api' | 'worker', string>;

  const scrape = async (app: keyof typeof urls, auth = `Bearer ${token}`) => {
    const res = await fetch(`${urls[app]}/metrics`, { headers: auth ? { authorization: auth } : {} });
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  const samples = async (app: keyof typeof urls) => {
    const r = await scrape(app);
    if (r.status !== 200) throw new Error(`/metrics of ${app}: ${r.status} ${r.text}`);
    return parseExposition(r.text);
  };
  /** The value of the one sample of `name` whose labels include `labels`; undefined if none. */
  const valueOf = (all: Sample[], name: string, labels: Record<string, string> = {}) => {
    const found = all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
    return found[0]?.value;
  };

  beforeAll(async () => {
    db = await scratchDatabase();
    const overrides = {
      DATABASE_URL: db.url,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:metrics`,
      METRICS_TOKEN: token,
      RECONCILE_INTERVAL_MS: '500',
      // unapplied rows are not sent again while the spec looks at them; it relays its old row itself
      USAGE_RESEND_AFTER_MS: '7200000',
      USAGE_RELAY_INTERVAL_MS: '20',
      SWEEP_INTERVAL_MS: '600000',
      PROBE_INTERVAL_MS: '3600000',
    };
    const config = loadConfigWith(overrides);
    await runMigrations(config);
    stack = await TestStack.start(overrides);
    worker = await createWorker(config);
    await worker.listen(0, '127.0.0.1');
    urls['queue-api'] = stack.cmqEndpoint;
    urls['billing-api'] = stack.billingUrl;
    urls.worker = `http://127.0.0.1:${(worker.getHttpServer().address() as AddressInfo).port}`;
    tenant = await stack.tenant('metrics');
  });

  afterAll(async () => {
    await worker?.close();
    await stack?.stop();
    await db?.drop();
  });

  it.each(['queue-api', 'billing-api', 'worker'] as const)('%s serves the process defaults in Prometheus text format, every series labelled with the app', async (app) => {
    const r = await scrape(app);
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const type of [
      '# TYPE process_resident_memory_bytes gauge',
      '# TYPE process_cpu_seconds_total counter',
      '# TYPE nodejs_heap_size_used_bytes gauge',
      '# TYPE nodejs_eventloop_lag_seconds gauge',
      '# TYPE nodejs_eventloop_lag_p99_seconds gauge',
      '# TYPE nodejs_gc_duration_seconds histogram',
    ]) {
      expect(r.text).toContain(type);
    }
    const all = parseExposition(r.text);
    expect(valueOf(all, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(valueOf(all, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(all.length).toBeGreaterThan(20);
    expect(all.filter((s) => s.labels.app !== app)).toEqual([]);
  });

  it.each(['queue-api', 'billing-api', 'worker'] as const)('%s: with METRICS_TOKEN set, /metrics answers only its bearer', async (app) => {
    for (const auth of ['', `Bearer ${token}x`, `Bearer ${stack.config.adminToken}`, token]) {
      const r = await scrape(app, auth);
      expect(r.status).toBe(401);
      expect(r.text).not.toContain('process_resident_memory_bytes');
    }
    expect((await scrape(app)).status).toBe(200);
  });

  it('queue-api: a SendMessage counts once under its action and code, its latency under its action; an unknown action under "unknown"; no label carries the account, key or queue', async () => {
    const cmq = stack.client(tenant);
    const queueName = `metrics-${randomBytes(4).toString('hex')}`;
    expect((await cmq.call('CreateQueue', { queueName })).code).toBe(0);
    const before = await samples('queue-api');
    const sent = { action: 'SendMessage', code: '0', outcome: 'ok' };
    expect((await cmq.call('SendMessage', { queueName, msgBody: 'hello' })).code).toBe(0);
    expect((await cmq.call('NoSuchAction', { queueName })).code).toBe(4000);
    const after = await samples('queue-api');

    expect(valueOf(after, 'cmq_requests_total', sent)).toBe((valueOf(before, 'cmq_requests_total', sent) ?? 0) + 1);
    const count = (all: Sample[]) => valueOf(all, 'cmq_request_duration_seconds_count', { action: 'SendMessage' }) ?? 0;
    expect(count(after)).toBe(count(before) + 1);
    expect(valueOf(after, 'cmq_request_duration_seconds_sum', { action: 'SendMessage' })).toBeGreaterThan(
      valueOf(before, 'cmq_request_duration_seconds_sum', { action: 'SendMessage' }) ?? 0,
    );
    expect(valueOf(after, 'cmq_request_duration_seconds_bucket', { action: 'SendMessage', le: '+Inf' })).toBe(count(after));
    const unknown = { action: 'unknown', code: '4000', outcome: 'client_error' };
    expect(valueOf(after, 'cmq_requests_total', unknown)).toBe((valueOf(before, 'cmq_requests_total', unknown) ?? 0) + 1);
    // every action the endpoint knows has its series from the start, and only those and "unknown"
    const actions = new Set(after.filter((s) => s.name === 'cmq_requests_total').map((s) => s.labels.action));
    expect(actions).toContain('ReceiveMessage');
    expect(actions).toContain('PublishMessage');
    expect(actions).not.toContain('NoSuchAction');

    const text = (await scrape('queue-api')).text;
    for (const userData of [queueName, tenant.accountId, tenant.secretId]) expect(text).not.toContain(userData);
  });

  it('queue-api: each group commit is counted with its size and time', async () => {
    const cmq = stack.client(tenant);
    const queueName = `metrics-gc-${randomBytes(4).toString('hex')}`;
    expect((await cmq.call('CreateQueue', { queueName })).code).toBe(0);
    const before = await samples('queue-api');
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => cmq.call('SendMessage', { queueName, msgBody: `m${i}` })));
    expect(replies.map((r) => r.code)).toEqual(new Array(20).fill(0));
    const after = await samples('queue-api');
    const of = (all: Sample[], name: string) => valueOf(all, name) ?? 0;
    // 20 sends in at least one commit and at most 20; the ops sum counts every one of them
    expect(of(after, 'cmq_group_commit_ops_count') - of(before, 'cmq_group_commit_ops_count')).toBeGreaterThanOrEqual(1);
    expect(of(after, 'cmq_group_commit_ops_sum') - of(before, 'cmq_group_commit_ops_sum')).toBeGreaterThanOrEqual(20);
    expect(of(after, 'cmq_group_commit_duration_seconds_count')).toBe(of(after, 'cmq_group_commit_ops_count'));
    expect(of(after, 'cmq_group_commit_duration_seconds_sum')).toBeGreaterThan(of(before, 'cmq_group_commit_duration_seconds_sum'));
    expect(valueOf(after, 'cmq_group_commit_failures_total')).toBe(0);
  });

  it('billing-api: requests by route template and status class, not by concrete path; /metrics is not in the OpenAPI document', async () => {
    const before = await samples('billing-api');
    const route = { method: 'GET', route: '/v1/accounts/:id' };
    expect((await stack.admin('GET', `/v1/accounts/${tenant.accountId}`)).status).toBe(200);
    expect((await stack.admin('GET', `/v1/accounts/${tenant.accountId}`, undefined, 'not-a-token-of-ours')).status).toBe(401);
    expect((await stack.admin('GET', '/v1/no-such-route')).status).toBe(404);
    const after = await samples('billing-api');
    const grew = (name: string, labels: Record<string, string>) => (valueOf(after, name, labels) ?? 0) - (valueOf(before, name, labels) ?? 0);
    expect(grew('http_requests_total', { ...route, status_class: '2xx' })).toBe(1);
    expect(grew('http_requests_total', { ...route, status_class: '4xx' })).toBe(1);
    expect(grew('http_requests_total', { method: 'GET', route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(grew('http_request_duration_seconds_count', route)).toBe(2);
    const text = (await scrape('billing-api')).text;
    expect(text).not.toContain(tenant.accountId);
    expect(text).not.toContain('no-such-route');

    const doc = (await (await fetch(`${stack.billingUrl}/docs-json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.includes('metrics'))).toEqual([]);
  });

  it('worker: BullMQ jobs of every queue by state, read when scraped', async () => {
    const all = await samples('worker');
    for (const queue of Object.values(JobQueue)) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(valueOf(all, 'cmq_bullmq_jobs', { queue, state })).toBeGreaterThanOrEqual(0);
      }
    }
    const exportsQueue = new Queue(JobQueue.Exports, { connection: bullConnection(stack.config.redis.url), prefix: `${stack.config.redis.prefix}:bull` });
    try {
      const delayed = (all: Sample[]) => valueOf(all, 'cmq_bullmq_jobs', { queue: JobQueue.Exports, state: 'delayed' });
      const job = await exportsQueue.add('metrics-spec', {}, { delay: 3_600_000 });
      expect(delayed(await samples('worker'))).toBe((delayed(all) ?? 0) + 1);
      await job.remove();
      expect(delayed(await samples('worker'))).toBe(delayed(all));
    } finally {
      await exportsQueue.close();
    }
  });

  it('worker: the latest ledger reconciliation, when it ran, what it found, ok or not', async () => {
    // a balance to check (topped up through the API)
    const topup = await fetch(`${stack.billingUrl}/v1/accounts/${tenant.accountId}/topups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': `metrics-${tenant.accountId}` },
      body: JSON.stringify({ amount: '10.00' }),
    });
    expect(topup.status).toBe(201);
    await expectEventually(async () => {
      const all = await samples('worker');
      expect(valueOf(all, 'cmq_ledger_reconciliation_last_run_timestamp_seconds')).toBeGreaterThanOrEqual(Math.floor(started / 1000));
      expect(valueOf(all, 'cmq_ledger_reconciliation_mismatches')).toBe(0);
      expect(valueOf(all, 'cmq_ledger_reconciliation_accounts_checked')).toBeGreaterThanOrEqual(1);
      expect(valueOf(all, 'cmq_ledger_reconciliation_ok')).toBe(1);
      expect(valueOf(all, 'cmq_ledger_reconciliation_interval_seconds')).toBe(0.5);
    }, 15_000, 200);
    // a balance that no longer matches its entries (this spec's own database): the next run finds it
    await stack.db.query(`UPDATE balances SET cash_nano = cash_nano + 1 WHERE account_id = $1`, [tenant.accountId]);
    await expectEventually(async () => {
      const all = await samples('worker');
      expect(valueOf(all, 'cmq_ledger_reconciliation_mismatches')).toBe(1);
      expect(valueOf(all, 'cmq_ledger_reconciliation_ok')).toBe(0);
    }, 15_000, 200);
    await stack.db.query(`UPDATE balances SET cash_nano = cash_nano - 1 WHERE account_id = $1`, [tenant.accountId]);
  });

  it('worker: an unapplied usage outbox row shows as backlog and age; once applied, its commit-to-balance lag is observed', async () => {
    const hourAgo = Date.now() - 3_600_000;
    const minute = Math.floor(hourAgo / 60_000) * 60_000;
    const record = [tenant.accountId, 'gz', 'metrics-lag', 'SendMessage', 'ok', minute, 1, 1, 5, 0, 1, 1];
    const { rows } = await stack.db.query<{ id: string }>(
      `INSERT INTO usage_outbox (created_at, records) VALUES (now() - interval '1 hour', $1::json) RETURNING id`,
      [JSON.stringify([record])],
    );
    const before = await samples('worker');
    expect(valueOf(before, 'cmq_usage_outbox_pending_rows')).toBeGreaterThanOrEqual(1);
    expect(valueOf(before, 'cmq_usage_outbox_oldest_age_seconds')).toBeGreaterThanOrEqual(3600);
    expect(valueOf(before, 'cmq_usage_outbox_oldest_age_seconds')).toBeLessThan(3700);

    const usage = new Queue(JobQueue.Usage, { connection: bullConnection(stack.config.redis.url), prefix: `${stack.config.redis.prefix}:bull` });
    try {
      await enqueueUsage(usage, [rows[0].id]);
    } finally {
      await usage.close();
    }
    const after = await expectEventually(async () => {
      const all = await samples('worker');
      expect(valueOf(all, 'cmq_usage_outbox_pending_rows')).toBe(0);
      expect(valueOf(all, 'cmq_usage_outbox_oldest_age_seconds')).toBe(0);
      return all;
    }, 10_000, 100);
    const of = (all: Sample[], name: string) => valueOf(all, name) ?? 0;
    expect(of(after, 'cmq_usage_apply_lag_seconds_count') - of(before, 'cmq_usage_apply_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(of(after, 'cmq_usage_apply_lag_seconds_sum') - of(before, 'cmq_usage_apply_lag_seconds_sum')).toBeGreaterThanOrEqual(3600);
    expect(of(after, 'cmq_usage_rows_applied_total') - of(before, 'cmq_usage_rows_applied_total')).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'cmq_metrics_collect_errors_total', { collector: 'usage_outbox' })).toBe(0);
  });
});
