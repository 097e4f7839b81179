import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { Pool } from 'pg';
import { bullConnection, JobQueue } from '@app/common';
import { CmqClient, decodeForm, verifySignature } from '@app/cmq';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { CANARY_QUEUE, PROBE_ACCOUNT_NAME, ProbeAccount, SlaProber } from '@app/sla';
import { expectEventually, freePort, scratchDatabase, sleep, SpawnedApp, spawnApp, waitForHttp } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';
import { SlaScheduler } from '../apps/worker/src/sla/sla.scheduler';

const REGIONS = ['gz', 'sh'];

/**
 * Whether every one of `starts` (ascending, ms) can be the probe of a slot of its own. A slot's
 * job is queued once its interval begins and runs on a worker of concurrency 4, at once or, on a
 * busy machine, late: the processor skips it from 3 intervals after the slot's start. So a slot-k
 * probe starts in [k, k + 3) intervals, give or take `slackMs` of clock between the worker and the
 * database; a late probe may start just before the next slot's, but no slot has two.
 */
function onePerSlot(starts: number[], intervalMs: number, slackMs: number): boolean {
  let previous = -Infinity;
  for (const start of starts) {
    const slot = Math.max(previous + 1, Math.floor((start - slackMs) / intervalMs) - 2);
    if (slot * intervalMs > start + slackMs) return false;
    previous = slot;
  }
  return true;
}

interface ProbeRow {
  region: string;
  prober: string;
  started_at: Date;
  received_at: Date;
  minute: Date;
  ok: boolean;
  failed_step: string | null;
  code: number | null;
  message: string | null;
  latency_ms: number;
  lost: boolean;
}

const STUB_TIMEOUT_MS = 500;

/**
 * A CMQ endpoint that answers the prober as told: `lose` acknowledges sends and never delivers
 * them, `hang` never answers, `refuse` refuses the signature, `deliver-late` delivers the lost
 * messages first, then the current ones. It checks every signature it is sent.
 */
class StubEndpoint {
  mode: 'lose' | 'hang' | 'refuse' | 'deliver-late' = 'lose';
  secretKey = '';
  verified = 0;
  signaturesOk = true;
  /** regions whose lost message was deleted by a later round */
  readonly deletedLate: string[] = [];
  private readonly lost = new Map<string, string>();
  private readonly last = new Map<string, string>();
  private server!: Server;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (this.mode === 'hang') return;
    const params = decodeForm(Buffer.concat(chunks));
    this.verified++;
    if (!verifySignature(req.method!, req.headers.host!, req.url!, params, this.secretKey)) this.signaturesOk = false;
    const region = params.get('Region')!;
    const reply = (fields: Record<string, unknown>): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: 'stub', ...fields }));
    };
    if (this.mode === 'refuse') return reply({ code: 4100, message: '(10030)authentication failed' });
    switch (params.get('Action')) {
      case 'SendMessage':
        if (this.mode === 'lose') this.lost.set(region, params.get('msgBody')!);
        this.last.set(region, params.get('msgBody')!);
        return reply({ code: 0, message: '', msgId: '1' });
      case 'ReceiveMessage': {
        if (this.mode === 'lose') return reply({ code: 7000, message: '(10200)no message' });
        const late = this.lost.get(region);
        this.lost.delete(region);
        return reply({ code: 0, message: '', msgBody: late ?? this.last.get(region), receiptHandle: `${late ? 'late' : 'now'}:${region}` });
      }
      case 'DeleteMessage':
        if (params.get('receiptHandle') === `late:${region}`) this.deletedLate.push(region);
        return reply({ code: 0, message: '' });
      default:
        return reply({ code: 4000, message: 'unexpected action' });
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * The SLA prober (sla.md §1) end to end: billing-api, queue-api and worker as their own processes
 * on a database and Redis prefix of this spec's own (its probe results and system account would
 * otherwise mix with the other specs'), probing two regions every 500 ms.
 */
describe('SLA prober: canary round trips per region, unbilled, recorded when the endpoint is down', () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let env: Record<string, string>;
  let billing: SpawnedApp;
  let queueApi: SpawnedApp;
  let worker: SpawnedApp;
  let billingUrl: string;
  let cmqPort: number;
  let workerPort: number;
  const clients: CmqClient[] = [];
  const adminToken = process.env.ADMIN_TOKEN!;
  /** when all three apps answered their health checks: a probe started before may find the queue-api not yet listening */
  let readyAt: Date;

  beforeAll(async () => {
    db = await scratchDatabase();
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    pool = new Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    const billingPort = await freePort();
    workerPort = await freePort();
    cmqPort = await freePort();
    env = {
      DATABASE_URL: db.url,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:sla-prober`,
      HOST: '127.0.0.1',
      BILLING_PORT: String(billingPort),
      WORKER_PORT: String(workerPort),
      CMQ_PORT: String(cmqPort),
      REGIONS: REGIONS.join(','),
      PROBE_INTERVAL_MS: '500',
      PROBE_TIMEOUT_MS: '2000',
    };
    billing = spawnApp('billing-api', env);
    queueApi = spawnApp('queue-api', env);
    worker = spawnApp('worker', env);
    billingUrl = `http://127.0.0.1:${billingPort}`;
    try {
      await Promise.all([billingPort, workerPort, cmqPort].map((p) => waitForHttp(`http://127.0.0.1:${p}/health`)));
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${[billing, queueApi, worker].map((a) => a.output()).join('\n')}`);
    }
    readyAt = new Date();
  }, 60_000);

  afterAll(async () => {
    clients.forEach((c) => c.close());
    await Promise.all([billing, queueApi, worker].filter(Boolean).map((a) => a.stop()));
    await pool?.end();
    await db?.drop();
  });

  async function admin(path: string): Promise<any> {
    const res = await fetch(billingUrl + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'customer' }),
    });
    expect(res.status).toBe(201);
    return res.json();
  }

  async function probes(where = 'true', args: unknown[] = []): Promise<ProbeRow[]> {
    const { rows } = await pool.query<ProbeRow>(`SELECT * FROM sla_probes WHERE ${where} ORDER BY id`, args);
    return rows;
  }

  /** Waits until at least `n` round trips per region were ok. */
  async function okProbes(n: number): Promise<void> {
    await expectEventually(async () => {
      const { rows } = await pool.query<{ region: string; n: number }>(
        `SELECT region, count(*)::int AS n FROM sla_probes WHERE ok GROUP BY region ORDER BY region`,
      );
      expect(rows.map((r) => r.region)).toEqual(REGIONS);
      expect(rows.every((r) => r.n >= n)).toBe(true);
    }, 15_000, 100);
  }

  async function systemAccountId(): Promise<string> {
    const { rows } = await pool.query<{ id: string; name: string; region: string }>(`SELECT id, name, region FROM accounts WHERE system`);
    expect(rows.map((r) => [r.name, r.region])).toEqual([[PROBE_ACCOUNT_NAME, REGIONS[0]]]);
    return rows[0].id;
  }

  it('stores an ok round trip per region and tick, by this worker, with its latency, stamped with the minute it was received in', async () => {
    await okProbes(3);
    await expectEventually(async () => expect((await probes('started_at >= $1', [readyAt])).length).toBeGreaterThanOrEqual(3 * REGIONS.length), 15_000, 100);
    const rows = await probes('started_at >= $1', [readyAt]);
    for (const r of rows) {
      expect({ ok: r.ok, step: r.failed_step, code: r.code, message: r.message, lost: r.lost, prober: r.prober }).toEqual({
        ok: true,
        step: null,
        code: 0,
        message: null,
        lost: false,
        prober: `${hostname()}:${worker.child.pid}`,
      });
      const span = r.received_at.getTime() - r.started_at.getTime();
      expect(span).toBeGreaterThanOrEqual(0);
      expect(r.latency_ms).toBeGreaterThanOrEqual(0);
      // started_at is the worker's clock corrected by the database's as last seen, received_at the
      // database's own: a few ms apart at most
      expect(r.latency_ms).toBeLessThanOrEqual(span + 10);
      expect(r.latency_ms).toBeLessThan(2000);
      expect(r.minute.getTime()).toBe(Math.floor(r.received_at.getTime() / 60_000) * 60_000);
    }
    // one round trip per region per tick (PROBE_INTERVAL_MS 500)
    for (const region of REGIONS) {
      const starts = rows.filter((r) => r.region === region).map((r) => r.started_at.getTime());
      expect(onePerSlot(starts.sort((a, b) => a - b), 500, 50)).toBe(true);
    }
    // and every canary message was deleted
    const id = await systemAccountId();
    await expectEventually(async () => {
      const { rows: m } = await pool.query(`SELECT count(*)::int AS n FROM messages m JOIN queues q ON q.id = m.queue_id WHERE q.account_id = $1`, [id]);
      expect(m[0].n).toBe(0);
    }, 5000, 20);
  });

  it('probes as one system account with one key and a canary queue per region, whose traffic is not metered while a customer’s is', async () => {
    await okProbes(3);
    const id = await systemAccountId();
    const queues = await pool.query(`SELECT region, name FROM queues WHERE account_id = $1 AND deleted_at IS NULL ORDER BY region`, [id]);
    expect(queues.rows).toEqual(REGIONS.map((region) => ({ region, name: CANARY_QUEUE })));
    const keys = await pool.query(`SELECT status FROM access_keys WHERE account_id = $1`, [id]);
    expect(keys.rows).toEqual([{ status: 'enabled' }]);
    const before = (await probes('ok')).length;
    expect(before).toBeGreaterThanOrEqual(6);

    // a customer's two requests are metered and applied by the same worker
    const account = await admin('/v1/accounts');
    const key = await admin(`/v1/accounts/${account.id}/keys`);
    const cmq = new CmqClient({ endpoint: `http://127.0.0.1:${cmqPort}`, secretId: key.secretId, secretKey: key.secretKey });
    clients.push(cmq);
    expect((await cmq.call('CreateQueue', { queueName: 'q' })).code).toBe(0);
    expect((await cmq.call('SendMessage', { queueName: 'q', msgBody: 'hello' })).code).toBe(0);
    await expectEventually(async () => {
      const { rows } = await pool.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM usage_minutely WHERE account_id = $1`, [account.id]);
      expect(rows[0].n).toBe(2);
    }, 15_000, 100);
    // two more round trips per region after the customer's, and everything committed since applied
    await expectEventually(async () => expect((await probes('ok')).length).toBeGreaterThanOrEqual(before + 4), 10_000, 100);
    await expectEventually(async () => {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM usage_outbox`);
      expect(rows[0].n).toBe(0);
    }, 10_000, 100);

    // the prober's three requests per round trip: none metered or charged
    const { rows } = await pool.query(
      `SELECT (SELECT count(*) FROM usage_minutely WHERE account_id = $1)::int AS minutely,
              (SELECT count(*) FROM usage_hourly WHERE account_id = $1)::int AS hourly,
              (SELECT count(*) FROM usage_monthly WHERE account_id = $1)::int AS monthly,
              (SELECT count(*) FROM ledger_entries WHERE account_id = $1)::int AS ledger,
              (SELECT count(*) FROM usage_outbox WHERE strpos(records::text, $1::text) > 0)::int AS outbox`,
      [id],
    );
    expect(rows[0]).toEqual({ minutely: 0, hourly: 0, monthly: 0, ledger: 0, outbox: 0 });
  });

  describe('two in-process workers on a fresh database, probing a stub endpoint', () => {
    let db2: { url: string; drop: () => Promise<void> };
    let pool2: Pool;
    let queue: Queue;
    let apps: NestFastifyApplication[] = [];
    const stub = new StubEndpoint();

    beforeAll(async () => {
      db2 = await scratchDatabase();
      await stub.start();
      const config = loadConfigWith({
        DATABASE_URL: db2.url,
        REDIS_PREFIX: `${process.env.REDIS_PREFIX}:sla-stub`,
        REGIONS: REGIONS.join(','),
        PROBE_INTERVAL_MS: '600000',
        PROBE_TIMEOUT_MS: String(STUB_TIMEOUT_MS),
        PROBE_ENDPOINT: stub.url,
      });
      await runMigrations(config);
      pool2 = new Pool({ connectionString: db2.url, max: 2 });
      pool2.on('error', () => undefined);
      // paused, so that the jobs stay where they can be counted
      queue = new Queue(JobQueue.Sla, { connection: bullConnection(config.redis.url), prefix: `${config.redis.prefix}:bull` });
      await queue.pause();
      apps = [await createWorker(config), await createWorker(config)];
      await Promise.all(apps.map((a) => a.init()));
    }, 60_000);

    afterAll(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await queue?.obliterate({ force: true });
      await queue?.close();
      await stub.stop();
      await pool2?.end();
      await db2?.drop();
    });

    it('ticks of both in the same slot queue one probe job; the next slot queues another', async () => {
      const interval = 600_000;
      const now = Date.now();
      const slot = Math.floor(now / interval);
      const [a, b] = apps.map((app) => app.get(SlaScheduler));
      const ids = await Promise.all([a.tick(now), b.tick(now), a.tick(slot * interval), b.tick((slot + 1) * interval - 1)]);
      expect(ids).toEqual([`sla-probe-${slot}`, `sla-probe-${slot}`, `sla-probe-${slot}`, `sla-probe-${slot}`]);
      expect(await b.tick((slot + 1) * interval)).toBe(`sla-probe-${slot + 1}`);
      const jobs = await queue.getJobs(['paused', 'wait', 'active', 'completed', 'failed', 'delayed', 'prioritized']);
      expect(jobs.map((j) => [j.id, j.name, j.data]).sort()).toEqual([
        [`sla-probe-${slot}`, 'sla-probe', { slot }],
        [`sla-probe-${slot + 1}`, 'sla-probe', { slot: slot + 1 }],
      ]);
    });

    it('ensure the system account concurrently, twice: one account, one key, one canary queue per region', async () => {
      const [a, b] = apps.map((app) => app.get(ProbeAccount));
      const first = await Promise.all([a.ensure(), b.ensure(), a.ensure(), b.ensure()]);
      const again = await Promise.all([a.ensure(), b.ensure()]);
      const all = [...first, ...again];
      expect(new Set(all.map((i) => `${i.accountId} ${i.secretId} ${i.secretKey}`)).size).toBe(1);
      const { rows } = await pool2.query(
        `SELECT a.id, a.name, a.system,
                (SELECT array_agg(k.secret_id) FROM access_keys k WHERE k.account_id = a.id) AS keys,
                (SELECT array_agg(q.region || '/' || q.name ORDER BY q.region) FROM queues q WHERE q.account_id = a.id) AS queues
           FROM accounts a`,
      );
      expect(rows).toEqual([
        { id: all[0].accountId, name: PROBE_ACCOUNT_NAME, system: true, keys: [all[0].secretId], queues: REGIONS.map((r) => `${r}/${CANARY_QUEUE}`) },
      ]);
    });

    it('stamps results by the database clock; a result that could not be stored is kept and stored, in its own minute, once the database takes writes again', async () => {
      const prober = apps[1].get(SlaProber);
      stub.mode = 'hang';
      const since = new Date();
      await pool2.query('ALTER TABLE sla_probes RENAME TO sla_probes_away');
      try {
        expect(await prober.probeAll()).toEqual([]);
      } finally {
        await pool2.query('ALTER TABLE sla_probes_away RENAME TO sla_probes');
      }
      const { rows: between } = await pool2.query<{ now: Date }>('SELECT clock_timestamp() AS now');
      await sleep(50);
      const later = await prober.probeAll();
      expect(later).toHaveLength(REGIONS.length);
      const { rows } = await pool2.query<ProbeRow>(`SELECT * FROM sla_probes WHERE prober = $1 AND started_at >= $2 ORDER BY received_at`, [prober.id, since]);
      expect(rows).toHaveLength(2 * REGIONS.length);
      const [kept, fresh] = [rows.slice(0, REGIONS.length), rows.slice(REGIONS.length)];
      for (const r of kept) {
        expect(r.received_at.getTime()).toBeGreaterThanOrEqual(since.getTime() - 1000);
        expect(r.received_at.getTime()).toBeLessThan(between[0].now.getTime());
        expect({ ok: r.ok, step: r.failed_step, code: r.code }).toEqual({ ok: false, step: 'send', code: null });
      }
      for (const r of fresh) expect(r.received_at.getTime()).toBeGreaterThan(between[0].now.getTime());
      for (const r of rows) expect(r.minute.getTime()).toBe(Math.floor(r.received_at.getTime() / 60_000) * 60_000);
    });

    it('records a lost message, a timeout and a refused signature as failures, and clears `lost` when a later round receives the message', async () => {
      const prober = apps[0].get(SlaProber);
      // the rows of the rounds since `mark()` (by id: started_at is on the database's clock as the
      // prober last saw it, a few ms off this process's)
      const mark = async () => Number((await pool2.query(`SELECT coalesce(max(id), 0) AS id FROM sla_probes`)).rows[0].id);
      const stored = async (after: number) =>
        (await pool2.query<ProbeRow>(`SELECT * FROM sla_probes WHERE id > $1 ORDER BY region`, [after])).rows;
      const outcome = (r: ProbeRow) => [r.region, r.ok, r.failed_step, r.code, r.message, r.lost];

      stub.secretKey = (await apps[0].get(ProbeAccount).identity()).secretKey;

      // acknowledged, then never delivered
      stub.mode = 'lose';
      let since = await mark();
      const lostAt = Date.now();
      expect((await prober.probeAll()).map((r) => [r.region, r.ok, r.failedStep, r.code, r.lost])).toEqual(
        REGIONS.map((region) => [region, false, 'receive', 7000, true]),
      );
      expect((await stored(since)).map(outcome)).toEqual(REGIONS.map((region) => [region, false, 'receive', 7000, '(10200)no message', true]));
      expect(stub.signaturesOk).toBe(true);

      // no answer: each step gives up after PROBE_TIMEOUT_MS
      stub.mode = 'hang';
      since = await mark();
      await prober.probeAll();
      const hung = await stored(since);
      expect(hung.map(outcome)).toEqual(REGIONS.map((region) => [region, false, 'send', null, 'no answer within the probe timeout', false]));
      for (const r of hung) expect(r.latency_ms).toBeGreaterThanOrEqual(STUB_TIMEOUT_MS - 5);
      for (const r of hung) expect(r.latency_ms).toBeLessThan(STUB_TIMEOUT_MS + 1000);

      // a 4xxx is the prober's own mistake, still a failed probe
      stub.mode = 'refuse';
      since = await mark();
      await prober.probeAll();
      expect((await stored(since)).map(outcome)).toEqual(REGIONS.map((region) => [region, false, 'send', 4100, '(10030)authentication failed', false]));

      // the lost messages turn up once their round trips are certainly over: deleted, and no longer lost
      stub.mode = 'deliver-late';
      await sleep(Math.max(0, lostAt + 3 * STUB_TIMEOUT_MS + 1100 - Date.now()));
      since = await mark();
      await prober.probeAll();
      expect((await stored(since)).map(outcome)).toEqual(REGIONS.map((region) => [region, true, null, 0, null, false]));
      const { rows } = await pool2.query(`SELECT count(*)::int AS n FROM sla_probes WHERE lost`);
      expect(rows[0].n).toBe(0);
      expect(stub.deletedLate.sort()).toEqual(REGIONS);
      // every answered request (lose 2, refuse 1, deliver-late 5 per region) signed for the endpoint's host and port
      expect([stub.signaturesOk, stub.verified]).toEqual([true, REGIONS.length * (2 + 1 + 5)]);
    });
  });

  it('records failed sends with no code while the queue-api is down, keeps the worker running, and probes ok again once it is back', async () => {
    await queueApi.stop();
    const downSince = new Date();
    await expectEventually(async () => {
      const rows = await probes('started_at > $1', [downSince]);
      for (const region of REGIONS) expect(rows.filter((r) => r.region === region).length).toBeGreaterThanOrEqual(3);
    }, 10_000, 100);
    const down = await probes('started_at > $1', [downSince]);
    for (const r of down) {
      expect({ ok: r.ok, step: r.failed_step, code: r.code, lost: r.lost }).toEqual({ ok: false, step: 'send', code: null, lost: false });
      expect(r.message).toMatch(/ECONNREFUSED/);
      expect(r.minute.getTime()).toBe(Math.floor(r.received_at.getTime() / 60_000) * 60_000);
    }
    expect(worker.child.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${workerPort}/health`)).status).toBe(200);

    queueApi = spawnApp('queue-api', env);
    await waitForHttp(`http://127.0.0.1:${cmqPort}/health`);
    const upSince = new Date();
    await expectEventually(async () => {
      const rows = await probes('started_at > $1 AND ok', [upSince]);
      expect([...new Set(rows.map((r) => r.region))].sort()).toEqual(REGIONS);
    }, 10_000, 100);
  });
});
