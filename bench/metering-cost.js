'use strict';
// What metering costs SendMessage: two queue-api processes on one database, one metering every
// request (METERING=true: the usage outbox row in each group commit, the relay to BullMQ) and
// one not (METERING=false), and a worker applying the usage as it comes, as in production.
// wrk runs alternate off / on / on / off / off / on … against the two, so both see the same machine, the
// same database and the same queue. Afterwards, once the worker has emptied the outbox, the
// requests counted in usage_minutely for the account are checked against what wrk sent to the
// metered endpoint: every code-0 reply counted once.
// Usage: npm run bench:metering-cost -- [--runs 4] [--duration 15] [--connections 64] [--body 256]
//          [--warmup 5] [--vacuum-every S (VACUUM ANALYZE of the tables the usage updates, every S s)]
//          [--queue-qps-limit N (QUEUE_QPS_LIMIT; default 1,000,000: not the bottleneck)]
//          [--cpu-prof (both queue-api processes and the worker write a CPU profile into bench/profiles/ when they stop)]
//          [--group-commit-concurrency N (GROUP_COMMIT_CONCURRENCY of both queue-api processes; default: the app's)]
//          [--pause-worker (SIGSTOP the worker during each run and SIGCONT it after: what the hot path alone costs,
//           without the worker applying usage on the same cores)]
const os = require('node:os');
const { join } = require('node:path');
const { Client } = require('pg');
const {
  startStack,
  signedBody,
  call,
  wrkLoad,
  numArg,
  flagArg,
  cpuSeconds,
  hostCpu,
  hostBusyPercent,
  postgresBackendsCpu,
  postgresCpuBetween,
  standInForAutovacuum,
  waitOutboxEmpty,
  checkpointsSoFar,
  BENCH_QUEUE_QPS_LIMIT,
} = require('./lib');

const QUEUE = 'bench';
const ON_PORT = 18080;
const OFF_PORT = 18082;
const WORKER_PORT = 13001;
/** the tables the usage path inserts into, updates or deletes from, beside the messages */
const USAGE_TABLES = ['messages', 'usage_outbox', 'usage_minutely', 'usage_hourly', 'usage_monthly', 'balances'];

/** requests counted in usage_minutely for the account, by outcome */
async function countedRequests(db, accountId) {
  const { rows } = await db.query(
    `SELECT outcome, sum(requests)::bigint AS n FROM usage_minutely WHERE account_id = $1 GROUP BY outcome`,
    [accountId],
  );
  return Object.fromEntries(rows.map((r) => [r.outcome, Number(r.n)]));
}

const minus = (a, b) => Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, (a[k] ?? 0) - (b[k] ?? 0)]));

async function main() {
  const runs = numArg('runs', 4);
  const duration = numArg('duration', 15);
  const connections = numArg('connections', 64);
  const bodySize = numArg('body', 256);
  const warmup = numArg('warmup', 5);
  const vacuumEvery = numArg('vacuum-every', 0);
  const qpsLimit = numArg('queue-qps-limit', BENCH_QUEUE_QPS_LIMIT);
  const extraEnv = { QUEUE_QPS_LIMIT: String(qpsLimit), METERING: 'true' };
  const commits = numArg('group-commit-concurrency', 0);
  const pauseWorker = flagArg('pause-worker');
  if (commits > 0) extraEnv.GROUP_COMMIT_CONCURRENCY = String(commits);

  const profileArgs = flagArg('cpu-prof') ? ['--cpu-prof', '--cpu-prof-dir', join(__dirname, 'profiles')] : [];
  const stack = await startStack({
    cmqPort: ON_PORT,
    extraEnv,
    queueNodeArgs: profileArgs,
    moreQueueApis: [{ cmqPort: OFF_PORT, env: { METERING: 'false' }, nodeArgs: profileArgs }],
    worker: { port: WORKER_PORT, nodeArgs: profileArgs },
  });
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  let stopVacuum;
  try {
    const pids = { on: stack.queuePid, off: stack.moreQueueApis[0].pid, worker: stack.workerPid };
    const created = await call(ON_PORT, stack.tenant, 'CreateQueue', { queueName: QUEUE });
    if (created.code !== 0) throw new Error(JSON.stringify(created));
    const payload = 'x'.repeat(bodySize);
    const bodiesFor = (port) => {
      const host = `127.0.0.1:${port}`;
      return () => signedBody(stack.tenant, host, 'SendMessage', { queueName: QUEUE, msgBody: payload, delaySeconds: '0' });
    };
    const count = 30_000 * duration; // more than either endpoint answers in the time: none is sent twice
    for (const port of [OFF_PORT, ON_PORT]) {
      await wrkLoad({ port, makeBody: bodiesFor(port), count: 15_000 * warmup, connections, duration: warmup, title: 'warm-up' });
    }
    stopVacuum = await standInForAutovacuum(db, stack.databaseUrl, vacuumEvery, USAGE_TABLES);
    await waitOutboxEmpty(db);
    const before = await countedRequests(db, stack.tenant.accountId);

    const results = [];
    for (let i = 0; i < runs; i++) {
      // off, on, on, off, off, on, …: each on run has an off run beside it on either side, so a
      // drift of the machine over the runs (warming up, tables growing) favours neither
      const metering = i % 4 === 1 || i % 4 === 2;
      const port = metering ? ON_PORT : OFF_PORT;
      // the previous run's usage is applied before this one starts, so no run pays for another's
      const drainMs = await waitOutboxEmpty(db);
      if (i > 0) results[i - 1].drainMs = Math.round(drainMs);
      const makeBody = bodiesFor(port);
      const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
      const host0 = hostCpu();
      const pg0 = await postgresBackendsCpu(db);
      const checkpoints0 = await checkpointsSoFar(db);
      if (pauseWorker) process.kill(pids.worker, 'SIGSTOP');
      let r;
      try {
        r = await wrkLoad({ port, makeBody, count, connections, duration, title: metering ? 'metering on' : 'metering off' });
      } finally {
        if (pauseWorker) process.kill(pids.worker, 'SIGCONT');
      }
      const busy = hostBusyPercent(host0, hostCpu());
      const pgCpu = Math.round((postgresCpuBetween(pg0, await postgresBackendsCpu(db)) / duration) * 100);
      const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, Math.round(((cpuSeconds(pid) - cpu0[k]) / duration) * 100)]));
      r.run = i + 1;
      r.cpu = cpu;
      r.busy = busy;
      r.pgCpu = pgCpu;
      r.metering = metering;
      r.checkpoints = (await checkpointsSoFar(db)) - checkpoints0;
      results.push(r);
      console.log(
        `run ${i + 1} ${r.title}: ${r.requestsPerSec} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, CMQ errors ${r.cmqErrors}, ` +
          `queue-api ${cpu[metering ? 'on' : 'off']}% of a core, worker ${cpu.worker}%, Postgres backends ${pgCpu}%, machine ${busy}% busy, ` +
          `Postgres checkpoints during the run ${r.checkpoints}`,
      );
    }
    const lastDrain = await waitOutboxEmpty(db);
    results[results.length - 1].drainMs = Math.round(lastDrain);
    const after = await countedRequests(db, stack.tenant.accountId);
    const counted = minus(after, before);
    const batches = await db.query(
      `SELECT count(*)::int AS batches, coalesce(sum(cardinality(outbox_ids)), 0)::int AS rows FROM usage_batches_applied WHERE outbox_ids IS NOT NULL`,
    );
    const vacuums = stopVacuum ? await stopVacuum() : 0;
    stopVacuum = undefined;

    console.log(
      `\nSendMessage, ${bodySize}-byte bodies, ${connections} connections, ${runs} runs of ${duration} s alternating metering ` +
        `off (port ${OFF_PORT}) / on (port ${ON_PORT}) as off, on, on, off, …, one worker applying usage (USAGE_WORKER_CONCURRENCY ` +
        `${stack.env.USAGE_WORKER_CONCURRENCY ?? 'default'}${pauseWorker ? '; stopped during each run, applying after it' : ''}), QUEUE_QPS_LIMIT ${qpsLimit}, GROUP_COMMIT_CONCURRENCY ` +
        `${stack.env.GROUP_COMMIT_CONCURRENCY ?? 'default'}` +
        `${vacuumEvery > 0 ? `, VACUUM (ANALYZE) every ${vacuumEvery} s (${vacuums} runs)` : ''}; wrk on the same machine (${os.availableParallelism()} cores)`,
    );
    console.table(
      results.map((r) => ({
        run: r.run,
        metering: r.metering ? 'on' : 'off',
        'req/s': r.requestsPerSec,
        'p50 ms': r.p50,
        'p90 ms': r.p90,
        'p99 ms': r.p99,
        'CMQ errors': r.cmqErrors,
        'queue-api CPU %': r.cpu[r.metering ? 'on' : 'off'],
        'worker CPU %': r.cpu.worker,
        'Postgres backends CPU %': r.pgCpu,
        'machine busy %': r.busy,
        checkpoints: r.checkpoints,
        'outbox drained after, ms': r.drainMs,
      })),
    );
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const median = (xs) => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    };
    const off = results.filter((r) => !r.metering).map((r) => r.requestsPerSec);
    const on = results.filter((r) => r.metering).map((r) => r.requestsPerSec);
    const ratio = mean(on) / mean(off);
    const pairs = on.map((v, k) => (off[k] ? (v / off[k]).toFixed(3) : '-'));
    console.log(
      `mean req/s: off ${Math.round(mean(off))}, on ${Math.round(mean(on))}; on/off ${ratio.toFixed(3)} ` +
        `(${ratio >= 0.9 ? 'meets' : 'BELOW'} the target ≥ 0.90); per pair (each on run / the off run beside it): ${pairs.join(', ')}; median ${median(pairs.map(Number)).toFixed(3)}`,
    );

    // every code-0 reply of the metered runs is counted once
    const metered = results.filter((r) => r.metering);
    const okReplies = metered.reduce((a, r) => a + r.total - r.cmqErrors, 0);
    const replies = metered.reduce((a, r) => a + r.total, 0);
    const sent = metered.reduce((a, r) => a + r.sent, 0);
    const countedOk = counted.ok ?? 0;
    const countedAll = Object.values(counted).reduce((a, b) => a + b, 0);
    console.log(
      `metered runs: wrk counted ${replies} replies, ${okReplies} with code 0, and wrote ${sent} requests ` +
        `(${sent - replies} still in flight when wrk stopped); usage_minutely counts ${countedAll} requests for the account ` +
        `during the runs (${JSON.stringify(counted)}); usage batches applied in the whole run: ${batches.rows[0].batches}, ` +
        `${batches.rows[0].rows} outbox rows`,
    );
    const exact = countedOk >= okReplies && countedAll <= sent;
    console.log(
      exact
        ? `→ every code-0 reply counted (${countedOk} ok ≥ ${okReplies} replies), none twice (${countedAll} ≤ ${sent} written); ` +
            `the ${countedOk - okReplies} beyond wrk's replies were answered after wrk stopped counting`
        : '→ MISMATCH between the usage counted and the requests sent',
    );
    if (!exact) process.exitCode = 1;
  } finally {
    await stopVacuum?.();
    await db.end();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
