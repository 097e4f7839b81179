'use strict';
// The fault campaign: the production topology (two queue-apis behind the launcher's balancer,
// two workers, the billing API, under the launcher's supervisor) on a Postgres and a Redis of
// the campaign's own, under a steady CMQ load whose every request a checker records; faults
// injected in turn; then the checks. Loopback only, bounded in time. Used by
// test/chaos/fault-campaign.js (the full run) and test/fault-campaign.e2e-spec.ts (a short one).
const { spawn, execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, rmSync, writeFileSync, chownSync, chmodSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const { Client } = require('pg');
const Redis = require('ioredis');
const { assertPortFree, cmqClient } = require('../../bench/lib');

const ROOT = join(__dirname, '..', '..');
const dist = (p) => {
  const file = join(ROOT, 'dist', p);
  if (!existsSync(`${file}.js`)) throw new Error(`${file}.js is missing: run \`npm run build\` first`);
  return require(file);
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The first of `count` consecutive free loopback ports. */
async function freePorts(count) {
  for (let i = 0; i < 200; i++) {
    // below the ephemeral range (32768 and up), where outgoing connections take their ports
    const base = 20000 + Math.floor(Math.random() * 12000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await assertPortFree(p).then(() => true, () => false);
    if (ok) return base;
  }
  throw new Error('no free ports');
}

/** libfaketime (Debian package faketime): lets one process's wall clock jump while it runs. */
function faketimeLibrary() {
  for (const dir of ['/usr/lib/x86_64-linux-gnu/faketime', '/usr/lib/aarch64-linux-gnu/faketime', '/usr/lib/faketime']) {
    const lib = join(dir, 'libfaketime.so.1');
    if (existsSync(lib)) return lib;
  }
  throw new Error('libfaketime is missing: apt-get install faketime (the clock-jump fault needs it)');
}

// ---------------------------------------------------------------------------------------------
// A Postgres and a Redis of the campaign's own, so restarting or flushing them hits nobody else.

class PrivatePostgres {
  constructor(dir, port) {
    this.dir = dir;
    this.port = port;
    this.data = join(dir, 'data');
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
    this.bin = join('/usr/lib/postgresql', versions[versions.length - 1], 'bin');
    // initdb refuses to run as root: the postgres user runs the server then
    this.asUser = process.getuid && process.getuid() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  }

  run(tool, args) {
    const [cmd, ...pre] = this.asUser.length ? this.asUser : [join(this.bin, tool)];
    const full = this.asUser.length ? [...pre, join(this.bin, tool), ...args] : args;
    return execFileSync(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }).toString();
  }

  async start() {
    mkdirSync(this.dir, { recursive: true });
    if (this.asUser.length) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(this.dir, uid, gid);
    }
    this.run('initdb', ['-D', this.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    this.pgctl('start');
    return `postgres://postgres@127.0.0.1:${this.port}/cmq`;
  }

  pgctl(action, mode) {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c synchronous_commit=on`;
    const args = ['-D', this.data, '-l', join(this.dir, 'postgres.log'), '-w', '-t', '60'];
    if (action !== 'stop') args.push('-o', opts);
    if (mode) args.push('-m', mode);
    this.run('pg_ctl', [...args, action]);
  }

  /** `immediate`: as a crash (no checkpoint, recovery from the WAL at start). */
  restart(mode = 'immediate') {
    this.pgctl('restart', mode);
  }

  stop() {
    try {
      this.pgctl('stop', 'immediate');
    } catch {
      // already stopped
    }
  }
}

class PrivateRedis {
  constructor(port) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  async start() {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        if ((await r.ping()) === 'PONG') return;
      } catch {
        // not yet
      } finally {
        r.disconnect();
      }
      await sleep(100);
    }
    throw new Error('redis-server did not start');
  }

  async kill() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async flushall() {
    const r = new Redis(this.url, { maxRetriesPerRequest: 1 });
    try {
      await r.flushall();
    } finally {
      r.disconnect();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The checker: every request of the load account, its timing and its answer.

class Checker {
  constructor() {
    this.runId = randomBytes(4).toString('hex');
    /** acknowledged sends: msgId -> body */
    this.acked = new Map();
    /** bodies of sends that got no answer (they may or may not be stored) */
    this.maybeBodies = new Set();
    /** receives answered: msgId -> [{ start, end, body }] */
    this.receives = new Map();
    /** acknowledged deletes: msgId -> time of the answer */
    this.deleted = new Map();
    /** per request: { start, end, action, code } where code is a number or a string (no CMQ reply) */
    this.log = [];
    this.seq = 0;
  }

  /** A request was answered with a CMQ code (metered), or not (it may or may not have been). */
  static answered(code) {
    return typeof code === 'number' && code !== 6000;
  }

  /** A failure of the service as a user sees it: no reply, or a 6000-family code. */
  static failed(code) {
    return typeof code !== 'number' || (code >= 6000 && code < 7000);
  }

  nextBody() {
    return `${this.runId}-${++this.seq}`;
  }

  record(action, start, end, code) {
    this.log.push({ start, end, action, code });
  }

  sent(msgId, body) {
    this.acked.set(msgId, body);
  }

  received(msgId, body, start, end) {
    const list = this.receives.get(msgId) ?? [];
    list.push({ start, end, body });
    this.receives.set(msgId, list);
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Runs the campaign; resolves { ok, checks, faults, figures }. Options (ms unless named):
 * warmup, gap (steady load between faults), hold (how long a clock jump lasts), producers,
 * consumers, paceMs (pause between one worker's requests), visibility (s), faults (names, in
 * order), log (a line printer), workDir.
 */
async function runCampaign(opts = {}) {
  const o = {
    warmup: 8000,
    gap: 10000,
    hold: 8000,
    producers: 4,
    consumers: 4,
    queues: 4,
    paceMs: 10,
    visibility: 10,
    recoveryBound: 30000,
    faults: ['kill-queue-api', 'kill-worker', 'postgres-restart', 'postgres-terminate', 'redis-flushall', 'redis-restart', 'worker-clock-jump'],
    log: (line) => console.log(line),
    ...opts,
  };
  const log = o.log;
  const { Supervisor } = dist('apps/launcher/src/supervisor');
  const { TcpBalancer } = dist('apps/launcher/src/balancer');
  const { waitForHttp } = dist('libs/common/src/wait-for-http');

  const work = o.workDir ?? mkdtempSync(join(tmpdir(), 'cmq-chaos-'));
  chmodSync(work, 0o755); // the postgres user runs the private server inside it
  const pgPort = await freePorts(1);
  const pg = new PrivatePostgres(join(work, 'pg'), pgPort);
  const redis = new PrivateRedis(await freePorts(1));
  const cmqPort = await freePorts(3);
  const workerPort = await freePorts(2);
  const billingPort = await freePorts(1);
  const clockFile = join(work, 'worker-2.faketime');
  writeFileSync(clockFile, '+0\n');
  const logFd = openSync(join(work, 'apps.log'), 'a');

  const env = {
    ...process.env,
    NODE_ENV: 'production',
    REDIS_PREFIX: 'chaos',
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    MASTER_KEY: randomBytes(32).toString('base64'),
    HOST: '127.0.0.1',
    PUBLIC_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    MIGRATIONS_RUN: 'false',
    DATABASE_CREATE: 'true',
    CMQ_PORT: String(cmqPort),
    BILLING_PORT: String(billingPort),
    DATABASE_POOL_SIZE: '8',
    PROBE_INTERVAL_MS: '5000',
    PROBE_TIMEOUT_MS: '3000',
    USAGE_RESEND_AFTER_MS: '3000',
    RECONCILE_INTERVAL_MS: '5000',
    ARREARS_INTERVAL_MS: '5000',
    SWEEP_INTERVAL_MS: '5000',
  };
  delete env.LD_PRELOAD;

  const supervisor = new Supervisor({ restart: true, stdio: logFd, restartDelayMs: 250, maxRestartsPerMinute: 30, log: (l) => log(`  ${l}`) });
  /** exits of supervised processes: the campaign's own SIGKILLs are expected, anything else is a crash */
  const exits = [];
  const killedByUs = new Set();
  supervisor.on('exit', (name, code, signal) => exits.push({ name, code, signal, at: Date.now(), expected: killedByUs.delete(name) }));
  const balancer = new TcpBalancer([1, 2].map((i) => ({ host: '127.0.0.1', port: cmqPort + i })));
  const checker = new Checker();
  const checks = [];
  const faults = [];
  const check = (name, ok, detail) => {
    checks.push({ name, ok, detail });
    log(`${ok ? 'PASS' : 'FAIL'}  ${name}: ${detail}`);
  };
  const healthPorts = { 'queue-api-1': cmqPort + 1, 'queue-api-2': cmqPort + 2, 'worker-1': workerPort, 'worker-2': workerPort + 1, 'billing-api': billingPort };
  const allHealthy = async (timeoutMs) =>
    (await Promise.all(Object.values(healthPorts).map((p) => waitForHttp(`http://127.0.0.1:${p}/health`, timeoutMs, 200)))).every(Boolean);

  // interrupted (Ctrl-C, a CI timeout): the servers and apps of the campaign go with it
  const abort = (signal) => {
    void supervisor.stop('SIGKILL', 1000).finally(() => {
      void redis.kill();
      pg.stop();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  let db;
  const clients = [];
  let keep = true;
  const started = Date.now();
  try {
    // --- the services and the topology ---
    env.DATABASE_URL = await pg.start();
    await redis.start();
    env.REDIS_URL = redis.url;
    execFileSync(process.execPath, [join(ROOT, 'dist/libs/db/src/migrate.js')], { env: { ...env, MIGRATIONS_RUN: 'true' }, stdio: ['ignore', 'ignore', 'inherit'] });
    await balancer.listen(cmqPort, '127.0.0.1');
    const entry = (app) => join(ROOT, 'dist/apps', app, 'src/main.js');
    supervisor.start({ name: 'queue-api-1', entry: entry('queue-api'), env: { ...env, CMQ_PORT: String(cmqPort + 1) } });
    supervisor.start({ name: 'queue-api-2', entry: entry('queue-api'), env: { ...env, CMQ_PORT: String(cmqPort + 2) } });
    supervisor.start({ name: 'worker-1', entry: entry('worker'), env: { ...env, WORKER_PORT: String(workerPort) } });
    // this worker's wall clock follows the file; monotonic time (timers) is left alone, as an NTP step leaves it
    const workerTwoEnv = {
      ...env,
      WORKER_PORT: String(workerPort + 1),
      LD_PRELOAD: faketimeLibrary(),
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_CACHE_DURATION: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    supervisor.start({ name: 'worker-2', entry: entry('worker'), env: workerTwoEnv });
    supervisor.start({ name: 'billing-api', entry: entry('billing-api'), env });
    if (!(await allHealthy(60_000))) throw new Error(`the topology did not come up; see ${join(work, 'apps.log')}`);
    log(`topology up in ${Date.now() - started} ms (work dir ${work})`);

    db = new Client({ connectionString: env.DATABASE_URL });
    db.on('error', () => undefined);
    await db.connect();
    const admin = async (path, body, headers = {}) => {
      const res = await fetch(`http://127.0.0.1:${billingPort}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const account = (await admin('/v1/accounts', { name: 'chaos-load' })).body;
    const key = (await admin(`/v1/accounts/${account.id}/keys`, {})).body;
    const topup = await admin(`/v1/accounts/${account.id}/topups`, { amount: '1000.00' }, { 'idempotency-key': `chaos-${checker.runId}` });
    if (topup.status !== 201) throw new Error(`top-up: ${topup.status} ${JSON.stringify(topup.body)}`);
    const tenant = { accountId: account.id, secretId: key.secretId, secretKey: key.secretKey };

    // --- the load: every request through the balancer, recorded ---
    const call = async (client, action, params) => {
      const start = Date.now();
      const { reply } = await client.request(action, params);
      const end = Date.now();
      checker.record(action, start, end, reply.code);
      return { reply, start, end };
    };
    const newClient = (sockets) => {
      const c = cmqClient({ port: cmqPort, tenant, maxSockets: sockets, timeoutMs: 10_000 });
      clients.push(c);
      return c;
    };
    const setup = newClient(4);
    const queues = Array.from({ length: o.queues }, (_, i) => `chaos-${i}`);
    for (const q of queues) {
      const { reply } = await call(setup, 'CreateQueue', { queueName: q, visibilityTimeout: String(o.visibility), pollingWaitSeconds: '0' });
      if (reply.code !== 0) throw new Error(`CreateQueue ${q}: ${JSON.stringify(reply)}`);
    }

    let producing = true;
    const producer = async (n) => {
      const c = newClient(1);
      for (let i = 0; producing; i++) {
        const queueName = queues[(n + i) % queues.length];
        if (i % 4 === 3) {
          const bodies = [checker.nextBody(), checker.nextBody(), checker.nextBody()];
          const params = { queueName };
          bodies.forEach((b, k) => (params[`msgBody.${k + 1}`] = b));
          const { reply } = await call(c, 'BatchSendMessage', params);
          if (Checker.failed(reply.code)) await sleep(100);
          if (reply.code === 0) reply.msgList.forEach((m, k) => checker.sent(m.msgId, bodies[k]));
          else if (!Checker.answered(reply.code)) bodies.forEach((b) => checker.maybeBodies.add(b));
        } else {
          const body = checker.nextBody();
          const { reply } = await call(c, 'SendMessage', { queueName, msgBody: body });
          if (Checker.failed(reply.code)) await sleep(100);
          if (reply.code === 0) checker.sent(reply.msgId, body);
          else if (!Checker.answered(reply.code)) checker.maybeBodies.add(body);
        }
        await sleep(o.paceMs);
      }
    };
    let consuming = true;
    let lastReceipt = Date.now();
    const consumer = async (n) => {
      const c = newClient(1);
      for (let i = 0; consuming; i++) {
        const queueName = queues[(n + i) % queues.length];
        const batch = i % 2 === 0;
        const r = await call(c, batch ? 'BatchReceiveMessage' : 'ReceiveMessage', batch ? { queueName, numOfMsg: '8', pollingWaitSeconds: '1' } : { queueName, pollingWaitSeconds: '1' });
        if (r.reply.code !== 0) {
          if (Checker.failed(r.reply.code)) await sleep(200);
          continue;
        }
        lastReceipt = Date.now();
        const got = batch ? r.reply.msgInfoList : [r.reply];
        for (const m of got) checker.received(m.msgId, m.msgBody, r.start, r.end);
        for (const m of got) {
          const d = await call(c, 'DeleteMessage', { queueName, receiptHandle: m.receiptHandle });
          if (d.reply.code === 0) checker.deleted.set(m.msgId, d.end);
        }
        await sleep(o.paceMs);
      }
    };
    const loops = [
      ...Array.from({ length: o.producers }, (_, n) => producer(n)),
      ...Array.from({ length: o.consumers }, (_, n) => consumer(n)),
    ];

    // --- the faults, in turn ---
    const canary = newClient(1);
    const recovered = async (since) => {
      // recovered: a send and a receive through the balancer both answer, after the fault
      const deadline = since + o.recoveryBound;
      while (Date.now() < deadline) {
        const body = checker.nextBody();
        const s = await call(canary, 'SendMessage', { queueName: queues[0], msgBody: body });
        if (s.reply.code === 0) {
          checker.sent(s.reply.msgId, body);
          return Date.now() - since;
        }
        if (!Checker.answered(s.reply.code)) checker.maybeBodies.add(body);
        await sleep(100);
      }
      return null;
    };
    const inject = {
      'kill-queue-api': async () => {
        killedByUs.add('queue-api-1');
        process.kill(supervisor.pid('queue-api-1'), 'SIGKILL');
      },
      'kill-worker': async () => {
        killedByUs.add('worker-1');
        process.kill(supervisor.pid('worker-1'), 'SIGKILL');
      },
      'postgres-restart': async () => {
        pg.restart('immediate');
      },
      'postgres-terminate': async () => {
        const c = new Client({ connectionString: env.DATABASE_URL });
        await c.connect();
        const { rows } = await c.query(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
        await c.end();
        return `${rows[0].n} connections terminated`;
      },
      'redis-flushall': async () => {
        await redis.flushall();
      },
      'redis-restart': async () => {
        await redis.kill();
        await sleep(1000);
        await redis.start();
      },
      'worker-clock-jump': async () => {
        writeFileSync(clockFile, '+10m\n');
        after = async () => {
          // the same preload and file in a process of its own: the jump took effect (libfaketime re-reads the file each second)
          await sleep(1500);
          const seen = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(Date.now()))'], { env: workerTwoEnv }).toString());
          const aheadMs = seen - Date.now();
          clockJumped = aheadMs > 9 * 60_000;
          await sleep(Math.max(0, o.hold - 1500));
          writeFileSync(clockFile, '+0\n');
          return `a process under the same preload saw ${Math.round(aheadMs / 1000)} s ahead`;
        };
        return `worker-2's wall clock 10 minutes ahead for ${o.hold} ms, then back`;
      },
    };
    let after = null;
    let clockJumped = null;
    await sleep(o.warmup);
    for (const name of o.faults) {
      if (!inject[name]) throw new Error(`unknown fault ${name}`);
      const at = Date.now();
      log(`fault: ${name}`);
      const note = await inject[name]();
      const recoveryMs = await recovered(at);
      const healthy = await allHealthy(o.recoveryBound);
      const more = after ? await after() : null;
      after = null;
      const f = { name, at, recoveryMs, healthy, note: [note, more].filter(Boolean).join('; ') };
      faults.push(f);
      log(`  recovered in ${recoveryMs ?? 'NOT'} ms${note ? `; ${note}` : ''}; all processes healthy: ${healthy}`);
      await sleep(o.gap);
    }
    db.end().catch(() => undefined);
    db = new Client({ connectionString: env.DATABASE_URL });
    db.on('error', () => undefined);
    await db.connect();

    // --- drain: no more sends; consumers go on until every queue has been empty for longer
    // than the visibility timeout (messages whose delete was lost come back and are taken) ---
    producing = false;
    const loadEnded = Date.now();
    const quietFor = o.visibility * 1000 + 4000;
    while (Date.now() - Math.max(lastReceipt, loadEnded) < quietFor) await sleep(500);
    consuming = false;
    await Promise.all(loops);
    const ended = Date.now();
    log(`load: ${checker.log.length} requests in ${Math.round((ended - started) / 1000)} s`);

    // --- the checks ---
    // 1. no acknowledged message lost (each received, with its body)
    const lost = [...checker.acked.keys()].filter((id) => !checker.receives.has(id));
    const wrongBody = [...checker.acked].filter(([id, body]) => checker.receives.get(id)?.some((r) => r.body !== body));
    check('no acknowledged message lost', lost.length === 0 && wrongBody.length === 0,
      `${checker.acked.size} acknowledged, ${lost.length} never received${lost.length ? ` (e.g. ${lost.slice(0, 3).join(', ')})` : ''}, ${wrongBody.length} with another body`);

    // 2. no message visible to two consumers within its visibility timeout, none after its delete
    const vt = o.visibility * 1000;
    let early = 0;
    let afterDelete = 0;
    let redeliveries = 0;
    for (const [id, list] of checker.receives) {
      list.sort((a, b) => a.start - b.start);
      for (let i = 1; i < list.length; i++) {
        redeliveries++;
        for (let j = 0; j < i; j++) if (list[i].end < list[j].start + vt) early++;
      }
      const del = checker.deleted.get(id);
      if (del !== undefined && list.some((r) => r.start > del)) afterDelete++;
    }
    check('no message delivered twice within its visibility timeout', early === 0, `${redeliveries} redeliveries (after a lost delete), ${early} within ${o.visibility} s of an earlier receive`);
    check('no message delivered after its acknowledged delete', afterDelete === 0, `${checker.deleted.size} acknowledged deletes, ${afterDelete} delivered again`);
    const received = new Set([...checker.receives.values()].flat().map((r) => r.body));
    const acked = new Set(checker.acked.values());
    const strangers = [...received].filter((b) => !acked.has(b) && !checker.maybeBodies.has(b));
    check('nothing delivered that was not sent', strangers.length === 0, `${strangers.length} bodies received that no send carried`);

    // 3. usage applied exactly once
    const outbox = await waitFor(async () => Number((await db.query('SELECT count(*) AS n FROM usage_outbox')).rows[0].n), (n) => n === 0, 90_000);
    const { rows: u } = await db.query(`SELECT coalesce(sum(calls), 0)::bigint AS calls FROM usage_hourly WHERE account_id = $1`, [tenant.accountId]);
    const calls = Number(u[0].calls);
    const answered = checker.log.filter((r) => Checker.answered(r.code)).length;
    const unanswered = checker.log.length - answered;
    const { rows: dup } = await db.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM usage_batches_applied, unnest(outbox_ids) AS id`);
    check('usage applied exactly once', outbox === 0 && calls >= answered && calls <= answered + unanswered && dup[0].n === dup[0].d,
      `${calls} calls applied for ${answered} answered requests and ${unanswered} without an answer (the bound: ${answered}..${answered + unanswered}); outbox ${outbox}; ${dup[0].n} outbox rows applied, ${dup[0].n - dup[0].d} twice`);

    // 4. ledger, aggregates and balances reconcile to the minor unit
    const { rows: rec } = await db.query(
      `SELECT count(*)::int AS n FROM balances b
         LEFT JOIN (SELECT account_id, sum(cash_delta_nano) AS c, sum(voucher_delta_nano) AS v FROM ledger_entries GROUP BY account_id) e USING (account_id)
        WHERE b.cash_nano <> coalesce(e.c, 0) OR b.voucher_nano <> coalesce(e.v, 0)`,
    );
    const { rows: money } = await db.query(
      `SELECT (SELECT coalesce(sum(amount_nano), 0) FROM usage_hourly WHERE account_id = $1)::text AS hourly,
              (SELECT coalesce(sum(charged_nano), 0) FROM usage_monthly WHERE account_id = $1)::text AS monthly,
              (SELECT coalesce(-sum(cash_delta_nano + voucher_delta_nano), 0) FROM ledger_entries WHERE account_id = $1 AND kind IN ('usage_charge', 'voucher_use'))::text AS ledger,
              (SELECT cash_nano FROM balances WHERE account_id = $1)::text AS cash`,
      [tenant.accountId],
    );
    const m = money[0];
    const expectedCash = 1000n * 1_000_000_000n - BigInt(m.ledger);
    check('ledger, aggregates and balances reconcile', rec[0].n === 0 && m.hourly === m.monthly && m.monthly === m.ledger && BigInt(m.cash) === expectedCash,
      `balances off their ledger: ${rec[0].n}; usage charged (nano): hourly ${m.hourly}, monthly ${m.monthly}, ledger ${m.ledger}; cash ${m.cash} = top-up − charges: ${BigInt(m.cash) === expectedCash}`);
    const since = new Date(ended);
    const lastRun = await waitFor(async () => (await db.query(`SELECT mismatched FROM ledger_reconciliations WHERE run_at > $1 ORDER BY id DESC LIMIT 1`, [since])).rows[0], (r) => !!r, 30_000);
    check("the workers' scheduled reconciliation finds no mismatch", !!lastRun && lastRun.mismatched === 0, lastRun ? `mismatched ${lastRun.mismatched}` : 'no run after the campaign');

    // 5. recovery by itself
    const slow = faults.filter((f) => f.recoveryMs === null || !f.healthy);
    check('the service recovers by itself after every fault', slow.length === 0,
      faults.map((f) => `${f.name} ${f.recoveryMs === null ? 'NOT recovered' : `${f.recoveryMs} ms`}`).join(', '));
    const crashes = exits.filter((e) => !e.expected);
    check('no process crashed', crashes.length === 0,
      crashes.length ? crashes.map((e) => `${e.name} exited (${e.signal ?? e.code}) at +${Math.round((e.at - started) / 1000)} s`).join(', ') : `${exits.length} exits, all the campaign's own SIGKILLs`);
    const restarts = ['queue-api-1', 'queue-api-2', 'worker-1', 'worker-2', 'billing-api'].map((n) => `${n} ${supervisor.restarts(n)}`).join(', ');
    log(`  restarts: ${restarts}`);

    // 6. SLA minute states are honest: a down minute only where the checker saw failures, and a
    //    stretch the checker saw fail throughout is not shown as a clean minute
    const failMinutes = new Set();
    for (const r of checker.log) if (Checker.failed(r.code)) failMinutes.add(Math.floor(r.start / 60000));
    const { rows: probes } = await db.query(
      `SELECT (extract(epoch FROM minute) / 60)::bigint AS m, extract(epoch FROM started_at) * 1000 AS started, ok, code
         FROM sla_probes WHERE received_at >= $1 ORDER BY started_at`,
      [new Date(started)],
    );
    const perMinute = new Map();
    for (const p of probes) {
      if (!p.ok && p.code !== null && p.code >= 4000 && p.code < 5000) continue; // the prober's own, no result
      const s = perMinute.get(Number(p.m)) ?? { attempts: 0, failures: 0 };
      s.attempts++;
      if (!p.ok) s.failures++;
      perMinute.set(Number(p.m), s);
    }
    const { rows: errs } = await db.query(
      `SELECT (extract(epoch FROM minute) / 60)::bigint AS m, sum(requests) FILTER (WHERE outcome = 'server_error')::int AS e, sum(requests)::int AS n
         FROM usage_minutely WHERE account_id = $1 GROUP BY minute`,
      [tenant.accountId],
    );
    const down = new Set();
    for (const [mm, s] of perMinute) if (s.failures * 2 >= s.attempts) down.add(mm);
    for (const r of errs) if (r.n >= 20 && r.e * 20 >= r.n) down.add(Number(r.m));
    const fabricated = [...down].filter((mm) => !failMinutes.has(mm) && !failMinutes.has(mm - 1) && !failMinutes.has(mm + 1));
    check('no down minute where the service did not fail', fabricated.length === 0,
      `${down.size} down minutes (${[...down].map((mm) => new Date(mm * 60000).toISOString().slice(11, 16)).join(' ') || 'none'}), ${fabricated.length} without failures seen by the load`);
    // a stretch of ≥ 2 probe intervals in which ≥ 90% of the load's requests failed: a probe that
    // started inside it and was stored must have failed
    const hidden = [];
    for (const f of faults) {
      const window = checker.log.filter((r) => r.start >= f.at && r.start <= f.at + (f.recoveryMs ?? o.recoveryBound));
      const failedShare = window.length ? window.filter((r) => Checker.failed(r.code)).length / window.length : 0;
      if ((f.recoveryMs ?? 0) < 10_000 || failedShare < 0.9) continue;
      const inside = probes.filter((p) => Number(p.started) >= f.at + 1000 && Number(p.started) <= f.at + f.recoveryMs - 4000);
      if (inside.some((p) => p.ok)) hidden.push(f.name);
    }
    check('an outage the load saw is not shown as clean probes', hidden.length === 0, hidden.length ? `clean probes inside: ${hidden.join(', ')}` : `${probes.length} probes stored in the campaign`);
    if (clockJumped !== null) {
      const { rows: future } = await db.query(
        `SELECT count(*) FILTER (WHERE received_at > now())::int AS ahead,
                count(*) FILTER (WHERE minute <> to_timestamp(floor(extract(epoch FROM received_at) / 60) * 60))::int AS shifted
           FROM sla_probes WHERE started_at >= $1`,
        [new Date(started)],
      );
      check("a worker's clock jump moves no probe into another minute", clockJumped && future[0].ahead === 0 && future[0].shifted === 0,
        `the jump took effect: ${clockJumped}; probes stamped in the future: ${future[0].ahead}, in a minute other than their own: ${future[0].shifted}`);
    }
    const month = new Date().toISOString().slice(0, 7);
    const report = await admin(`/v1/sla/accounts/${tenant.accountId}/months/${month}`);
    const outages = report.status === 200 ? report.body.outages : [];
    check('the SLA report answers with the outages as measured', report.status === 200 && report.body.downtimeMinutes === outages.filter((x) => x.counted).reduce((a, x) => a + x.countedMinutes, 0),
      report.status === 200 ? `${outages.length} outages (${outages.map((x) => `${x.startUtc.slice(11, 16)}–${x.endUtc.slice(11, 16)} ${x.minutes} min${x.counted ? ' counted' : ''}`).join(', ') || 'none'}), downtime ${report.body.downtimeMinutes} min, unknown ${report.body.unknownMinutes} min` : `HTTP ${report.status}`);

    const ok = checks.every((c) => c.ok);
    keep = !ok;
    return {
      ok,
      checks,
      faults,
      figures: {
        durationS: Math.round((ended - started) / 1000),
        requests: checker.log.length,
        answered,
        unanswered,
        failedRequests: checker.log.filter((r) => Checker.failed(r.code)).length,
        acknowledgedSends: checker.acked.size,
        receives: [...checker.receives.values()].reduce((a, l) => a + l.length, 0),
        acknowledgedDeletes: checker.deleted.size,
        redeliveries,
        usageCalls: calls,
        restarts,
        workDir: work,
      },
    };
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
    clients.forEach((c) => c.close());
    await db?.end().catch(() => undefined);
    await supervisor.stop('SIGTERM', 10_000).catch(() => undefined);
    await balancer.close().catch(() => undefined);
    await redis.kill().catch(() => undefined);
    pg.stop();
    closeSync(logFd);
    if (keep || o.keepWorkDir || o.workDir) log(`work dir kept: ${work} (apps.log, pg/postgres.log)`);
    else rmSync(work, { recursive: true, force: true });
  }
}

async function waitFor(read, done, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let v = await read();
  while (!done(v) && Date.now() < deadline) {
    await sleep(250);
    v = await read();
  }
  return v;
}

module.exports = { runCampaign };
