'use strict';
// Ingest of usage from elsewhere: POST /v1/usage-events on the billing-api, batches of 1,000
// events, from several concurrent clients (closed loop: each posts its next batch once the
// previous one is answered). Every event has a client id of its own; the events spread over
// `--accounts` accounts, a few queues each and the message actions, as a fleet of producers
// would send them. Afterwards the stored usage is checked against the events accepted.
// Usage: npm run bench:usage-ingest -- [--clients 4] [--duration 25] [--warmup 3] [--batch 1000]
//          [--accounts 100] [--queues 3]
//          [--vacuum-every S (VACUUM ANALYZE of the tables the usage updates, every S s)]
//          [--cpu-prof (the billing-api writes a CPU profile into bench/profiles/ when it stops)]
// BENCH_BILLING_NODE_ARGS (environment): more node options for the billing-api, e.g. "-r ./probe.js".
const http = require('node:http');
const os = require('node:os');
const { mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');
const {
  startStack,
  numArg,
  flagArg,
  Histogram,
  ms2,
  cpuSeconds,
  postgresBackendsCpu,
  postgresCpuBetween,
  hostCpu,
  hostBusyPercent,
  standInForAutovacuum,
} = require('./lib');

const USAGE_TABLES = ['usage_event_ids', 'usage_hourly', 'usage_minutely', 'usage_monthly', 'balances'];

/** Actions with their share of events, the billable calls and messages of one, and its outcome. */
const ACTIONS = [
  { action: 'SendMessage', weight: 30, calls: () => 1, messages: () => 1, bytes: 'in' },
  { action: 'BatchSendMessage', weight: 10, calls: () => 1 + rnd(16), messages: (c) => c, bytes: 'in' },
  { action: 'ReceiveMessage', weight: 25, calls: () => 1, messages: () => 1, bytes: 'out', empty: 0.1 },
  { action: 'BatchReceiveMessage', weight: 10, calls: () => 1 + rnd(16), messages: (c) => c, bytes: 'out', empty: 0.1 },
  { action: 'DeleteMessage', weight: 20, calls: () => 1, messages: () => 1 },
  { action: 'PushDelivery', weight: 5, calls: () => 1, messages: () => 1, bytes: 'out' },
];
const TOTAL_WEIGHT = ACTIONS.reduce((a, x) => a + x.weight, 0);
const rnd = (n) => Math.floor(Math.random() * n);
function pickAction() {
  let w = Math.random() * TOTAL_WEIGHT;
  for (const a of ACTIONS) if ((w -= a.weight) < 0) return a;
  return ACTIONS[0];
}

/** An event without its id (the id goes first: see {@link batchBody}). */
function makeEvent(accounts, queues) {
  const a = pickAction();
  const empty = a.empty && Math.random() < a.empty;
  const billableCalls = a.calls();
  const messages = empty ? 0 : a.messages(billableCalls);
  const bytes = messages * (64 + rnd(2048));
  const e = {
    accountId: accounts[rnd(accounts.length)],
    region: 'gz',
    resource: `queue-${rnd(queues)}`,
    action: a.action,
    outcome: empty ? 'no_message' : 'ok',
    billableCalls,
    messages,
  };
  if (a.bytes === 'in') e.bytesIn = bytes;
  if (a.bytes === 'out') e.bytesOut = bytes;
  return e;
}

async function main() {
  const clients = numArg('clients', 4);
  const duration = numArg('duration', 25);
  const warmup = numArg('warmup', 3);
  const batch = numArg('batch', 1000);
  const accountCount = numArg('accounts', 100);
  const queues = numArg('queues', 3);
  const vacuumEvery = numArg('vacuum-every', 0);
  const profile = flagArg('cpu-prof');
  const profileDir = join(__dirname, 'profiles');
  if (profile) mkdirSync(profileDir, { recursive: true });

  const stack = await startStack({
    billingNodeArgs: [...(profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...(process.env.BENCH_BILLING_NODE_ARGS ? process.env.BENCH_BILLING_NODE_ARGS.split(' ') : [])],
  });
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let stopVacuum;
  try {
    const accounts = [];
    for (let i = 0; i < accountCount; i++) accounts.push((await stack.admin('/v1/accounts', { name: `ingest-${i}` })).id);
    stopVacuum = await standInForAutovacuum(db, stack.databaseUrl, vacuumEvery, USAGE_TABLES);
    const runId = Date.now().toString(36);
    let seq = 0;
    // The events are made before the run, as JSON without their ids, in a pool of batches; each
    // batch posted is one of them with fresh ids put in front, so the client spends little of
    // the two cores on making bodies.
    const POOL = 64;
    const pool = Array.from({ length: POOL }, () =>
      Array.from({ length: batch }, () => JSON.stringify(makeEvent(accounts, queues)).slice(1)),
    );
    const batchBody = (prefix, n) => {
      const parts = pool[n % POOL];
      let body = '{"events":[';
      for (let i = 0; i < parts.length; i++) body += `${i ? ',' : ''}{"id":"${prefix}${i}",${parts[i]}`;
      return body + ']}';
    };
    const post = (body) =>
      new Promise((resolve) => {
        const t0 = performance.now();
        const req = http.request(
          {
            agent,
            host: '127.0.0.1',
            port: stack.billingPort,
            method: 'POST',
            path: '/v1/usage-events',
            headers: {
              authorization: `Bearer ${stack.env.ADMIN_TOKEN}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            },
          },
          (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString();
              let reply;
              try {
                reply = JSON.parse(text);
              } catch {
                reply = { text };
              }
              resolve({ status: res.statusCode, reply, ms: performance.now() - t0, bytes: body.length });
            });
          },
        );
        req.on('error', (err) => resolve({ status: 0, reply: { error: err.message }, ms: performance.now() - t0 }));
        req.end(body);
      });

    const hist = new Histogram();
    const stats = { batches: 0, accepted: 0, duplicates: 0, errors: {}, bodyBytes: 0 };
    const totals = { accepted: 0, sentEvents: 0 };
    let measuring = false;
    let stopAt = Infinity;
    const client = async (k) => {
      while (performance.now() < stopAt) {
        const n = seq++;
        const body = batchBody(`${runId}-${n}-`, n + k);
        totals.sentEvents += batch;
        const r = await post(body);
        if (r.status === 200) totals.accepted += r.reply.accepted;
        if (!measuring) continue;
        hist.record(r.ms);
        stats.batches++;
        stats.bodyBytes += r.bytes ?? 0;
        if (r.status === 200) {
          stats.accepted += r.reply.accepted;
          stats.duplicates += r.reply.duplicates;
        } else {
          const key = `${r.status} ${JSON.stringify(r.reply).slice(0, 200)}`;
          stats.errors[key] = (stats.errors[key] ?? 0) + 1;
        }
      }
    };
    console.log(
      `POST /v1/usage-events: ${clients} clients, batches of ${batch} events over ${accountCount} accounts × ${queues} queues × ` +
        `${ACTIONS.length} actions; ${warmup} s of warm-up, then ${duration} s measured`,
    );
    stopAt = performance.now() + (warmup + duration) * 1000;
    const running = Array.from({ length: clients }, (_, k) => client(k));
    await new Promise((r) => setTimeout(r, warmup * 1000));
    const pg0 = await postgresBackendsCpu(db);
    const billing0 = cpuSeconds(stack.billingPid);
    const self0 = process.cpuUsage();
    const host0 = hostCpu();
    const t0 = performance.now();
    measuring = true;
    // measured: the batches answered from here until the end (each client finishes its last)
    await Promise.all(running);
    const elapsed = (performance.now() - t0) / 1000;
    const billingCpu = cpuSeconds(stack.billingPid) - billing0;
    const self = process.cpuUsage(self0);
    const pgCpu = postgresCpuBetween(pg0, await postgresBackendsCpu(db));
    const busy = hostBusyPercent(host0, hostCpu());
    const vacuums = stopVacuum ? await stopVacuum() : 0;
    stopVacuum = undefined;

    const { rows } = await db.query(
      `SELECT (SELECT sum(calls)::bigint FROM usage_hourly) AS calls, (SELECT count(*)::bigint FROM usage_event_ids) AS ids,
              (SELECT count(*)::bigint FROM ledger_entries WHERE kind = 'usage_charge') AS charges,
              (SELECT count(*)::bigint FROM usage_hourly) AS hourly_rows`,
    );
    const stored = rows[0];
    const errorTotal = Object.values(stats.errors).reduce((a, b) => a + b, 0);
    const eventsPerSec = Math.round(stats.accepted / elapsed);

    console.log(
      `\nUsage events ingest: ${clients} concurrent clients, ${batch}-event batches, ${accountCount} accounts, ` +
        `${elapsed.toFixed(1)} s measured${vacuumEvery > 0 ? `, VACUUM (ANALYZE) every ${vacuumEvery} s (${vacuums} runs)` : ''}; ` +
        `client on the same machine`,
    );
    console.table([
      {
        batches: stats.batches,
        'events accepted': stats.accepted,
        'events/s': eventsPerSec,
        'batch p50 ms': ms2(hist.percentile(50)),
        'batch p90 ms': ms2(hist.percentile(90)),
        'batch p99 ms': ms2(hist.percentile(99)),
        'batch max ms': ms2(hist.max),
        duplicates: stats.duplicates,
        errors: errorTotal,
      },
    ]);
    if (errorTotal) console.log('errors:', stats.errors);
    console.log(
      `body ${Math.round(stats.bodyBytes / Math.max(1, stats.batches) / 1024)} KiB a batch; CPU: billing-api ` +
        `${Math.round((billingCpu / elapsed) * 100)}% of a core, Postgres (this database's backends) ${Math.round((pgCpu / elapsed) * 100)}%, this client ` +
        `${Math.round(((self.user + self.system) / 1e6 / elapsed) * 100)}%, ` +
        `machine (${os.availableParallelism()} cores) ${busy}% busy`,
    );
    console.log(`target ≥ 20,000 events/s (aim 50,000): ${eventsPerSec >= 20_000 ? 'met' : 'NOT met'}`);
    const consistent = Number(stored.calls) === totals.accepted && Number(stored.ids) === totals.accepted;
    console.log(
      `stored: ${stored.calls} calls in usage_hourly (${stored.hourly_rows} rows), ${stored.ids} client ids, ${stored.charges} usage_charge ` +
        `entries; events accepted in the whole run (warm-up included): ${totals.accepted} → ${consistent ? 'consistent' : 'MISMATCH'}`,
    );
    if (!consistent || errorTotal > 0 || stats.duplicates > 0) process.exitCode = 1;
  } finally {
    await stopVacuum?.();
    agent.destroy();
    await db.end();
    await stack.stop();
  }
  if (profile) console.log(`CPU profile of the billing-api in ${profileDir}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
