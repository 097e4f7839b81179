'use strict';
// Consume one queue end to end: receive, then delete what was received, by closed-loop workers
// (receipt handles are known only at run time, so the load is a Node client, not wrk).
// Two phases on one prefilled queue: batch (BatchReceiveMessage of 16 + BatchDeleteMessage) and
// single (ReceiveMessage + DeleteMessage). The database is checked afterwards: the rows gone
// from the queue are exactly the messages whose deletes were acknowledged.
// Usage: npm run bench:receive -- [--duration 20] [--concurrency 32] [--body 256] [--warmup 3] [--modes batch,single]
//          [--messages N (queue size before warm-up + batch)] [--single-messages N (before single)]
//          [--vacuum-every S (VACUUM ANALYZE the messages table every S s, for a Postgres without autovacuum)]
//          [--no-analyze (skip the ANALYZE of the messages table after the prefill)]
//          [--queue-qps-limit N (QUEUE_QPS_LIMIT of the queue-api; default 1,000,000: not the bottleneck)]
const { Client } = require('pg');
const {
  startStack,
  call,
  cmqClient,
  batchHandles,
  prefill,
  numArg,
  Histogram,
  ms2,
  messagesTableStats,
  standInForAutovacuum,
  analyzeMessages,
  flagArg,
  BENCH_QUEUE_QPS_LIMIT,
  cpuSeconds,
  hostCpu,
  hostBusyPercent,
} = require('./lib');

const QUEUE = 'bench';
const TARGETS = { batch: 5000, single: 2000 };

const MODES = {
  batch: {
    receive: ['BatchReceiveMessage', { queueName: QUEUE, numOfMsg: '16', pollingWaitSeconds: '0' }],
    handles: (reply) => reply.msgInfoList.map((m) => m.receiptHandle),
    delete: (handles) => ['BatchDeleteMessage', { queueName: QUEUE, ...batchHandles(handles) }],
  },
  single: {
    receive: ['ReceiveMessage', { queueName: QUEUE, pollingWaitSeconds: '0' }],
    handles: (reply) => [reply.receiptHandle],
    delete: (handles) => ['DeleteMessage', { queueName: QUEUE, receiptHandle: handles[0] }],
  },
};

/**
 * `concurrency` workers, each looping receive → delete until `seconds` have passed (a worker
 * finishes the iteration it is in, so nothing received is left undeleted). A message counts as
 * processed once its delete was answered with code 0. A 7000 (no message) means the queue ran
 * dry: the phase stops there.
 */
async function runPhase(client, modeName, seconds, concurrency, queuePid) {
  const mode = MODES[modeName];
  const [recvAction, recvParams] = mode.receive;
  const s = {
    mode: modeName,
    processed: 0,
    received: 0,
    deleted: 0, // acknowledged deletes, including the successful part of a 6010
    deleteUnknown: 0, // handles whose delete got no CMQ reply (transport error): outcome unknown
    perSecond: new Array(Math.ceil(seconds)).fill(0),
    recvHist: new Histogram(),
    delHist: new Histogram(),
    recvAction,
    delAction: mode.delete(['0-0'])[0],
    errors: {},
    dryAt: undefined,
  };
  const err = (action, code) => {
    const k = `${action} ${code}`;
    s.errors[k] = (s.errors[k] ?? 0) + 1;
  };
  const cpu0 = { queue: cpuSeconds(queuePid), self: process.cpuUsage(), host: hostCpu() };
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end && s.dryAt === undefined) {
      const r = await client.request(recvAction, recvParams);
      s.recvHist.record(r.ms);
      if (r.reply.code !== 0) {
        err(recvAction, r.reply.code);
        if (r.reply.code === 7000 && s.dryAt === undefined) s.dryAt = (performance.now() - t0) / 1000;
        continue;
      }
      const handles = mode.handles(r.reply);
      s.received += handles.length;
      const [delAction, delParams] = mode.delete(handles);
      const d = await client.request(delAction, delParams);
      s.delHist.record(d.ms);
      const code = d.reply.code;
      if (code === 0) {
        s.deleted += handles.length;
        s.processed += handles.length;
        const sec = Math.floor((performance.now() - t0) / 1000);
        if (sec < s.perSecond.length) s.perSecond[sec] += handles.length;
      } else {
        err(delAction, code);
        if (code === 6010) s.deleted += handles.length - (d.reply.errorList?.length ?? 0);
        else if (typeof code !== 'number') s.deleteUnknown += handles.length;
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
  s.msgPerSec = Math.round(s.processed / s.seconds);
  s.requestsPerSec = Math.round((s.recvHist.count + s.delHist.count) / s.seconds);
  s.errorCount = Object.values(s.errors).reduce((a, b) => a + b, 0);
  return s;
}

const roundUp16 = (n) => Math.ceil(n / 16) * 16;

async function queueRows(db, queueId) {
  const { rows } = await db.query(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE dequeue_count > 0 AND visible_ms > cmq_now_ms())::int AS in_flight
       FROM messages WHERE queue_id = $1`,
    [queueId],
  );
  return rows[0];
}

async function main() {
  const duration = numArg('duration', 20);
  const concurrency = numArg('concurrency', 32);
  const bodySize = numArg('body', 256);
  const warmup = numArg('warmup', 3);
  const vacuumEvery = numArg('vacuum-every', 0);
  const analyze = !flagArg('no-analyze');
  const modeArg = process.argv.indexOf('--modes');
  const modes = modeArg > 0 ? process.argv[modeArg + 1].split(',') : ['batch', 'single'];
  for (const m of modes) if (!MODES[m]) throw new Error(`--modes: unknown mode ${m} (batch, single)`);
  // Each phase starts on a queue topped up to this many messages: about 1.5 times what the
  // phase consumed at the best rates seen on the 2-core machine (batch ~20,000 msg/s, single
  // ~4,000 msg/s).
  const batchMessages = numArg('messages', roundUp16((duration + warmup) * 30_000));
  const singleMessages = numArg('single-messages', roundUp16(duration * 6_000));

  const qpsLimit = numArg('queue-qps-limit', BENCH_QUEUE_QPS_LIMIT);
  const stack = await startStack({ extraEnv: { QUEUE_QPS_LIMIT: String(qpsLimit) } });
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const client = cmqClient({ port: stack.cmqPort, tenant: stack.tenant, maxSockets: concurrency });
  let stopVacuum;
  try {
    const created = await call(stack.cmqPort, stack.tenant, 'CreateQueue', { queueName: QUEUE, rewindSeconds: '0' });
    if (created.code !== 0) throw new Error(JSON.stringify(created));
    const q = (await db.query(`SELECT id, rewind_seconds FROM queues WHERE queue_id = $1`, [created.queueId])).rows[0];
    // with rewind, deleted messages would stay as rows for a while: the row check below assumes none
    if (q.rewind_seconds !== 0) throw new Error(`queue ${QUEUE} has rewindSeconds ${q.rewind_seconds}, expected 0`);
    const body = 'x'.repeat(bodySize);
    const topUp = async (target) => {
      const have = (await queueRows(db, q.id)).total;
      const add = target - have;
      if (add <= 0) return;
      console.log(`prefill: ${add} messages of ${bodySize} bytes (BatchSendMessage, 16 per call, 32 in parallel)…`);
      const fill = await prefill(client, QUEUE, add, body, 32);
      const now = (await queueRows(db, q.id)).total;
      console.log(`prefill: ${fill.seconds.toFixed(1)} s, ${fill.perSecond} msg/s; ${now} rows in the queue`);
      if (now !== target) throw new Error(`expected ${target} rows after prefill, found ${now}`);
      if (analyze) await analyzeMessages(db);
    };

    stopVacuum = await standInForAutovacuum(db, stack.databaseUrl, vacuumEvery);
    const phases = [];
    for (const [modeName, seconds, measured, fillTo] of [
      ['batch', warmup, false, batchMessages],
      ['batch', duration, true, warmup > 0 ? 0 : batchMessages], // after a warm-up, what it left
      ['single', duration, true, singleMessages],
    ]) {
      if (seconds <= 0 || !modes.includes(modeName)) continue;
      await topUp(fillTo);
      const before = await queueRows(db, q.id);
      console.log(`${measured ? '' : 'warm-up: '}${modeName} mode, ${concurrency} workers, ${seconds} s…`);
      const s = await runPhase(client, modeName, seconds, concurrency, stack.queuePid);
      const after = await queueRows(db, q.id);
      s.rowsBefore = before.total;
      s.rowsAfter = after.total;
      s.inFlightAfter = after.in_flight;
      s.table = await messagesTableStats(db);
      if (measured) phases.push(s);
      else console.log(`warm-up: ${s.msgPerSec} msg/s, errors ${s.errorCount}`);
      checkRows(s);
      if (s.dryAt !== undefined) {
        console.log(
          `!! ${modeName}: the queue ran dry after ${s.dryAt.toFixed(1)} s (${after.total} rows left): ` +
            `rerun with a larger --${modeName === 'batch' ? 'messages' : 'single-messages'}`,
        );
      }
    }

    console.log(
      `\nReceive + delete, one queue, ${bodySize}-byte bodies, ${concurrency} closed-loop workers, ${duration} s per phase` +
        `${vacuumEvery > 0 ? `, VACUUM (ANALYZE) messages every ${vacuumEvery} s` : ''}, QUEUE_QPS_LIMIT ${qpsLimit}, ` +
        `${analyze ? 'ANALYZE after the prefill' : 'no ANALYZE after the prefill'}, Node client on the same machine`,
    );
    console.table(
      phases.map((s) => ({
        mode: s.mode,
        'msg/s': s.msgPerSec,
        target: `≥ ${TARGETS[s.mode]}`,
        met: s.msgPerSec >= TARGETS[s.mode] && s.errorCount === 0 ? 'yes' : 'NO',
        'requests/s': s.requestsPerSec,
        processed: s.processed,
        errors: s.errorCount,
        'min msg/s in a second': Math.min(...s.perSecond),
        'max msg/s in a second': Math.max(...s.perSecond),
        'queue-api CPU %': s.cpu.queueApi,
        'generator CPU %': s.cpu.generator,
        'machine busy %': s.cpu.hostBusy,
      })),
    );
    console.table(
      phases.flatMap((s) =>
        [
          [s.recvAction, s.recvHist],
          [s.delAction, s.delHist],
        ].map(([action, h]) => ({
          action,
          requests: h.count,
          'p50 ms': ms2(h.percentile(50)),
          'p90 ms': ms2(h.percentile(90)),
          'p99 ms': ms2(h.percentile(99)),
          'max ms': ms2(h.max),
        })),
      ),
    );
    for (const s of phases) {
      console.log(`${s.mode}: messages per second, second by second: ${s.perSecond.join(' ')}`);
      if (s.errorCount > 0) console.log(`${s.mode}: errors by action and code: ${JSON.stringify(s.errors)}`);
    }
    for (const s of phases) {
      console.log(
        `${s.mode}: deletes acknowledged ${s.deleted}; message rows ${s.rowsBefore} → ${s.rowsAfter} (drop ${s.rowsBefore - s.rowsAfter}); ` +
          `received ${s.received}; left in flight ${s.inFlightAfter}: ${s.rowsOk ? 'consistent' : 'MISMATCH'}`,
      );
      console.log(
        `${s.mode}: messages table after the phase: ~${s.table.live} live rows, ~${s.table.dead} dead, ` +
          `vacuumed ${s.table.vacuums} times so far (autovacuum ${s.table.autovacuum})`,
      );
    }
    const allOk = phases.every((s) => s.rowsOk);
    if (!allOk) process.exitCode = 1;
  } finally {
    await stopVacuum?.();
    client.close();
    await db.end();
    await stack.stop();
  }
}

/**
 * Nothing is sent during a phase, so the rows that went are the deletes: exactly the acknowledged
 * ones (none deleted that was not acknowledged, none counted twice). Handles whose delete got no
 * reply at all make the count uncertain by up to their number.
 */
function checkRows(s) {
  const drop = s.rowsBefore - s.rowsAfter;
  s.rowsOk = s.deleteUnknown === 0 ? drop === s.deleted : drop >= s.deleted && drop <= s.deleted + s.deleteUnknown;
  if (!s.rowsOk) {
    console.log(`!! ${s.mode}: ${s.deleted} deletes acknowledged but the queue lost ${drop} rows (unknown outcome: ${s.deleteUnknown})`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
