import { ChildProcess, spawn } from 'node:child_process';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { Client } from 'pg';
import { APPLY_USAGE_JOB, bullConnection, JobQueue } from '@app/common';
import { CmqClient } from '@app/cmq';
import { expectEventually, freePort, sleep, SpawnedApp, spawnApp, TestStack, TestTenant, waitForHttp } from '@app/testing';

/*
 * Exactly once, under the failures a metering pipeline meets: a job delivered twice, a worker
 * killed (SIGKILL) in the middle of a job, Redis losing all its data mid-run, two workers at
 * once. The queue-api and workers run as their own processes on a Redis server of this spec's
 * own (so FLUSHALL hits nobody else); every request must be counted once, never twice, never lost.
 */
describe('usage exactly once: duplicate jobs, a killed worker, a flushed Redis, two workers', () => {
  let stack: TestStack;
  let redis: ChildProcess;
  let redisUrl: string;
  let queueApi: SpawnedApp;
  let cmqPort: number;
  let usageQueue: Queue;
  const workers: SpawnedApp[] = [];

  async function startWorker(): Promise<SpawnedApp> {
    const port = await freePort();
    const w = spawnApp('worker', {
      WORKER_PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      USAGE_RESEND_AFTER_MS: '1500',
      SWEEP_INTERVAL_MS: '600000',
      RECONCILE_INTERVAL_MS: '600000',
    });
    await waitForHttp(`http://127.0.0.1:${port}/health`);
    workers.push(w);
    return w;
  }

  beforeAll(async () => {
    stack = await TestStack.start();
    const port = await freePort();
    redisUrl = `redis://127.0.0.1:${port}`;
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await expectEventually(async () => {
      const probe = new Redis(redisUrl, { maxRetriesPerRequest: 0, lazyConnect: true });
      try {
        await probe.connect();
        expect(await probe.ping()).toBe('PONG');
      } finally {
        probe.disconnect();
      }
    }, 10_000, 100);
    cmqPort = await freePort();
    queueApi = spawnApp('queue-api', { CMQ_PORT: String(cmqPort), HOST: '127.0.0.1', REDIS_URL: redisUrl });
    await waitForHttp(`http://127.0.0.1:${cmqPort}/health`);
    usageQueue = new Queue(JobQueue.Usage, { connection: bullConnection(redisUrl), prefix: `${stack.config.redis.prefix}:bull` });
  }, 60_000);

  afterAll(async () => {
    await usageQueue?.close();
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await queueApi?.stop();
    redis?.kill('SIGKILL');
    await stack?.stop();
  });

  async function account(name: string): Promise<{ t: TestTenant; cmq: CmqClient }> {
    const t = await stack.tenant(name);
    const top = await fetch(`${stack.billingUrl}/v1/accounts/${t.accountId}/topups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': 'k' },
      body: JSON.stringify({ amount: '100.00' }),
    });
    expect(top.status).toBe(201);
    const cmq = new CmqClient({ endpoint: `http://127.0.0.1:${cmqPort}`, secretId: t.secretId, secretKey: t.secretKey });
    expect((await cmq.call('CreateQueue', { queueName: 'q' })).code).toBe(0);
    return { t, cmq };
  }

  /** `n` sends from 8 callers at once; each is one request and one billable call. */
  async function load(cmq: CmqClient, n: number): Promise<void> {
    let left = n;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (left-- > 0) expect((await cmq.call('SendMessage', { queueName: 'q', msgBody: `m-${Math.random()}` })).code).toBe(0);
      }),
    );
  }

  /** Requests and charges applied for the account, once they reached `requests`. */
  async function expectCounted(t: TestTenant, requests: number): Promise<void> {
    await expectEventually(
      async () => {
        const { rows } = await stack.db.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM usage_minutely WHERE account_id = $1`, [t.accountId]);
        expect(rows[0].n).toBe(requests);
      },
      60_000,
      200,
    );
    // a little longer: a double count would show up now
    await sleep(2500);
    const { rows } = await stack.db.query(
      `SELECT (SELECT sum(requests)::int FROM usage_minutely WHERE account_id = $1) AS requests,
              (SELECT sum(calls)::int FROM usage_hourly WHERE account_id = $1) AS calls,
              (SELECT sum(billable_calls)::int FROM usage_hourly WHERE account_id = $1) AS billable,
              (SELECT sum(amount_nano)::text FROM usage_hourly WHERE account_id = $1) AS amount,
              (SELECT (-sum(cash_delta_nano))::text FROM ledger_entries WHERE account_id = $1 AND kind = 'usage_charge') AS charged,
              (SELECT cash_nano::text FROM balances WHERE account_id = $1) AS cash`,
      [t.accountId],
    );
    const sends = requests - 1; // and one CreateQueue, free
    expect(rows[0]).toEqual({
      requests,
      calls: requests,
      billable: sends,
      // the hours hold what the batches charged, however the rows were delivered
      amount: (2000n * BigInt(sends)).toString(),
      charged: (2000n * BigInt(sends)).toString(),
      cash: (100_000_000_000n - 2000n * BigInt(sends)).toString(),
    });
  }

  it('the same job delivered twice (and a third time by the relay) counts each request once', async () => {
    const { t, cmq } = await account('eo-duplicate');
    await load(cmq, 300);
    // no worker yet: the relay's jobs wait; deliver the same rows twice more under other ids
    const { rows } = await stack.db.query(`SELECT id::text FROM usage_outbox ORDER BY id`);
    expect(rows.length).toBeGreaterThan(0);
    const ids = rows.map((r) => r.id);
    await usageQueue.add(APPLY_USAGE_JOB, { ids }, { jobId: 'duplicate-a' });
    await usageQueue.add(APPLY_USAGE_JOB, { ids }, { jobId: 'duplicate-b' });
    await startWorker();
    await expectCounted(t, 301);
  }, 120_000);

  it('two workers, one killed with SIGKILL in the middle of a job: every request counted once', async () => {
    const { t, cmq } = await account('eo-sigkill');
    if (workers.length < 2) await startWorker();
    // hold the account's balance row, so the workers' jobs stop inside their transactions
    const blocker = new Client({ connectionString: stack.config.database.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM balances WHERE account_id = $1 FOR UPDATE`, [t.accountId]);
    await load(cmq, 300);
    await expectEventually(async () => {
      const { rows } = await stack.db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      expect(rows[0].n).toBeGreaterThan(0);
    }, 20_000, 50);
    const victim = workers.shift()!;
    await victim.stop('SIGKILL');
    await blocker.query('ROLLBACK');
    await blocker.end();
    await load(cmq, 200);
    await startWorker();
    await expectCounted(t, 501);
  }, 180_000);

  it('Redis loses everything (FLUSHALL) in the middle of a run: unapplied usage is sent again, counted once', async () => {
    const { t, cmq } = await account('eo-flushall');
    // stop the workers for a moment so relayed jobs are still in Redis when it is flushed
    await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
    await load(cmq, 300);
    expect(await usageQueue.count()).toBeGreaterThan(0);
    const flush = new Redis(redisUrl);
    await flush.flushall();
    flush.disconnect();
    expect(await usageQueue.count()).toBe(0);
    await startWorker();
    await startWorker();
    await load(cmq, 300);
    await expectCounted(t, 601);
  }, 180_000);

  it('a queue-api killed (SIGKILL) right after answering: every answered request is still metered, once', async () => {
    const { t } = await account('eo-queue-api-killed');
    if (workers.length === 0) await startWorker();
    // a queue-api of its own that never gets to relay: it dies at once after the replies
    const port = await freePort();
    const doomed = spawnApp('queue-api', { CMQ_PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, USAGE_RELAY_INTERVAL_MS: '600000' });
    await waitForHttp(`http://127.0.0.1:${port}/health`);
    const cmq = new CmqClient({ endpoint: `http://127.0.0.1:${port}`, secretId: t.secretId, secretKey: t.secretKey });
    let answered = 0;
    let sends = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 25; i++) {
          const send = Math.random() < 0.5;
          const r = await cmq.call(send ? 'SendMessage' : 'ListQueue', { queueName: 'q', msgBody: `m-${Math.random()}` });
          if (r.code === 0) answered++;
          if (send) sends++;
        }
      }),
    );
    await doomed.stop('SIGKILL');
    cmq.close();
    expect(answered).toBe(200);
    // billable sends and free ListQueues; plus the first queue-api's CreateQueue
    await expectEventually(
      async () => {
        const { rows } = await stack.db.query(
          `SELECT sum(requests)::int AS n FROM usage_minutely WHERE account_id = $1`,
          [t.accountId],
        );
        expect(rows[0].n).toBe(201);
      },
      30_000,
      200,
    );
    await sleep(2500);
    const { rows } = await stack.db.query(
      `SELECT (SELECT sum(requests)::int FROM usage_minutely WHERE account_id = $1) AS requests,
              (SELECT sum(billable_calls)::int FROM usage_hourly WHERE account_id = $1) AS billable`,
      [t.accountId],
    );
    expect(rows[0]).toEqual({ requests: 201, billable: sends });
  }, 120_000);
});
