'use strict';
// How soon usage reaches the balance: SendMessage at a steady rate (open loop, Node client with
// keep-alive connections, every request signed afresh) against a metering queue-api, with a
// worker applying the usage as in production.
//
// Two views:
// - per outbox row (one per group commit): the applied_at of the usage batch that applied it
//   minus the row's commit time. The rows are deleted when applied, so a bench-only trigger in
//   the bench database copies each row's id, created_at (clock_timestamp() of its insert, the
//   commit's last statement) and request count into a side table; usage_batches_applied says
//   which batch applied which rows (outbox_ids) and when (applied_at, just before its commit).
// - the balance as a client polls it: every 200 ms a second account sends one SendMessage, and
//   GET /v1/accounts/{id}/balance is polled until lastUsageAppliedAt changes; the sample is the
//   time from the reply to the first poll that shows it.
// Usage: npm run bench:usage-latency -- [--rate 5000] [--duration 30] [--warmup 5] [--max-in-flight 256]
//          [--body 256] [--sample-every 200] [--poll-every 5]
//          [--vacuum-every S (VACUUM ANALYZE of the tables the usage updates, every S s)]
//          [--queue-qps-limit N (QUEUE_QPS_LIMIT; default 1,000,000: not the bottleneck)]
const os = require('node:os');
const { Client } = require('pg');
const {
  startStack,
  call,
  cmqClient,
  numArg,
  Histogram,
  ms2,
  cpuSeconds,
  hostCpu,
  hostBusyPercent,
  standInForAutovacuum,
  waitOutboxEmpty,
  BENCH_QUEUE_QPS_LIMIT,
} = require('./lib');

const QUEUE = 'bench';
const WORKER_PORT = 13001;
const USAGE_TABLES = ['messages', 'usage_outbox', 'usage_minutely', 'usage_hourly', 'usage_monthly', 'balances'];
const INTERVAL_S = 5;

/** Bench-only SQL (not a migration): keeps each outbox row's id, commit time and request count. */
const SEEN_SQL = `
  CREATE UNLOGGED TABLE bench_outbox_seen (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, requests integer NOT NULL);
  CREATE FUNCTION bench_outbox_seen() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO bench_outbox_seen
      SELECT NEW.id, NEW.created_at, coalesce(sum((e->>6)::integer), 0) FROM json_array_elements(NEW.records) e;
    RETURN NULL;
  END $$;
  CREATE TRIGGER bench_outbox_seen AFTER INSERT ON usage_outbox FOR EACH ROW EXECUTE FUNCTION bench_outbox_seen();`;

async function balanceOf(billingPort, token, accountId) {
  const res = await fetch(`http://127.0.0.1:${billingPort}/v1/accounts/${accountId}/balance`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status !== 200) throw new Error(`balance: ${res.status} ${await res.text()}`);
  return res.json();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const rate = numArg('rate', 5000);
  const duration = numArg('duration', 30);
  const warmup = numArg('warmup', 5);
  const maxInFlight = numArg('max-in-flight', 256);
  const bodySize = numArg('body', 256);
  const sampleEvery = numArg('sample-every', 200);
  const pollEvery = numArg('poll-every', 5);
  const vacuumEvery = numArg('vacuum-every', 0);
  const qpsLimit = numArg('queue-qps-limit', BENCH_QUEUE_QPS_LIMIT);

  const stack = await startStack({
    extraEnv: { QUEUE_QPS_LIMIT: String(qpsLimit), METERING: 'true' },
    worker: { port: WORKER_PORT },
  });
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const load = cmqClient({ port: stack.cmqPort, tenant: stack.tenant, maxSockets: maxInFlight });
  const prober = await stack.newTenant('balance-prober');
  const probe = cmqClient({ port: stack.cmqPort, tenant: prober, maxSockets: 1 });
  let stopVacuum;
  try {
    for (const t of [stack.tenant, prober]) {
      const created = await call(stack.cmqPort, t, 'CreateQueue', { queueName: QUEUE });
      if (created.code !== 0) throw new Error(JSON.stringify(created));
    }
    await db.query(SEEN_SQL);
    stopVacuum = await standInForAutovacuum(db, stack.databaseUrl, vacuumEvery, USAGE_TABLES);
    const body = 'x'.repeat(bodySize);
    const params = { queueName: QUEUE, msgBody: body, delaySeconds: '0' };

    // ---- the load: open loop, request k due at t0 + k / rate; skipped when maxInFlight are out
    const hist = new Histogram();
    const errors = {};
    let inFlight = 0;
    let replies = 0;
    let okReplies = 0;
    let skipped = 0;
    let measuring = false;
    let drained;
    const perInterval = [];
    let intervalReplies = 0;
    const issue = () => {
      inFlight++;
      load.request('SendMessage', params).then((r) => {
        inFlight--;
        if (measuring) {
          replies++;
          intervalReplies++;
          hist.record(r.ms);
          if (r.reply.code === 0) okReplies++;
          else errors[r.reply.code] = (errors[r.reply.code] ?? 0) + 1;
        }
        if (inFlight === 0 && drained) drained();
      });
    };
    const pids = { queueApi: stack.queuePid, worker: stack.workerPid, billingApi: stack.billingPid };
    let cpu0;
    let host0;
    let measureStart;
    let measureEnd;
    let dbWindow = {};
    const total = warmup + duration;
    const t0 = performance.now();
    const endAt = t0 + total * 1000;
    const startMeasureAt = t0 + warmup * 1000;
    let issued = 0;
    let lastInterval = startMeasureAt;
    const loadDone = new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (!measuring && now >= startMeasureAt && now < endAt) {
          measuring = true;
          measureStart = now;
          cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
          host0 = hostCpu();
          db.query('SELECT clock_timestamp() AS t').then((r) => (dbWindow.from = r.rows[0].t));
        }
        if (measuring && now - lastInterval >= INTERVAL_S * 1000 && now < endAt) {
          perInterval.push(Math.round(intervalReplies / ((now - lastInterval) / 1000)));
          intervalReplies = 0;
          lastInterval = now;
        }
        const due = Math.floor(((Math.min(now, endAt) - t0) * rate) / 1000);
        while (issued < due) {
          issued++;
          if (inFlight >= maxInFlight) {
            if (measuring) skipped++;
            continue;
          }
          issue();
        }
        if (now >= endAt) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    }).then(async () => {
      measureEnd = performance.now();
      dbWindow.to = (await db.query('SELECT clock_timestamp() AS t')).rows[0].t;
      if (inFlight > 0) await new Promise((resolve) => (drained = resolve));
      measuring = false;
    });

    // ---- the balance view: one marked request of the prober every sampleEvery ms
    const samples = new Histogram();
    const sampleErrors = [];
    let probing = true;
    const prober$ = (async () => {
      await sleep(warmup * 1000);
      let last = (await balanceOf(stack.billingPort, stack.env.ADMIN_TOKEN, prober.accountId)).lastUsageAppliedAt;
      let next = performance.now();
      while (probing) {
        const { reply } = await probe.request('SendMessage', params);
        const replied = performance.now();
        if (reply.code !== 0) {
          sampleErrors.push(reply.code);
        } else {
          for (;;) {
            const b = await balanceOf(stack.billingPort, stack.env.ADMIN_TOKEN, prober.accountId);
            if (b.lastUsageAppliedAt !== last) {
              last = b.lastUsageAppliedAt;
              samples.record(performance.now() - replied);
              break;
            }
            if (performance.now() - replied > 30_000) {
              sampleErrors.push('not applied within 30 s');
              break;
            }
            await sleep(pollEvery);
          }
        }
        next += sampleEvery;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
        else next = performance.now();
      }
    })();

    console.log(
      `SendMessage at ${rate} requests/s for ${warmup} s of warm-up + ${duration} s measured, at most ${maxInFlight} in flight; ` +
        `balance probe every ${sampleEvery} ms, polled every ${pollEvery} ms`,
    );
    await loadDone;
    probing = false;
    await prober$;
    const elapsed = (measureEnd - measureStart) / 1000;
    const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, Math.round(((cpuSeconds(pid) - cpu0[k]) / elapsed) * 100)]));
    const busy = hostBusyPercent(host0, hostCpu());
    const drainMs = await waitOutboxEmpty(db);
    const vacuums = stopVacuum ? await stopVacuum() : 0;
    stopVacuum = undefined;

    // ---- per outbox row of the measured window: applied_at of its batch − its commit time
    const { rows: lat } = await db.query(
      `WITH r AS (
         SELECT s.requests, (extract(epoch FROM b.applied_at - s.created_at) * 1000)::float8 AS ms
           FROM usage_batches_applied b CROSS JOIN LATERAL unnest(b.outbox_ids) AS o(id)
           JOIN bench_outbox_seen s ON s.id = o.id
          WHERE s.created_at >= $1 AND s.created_at < $2)
       SELECT count(*)::int AS rows, sum(requests)::int AS requests,
              percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY ms) AS p, max(ms) AS max, min(ms) AS min
         FROM r`,
      [dbWindow.from, dbWindow.to],
    );
    // the same, each request weighted (a row holds the requests of one group commit)
    const { rows: latReq } = await db.query(
      `WITH r AS (
         SELECT s.requests, (extract(epoch FROM b.applied_at - s.created_at) * 1000)::float8 AS ms
           FROM usage_batches_applied b CROSS JOIN LATERAL unnest(b.outbox_ids) AS o(id)
           JOIN bench_outbox_seen s ON s.id = o.id
          WHERE s.created_at >= $1 AND s.created_at < $2),
       c AS (SELECT ms, sum(requests) OVER (ORDER BY ms) AS cum, sum(requests) OVER () AS total FROM r)
       SELECT (SELECT min(ms) FROM c WHERE cum >= total * 0.5) AS p50,
              (SELECT min(ms) FROM c WHERE cum >= total * 0.9) AS p90,
              (SELECT min(ms) FROM c WHERE cum >= total * 0.99) AS p99`,
      [dbWindow.from, dbWindow.to],
    );
    const { rows: unmatched } = await db.query(
      `SELECT count(*)::int AS n FROM bench_outbox_seen s WHERE s.created_at >= $1 AND s.created_at < $2
          AND NOT EXISTS (SELECT 1 FROM usage_batches_applied b WHERE s.id = ANY (b.outbox_ids))`,
      [dbWindow.from, dbWindow.to],
    );
    const { rows: batches } = await db.query(
      `SELECT count(*)::int AS batches, avg(cardinality(outbox_ids))::numeric(10, 1) AS rows_per_batch,
              max(cardinality(outbox_ids)) AS max_rows, avg(records)::numeric(10, 1) AS records_per_batch
         FROM usage_batches_applied WHERE outbox_ids IS NOT NULL AND applied_at >= $1`,
      [dbWindow.from],
    );
    const L = lat[0];
    const R = latReq[0];
    const b = batches[0];

    console.log(
      `\nUsage-to-balance latency, SendMessage at a target ${rate} requests/s, ${bodySize}-byte bodies, ${duration} s measured ` +
        `(after ${warmup} s of warm-up), one worker (USAGE_WORKER_CONCURRENCY ${stack.env.USAGE_WORKER_CONCURRENCY ?? 'default'}, ` +
        `USAGE_RELAY_INTERVAL_MS ${stack.env.USAGE_RELAY_INTERVAL_MS ?? 'default'})` +
        `${vacuumEvery > 0 ? `, VACUUM (ANALYZE) every ${vacuumEvery} s (${vacuums} runs)` : ''}; Node load generator on the same machine`,
    );
    const errorTotal = Object.values(errors).reduce((a, c) => a + c, 0);
    console.log(
      `load: ${replies} replies in ${elapsed.toFixed(1)} s = ${Math.round(replies / elapsed)} requests/s (target ${rate}); ` +
        `per ${INTERVAL_S} s: ${perInterval.join(', ')}; skipped at ${maxInFlight} in flight: ${skipped}; ` +
        `errors: ${errorTotal}${errorTotal ? ' ' + JSON.stringify(errors) : ''}; ` +
        `reply p50 ${ms2(hist.percentile(50))} ms, p99 ${ms2(hist.percentile(99))} ms`,
    );
    console.log(
      `CPU: queue-api ${cpu.queueApi}% of a core, worker ${cpu.worker}%, billing-api ${cpu.billingApi}%; machine ` +
        `(${os.availableParallelism()} cores) ${busy}% busy; outbox empty ${Math.round(drainMs)} ms after the load`,
    );
    console.log(
      `usage batches applied during the window: ${b.batches}, ${b.rows_per_batch} outbox rows (max ${b.max_rows}) and ` +
        `${b.records_per_batch} summed records each`,
    );
    console.table([
      {
        view: 'per outbox row: applied_at − commit',
        samples: L.rows,
        'p50 ms': ms2(L.p?.[0]),
        'p90 ms': ms2(L.p?.[1]),
        'p99 ms': ms2(L.p?.[2]),
        'max ms': ms2(L.max),
      },
      { view: '  the same, per request', samples: L.requests, 'p50 ms': ms2(R.p50), 'p90 ms': ms2(R.p90), 'p99 ms': ms2(R.p99), 'max ms': ms2(L.max) },
      {
        view: 'balance polled: reply → lastUsageAppliedAt',
        samples: samples.count,
        'p50 ms': ms2(samples.percentile(50)),
        'p90 ms': ms2(samples.percentile(90)),
        'p99 ms': ms2(samples.percentile(99)),
        'max ms': ms2(samples.max),
      },
    ]);
    console.log(
      `p99 per outbox row ${ms2(L.p?.[2])} ms: ${L.p?.[2] <= 1000 ? 'meets' : 'MISSES'} the target ≤ 1000 ms; ` +
        `rows of the window not applied by any batch: ${unmatched[0].n} (must be 0); probe errors: ${sampleErrors.length ? JSON.stringify(sampleErrors) : 'none'}`,
    );
    if (unmatched[0].n > 0 || errorTotal > 0 || sampleErrors.length) process.exitCode = 1;
  } finally {
    await stopVacuum?.();
    load.close();
    probe.close();
    await db.end();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
