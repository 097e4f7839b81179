'use strict';
// The soak: a mixed CMQ workload, open loop at a fixed request rate for a long time, against a
// system of its own (queue-api, billing-api, worker; metering on, so usage is applied to the
// balances the whole time), with a sample every 10 s and pass/fail checks at the end.
//
// Workload, per 200 requests (across `--queues` queues of two tenants, the queues taking turns):
// 71 SendMessage, 18 BatchSendMessage of 4, 23 ReceiveMessage, 30 BatchReceiveMessage of 4,
// 4 GetQueueAttributes, 1 ListQueue, and the delete of every successful receive (23
// DeleteMessage, 30 BatchDeleteMessage). Messages in (71 + 72) equal messages asked for (23 + 120),
// so each queue stays at its prefilled depth and receives never find it empty.
//
// The load starts with a warm-up (--warmup s, 60 by default): the rate rises linearly from 0 to
// the target, so the apps' JIT, connection pools and caches warm as in production, not under a
// backlog. The measured run follows for --duration s; every figure and check is of it, but for
// errors, which count from the first request.
//
// Every 10 s: achieved requests/s, errors, p50/p90/p99/max latency of the interval, RSS and CPU
// of each process (queue-api(s), worker, billing-api, this load generator, and the database's
// Postgres backends: their private memory summed), the machine's busy share, the queues' depth
// (rows), dead rows of the messages table, the usage outbox backlog and the usage-to-balance lag
// (per applied batch: when it was applied minus when its oldest outbox row was committed).
//
// At the end (exit 0 only if all pass): no errors; achieved rate within --max-rate-shortfall % of
// the target; every app process's RSS flat (mean of the last third vs the second third, and the
// least-squares slope over the last two thirds); p99 flat (median of the last third's intervals
// vs the first third's); after the usage outbox drains, usage counted exactly per account and
// action as the load generator saw the replies (usage_hourly, usage_minutely, usage_monthly) and
// charged as rated; balances equal the sums of their ledger entries; the worker's own
// reconciliations found no mismatch; the queues hold exactly prefill + sent − deleted rows.
//
// Writes <out-dir>/soak-<UTC stamp>.csv (one row per interval) and .json (the run, checks and
// samples), and the chart --png (docs/soak.png).
//
// Usage: npm run soak -- [--duration 1800] [--rate 5000] [--warmup 60] [--queues 6] [--queue-apis 1] [--max-in-flight 2048] [--connections 256 (per tenant and queue-api)]
//          [--body 256] [--prefill 5000 (messages per queue)] [--vacuum-every 10] [--timeout-ms 10000]
//          [--queue-qps-limit N] [--out-dir docs/soak] [--png docs/soak.png] [--client raw|undici|http]
//          [--cpu-prof-dir DIR (every app process writes a V8 CPU profile there when it stops)]
//          [--max-rate-shortfall 2] [--max-rss-growth 10] [--max-rss-slope 1] [--max-p99-growth 50] [--drain-timeout 180]
//        node bench/soak.js --chart-only docs/soak/soak-<stamp>.csv [--png docs/soak.png]
// `kill -INT <pid>` of this process ends the load early; the checks and files follow (a terminal's
// Ctrl-C also stops the apps, which share its process group).
const os = require('node:os');
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { basename, join, relative } = require('node:path');
const { Client } = require('pg');
const {
  startStack,
  cmqClient,
  batchBodies,
  batchHandles,
  weightedCycle,
  prefill,
  Histogram,
  rssMb,
  rssAnonMb,
  cpuSeconds,
  hostCpu,
  hostBusyPercent,
  messagesTableStats,
  standInForAutovacuum,
  analyzeMessages,
  waitOutboxEmpty,
  numArg,
  strArg,
  forgetRedisKeys,
  ms2,
  ROOT,
} = require('./lib');
const { renderChartsPng, PALETTE } = require('./chart');
const { outcomeOf, sizeWeight } = require('../dist/libs/billing/src/metering');

const INTERVAL_S = 10;
const SEND_BATCH = 4;
const RECEIVE_BATCH = 4;

/** The scheduled kinds per cycle of 200 requests; the deletes follow the receives (see the top). */
const MIX = [
  ['SendMessage', 71],
  ['BatchSendMessage', 18],
  ['ReceiveMessage', 23],
  ['BatchReceiveMessage', 30],
  ['GetQueueAttributes', 4],
  ['ListQueue', 1],
];
const CYCLE = 200;
const weightOf = (kind) => MIX.find(([k]) => k === kind)[1];
const SCHEDULED = MIX.reduce((a, [, w]) => a + w, 0);
const DELETES = weightOf('ReceiveMessage') + weightOf('BatchReceiveMessage');
if (SCHEDULED + DELETES !== CYCLE) throw new Error('MIX: scheduled kinds and their deletes must make the cycle');
if (weightOf('SendMessage') + SEND_BATCH * weightOf('BatchSendMessage') !== weightOf('ReceiveMessage') + RECEIVE_BATCH * weightOf('BatchReceiveMessage'))
  throw new Error('MIX: messages sent and asked for must balance, or the queues grow or run dry');

/** Tables that churn under this load: VACUUM (ANALYZE)d by the stand-in for autovacuum. */
const CHURNED_TABLES = ['messages', 'usage_outbox', 'usage_batches_applied', 'usage_hourly', 'usage_minutely', 'usage_monthly', 'balances'];

/** The app processes whose memory must stay flat (the CSV also has the load generator and Postgres). */
const isAppProcess = (name) => !['load-generator', 'postgres', 'redis'].includes(name);
/** How a sampled process is named in the chart and the report. */
const label = (p, what) =>
  p === 'postgres' ? `postgres backends of the run${what === 'rss' ? ' (private memory)' : ''}, summed` : p === 'redis' ? 'redis-server (shared)' : p;

/**
 * Starts the system under test and says what it is: CMQ ports to spread the load over, the
 * processes to sample ({ name, pid }), the database and Redis prefix, two tenants with access
 * keys, `admin` (billing-api POST with the admin token) and `stop`. A database, ports and a
 * Redis prefix of its own, so it runs beside the other benches. Another topology (e.g. a
 * cluster behind a balancer) replaces this function and nothing else.
 */
async function startSystem({ queueApis = 1, extraEnv = {}, nodeArgs = [] } = {}) {
  const cmqPort = 18590;
  const stack = await startStack({
    database: 'cmq_soak',
    cmqPort,
    billingPort: 13590,
    extraEnv: { REDIS_PREFIX: `cmqsoak-${Date.now()}`, ...extraEnv },
    queueNodeArgs: nodeArgs,
    billingNodeArgs: nodeArgs,
    moreQueueApis: Array.from({ length: queueApis - 1 }, (_, i) => ({ cmqPort: cmqPort + 1 + i, nodeArgs })),
    worker: { port: 13591, nodeArgs },
  });
  try {
    const second = await stack.newTenant('soak-b');
    return {
      databaseUrl: stack.databaseUrl,
      redisPrefix: stack.env.REDIS_PREFIX,
      cmqPorts: [stack.cmqPort, ...stack.moreQueueApis.map((q) => q.cmqPort)],
      processes: [
        { name: 'queue-api', pid: stack.queuePid },
        ...stack.moreQueueApis.map((q, i) => ({ name: `queue-api-${i + 2}`, pid: q.pid })),
        { name: 'worker', pid: stack.workerPid },
        { name: 'billing-api', pid: stack.billingPid },
      ],
      tenants: [stack.tenant, second],
      admin: stack.admin,
      stop: stack.stop,
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

// ---- statistics -------------------------------------------------------------------------------

const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
function median(xs) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = mean(points.map((p) => p.x));
  const my = mean(points.map((p) => p.y));
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}
const round1 = (v) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');

// ---- expected usage, as the load generator saw the replies ----------------------------------------

const SEND_ACTIONS = new Set(['SendMessage', 'BatchSendMessage']);
const RECEIVE_ACTIONS = new Set(['ReceiveMessage', 'BatchReceiveMessage']);

/**
 * What one reply should have been metered as (billing.md §1, the default size-band rule):
 * calls, outcome, messages moved, bytes in / out, billable calls. `sent` is the params' bodies.
 */
function expectedUsage(action, params, reply) {
  const code = reply.code;
  const outcome = outcomeOf(code);
  const u = { outcome, messages: 0, bytesIn: 0, bytesOut: 0, billable: 0 };
  const moved = outcome === 'ok' || outcome === 'no_message';
  if (!moved) return u;
  const management = !SEND_ACTIONS.has(action) && !RECEIVE_ACTIONS.has(action) && action !== 'DeleteMessage' && action !== 'BatchDeleteMessage';
  if (management) return u;
  let sizes = [];
  if (SEND_ACTIONS.has(action)) {
    sizes = action === 'SendMessage' ? [params.msgBody] : Object.keys(params).filter((k) => k.startsWith('msgBody.')).map((k) => params[k]);
    sizes = sizes.map((b) => Buffer.byteLength(b));
    u.bytesIn = sizes.reduce((a, b) => a + b, 0);
  } else if (RECEIVE_ACTIONS.has(action)) {
    if (code === 0) sizes = (action === 'ReceiveMessage' ? [reply.msgBody] : reply.msgInfoList.map((m) => m.msgBody)).map((b) => Buffer.byteLength(b));
    u.bytesOut = sizes.reduce((a, b) => a + b, 0);
  } else {
    // deletes: one per handle that deleted a message
    const handles = action === 'DeleteMessage' ? 1 : Object.keys(params).filter((k) => k.startsWith('receiptHandle.')).length;
    const deleted = handles - (code === 6010 ? (reply.errorList?.length ?? 0) : 0);
    u.messages = deleted;
    u.billable = Math.max(1, deleted);
    return u;
  }
  u.messages = sizes.length;
  u.billable = sizes.length === 0 ? 1 : sizes.reduce((a, b) => a + sizeWeight(b), 0);
  return u;
}

// ---- the chart --------------------------------------------------------------------------------

function parseCsv(text) {
  const [head, ...lines] = text.trim().split('\n');
  const cols = head.split(',');
  return lines.map((line) => {
    const v = line.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, v[i] === '' || v[i] === undefined ? null : Number(v[i])]));
  });
}

function toCsv(rows) {
  const cols = Object.keys(rows[0]);
  const cell = (v) => (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? '' : String(v));
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

/** The chart's panels from the sample rows (what the CSV holds, so --chart-only draws the same). */
function soakPanels(rows) {
  const x = (r) => Math.round((r.t_s / 60) * 1000) / 1000;
  const pointRadius = rows.length <= 60 ? 2 : 0;
  const series = (label, col, i, extra = {}) => ({
    label,
    data: rows.filter((r) => r[col] !== null && r[col] !== undefined).map((r) => ({ x: x(r), y: r[col] })),
    borderColor: PALETTE[i % PALETTE.length],
    backgroundColor: PALETTE[i % PALETTE.length],
    borderWidth: 2,
    pointRadius,
    spanGaps: true,
    ...extra,
  });
  const lastX = x(rows[rows.length - 1]);
  const step = lastX > 20 ? 5 : lastX > 4 ? 1 : 0.5;
  const xAxis = { type: 'linear', min: 0, max: Math.ceil(lastX / step) * step, title: { display: true, text: 'minutes since the load started' } };
  const panel = (title, datasets, scales) => ({
    type: 'line',
    data: { datasets },
    options: {
      plugins: { title: { display: true, text: title, font: { size: 16 } }, legend: { position: 'bottom' } },
      scales: { x: xAxis, ...scales },
    },
  });
  const procs = Object.keys(rows[0])
    .filter((c) => c.startsWith('rss_mb:'))
    .map((c) => c.slice('rss_mb:'.length));
  const dashedIfNotApp = (p) => (isAppProcess(p) ? {} : { borderDash: [6, 4] });
  const yTitle = (text, extra = {}) => ({ title: { display: true, text }, ...extra });
  return [
    panel(
      'Resident memory (RSS) per process',
      procs.map((p, i) => series(label(p, 'rss'), `rss_mb:${p}`, i, dashedIfNotApp(p))),
      { y: yTitle('MB', { beginAtZero: true }) },
    ),
    panel(
      'Latency of the requests answered in each 10-s interval',
      [series('p50', 'p50_ms', 2), series('p90', 'p90_ms', 0), series('p99', 'p99_ms', 3), series('max', 'max_ms', 1, { borderDash: [6, 4] })],
      { y: yTitle('ms (log scale)', { type: 'logarithmic' }) },
    ),
    panel(
      'Achieved rate and errors per 10-s interval',
      [
        series('achieved requests/s', 'req_s', 0),
        series('target requests/s', 'target_req_s', 7, { borderDash: [6, 4], pointRadius: 0 }),
        series('errors in the interval (right axis)', 'errors', 1, { yAxisID: 'y1', stepped: true }),
        series('slots skipped at the in-flight cap (right axis)', 'skipped', 3, { yAxisID: 'y1', stepped: true, borderDash: [2, 3] }),
      ],
      {
        y: yTitle('requests/s', { beginAtZero: true }),
        y1: yTitle('count per interval', { position: 'right', beginAtZero: true, suggestedMax: 10, grid: { drawOnChartArea: false } }),
      },
    ),
    panel(
      'CPU per process',
      [
        ...procs.map((p, i) => series(label(p, 'cpu'), `cpu_pct:${p}`, i, dashedIfNotApp(p))),
        series('everything else on the machine', 'others_cpu_pct', 9, { borderDash: [2, 3] }),
        series('whole machine busy (right axis)', 'machine_busy_pct', 7, { yAxisID: 'y1', borderDash: [8, 3, 2, 3] }),
      ],
      {
        y: yTitle('% of one core', { beginAtZero: true }),
        y1: yTitle('% of all cores', { position: 'right', min: 0, max: 100, grid: { drawOnChartArea: false } }),
      },
    ),
    panel(
      'Usage to balance: lag and outbox backlog',
      [
        series('lag per applied batch, p50', 'usage_lag_p50_ms', 2),
        series('lag per applied batch, max', 'usage_lag_max_ms', 3),
        series('oldest outbox row at the sample', 'outbox_oldest_ms', 0, { borderDash: [6, 4] }),
        series('outbox rows at the sample (right axis)', 'outbox_rows', 4, { yAxisID: 'y1', borderDash: [2, 3] }),
      ],
      {
        y: yTitle('ms', { beginAtZero: true }),
        y1: yTitle('rows', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } }),
      },
    ),
    panel(
      'Queues and tables',
      [
        series('messages in the queues (rows)', 'queue_depth', 0),
        series('dead rows of the messages table (estimate)', 'dead_rows', 1, { borderDash: [6, 4] }),
        series('keys in Redis, whole server (right axis)', 'redis_keys', 2, { yAxisID: 'y1', borderDash: [2, 3] }),
      ],
      {
        y: yTitle('rows', { beginAtZero: true }),
        y1: yTitle('keys', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } }),
      },
    ),
  ];
}

async function renderSoakChart(rows, png, { title, subtitle }) {
  await renderChartsPng({ title, subtitle, panels: soakPanels(rows), png, columns: 2 });
}

async function chartOnly(csvPath) {
  const rows = parseCsv(readFileSync(csvPath, 'utf8'));
  if (!rows.length) throw new Error(`${csvPath}: no samples`);
  const png = strArg('png', join(ROOT, 'docs/soak.png'));
  const minutes = rows[rows.length - 1].t_s / 60;
  const stamp = /soak-([\dT-]+)/.exec(basename(csvPath))?.[1] ?? '';
  await renderSoakChart(rows, png, {
    title: `CMQ soak ${stamp}: ${fmt(minutes, 1)} min at ${int(rows[0].target_req_s)} requests/s (target)`,
    subtitle: `${rows.length} samples of ${INTERVAL_S} s from ${relative(process.cwd(), csvPath)}`,
  });
  console.log(`chart: ${png}`);
}

// ---- the run ----------------------------------------------------------------------------------

async function main() {
  const chartCsv = strArg('chart-only', null);
  if (chartCsv) return chartOnly(chartCsv);

  const rate = numArg('rate', 5000);
  const duration = numArg('duration', 1800);
  const queueCount = numArg('queues', 6);
  const queueApis = numArg('queue-apis', 1);
  const maxInFlight = numArg('max-in-flight', 2048);
  const connections = numArg('connections', 256);
  const bodySize = numArg('body', 256);
  const prefillPerQueue = numArg('prefill', 5000);
  const vacuumEvery = numArg('vacuum-every', 10);
  const warmup = numArg('warmup', 60);
  const timeoutMs = numArg('timeout-ms', 10000);
  const qpsLimit = numArg('queue-qps-limit', 0);
  const outDir = strArg('out-dir', join(ROOT, 'docs/soak'));
  // undici: the load generator's own CPU is a third of node:http's, and it shares the 2 cores
  const clientEngine = strArg('client', 'raw');
  const png = strArg('png', join(ROOT, 'docs/soak.png'));
  const bounds = {
    rateShortfallPct: numArg('max-rate-shortfall', 2),
    rssGrowthPct: numArg('max-rss-growth', 10),
    rssSlopeMbPerMin: numArg('max-rss-slope', 1),
    p99GrowthPct: numArg('max-p99-growth', 50),
    drainTimeoutS: numArg('drain-timeout', 180),
  };
  if (queueCount < 2 || queueCount % 2) throw new Error('--queues: an even number, 2 or more (the queues are split between two tenants)');
  const started = new Date();
  const stamp = started.toISOString().slice(0, 16).replace(':', '');

  const profDir = strArg('cpu-prof-dir', null);
  const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const system = await startSystem({ queueApis, nodeArgs, extraEnv: qpsLimit > 0 ? { QUEUE_QPS_LIMIT: String(qpsLimit) } : {} });
  let interrupted = false;
  let endAt = Infinity;
  const onSigint = () => {
    if (interrupted) return;
    interrupted = true;
    console.log('\nSIGINT: ending the load now; the checks and files follow (the run counts as cut short)');
    endAt = Math.min(endAt, performance.now());
  };
  process.on('SIGINT', onSigint);

  const db = new Client({ connectionString: system.databaseUrl, application_name: 'soak-sampler' });
  const Redis = require('ioredis');
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 2 });
  const clients = system.tenants.map((tenant) =>
    system.cmqPorts.map((port) => cmqClient({ port, tenant, maxSockets: connections, timeoutMs, engine: clientEngine })),
  );
  let stopVacuum;
  let dbConnected = false;
  try {
    await db.connect();
    dbConnected = true;
    await redis.connect();
    const { tenants } = system;
    for (const [i, t] of tenants.entries()) {
      await system.admin(`/v1/accounts/${t.accountId}/topups`, { amount: '1000.00' }, { 'idempotency-key': `soak-topup-${i}` });
    }

    // ---- what each tenant's requests should have been metered as, and what the queues should hold
    const usage = tenants.map(() => new Map()); // action → { calls, outcomes: {}, messages, bytesIn, bytesOut, billable }
    const store = { sent: 0, deleted: 0, sendUnknown: 0, deleteUnknown: 0, unknownUsage: 0 };
    let rr = 0;
    const request = async (tenantIndex, action, params) => {
      const perPort = clients[tenantIndex];
      const r = await perPort[rr++ % perPort.length].request(action, params);
      const reply = r.reply;
      if (typeof reply.code !== 'number') {
        // no CMQ reply (transport error, timeout): whether it was served and metered is unknown
        store.unknownUsage++;
        if (SEND_ACTIONS.has(action)) store.sendUnknown += action === 'SendMessage' ? 1 : SEND_BATCH;
        if (action === 'DeleteMessage' || action === 'BatchDeleteMessage') store.deleteUnknown += action === 'DeleteMessage' ? 1 : Object.keys(params).length - 1;
        return r;
      }
      const u = expectedUsage(action, params, reply);
      let a = usage[tenantIndex].get(action);
      if (!a) usage[tenantIndex].set(action, (a = { calls: 0, outcomes: {}, messages: 0, bytesIn: 0, bytesOut: 0, billable: 0 }));
      a.calls++;
      a.outcomes[u.outcome] = (a.outcomes[u.outcome] ?? 0) + 1;
      a.messages += u.messages;
      a.bytesIn += u.bytesIn;
      a.bytesOut += u.bytesOut;
      a.billable += u.billable;
      if (SEND_ACTIONS.has(action) && reply.code === 0) store.sent += u.messages;
      if ((action === 'DeleteMessage' || action === 'BatchDeleteMessage') && u.outcome === 'ok') store.deleted += u.messages;
      return r;
    };

    // ---- queues, prefilled
    const body = 'x'.repeat(bodySize);
    const queues = [];
    for (let q = 0; q < queueCount; q++) {
      const tenantIndex = q % 2;
      const name = `soak-${q}`;
      const { reply } = await request(tenantIndex, 'CreateQueue', { queueName: name, rewindSeconds: '0' });
      if (reply.code !== 0) throw new Error(`CreateQueue ${name}: ${JSON.stringify(reply)}`);
      queues.push({ name, tenantIndex, queueId: reply.queueId });
    }
    const queueRowIds = (await db.query(`SELECT id FROM queues WHERE queue_id = ANY($1)`, [queues.map((q) => q.queueId)])).rows.map((r) => r.id);
    console.log(`prefill: ${prefillPerQueue} messages of ${bodySize} bytes in each of ${queueCount} queues…`);
    for (const q of queues) {
      await prefill({ request: (action, params) => request(q.tenantIndex, action, params) }, q.name, prefillPerQueue, body, 32);
    }
    await analyzeMessages(db);
    stopVacuum = await standInForAutovacuum(db, system.databaseUrl, vacuumEvery, CHURNED_TABLES);
    // the server's WAL and checkpoint settings, and its checkpoints during the run: a checkpoint
    // makes the next change of every page write the whole page to the WAL
    const pgSettings = Object.fromEntries(
      (
        await db.query(
          `SELECT name, setting || coalesce(unit, '') AS v FROM pg_settings
            WHERE name IN ('max_wal_size', 'checkpoint_timeout', 'wal_compression', 'shared_buffers', 'synchronous_commit', 'autovacuum')`,
        )
      ).rows.map((r) => [r.name, r.v]),
    );
    const checkpointCount = async () =>
      Number((await db.query(`SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter`)).rows[0].n);
    const checkpointsBefore = await checkpointCount();
    const depth = async () => Number((await db.query(`SELECT count(*) AS n FROM messages WHERE queue_id = ANY($1)`, [queueRowIds])).rows[0].n);

    // ---- sampling
    const redisPid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1]);
    const procs = [
      ...system.processes,
      { name: 'load-generator', pid: process.pid },
      ...(Number.isFinite(rssMb(redisPid)) ? [{ name: 'redis', pid: redisPid }] : []),
    ];
    const rows = [];
    const byAction = {};
    const errorsByCode = {};
    const totals = { replies: 0, errors: 0, skipped: 0, noMessage: 0, warmupReplies: 0, warmupSkipped: 0 };
    const newInterval = () => ({ replies: 0, errors: 0, skipped: 0, hist: new Histogram() });
    let interval = newInterval();
    let inFlight = 0;
    let drained;

    const lastCpu = new Map(procs.map((p) => [p.name, cpuSeconds(p.pid)]));
    let lastPgCpu = new Map();
    const pgBackends = async () => {
      const { rows: r } = await db.query('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
      return new Map(r.map(({ pid }) => [pid, { cpu: cpuSeconds(pid), anon: rssAnonMb(pid) }]).filter(([, v]) => Number.isFinite(v.cpu)));
    };
    lastPgCpu = await pgBackends();
    let lastHost = hostCpu();
    let lastAppliedCut = (await db.query(`SELECT clock_timestamp()::text AS t`)).rows[0].t;
    const loadStartCut = lastAppliedCut;
    // Redis: keys of the whole server (INFO keyspace; cheap, unlike a SCAN of this run's keys)
    const redisKeys = async () => Number(/^db0:keys=(\d+)/m.exec(await redis.info('keyspace'))?.[1] ?? 0);
    let dbSampling = Promise.resolve();

    // the warm-up: the rate rises from 0 to the target over `warmup` s; then the measured run
    // starts (t0), with every figure and check from there, but for errors, which count throughout
    const loadStart = performance.now();
    const t0 = loadStart + warmup * 1000;
    let warming = warmup > 0;
    let lastT = t0;
    const closeInterval = (now) => {
      const seconds = (now - lastT) / 1000;
      const h = interval.hist;
      const row = {
        t_s: Math.round(((now - t0) / 1000) * 10) / 10,
        req_s: Math.round(interval.replies / seconds),
        target_req_s: rate,
        replies: interval.replies,
        errors: interval.errors,
        skipped: interval.skipped,
        p50_ms: ms2(h.percentile(50)),
        p90_ms: ms2(h.percentile(90)),
        p99_ms: ms2(h.percentile(99)),
        max_ms: ms2(h.max),
      };
      for (const p of procs) {
        const c = cpuSeconds(p.pid);
        row[`rss_mb:${p.name}`] = round1(rssMb(p.pid));
        row[`cpu_pct:${p.name}`] = Math.round(((c - lastCpu.get(p.name)) / seconds) * 100);
        lastCpu.set(p.name, c);
      }
      Object.assign(row, {
        'rss_mb:postgres': null,
        'cpu_pct:postgres': null,
        pg_backends: null,
        machine_busy_pct: hostBusyPercent(lastHost, (lastHost = hostCpu())),
        others_cpu_pct: null,
        queue_depth: null,
        dead_rows: null,
        outbox_rows: null,
        outbox_oldest_ms: null,
        usage_batches: null,
        usage_records: null,
        usage_lag_p50_ms: null,
        usage_lag_max_ms: null,
        redis_keys: null,
      });
      rows.push(row);
      lastT = now;
      interval = newInterval();
      // the database's figures, one sample at a time on the sampler's connection
      dbSampling = dbSampling.then(async () => {
        try {
          const pg = await pgBackends();
          let cpu = 0;
          let anon = 0;
          for (const [pid, v] of pg) {
            cpu += v.cpu - (lastPgCpu.get(pid)?.cpu ?? 0); // a backend new since the last sample: from 0, as postgresCpuBetween does
            if (Number.isFinite(v.anon)) anon += v.anon;
          }
          lastPgCpu = pg;
          row['rss_mb:postgres'] = round1(anon);
          row['cpu_pct:postgres'] = Math.round((cpu / seconds) * 100);
          // what the machine spent on anything but this run: other people's work shows here
          const ours = procs.reduce((a, p) => a + row[`cpu_pct:${p.name}`], 0) + row['cpu_pct:postgres'];
          row.others_cpu_pct = Math.max(0, row.machine_busy_pct * os.availableParallelism() - ours);
          row.pg_backends = pg.size;
          row.queue_depth = await depth();
          row.dead_rows = (await messagesTableStats(db)).dead;
          const ob = (
            await db.query(
              `SELECT count(*)::int AS n, (extract(epoch FROM clock_timestamp() - min(created_at)) * 1000)::float8 AS oldest FROM usage_outbox`,
            )
          ).rows[0];
          row.outbox_rows = ob.n;
          row.outbox_oldest_ms = ob.oldest === null ? 0 : Math.round(ob.oldest);
          const b = (
            await db.query(
              `WITH cut AS (SELECT clock_timestamp() AS t)
               SELECT (SELECT t FROM cut)::text AS cut, count(*)::int AS n, coalesce(sum(records), 0)::int AS records,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50, max(lag) AS max
                 FROM (SELECT records, extract(epoch FROM applied_at - oldest_at) * 1000 AS lag
                         FROM usage_batches_applied
                        WHERE applied_at > $1::timestamptz AND applied_at <= (SELECT t FROM cut) AND oldest_at IS NOT NULL) s`,
              [lastAppliedCut],
            )
          ).rows[0];
          lastAppliedCut = b.cut;
          row.usage_batches = b.n;
          row.usage_records = b.records;
          row.usage_lag_p50_ms = b.p50 === null ? null : Math.round(Number(b.p50));
          row.usage_lag_max_ms = b.max === null ? null : Math.round(Number(b.max));
          row.redis_keys = await redisKeys();
        } catch (err) {
          console.error(`sample at ${row.t_s} s: ${err.message}`);
        }
        const rss = system.processes.map((p) => `${p.name} ${fmt(row[`rss_mb:${p.name}`], 0)}`).join(' ');
        const cpu = system.processes.map((p) => `${p.name} ${row[`cpu_pct:${p.name}`]}%`).join(' ');
        console.log(
          `${String(row.t_s).padStart(6)} s  ${int(row.req_s)} req/s  errors ${row.errors}  skipped ${row.skipped}  ` +
            `p50/p99/max ${row.p50_ms}/${row.p99_ms}/${row.max_ms} ms  RSS MB ${rss}  CPU ${cpu} pg ${row['cpu_pct:postgres']}% ` +
            `machine ${row.machine_busy_pct}% (others ${row.others_cpu_pct}% of a core)  depth ${int(row.queue_depth)}  outbox ${row.outbox_rows} (oldest ${row.outbox_oldest_ms} ms)  ` +
            `usage lag p50/max ${row.usage_lag_p50_ms ?? '-'}/${row.usage_lag_max_ms ?? '-'} ms`,
        );
      });
    };

    // ---- the load
    const record = (action, r) => {
      const code = r.reply.code;
      if (warming) {
        totals.warmupReplies++;
        if (code !== 0 && !(code === 7000 && RECEIVE_ACTIONS.has(action))) {
          totals.errors++;
          const k = `${action} ${code} (warm-up)`;
          errorsByCode[k] = (errorsByCode[k] ?? 0) + 1;
        }
        return;
      }
      (byAction[action] ??= new Histogram()).record(r.ms);
      interval.hist.record(r.ms);
      interval.replies++;
      totals.replies++;
      if (code === 7000 && RECEIVE_ACTIONS.has(action)) totals.noMessage++;
      else if (code !== 0) {
        interval.errors++;
        totals.errors++;
        const k = `${action} ${code}`;
        errorsByCode[k] = (errorsByCode[k] ?? 0) + 1;
      }
    };
    const issue = (q, action, params, then) => {
      inFlight++;
      request(q.tenantIndex, action, params).then((r) => {
        inFlight--;
        record(action, r);
        then?.(r.reply);
        if (inFlight === 0 && drained) drained();
      });
    };
    const batchSendParams = batchBodies(new Array(SEND_BATCH).fill(body));
    const dispatch = (q, kind) => {
      const queueName = q.name;
      switch (kind) {
        case 'SendMessage':
          return issue(q, kind, { queueName, msgBody: body, delaySeconds: '0' });
        case 'BatchSendMessage':
          return issue(q, kind, { queueName, ...batchSendParams, delaySeconds: '0' });
        case 'ReceiveMessage':
          return issue(q, kind, { queueName, pollingWaitSeconds: '0' }, (reply) => {
            if (reply.code === 0) issue(q, 'DeleteMessage', { queueName, receiptHandle: reply.receiptHandle });
          });
        case 'BatchReceiveMessage':
          return issue(q, kind, { queueName, numOfMsg: String(RECEIVE_BATCH), pollingWaitSeconds: '0' }, (reply) => {
            if (reply.code === 0) issue(q, 'BatchDeleteMessage', { queueName, ...batchHandles(reply.msgInfoList.map((m) => m.receiptHandle)) });
          });
        case 'GetQueueAttributes':
          return issue(q, kind, { queueName });
        case 'ListQueue':
          return issue(q, kind, { offset: '0', limit: '20' });
        default:
          throw new Error(kind);
      }
    };

    const pattern = weightedCycle(MIX);
    console.log(
      `\nsoak: target ${rate} requests/s for ${duration} s over ${queueCount} queues of 2 tenants, ` +
        `${system.cmqPorts.length} queue-api, 1 worker, metering on, at most ${maxInFlight} in flight on ${connections} connections per tenant and queue-api; ` +
        system.processes.map((p) => `${p.name} pid ${p.pid}`).join(', '),
    );
    const slotRate = (rate * SCHEDULED) / CYCLE / 1000; // scheduled slots per ms
    const warmupMs = warmup * 1000;
    /** Slots due `ms` after the load started: the integral of the rate, rising linearly over the warm-up. */
    const slotsDue = (ms) => Math.floor(slotRate * (ms < warmupMs ? (ms * ms) / (2 * warmupMs) : ms - warmupMs / 2));
    endAt = Math.min(endAt, t0 + duration * 1000);
    if (warming) console.log(`warm-up: ${warmup} s, the rate rising to ${rate} requests/s (errors count; nothing else does)`);
    let issued = 0;
    let nextSample = t0 + INTERVAL_S * 1000;
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (warming && now >= t0) {
          // the measured run starts: CPU counters from here
          warming = false;
          for (const p of procs) lastCpu.set(p.name, cpuSeconds(p.pid));
          lastHost = hostCpu();
          dbSampling = dbSampling.then(async () => (lastPgCpu = await pgBackends()));
          console.log('warm-up over: measuring');
        }
        if (now >= nextSample && now < endAt) {
          closeInterval(now);
          nextSample += INTERVAL_S * 1000;
        }
        // open loop: scheduled slot k is due when slotsDue passes k; the queues take turns
        const due = slotsDue(Math.min(now, endAt) - loadStart);
        while (issued < due) {
          const slot = issued++;
          if (inFlight >= maxInFlight) {
            if (warming) totals.warmupSkipped++;
            else {
              interval.skipped++;
              totals.skipped++;
            }
            continue;
          }
          dispatch(queues[slot % queueCount], pattern[Math.floor(slot / queueCount) % pattern.length]);
        }
        if (now >= endAt) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    if (inFlight > 0) await new Promise((resolve) => (drained = resolve));
    const loadEnd = performance.now();
    const elapsed = (loadEnd - t0) / 1000;
    closeInterval(loadEnd);
    await dbSampling;
    let drainMs = NaN;
    let drainError = null;
    try {
      drainMs = await waitOutboxEmpty(db, bounds.drainTimeoutS * 1000);
    } catch (err) {
      drainError = err.message;
    }
    const vacuums = stopVacuum ? await stopVacuum() : 0;
    stopVacuum = undefined;

    // ---- checks
    const checks = [];
    const check = (name, pass, detail) => checks.push({ name, pass: Boolean(pass), detail });
    const T = rows[rows.length - 1].t_s;
    const achieved = totals.replies / elapsed;
    const shortfall = (1 - achieved / rate) * 100;

    check(
      'no errors',
      totals.errors === 0,
      `${totals.errors} errors${totals.errors ? ' ' + JSON.stringify(errorsByCode) : ''} (any code but 0, and 7000 on a receive; transport errors and ${timeoutMs} ms timeouts included); ` +
        `${totals.noMessage} empty receives (7000, expected)`,
    );
    check(
      'achieved rate',
      Math.abs(shortfall) <= bounds.rateShortfallPct && !interrupted,
      `${int(totals.replies)} replies in ${fmt(elapsed, 1)} s = ${fmt(achieved, 0)} requests/s, target ${rate} ` +
        `(${shortfall >= 0 ? '−' : '+'}${fmt(Math.abs(shortfall), 2)}%; bound ±${bounds.rateShortfallPct}%); ` +
        `${totals.skipped} slots skipped at ${maxInFlight} in flight; 10-s intervals ${int(Math.min(...rows.map((r) => r.req_s)))}–${int(Math.max(...rows.map((r) => r.req_s)))} requests/s` +
        (interrupted ? '; cut short by SIGINT' : ''),
    );

    // memory: thirds of the run by sample time; the first third is the warm-up
    const memory = {};
    for (const p of [...procs.map((x) => x.name), 'postgres']) {
      const pts = rows.map((r) => ({ t: r.t_s, y: r[`rss_mb:${p}`] })).filter((s) => Number.isFinite(s.y));
      const second = pts.filter((s) => s.t > T / 3 && s.t <= (2 * T) / 3).map((s) => s.y);
      const last = pts.filter((s) => s.t > (2 * T) / 3).map((s) => s.y);
      const growth = (mean(last) / mean(second) - 1) * 100;
      const perMin = slope(pts.filter((s) => s.t > T / 3).map((s) => ({ x: s.t / 60, y: s.y })));
      const all = pts.map((s) => s.y);
      memory[p] = {
        first: all[0],
        last: all[all.length - 1],
        max: Math.max(...all),
        secondThirdMean: round1(mean(second)),
        lastThirdMean: round1(mean(last)),
        growthPct: round1(growth),
        slopeMbPerMin: Number.isFinite(perMin) ? Math.round(perMin * 100) / 100 : null,
      };
      const m = memory[p];
      const detail =
        `RSS first / last / max ${fmt(m.first)} / ${fmt(m.last)} / ${fmt(m.max)} MB; mean 2nd third ${fmt(m.secondThirdMean)} → last third ${fmt(m.lastThirdMean)} MB ` +
        `(${growth >= 0 ? '+' : ''}${fmt(growth)}%, bound +${bounds.rssGrowthPct}%); slope over the last two thirds ${fmt(perMin, 2)} MB/min (bound ${bounds.rssSlopeMbPerMin})`;
      const alive = procs.find((x) => x.name === p) ? Number.isFinite(rssMb(procs.find((x) => x.name === p).pid)) : true;
      if (isAppProcess(p)) {
        check(`memory flat: ${p}`, alive && growth <= bounds.rssGrowthPct && perMin <= bounds.rssSlopeMbPerMin, (alive ? '' : 'PROCESS GONE; ') + detail);
      } else {
        checks.push({ name: `memory (reported, not checked): ${label(p, 'rss')}`, pass: null, detail });
      }
    }

    const p99s = rows.map((r) => ({ t: r.t_s, y: Number(r.p99_ms) })).filter((s) => Number.isFinite(s.y));
    const firstP99 = median(p99s.filter((s) => s.t <= T / 3).map((s) => s.y));
    const lastP99 = median(p99s.filter((s) => s.t > (2 * T) / 3).map((s) => s.y));
    const p99Growth = (lastP99 / firstP99 - 1) * 100;
    check(
      'latency flat (p99)',
      p99Growth <= bounds.p99GrowthPct,
      `median of the intervals' p99: first third ${fmt(firstP99, 2)} ms, last third ${fmt(lastP99, 2)} ms ` +
        `(${p99Growth >= 0 ? '+' : ''}${fmt(p99Growth)}%, bound +${bounds.p99GrowthPct}%)`,
    );

    const lag = (
      await db.query(
        `SELECT count(*)::int AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, max(lag) AS max
           FROM (SELECT extract(epoch FROM applied_at - oldest_at) * 1000 AS lag FROM usage_batches_applied
                  WHERE oldest_at IS NOT NULL AND applied_at > $1::timestamptz) s`,
        [loadStartCut],
      )
    ).rows[0];
    const usageLag = { batches: lag.n, p50: Math.round(Number(lag.p50)), p99: Math.round(Number(lag.p99)), max: Math.round(Number(lag.max)) };
    checks.push({
      name: 'usage-to-balance lag (reported, not checked)',
      pass: null,
      detail: `${usageLag.batches} usage batches applied from the start of the load: lag (applied − oldest outbox row's commit) p50 ${usageLag.p50} ms, p99 ${usageLag.p99} ms, max ${usageLag.max} ms; outbox backlog at the samples: max ${int(Math.max(...rows.map((r) => r.outbox_rows ?? 0)))} rows`,
    });
    const checkpoints = (await checkpointCount()) - checkpointsBefore;
    checks.push({
      name: 'Postgres (reported, not checked)',
      pass: null,
      detail: `${checkpoints} checkpoints from the prefill to the end; ${Object.entries(pgSettings).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    });
    const others = rows.map((r) => r.others_cpu_pct).filter(Number.isFinite);
    const busy = rows.map((r) => r.machine_busy_pct).filter(Number.isFinite);
    const crowded = mean(others) > 20;
    checks.push({
      name: 'the machine (reported, not checked)',
      pass: null,
      detail:
        `${os.availableParallelism()} cores, busy a mean ${fmt(mean(busy), 0)}% (max ${Math.max(...busy)}%); processes outside this run took a mean ${fmt(mean(others), 0)}% ` +
        `of a core (max ${Math.max(...others)}%)` + (crowded ? ': NOT A QUIET MACHINE, rate and latency include the contention' : ''),
    });

    // usage: the outbox drained, then every account's usage exactly as the replies said
    check('usage outbox drained', drainError === null, drainError ?? `empty ${fmt(drainMs / 1000, 1)} s after the load (bound ${bounds.drainTimeoutS} s)`);
    const accountIds = tenants.map((t) => t.accountId);
    const hourly = (
      await db.query(
        `SELECT account_id, action, sum(calls)::bigint AS calls, sum(billable_calls)::bigint AS billable, sum(messages)::bigint AS messages,
                sum(bytes_in)::bigint AS bytes_in, sum(bytes_out)::bigint AS bytes_out, sum(amount_nano)::bigint AS amount
           FROM usage_hourly WHERE account_id = ANY($1) GROUP BY 1, 2`,
        [accountIds],
      )
    ).rows;
    const minutely = (
      await db.query(`SELECT account_id, outcome, sum(requests)::bigint AS requests FROM usage_minutely WHERE account_id = ANY($1) GROUP BY 1, 2`, [accountIds])
    ).rows;
    const monthly = (
      await db.query(
        `SELECT account_id, sum(billable_calls)::bigint AS billable, sum(charged_nano)::bigint AS charged FROM usage_monthly WHERE account_id = ANY($1) GROUP BY 1`,
        [accountIds],
      )
    ).rows;
    const ledger = (
      await db.query(
        `SELECT b.account_id, b.cash_nano::bigint AS cash, b.voucher_nano::bigint AS vouchers,
                coalesce(e.cash, 0)::bigint AS entries_cash, coalesce(e.vouchers, 0)::bigint AS entries_vouchers,
                coalesce(e.charges, 0)::bigint AS usage_charges, coalesce(e.n, 0)::int AS entries,
                last.cash_after_nano::bigint AS last_cash_after, last.voucher_after_nano::bigint AS last_voucher_after
           FROM balances b
           LEFT JOIN (SELECT account_id, sum(cash_delta_nano) AS cash, sum(voucher_delta_nano) AS vouchers, count(*) AS n,
                             sum(cash_delta_nano + voucher_delta_nano) FILTER (WHERE kind = 'usage_charge') AS charges
                        FROM ledger_entries WHERE account_id = ANY($1) GROUP BY account_id) e ON e.account_id = b.account_id
           LEFT JOIN LATERAL (SELECT cash_after_nano, voucher_after_nano FROM ledger_entries l
                               WHERE l.account_id = b.account_id ORDER BY id DESC LIMIT 1) last ON true
          WHERE b.account_id = ANY($1)`,
        [accountIds],
      )
    ).rows;
    const usageTable = [];
    for (const [i, t] of tenants.entries()) {
      const want = usage[i];
      const got = new Map(hourly.filter((r) => r.account_id === t.accountId).map((r) => [r.action, r]));
      const mismatches = [];
      let requests = 0;
      let billable = 0;
      const outcomes = {};
      for (const action of new Set([...want.keys(), ...got.keys()])) {
        const w = want.get(action) ?? { calls: 0, outcomes: {}, messages: 0, bytesIn: 0, bytesOut: 0, billable: 0 };
        const g = got.get(action);
        const pairs = [
          ['calls', w.calls, Number(g?.calls ?? 0)],
          ['billable calls', w.billable, Number(g?.billable ?? 0)],
          ['messages', w.messages, Number(g?.messages ?? 0)],
          ['bytes in', w.bytesIn, Number(g?.bytes_in ?? 0)],
          ['bytes out', w.bytesOut, Number(g?.bytes_out ?? 0)],
        ];
        for (const [what, a, b] of pairs) if (a !== b) mismatches.push(`${action} ${what}: sent ${a}, applied ${b}`);
        requests += w.calls;
        billable += w.billable;
        for (const [o, n] of Object.entries(w.outcomes)) outcomes[o] = (outcomes[o] ?? 0) + n;
        usageTable.push({ account: i === 0 ? 'A' : 'B', action, requests: w.calls, applied: Number(g?.calls ?? 0), 'billable sent/applied': `${w.billable}/${Number(g?.billable ?? 0)}`, messages: w.messages });
      }
      const minute = minutely.filter((r) => r.account_id === t.accountId);
      for (const o of new Set([...Object.keys(outcomes), ...minute.map((r) => r.outcome)])) {
        const a = outcomes[o] ?? 0;
        const b = Number(minute.find((r) => r.outcome === o)?.requests ?? 0);
        if (a !== b) mismatches.push(`usage_minutely ${o}: sent ${a}, applied ${b}`);
      }
      const month = monthly.find((r) => r.account_id === t.accountId);
      const l = ledger.find((r) => r.account_id === t.accountId);
      const amountHourly = hourly.filter((r) => r.account_id === t.accountId).reduce((s, r) => s + BigInt(r.amount), 0n);
      const charged = BigInt(month?.charged ?? 0);
      if (Number(month?.billable ?? 0) !== billable) mismatches.push(`usage_monthly billable calls: sent ${billable}, applied ${month?.billable ?? 0}`);
      if (BigInt(l?.usage_charges ?? 0) !== -charged) mismatches.push(`usage_charge entries ${l?.usage_charges} ≠ −${charged} charged in usage_monthly`);
      if (amountHourly !== charged) mismatches.push(`usage_hourly amounts ${amountHourly} ≠ ${charged} charged in usage_monthly`);
      check(
        `usage applied exactly: account ${i === 0 ? 'A' : 'B'}`,
        mismatches.length === 0 && store.unknownUsage === 0,
        mismatches.length === 0
          ? `${int(requests)} requests (${Object.entries(outcomes).map(([o, n]) => `${o} ${n}`).join(', ')}) and ${int(billable)} billable calls ` +
              `in usage_hourly, usage_minutely and usage_monthly as sent; charged ${charged} nano = usage_charge entries = hourly amounts ` +
              `(${billable ? fmt(Number(charged) / billable, 1) : '-'} nano a billable call)` +
              (store.unknownUsage ? `; ${store.unknownUsage} requests without a CMQ reply: their usage is unknown` : '')
          : mismatches.slice(0, 12).join('; '),
      );
      const reconciled = l && BigInt(l.cash) === BigInt(l.entries_cash) && BigInt(l.vouchers) === BigInt(l.entries_vouchers) && BigInt(l.cash) === BigInt(l.last_cash_after) && BigInt(l.vouchers) === BigInt(l.last_voucher_after);
      check(
        `ledger reconciles: account ${i === 0 ? 'A' : 'B'}`,
        reconciled,
        l
          ? `balance cash ${l.cash} / vouchers ${l.vouchers} nano; sums of its ${l.entries} entries ${l.entries_cash} / ${l.entries_vouchers}; last entry's balance after ${l.last_cash_after} / ${l.last_voucher_after}`
          : 'no balance row',
      );
    }
    const recon = (await db.query(`SELECT count(*)::int AS runs, coalesce(sum(mismatched), 0)::int AS mismatched FROM ledger_reconciliations`)).rows[0];
    // the worker reconciles every RECONCILE_INTERVAL_MS (60 s): a run of 2 minutes or more must have seen one
    check(
      'worker reconciliations',
      recon.mismatched === 0 && (recon.runs > 0 || elapsed < 120),
      `${recon.runs} runs of the worker's ledger reconciliation during the soak (at least 1 in a run of 2 minutes or more), ${recon.mismatched} mismatches`,
    );
    const rowsAfter = await depth();
    const prefilled = queueCount * prefillPerQueue; // counted in store.sent too
    const expectedRows = store.sent - store.deleted;
    const rowsOk = rowsAfter <= expectedRows + store.sendUnknown && rowsAfter >= expectedRows - store.deleteUnknown;
    check(
      'queue rows consistent',
      rowsOk,
      `${int(store.sent)} messages sent (${int(prefilled)} of them the prefill) − ${int(store.deleted)} deleted = ${int(expectedRows)}; in the queues: ${int(rowsAfter)}`,
    );

    // ---- report
    console.log(
      `\nSoak, ${bodySize}-byte bodies, target ${rate} requests/s, ${duration} s, ${queueCount} queues of 2 tenants, ` +
        `${system.cmqPorts.length} queue-api + 1 worker + billing-api, VACUUM (ANALYZE) of the churned tables every ${vacuumEvery} s (${vacuums} runs), ` +
        `machine ${os.availableParallelism()} cores`,
    );
    const all = Object.values(byAction).reduce((acc, h) => acc.merge(h), new Histogram());
    console.table(
      Object.entries(byAction).map(([action, h]) => ({
        action,
        requests: h.count,
        share: `${((h.count / totals.replies) * 100).toFixed(1)}%`,
        'p50 ms': ms2(h.percentile(50)),
        'p90 ms': ms2(h.percentile(90)),
        'p99 ms': ms2(h.percentile(99)),
        'max ms': ms2(h.max),
      })),
    );
    console.log(`all requests: p50 ${ms2(all.percentile(50))} ms, p90 ${ms2(all.percentile(90))} ms, p99 ${ms2(all.percentile(99))} ms, max ${ms2(all.max)} ms`);
    console.table(usageTable);
    for (const c of checks) console.log(`${c.pass === null ? 'info' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
    const passed = checks.every((c) => c.pass !== false);

    // ---- files
    mkdirSync(outDir, { recursive: true });
    const base = join(outDir, `soak-${stamp}`);
    writeFileSync(`${base}.csv`, toCsv(rows));
    const summary = {
      started: started.toISOString(),
      command: `node bench/soak.js ${process.argv.slice(2).join(' ')}`.trim(),
      config: { rate, duration, warmup, queues: queueCount, queueApis: system.cmqPorts.length, maxInFlight, connections, bodySize, prefillPerQueue, vacuumEvery, timeoutMs, queueQpsLimit: qpsLimit || 'default', mix: MIX, cycle: CYCLE },
      machine: { cores: os.availableParallelism(), loadavgAtEnd: os.loadavg() },
      postgres: { settings: pgSettings, checkpoints },
      bounds,
      result: {
        passed,
        interrupted,
        elapsedS: Math.round(elapsed * 10) / 10,
        replies: totals.replies,
        achievedReqS: Math.round(achieved),
        errors: totals.errors,
        errorsByCode,
        emptyReceives: totals.noMessage,
        skipped: totals.skipped,
        warmupReplies: totals.warmupReplies,
        warmupSkipped: totals.warmupSkipped,
        latencyMs: { p50: ms2(all.percentile(50)), p90: ms2(all.percentile(90)), p99: ms2(all.percentile(99)), max: ms2(all.max) },
        p99MedianFirstThird: firstP99,
        p99MedianLastThird: lastP99,
        memory,
        outboxDrainS: Number.isFinite(drainMs) ? Math.round(drainMs / 100) / 10 : null,
        usageLagMs: usageLag,
        othersCpuPctMean: round1(mean(others)),
        machineBusyPctMean: round1(mean(busy)),
        vacuums,
      },
      checks,
      samples: rows,
    };
    // readable, but one line per sample: the samples are most of it
    const json = JSON.stringify({ ...summary, samples: '\u0000samples' }, null, 1).replace(
      '"\\u0000samples"',
      `[\n${rows.map((r) => `  ${JSON.stringify(r)}`).join(',\n')}\n ]`,
    );
    writeFileSync(`${base}.json`, json + '\n');
    console.log(`\nsamples: ${relative(process.cwd(), base)}.csv and .json`);
    try {
      await renderSoakChart(rows, png, {
        title: `CMQ soak ${stamp} UTC: ${fmt(elapsed / 60, 1)} min at ${int(rate)} requests/s (target), ${passed ? 'all checks passed' : 'CHECKS FAILED'}`,
        subtitle:
          `${queueCount} queues of 2 tenants, ${system.cmqPorts.length} queue-api + 1 worker + billing-api, metering on; achieved ${fmt(achieved, 0)} requests/s, ` +
          `${totals.errors} errors; samples every ${INTERVAL_S} s; ${os.availableParallelism()}-core machine shared by the load generator, the apps, Postgres and Redis`,
      });
      console.log(`chart: ${relative(process.cwd(), png)}`);
    } catch (err) {
      console.error(`chart not rendered: ${err.message} (node bench/soak.js --chart-only ${relative(process.cwd(), base)}.csv renders it again)`);
    }
    console.log(`\n${passed ? 'SOAK PASSED' : 'SOAK FAILED'}: ${checks.filter((c) => c.pass === false).map((c) => c.name).join(', ') || 'all checks passed'}`);
    process.exitCode = passed ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    await stopVacuum?.();
    for (const perPort of clients) for (const c of perPort) c.close();
    if (dbConnected) await db.end();
    await system.stop();
    await forgetRedisKeys(redis, system.redisPrefix).catch((err) => console.error(`Redis keys of ${system.redisPrefix} left: ${err.message}`));
    redis.disconnect();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
