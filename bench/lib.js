'use strict';
// Shared pieces of the benchmarks: a queue-api and billing-api started from dist/ against a
// database made for the run, a tenant, signed CMQ request bodies, wrk runs, and a light Node
// client (keep-alive, one signed request at a time per caller) for loads whose requests depend
// on earlier replies.
const { spawn } = require('node:child_process');
const http = require('node:http');
const { readFileSync } = require('node:fs');
const { randomBytes, randomInt } = require('node:crypto');
const { join } = require('node:path');
const { Client } = require('pg');
const { sign, sourceString } = require('../dist/libs/cmq/src/signature');
const { nodeFlagsOf } = require('../dist/apps/launcher/src/node-flags');
const { waitForHttp } = require('../dist/libs/common/src/wait-for-http');

const ROOT = join(__dirname, '..');

async function resetDatabase(name) {
  const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return `postgres://postgres@127.0.0.1:5432/${name}`;
}

function start(app, env, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeFlagsOf(app), ...nodeArgs, join(ROOT, 'dist/apps', app, 'src/main.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

/**
 * Throws unless nothing listens on 127.0.0.1:`port`: a bench whose app could not bind its port
 * would otherwise find another process's server answering its health check, and measure that.
 */
async function assertPortFree(port) {
  const net = require('node:net');
  await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} is in use by another process: choose other ports for this bench`) : err),
    );
    srv.listen(port, '127.0.0.1', () => srv.close(resolve));
  });
}

/** Waits until `url` answers 200, or throws. */
async function waitFor(url, ms = 30000) {
  if (!(await waitForHttp(url, ms))) throw new Error(`${url} not up within ${ms} ms`);
}

/**
 * Per-queue requests/s cap for the Node-driven benchmarks (QUEUE_QPS_LIMIT, on builds that have
 * the cap): far above what they send to their one queue, so the figures measure the service and
 * not the cap, which still runs on every message action.
 */
const BENCH_QUEUE_QPS_LIMIT = 1_000_000;

/**
 * Starts queue-api (+ billing-api for the tenant) on a fresh database; returns what a bench needs.
 * `moreQueueApis` ([{ cmqPort, env, nodeArgs }]) starts further queue-api processes on the same database
 * and Redis prefix, each with its own variables on top of the stack's; `worker` ({ port, env, nodeArgs })
 * starts a worker (apps/worker: usage jobs, sweeps, reconciliation) too. `database` names the
 * database dropped and made for the run (`cmq_bench` unless told): a bench that may run beside
 * the others takes one of its own, with ports and a REDIS_PREFIX (in `extraEnv`) of its own.
 */
async function startStack({
  cmqPort = 18080,
  billingPort = 13000,
  database = 'cmq_bench',
  extraEnv = {},
  queueNodeArgs = [],
  moreQueueApis = [],
  worker = null,
  billingNodeArgs = [],
} = {}) {
  for (const port of [billingPort, cmqPort, ...moreQueueApis.map((q) => q.cmqPort), ...(worker ? [worker.port ?? 13001] : [])]) {
    await assertPortFree(port);
  }
  const databaseUrl = await resetDatabase(database);
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    REDIS_PREFIX: `cmqbench-${Date.now()}`,
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    MASTER_KEY: randomBytes(32).toString('base64'),
    CMQ_PORT: String(cmqPort),
    BILLING_PORT: String(billingPort),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const children = [];
  const billing = start('billing-api', env, billingNodeArgs);
  children.push(billing);
  const stop = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    return Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))));
  };
  try {
    await waitFor(`http://127.0.0.1:${billingPort}/health`);
    const queue = start('queue-api', { ...env, MIGRATIONS_RUN: 'false' }, queueNodeArgs);
    children.push(queue);
    await waitFor(`http://127.0.0.1:${cmqPort}/health`);
    const more = [];
    for (const q of moreQueueApis) {
      const child = start('queue-api', { ...env, ...q.env, CMQ_PORT: String(q.cmqPort), MIGRATIONS_RUN: 'false' }, q.nodeArgs ?? []);
      children.push(child);
      await waitFor(`http://127.0.0.1:${q.cmqPort}/health`);
      more.push({ cmqPort: q.cmqPort, pid: child.pid });
    }
    let workerPid = null;
    if (worker) {
      const port = worker.port ?? 13001;
      const child = start('worker', { ...env, ...worker.env, WORKER_PORT: String(port), MIGRATIONS_RUN: 'false' }, worker.nodeArgs ?? []);
      children.push(child);
      await waitFor(`http://127.0.0.1:${port}/health`);
      workerPid = child.pid;
    }
    const admin = async (path, body = { name: 'bench' }, headers = {}) => {
      const res = await fetch(`http://127.0.0.1:${billingPort}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      const reply = await res.json();
      if (res.status !== 201) throw new Error(`${path}: ${res.status} ${JSON.stringify(reply)}`);
      return reply;
    };
    /** a new account with an access key */
    const newTenant = async (name = 'bench') => {
      const account = await admin('/v1/accounts', { name });
      const key = await admin(`/v1/accounts/${account.id}/keys`);
      return { accountId: account.id, secretId: key.secretId, secretKey: key.secretKey };
    };
    return {
      env,
      databaseUrl,
      cmqPort,
      billingPort,
      /** pid of the queue-api process (for /proc sampling) */
      queuePid: queue.pid,
      /** pid of the billing-api process */
      billingPid: billing.pid,
      /** the queue-api processes of `moreQueueApis`: { cmqPort, pid } */
      moreQueueApis: more,
      /** pid of the worker, or null */
      workerPid,
      tenant: await newTenant(),
      newTenant,
      /** POST to the billing-api with the admin token (and `headers`); the parsed reply (201 expected) */
      admin,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A signed form body, exactly as a client builds it (fresh Timestamp, Nonce and Signature). */
function signedBody(tenant, host, action, params) {
  const pairs = [
    ['Action', action],
    ['SecretId', tenant.secretId],
    ['Timestamp', String(Math.floor(Date.now() / 1000))],
    ['Nonce', String(randomInt(0, 2 ** 47))],
    ['RequestClient', 'bench'],
    ...Object.entries(params),
  ];
  const src = sourceString('POST', host, '/v2/index.php', pairs);
  pairs.push(['Signature', sign(src, tenant.secretKey, 'sha1')]);
  return new URLSearchParams(pairs).toString();
}

async function call(port, tenant, action, params) {
  const res = await fetch(`http://127.0.0.1:${port}/v2/index.php`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: signedBody(tenant, `127.0.0.1:${port}`, action, params),
  });
  return res.json();
}

/**
 * wrk (C, from Debian's package `wrk`) as the load generator: far lighter than a Node one, so
 * the server, not the generator, is what the figures measure. The bodies are signed before the
 * run, each unique (the server refuses a replayed signature), and written one per line to a file;
 * they stay valid for the signature window (300 s by default), so make them just before the run.
 */
async function wrkLoad({ port, makeBody, count, connections, duration, threads = 2, title }) {
  const { execFileSync } = require('node:child_process');
  const { writeFileSync, mkdtempSync } = require('node:fs');
  const { tmpdir } = require('node:os');
  const file = join(mkdtempSync(join(tmpdir(), 'cmq-bench-')), 'bodies.txt');
  const lines = new Array(count);
  for (let i = 0; i < count; i++) lines[i] = makeBody();
  writeFileSync(file, lines.join('\n') + '\n');
  const out = execFileSync(
    'wrk',
    [`-t${threads}`, `-c${connections}`, `-d${duration}s`, '--timeout', '10s', '-s', join(__dirname, 'wrk-cmq.lua'), `http://127.0.0.1:${port}/v2/index.php`],
    { env: { ...process.env, BODIES: file, WRK_THREADS: String(threads) }, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const num = (key) => Number((new RegExp(`^${key} ([\\d.]+)$`, 'm').exec(out) || [])[1]);
  const socketErrors = /Socket errors: (.*)/.exec(out);
  return {
    title,
    requestsPerSec: Math.round(num('REQUESTS') / num('DURATION_S')),
    total: num('REQUESTS'),
    p50: num('P50_MS'),
    p90: num('P90_MS'),
    p99: num('P99_MS'),
    'p99.9': num('P99.9_MS'),
    cmqErrors: num('CMQ_ERRORS'),
    exhausted: num('EXHAUSTED'),
    /** requests written, answered or not when the run ended */
    sent: num('SENT'),
    socketErrors: socketErrors ? socketErrors[1] : 'none',
  };
}

/**
 * Request latencies in a histogram of log buckets 1% wide from 10 µs up: O(1) to record, a few
 * KB whatever the count, mergeable. Percentiles are a bucket's upper bound (at most 1% high).
 */
const H_MIN_MS = 0.01;
const H_STEP = Math.log(1.01);
const H_BUCKETS = 2048; // up to ~7e6 ms
class Histogram {
  constructor() {
    this.buckets = new Uint32Array(H_BUCKETS);
    this.count = 0;
    this.max = 0;
  }

  record(ms) {
    let i = ms <= H_MIN_MS ? 0 : Math.ceil(Math.log(ms / H_MIN_MS) / H_STEP);
    if (i >= H_BUCKETS) i = H_BUCKETS - 1;
    this.buckets[i]++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** p in 0..100; NaN when empty */
  percentile(p) {
    if (this.count === 0) return NaN;
    const target = Math.max(1, Math.ceil((this.count * p) / 100));
    let seen = 0;
    for (let i = 0; i < H_BUCKETS; i++) {
      seen += this.buckets[i];
      if (seen >= target) return Math.min(H_MIN_MS * Math.exp(i * H_STEP), this.max);
    }
    return this.max;
  }

  merge(other) {
    for (let i = 0; i < H_BUCKETS; i++) this.buckets[i] += other.buckets[i];
    this.count += other.count;
    if (other.max > this.max) this.max = other.max;
    return this;
  }
}

/**
 * A CMQ client for load generation from Node: node:http with a keep-alive Agent (maxSockets =
 * the concurrency the caller intends), each request signed afresh. `request` never rejects: it
 * resolves `{ reply, ms }`, where `reply` is the parsed JSON, or `{ code: 'http <status>' }`,
 * `{ code: 'transport <err>' }` when there was no CMQ reply; `ms` is the time from sending to
 * the whole reply.
 */
function cmqClient({ port, tenant, maxSockets, timeoutMs = 30000, engine = 'http' }) {
  if (engine === 'undici') return undiciCmqClient({ port, tenant, maxSockets, timeoutMs });
  if (engine === 'raw') return rawCmqClient({ port, tenant, maxSockets, timeoutMs });
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  const host = `127.0.0.1:${port}`;
  const request = (action, params) =>
    new Promise((resolve) => {
      const body = signedBody(tenant, host, action, params);
      const t0 = performance.now();
      let done = false;
      const finish = (reply) => {
        if (done) return;
        done = true;
        resolve({ reply, ms: performance.now() - t0 });
      };
      const req = http.request(
        {
          agent,
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v2/index.php',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('error', (err) => finish({ code: `transport ${err.code || err.message}` }));
          res.on('end', () => {
            if (res.statusCode !== 200) return finish({ code: `http ${res.statusCode}` });
            try {
              finish(JSON.parse(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
            } catch {
              finish({ code: 'unparsable reply' });
            }
          });
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (err) => finish({ code: `transport ${err.code || err.message}` }));
      req.end(body); // signed bodies are URL-encoded ASCII: length is the byte length
    });
  return { request, close: () => agent.destroy() };
}

/**
 * A fixed, evenly interleaved cycle of kinds by weight (smooth weighted round-robin): for
 * `[['a', 3], ['b', 1]]`, a a b a … Weights may be fractions; the cycle is `repeat` × their sum
 * long (the sum times 2 makes halves whole), each kind as often as its weight says.
 */
function weightedCycle(weights, repeat = 1) {
  const total = weights.reduce((a, [, w]) => a + w, 0);
  const current = weights.map(() => 0);
  const out = [];
  for (let i = 0; i < total * repeat; i++) {
    let best = 0;
    weights.forEach(([, w], k) => {
      current[k] += w;
      if (current[k] > current[best]) best = k;
    });
    current[best] -= total;
    out.push(weights[best][0]);
  }
  return out;
}

/**
 * {@link cmqClient} on undici's connection pool instead of node:http: the same requests and
 * replies at a fraction of the client's CPU, for loads where the generator shares the machine
 * with the system under test (the soak).
 */
function undiciCmqClient({ port, tenant, maxSockets, timeoutMs }) {
  const { Pool } = require('undici');
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: maxSockets, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const host = `127.0.0.1:${port}`;
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const request = async (action, params) => {
    const body = signedBody(tenant, host, action, params);
    const t0 = performance.now();
    let reply;
    try {
      const res = await pool.request({ path: '/v2/index.php', method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 200) reply = { code: `http ${res.statusCode}` };
      else {
        try {
          reply = JSON.parse(text);
        } catch {
          reply = { code: 'unparsable reply' };
        }
      }
    } catch (err) {
      reply = { code: `transport ${err.code || err.message}` };
    }
    return { reply, ms: performance.now() - t0 };
  };
  return { request, close: () => pool.destroy() };
}

const CRLF2 = Buffer.from('\r\n\r\n');
/** Idle connections older than this are not reused: the queue-api closes them after 65 s. */
const IDLE_REUSE_MS = 60_000;

/**
 * {@link cmqClient} on plain TCP sockets, for the soak, whose generator shares the machine with
 * the system under test: the same requests and replies as the SDKs make them (HTTP/1.1
 * keep-alive, one request at a time on a connection, no pipelining), with one write per request
 * and the reply framed by its Content-Length, at about half of undici's CPU. Opens up to
 * `maxSockets` connections as requests wait for one; a request that has no reply within
 * `timeoutMs` fails (its connection is closed), found by a sweep every 250 ms. The reply is read
 * by Content-Length only; one without fails as `http <status>` and its connection is closed.
 */
function rawCmqClient({ port, tenant, maxSockets, timeoutMs }) {
  const net = require('node:net');
  const host = `127.0.0.1:${port}`;
  const head = `POST /v2/index.php HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: `;
  const idle = [];
  const waiting = [];
  const busy = new Set();
  let open = 0;
  let closed = false;

  const finish = (job, reply) => {
    if (job.done) return;
    job.done = true;
    job.resolve({ reply, ms: performance.now() - job.t0 });
  };
  const send = (conn, job) => {
    conn.job = job;
    busy.add(conn);
    conn.sock.write(`${head}${job.body.length}\r\n\r\n${job.body}`, 'latin1'); // bodies are URL-encoded ASCII
  };
  const release = (conn) => {
    conn.job = null;
    busy.delete(conn);
    if (closed) return conn.sock.destroy();
    const next = waiting.shift();
    if (next) send(conn, next);
    else {
      conn.idleSince = performance.now();
      idle.push(conn);
    }
  };
  /** The most recently used idle connection, passing over (and closing) any the server may be closing. */
  const takeIdle = () => {
    for (let conn = idle.pop(); conn; conn = idle.pop()) {
      if (performance.now() - conn.idleSince < IDLE_REUSE_MS) return conn;
      conn.sock.destroy();
    }
    return null;
  };
  /** The reply in conn.buf, once whole: [status, body, whether the server closes]; null while more is to come. */
  const parse = (conn) => {
    const buf = conn.buf;
    const end = buf.indexOf(CRLF2);
    if (end < 0) return null;
    const headers = buf.toString('latin1', 0, end);
    const status = Number(headers.slice(9, 12));
    const m = /\r\ncontent-length: *(\d+)/i.exec(headers);
    if (!m) return [status, null, true]; // no framing we read: the connection goes
    const len = Number(m[1]);
    if (buf.length < end + 4 + len) return null;
    return [status, buf.subarray(end + 4, end + 4 + len), /\r\nconnection: *close/i.test(headers)];
  };
  const connect = () => {
    open++;
    const conn = { sock: net.connect({ port, host: '127.0.0.1', noDelay: true }), job: null, buf: null };
    conn.sock.on('connect', () => release(conn));
    conn.sock.on('data', (chunk) => {
      conn.buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk;
      const job = conn.job;
      if (!job) return conn.sock.destroy(); // bytes nobody asked for
      const got = parse(conn);
      if (!got) return;
      conn.buf = null;
      const [status, body, closing] = got;
      if (body === null) {
        finish(job, { code: `http ${status}` });
        return conn.sock.destroy();
      }
      let reply;
      if (status !== 200) reply = { code: `http ${status}` };
      else {
        try {
          reply = JSON.parse(body.toString('utf8'));
        } catch {
          reply = { code: 'unparsable reply' };
        }
      }
      finish(job, reply);
      if (closing) conn.sock.destroy();
      else release(conn);
    });
    conn.sock.on('error', (err) => (conn.err = err.code || err.message));
    conn.sock.on('close', () => {
      open--;
      busy.delete(conn);
      const i = idle.indexOf(conn);
      if (i >= 0) idle.splice(i, 1);
      if (conn.job) finish(conn.job, { code: `transport ${conn.err ?? 'closed'}` });
      if (!closed && waiting.length > 0 && open < maxSockets) connect();
    });
  };
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const conn of busy) {
      if (conn.job && now - conn.job.t0 > timeoutMs) {
        conn.err = 'TIMEOUT';
        conn.sock.destroy();
      }
    }
  }, 250);
  sweep.unref();

  const request = (action, params) =>
    new Promise((resolve) => {
      const job = { body: signedBody(tenant, host, action, params), resolve, t0: performance.now(), done: false };
      const conn = takeIdle();
      if (conn) return send(conn, job);
      waiting.push(job);
      if (open < maxSockets) connect();
    });
  const close = () => {
    closed = true;
    clearInterval(sweep);
    for (const conn of [...idle, ...busy]) conn.sock.destroy();
    for (const job of waiting.splice(0)) finish(job, { code: 'transport closed' });
  };
  return { request, close };
}

/** BatchSendMessage parameters: msgBody.1 … msgBody.n */
function batchBodies(bodies) {
  const params = {};
  bodies.forEach((b, i) => (params[`msgBody.${i + 1}`] = b));
  return params;
}

/** BatchDeleteMessage parameters: receiptHandle.1 … receiptHandle.n */
function batchHandles(handles) {
  const params = {};
  handles.forEach((h, i) => (params[`receiptHandle.${i + 1}`] = h));
  return params;
}

/**
 * Fills `queueName` with `count` messages of `body` by BatchSendMessage (16 per call), `parallel`
 * calls at a time. A throttled call (4420) is sent again; any other reply whose code is not 0
 * throws.
 */
async function prefill(client, queueName, count, body, parallel = 32) {
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const n = Math.min(16, count - next);
      next += n;
      for (;;) {
        const { reply } = await client.request('BatchSendMessage', {
          queueName,
          ...batchBodies(new Array(n).fill(body)),
          delaySeconds: '0',
        });
        if (reply.code === 0) break;
        // 4420: the queue's requests/s cap; wait for the next second's budget
        if (reply.code === 4420) await new Promise((r) => setTimeout(r, 100));
        else throw new Error(`prefill: BatchSendMessage answered ${JSON.stringify(reply)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, perSecond: Math.round(count / seconds) };
}

/** Resident set size of a process in MB, from /proc/<pid>/status (VmRSS); NaN once it is gone. */
function rssMb(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Private memory of a process in MB: its anonymous resident pages (RssAnon of /proc/<pid>/status,
 * without the shared memory a Postgres backend maps); NaN once it is gone.
 */
function rssAnonMb(pid) {
  try {
    const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN once it is gone. */
const CLK_TCK = 100;
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds so far of each Postgres backend serving `db`'s database (pid → seconds), from
 * pg_stat_activity and /proc: the database's share of the machine, whatever else Postgres serves.
 */
async function postgresBackendsCpu(db) {
  const { rows } = await db.query('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid)]).filter(([, s]) => Number.isFinite(s)));
}

/** CPU seconds the backends used between two {@link postgresBackendsCpu} readings (new ones from 0). */
function postgresCpuBetween(before, after) {
  let s = 0;
  for (const [pid, v] of after) s += v - (before.get(pid) ?? 0);
  return s;
}

/**
 * The whole machine's CPU time so far, in jiffies, from /proc/stat: `busy` (all but idle and
 * iowait) and `total`. Two readings give the share of the machine in use, whoever used it:
 * the benchmarks share the machine, so that share tells a quiet run from a crowded one.
 */
function hostCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/** Percent of the machine's CPU in use between two hostCpu() readings. */
const hostBusyPercent = (a, b) => Math.round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100);

/**
 * What the messages table looks like to Postgres: live and dead row estimates and how often it
 * was vacuumed, plus whether autovacuum is on at all. A queue table churns: every receive
 * and delete leaves a dead row behind, and receives get slower while dead rows pile up.
 */
async function messagesTableStats(db) {
  const { rows } = await db.query(
    `SELECT current_setting('autovacuum') AS autovacuum, n_live_tup::int AS live, n_dead_tup::int AS dead,
            (autovacuum_count + vacuum_count)::int AS vacuums
       FROM pg_stat_user_tables WHERE relname = 'messages'`,
  );
  return rows[0];
}

/**
 * Says when the local Postgres runs without autovacuum, and starts {@link vacuumLoop} when
 * `vacuumEvery` > 0 (on `tables`, the messages table unless told). Returns its `stop()`, or null.
 */
async function standInForAutovacuum(db, databaseUrl, vacuumEvery, tables = ['messages']) {
  if ((await messagesTableStats(db)).autovacuum !== 'on') {
    const what = tables.length === 1 ? `the ${tables[0]} table` : tables.join(', ');
    console.log(
      `!! autovacuum is off on this Postgres: dead rows of ${what} pile up during the run` +
        (vacuumEvery > 0
          ? `; VACUUM (ANALYZE) ${tables.join(', ')} every ${vacuumEvery} s stands in for it`
          : ' (--vacuum-every N stands in for it)'),
    );
  }
  return vacuumEvery > 0 ? vacuumLoop(databaseUrl, vacuumEvery, tables) : null;
}

/**
 * `VACUUM (ANALYZE)` of `tables` (the messages table unless told) every `seconds` on a
 * connection of its own, one at a time, for machines whose Postgres runs without autovacuum (it
 * stands in for autovacuum's vacuum and analyze; it tunes nothing in the apps). Returns
 * `stop()`, which resolves with the number of runs.
 */
async function vacuumLoop(databaseUrl, seconds, tables = ['messages']) {
  const db = new Client({ connectionString: databaseUrl, application_name: 'bench-vacuum' });
  await db.connect();
  const sql = `VACUUM (ANALYZE) ${tables.join(', ')}`;
  let runs = 0;
  let stopped = false;
  let current = null; // the vacuum running, if any: a tick while one runs is skipped
  const timer = setInterval(() => {
    if (stopped || current) return;
    current = db
      .query(sql)
      .then(() => runs++)
      .catch((err) => console.error(`${sql} failed: ${err.message}`))
      .finally(() => (current = null));
  }, seconds * 1000);
  return async () => {
    stopped = true;
    clearInterval(timer);
    await current;
    await db.end();
    return runs;
  };
}

/**
 * `ANALYZE messages`: planner statistics for the table the benchmark just filled. A database
 * in service has them (autovacuum analyzes as the table changes); the fresh `cmq_bench` one has
 * none until then, or ever on a Postgres without autovacuum, and the receive query's plan
 * depends on them.
 */
async function analyzeMessages(db) {
  await db.query('ANALYZE messages');
}

/**
 * Checkpoints Postgres has run so far (timed and requested), whatever database caused them: a
 * checkpoint during a run (CREATE DATABASE forces one, e.g. another test run starting) makes
 * every page's first change after it write a full page to the WAL, which slows commits for a while.
 */
async function checkpointsSoFar(db) {
  const { rows } = await db.query('SELECT (checkpoints_timed + checkpoints_req)::int AS n FROM pg_stat_bgwriter');
  return rows[0].n;
}

/**
 * Waits until the usage outbox is empty (every committed row applied by a worker); resolves
 * the milliseconds it took, or throws after `timeoutMs`.
 */
async function waitOutboxEmpty(db, timeoutMs = 120_000) {
  const t0 = performance.now();
  for (;;) {
    const { rows } = await db.query('SELECT EXISTS (SELECT 1 FROM usage_outbox) AS pending');
    if (!rows[0].pending) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`usage_outbox not empty after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** true when `--name` is on the command line */
const flagArg = (name) => process.argv.includes(`--${name}`);

/** `--name value` from the command line as a number, or `def`. */
function numArg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} needs a number`);
  return v;
}

/**
 * Removes a run's keys (`<prefix>:*`) from the shared Redis once its apps are gone: the
 * replay-protection keys of every signed request (they would expire within 2 signature windows
 * anyway) and BullMQ's queues, which would stay. Resolves how many were removed.
 */
async function forgetRedisKeys(redis, prefix) {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
    cursor = next;
    if (keys.length) n += await redis.unlink(...keys);
  } while (cursor !== '0');
  return n;
}

/** `--name value` from the command line as a string, or `def`. */
function strArg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

const ms2 = (v) => (Number.isFinite(v) ? Math.round(v * 100) / 100 : '-');

module.exports = {
  startStack,
  resetDatabase,
  signedBody,
  call,
  wrkLoad,
  start,
  waitFor,
  assertPortFree,
  ROOT,
  BENCH_QUEUE_QPS_LIMIT,
  Histogram,
  cmqClient,
  weightedCycle,
  batchBodies,
  batchHandles,
  prefill,
  rssMb,
  rssAnonMb,
  cpuSeconds,
  postgresBackendsCpu,
  postgresCpuBetween,
  hostCpu,
  hostBusyPercent,
  messagesTableStats,
  vacuumLoop,
  standInForAutovacuum,
  analyzeMessages,
  waitOutboxEmpty,
  checkpointsSoFar,
  flagArg,
  numArg,
  strArg,
  forgetRedisKeys,
  ms2,
};
