'use strict';
// PublishMessage to one topic (tag filtering, filterType 1) with 5 queue subscriptions (protocol
// queue, each to its own queue, notifyContentFormat SIMPLIFIED): every publish is stored as a copy
// in each of the 5 queues in the group commit that answers it. Closed-loop workers (Node client,
// keep-alive connections, every request signed afresh) after a warm-up; the database is checked
// afterwards: each queue holds exactly one message per acknowledged publish (warm-up included).
// Target: ≥ 2,000 publishes/s (10,000 queue deliveries/s) with p99 ≤ 50 ms.
// Usage: npm run bench:topic-publish -- [--duration 30] [--concurrency 32] [--body 1024] [--warmup 5]
//          [--subscriptions 5]
//          [--no-metering (METERING=false on the queue-api; default METERING=true, as in production)]
//          [--group-commit-concurrency N (GROUP_COMMIT_CONCURRENCY; default: the app's)]
//          [--topic-qps-limit N (TOPIC_QPS_LIMIT of the queue-api; default 1,000,000: not the bottleneck)]
//          [--queue-qps-limit N (QUEUE_QPS_LIMIT of the queue-api; default 1,000,000: not the bottleneck)]
const { Client } = require('pg');
const {
  startStack,
  call,
  cmqClient,
  numArg,
  flagArg,
  Histogram,
  ms2,
  cpuSeconds,
  hostCpu,
  hostBusyPercent,
  BENCH_QUEUE_QPS_LIMIT,
} = require('./lib');

const TOPIC = 'bench-topic';
const TARGET = { publishesPerSec: 2000, p99Ms: 50 };
/** TOPIC_QPS_LIMIT for the run: far above what one topic gets here, so the cap is not what is measured */
const BENCH_TOPIC_QPS_LIMIT = 1_000_000;

/**
 * `concurrency` workers, each publishing one message after another until `seconds` have passed
 * (a worker finishes the request it is in). A publish counts once it was answered with code 0;
 * one with no CMQ reply at all (transport error, timeout, HTTP status) may or may not have been
 * stored: `unknown`.
 */
async function runPhase(client, params, seconds, concurrency, queuePid) {
  const s = {
    acked: 0,
    unknown: 0,
    perSecond: new Array(Math.ceil(seconds)).fill(0),
    hist: new Histogram(),
    errors: {},
  };
  const cpu0 = { queue: cpuSeconds(queuePid), self: process.cpuUsage(), host: hostCpu() };
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const r = await client.request('PublishMessage', params);
      s.hist.record(r.ms);
      const code = r.reply.code;
      if (code === 0) {
        s.acked++;
        const sec = Math.floor((performance.now() - t0) / 1000);
        if (sec < s.perSecond.length) s.perSecond[sec]++;
      } else {
        const k = code === undefined ? JSON.stringify(r.reply) : String(code);
        s.errors[k] = (s.errors[k] ?? 0) + 1;
        if (typeof code !== 'number') s.unknown++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  s.seconds = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(cpu0.self);
  s.cpu = {
    queueApi: Math.round(((cpuSeconds(queuePid) - cpu0.queue) / s.seconds) * 100),
    generator: Math.round(((self.user + self.system) / 1e6 / s.seconds) * 100),
    hostBusy: hostBusyPercent(cpu0.host, hostCpu()),
  };
  s.publishesPerSec = Math.round(s.acked / s.seconds);
  s.errorCount = Object.values(s.errors).reduce((a, b) => a + b, 0);
  return s;
}

/** Message rows per queue of the account (the queries the check runs), as name → count. */
async function rowsPerQueue(db, accountId) {
  const { rows } = await db.query(
    `SELECT q.name, count(m.*)::int AS n FROM queues q LEFT JOIN messages m ON m.queue_id = q.id
      WHERE q.account_id = $1 GROUP BY q.name ORDER BY q.name`,
    [accountId],
  );
  return new Map(rows.map((r) => [r.name, r.n]));
}

const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);

async function main() {
  const duration = numArg('duration', 30);
  const concurrency = numArg('concurrency', 32);
  const bodySize = numArg('body', 1024);
  const warmup = numArg('warmup', 5);
  const subscriptions = numArg('subscriptions', 5);
  const metering = !flagArg('no-metering');
  const topicQpsLimit = numArg('topic-qps-limit', BENCH_TOPIC_QPS_LIMIT);
  const qpsLimit = numArg('queue-qps-limit', BENCH_QUEUE_QPS_LIMIT);
  const extraEnv = {
    QUEUE_QPS_LIMIT: String(qpsLimit),
    TOPIC_QPS_LIMIT: String(topicQpsLimit),
    METERING: metering ? 'true' : 'false',
  };
  const commits = numArg('group-commit-concurrency', 0);
  if (commits > 0) extraEnv.GROUP_COMMIT_CONCURRENCY = String(commits);

  const stack = await startStack({ extraEnv });
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const client = cmqClient({ port: stack.cmqPort, tenant: stack.tenant, maxSockets: concurrency });
  try {
    const must = async (action, params) => {
      const r = await call(stack.cmqPort, stack.tenant, action, params);
      if (r.code !== 0) throw new Error(`${action} ${JSON.stringify(params)}: ${JSON.stringify(r)}`);
      return r;
    };
    const queues = Array.from({ length: subscriptions }, (_, i) => `bench-q${i + 1}`);
    await must('CreateTopic', { topicName: TOPIC });
    for (const [i, queueName] of queues.entries()) {
      await must('CreateQueue', { queueName });
      await must('Subscribe', {
        topicName: TOPIC,
        subscriptionName: `bench-sub${i + 1}`,
        protocol: 'queue',
        endpoint: queueName,
        notifyContentFormat: 'SIMPLIFIED',
      });
    }
    const params = { topicName: TOPIC, msgBody: 'x'.repeat(bodySize) };

    let ackedTotal = 0;
    let unknownTotal = 0;
    if (warmup > 0) {
      console.log(`warm-up: PublishMessage, ${concurrency} workers, ${warmup} s…`);
      const w = await runPhase(client, params, warmup, concurrency, stack.queuePid);
      ackedTotal += w.acked;
      unknownTotal += w.unknown;
      console.log(`warm-up: ${w.publishesPerSec} publishes/s, errors ${w.errorCount}${w.errorCount ? ` ${JSON.stringify(w.errors)}` : ''}`);
    }
    const before = await rowsPerQueue(db, stack.tenant.accountId);
    console.log(`PublishMessage, ${concurrency} workers, ${duration} s…`);
    const s = await runPhase(client, params, duration, concurrency, stack.queuePid);
    ackedTotal += s.acked;
    unknownTotal += s.unknown;
    const after = await rowsPerQueue(db, stack.tenant.accountId);
    const deliveriesPerSec = Math.round((sum(after) - sum(before)) / s.seconds);
    const p99 = s.hist.percentile(99);

    console.log(
      `\nPublishMessage to one topic with ${subscriptions} queue subscriptions (SIMPLIFIED), ${bodySize}-byte bodies, ` +
        `${concurrency} closed-loop workers, ${duration} s after a ${warmup} s warm-up, METERING ${metering ? 'on' : 'off'}, ` +
        `TOPIC_QPS_LIMIT ${topicQpsLimit}, QUEUE_QPS_LIMIT ${qpsLimit}, Node client on the same machine`,
    );
    console.table([
      {
        'publishes/s': s.publishesPerSec,
        'deliveries/s': deliveriesPerSec,
        target: `≥ ${TARGET.publishesPerSec}/s, p99 ≤ ${TARGET.p99Ms} ms`,
        met: s.publishesPerSec >= TARGET.publishesPerSec && p99 <= TARGET.p99Ms && s.errorCount === 0 ? 'yes' : 'NO',
        publishes: s.acked,
        errors: s.errorCount,
        'p50 ms': ms2(s.hist.percentile(50)),
        'p95 ms': ms2(s.hist.percentile(95)),
        'p99 ms': ms2(p99),
        'max ms': ms2(s.hist.max),
        'queue-api CPU %': s.cpu.queueApi,
        'generator CPU %': s.cpu.generator,
        'machine busy %': s.cpu.hostBusy,
      },
    ]);
    console.log(`publishes per second, second by second: ${s.perSecond.join(' ')}`);
    if (s.errorCount > 0) console.log(`errors by code: ${JSON.stringify(s.errors)}`);

    // every acknowledged publish (warm-up included) is one message in each queue, and nothing else is
    const final = await rowsPerQueue(db, stack.tenant.accountId);
    let ok = final.size === queues.length;
    for (const name of queues) {
      const n = final.get(name) ?? 0;
      const good = n === ackedTotal;
      ok &&= good;
      console.log(`queue ${name}: ${n} message rows, ${ackedTotal} publishes acknowledged: ${good ? 'consistent' : 'MISMATCH'}`);
    }
    if (final.size !== queues.length) console.log(`!! the account has ${final.size} queues, expected ${queues.length}: ${[...final.keys()].join(', ')}`);
    if (unknownTotal > 0) console.log(`!! ${unknownTotal} publishes got no CMQ reply (stored or not: unknown)`);
    if (!ok) process.exitCode = 1;
  } finally {
    client.close();
    await db.end();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
