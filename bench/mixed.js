'use strict';
// A mixed workload on one queue at a fixed request rate (open loop), long enough to see whether
// the queue-api's memory stays flat. Of the requests: 40% SendMessage, 10% BatchSendMessage of
// 4 messages, 12.5% ReceiveMessage, 12.5% BatchReceiveMessage of 4, and 25% deletes: every
// successful receive is followed at once by the DeleteMessage / BatchDeleteMessage of what it
// got. Sends (80 messages per 100 requests) outrun receives (62.5), and the queue is prefilled,
// so it never runs dry. Every 10 s: achieved rate, p99, errors and the queue-api's RSS.
// Usage: npm run bench:mixed -- [--rate 5000] [--duration 300] [--max-in-flight 256] [--body 256] [--prefill N]
//          [--vacuum-every S (VACUUM ANALYZE the messages table every S s, for a Postgres without autovacuum)]
//          [--no-analyze (skip the ANALYZE of the messages table after the prefill)]
//          [--queue-qps-limit N (QUEUE_QPS_LIMIT of the queue-api; default 1,000,000: not the bottleneck)]
const os = require('node:os');
const { Client } = require('pg');
const {
  startStack,
  call,
  cmqClient,
  batchBodies,
  batchHandles,
  weightedCycle,
  prefill,
  numArg,
  Histogram,
  ms2,
  rssMb,
  cpuSeconds,
  hostCpu,
  hostBusyPercent,
  messagesTableStats,
  standInForAutovacuum,
  analyzeMessages,
  flagArg,
  BENCH_QUEUE_QPS_LIMIT,
} = require('./lib');

const QUEUE = 'bench';
const SEND_BATCH = 4;
const RECEIVE_BATCH = 4;
const INTERVAL_S = 10;

/**
 * The scheduled kinds, weighted out of the 75% of requests that are not deletes; the deletes
 * (25%) follow the receives one for one.
 */
const WEIGHTS = [
  ['SendMessage', 40],
  ['BatchSendMessage', 10],
  ['ReceiveMessage', 12.5],
  ['BatchReceiveMessage', 12.5],
];
const SCHEDULED_SHARE = 0.75;

/** 150 slots: 80 SendMessage, 20 BatchSendMessage, 25 ReceiveMessage, 25 BatchReceiveMessage, evenly interleaved */
const schedulePattern = () => weightedCycle(WEIGHTS, 2);

const newInterval = () => ({ replies: 0, errors: 0, capHits: 0, hist: new Histogram() });

async function main() {
  const rate = numArg('rate', 5000);
  const duration = numArg('duration', 300);
  const maxInFlight = numArg('max-in-flight', 256);
  const bodySize = numArg('body', 256);
  const prefillCount = numArg('prefill', Math.max(10_000, rate * 2));
  const vacuumEvery = numArg('vacuum-every', 0);
  const analyze = !flagArg('no-analyze');

  const qpsLimit = numArg('queue-qps-limit', BENCH_QUEUE_QPS_LIMIT);
  const stack = await startStack({ extraEnv: { QUEUE_QPS_LIMIT: String(qpsLimit) } });
  const db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const client = cmqClient({ port: stack.cmqPort, tenant: stack.tenant, maxSockets: maxInFlight });
  const pid = stack.queuePid;
  let stopVacuum;
  try {
    const created = await call(stack.cmqPort, stack.tenant, 'CreateQueue', { queueName: QUEUE, rewindSeconds: '0' });
    if (created.code !== 0) throw new Error(JSON.stringify(created));
    const queueRowId = (await db.query(`SELECT id FROM queues WHERE queue_id = $1`, [created.queueId])).rows[0].id;
    const body = 'x'.repeat(bodySize);
    console.log(`prefill: ${prefillCount} messages of ${bodySize} bytes…`);
    const fill = await prefill(client, QUEUE, prefillCount, body, 32);
    console.log(`prefill: ${fill.seconds.toFixed(1)} s, ${fill.perSecond} msg/s`);
    if (analyze) await analyzeMessages(db);
    stopVacuum = await standInForAutovacuum(db, stack.databaseUrl, vacuumEvery);
    const rowsCount = async () =>
      Number((await db.query(`SELECT count(*) AS n FROM messages WHERE queue_id = $1`, [queueRowId])).rows[0].n);
    const rowsBefore = await rowsCount();

    const pattern = schedulePattern();
    const sendParams = () => ({ queueName: QUEUE, msgBody: body, delaySeconds: '0' });
    const batchSendParams = batchBodies(new Array(SEND_BATCH).fill(body));
    const byAction = {};
    const errorsByCode = {};
    const totals = {
      replies: 0,
      sentMessages: 0,
      deletedMessages: 0,
      receivedMessages: 0,
      capHits: 0,
      // messages of sends and deletes answered by no CMQ reply (transport error): outcome unknown
      sendUnknown: 0,
      deleteUnknown: 0,
    };
    let interval = newInterval();
    let inFlight = 0;
    let drained;

    const record = (action, r) => {
      (byAction[action] ??= new Histogram()).record(r.ms);
      interval.hist.record(r.ms);
      interval.replies++;
      totals.replies++;
      if (r.reply.code !== 0) {
        interval.errors++;
        const k = `${action} ${r.reply.code}`;
        errorsByCode[k] = (errorsByCode[k] ?? 0) + 1;
      }
    };
    const issue = (action, params, then) => {
      inFlight++;
      client.request(action, params).then((r) => {
        inFlight--;
        record(action, r);
        then?.(r.reply);
        if (inFlight === 0 && drained) drained();
      });
    };
    const afterDelete = (count) => (reply) => {
      if (reply.code === 0) totals.deletedMessages += count;
      else if (reply.code === 6010) totals.deletedMessages += count - (reply.errorList?.length ?? 0);
      else if (typeof reply.code !== 'number') totals.deleteUnknown += count;
    };
    const afterSend = (count) => (reply) => {
      if (reply.code === 0) totals.sentMessages += count;
      else if (typeof reply.code !== 'number') totals.sendUnknown += count;
    };
    const dispatch = (kind) => {
      switch (kind) {
        case 'SendMessage':
          return issue(kind, sendParams(), afterSend(1));
        case 'BatchSendMessage':
          return issue(kind, { queueName: QUEUE, ...batchSendParams, delaySeconds: '0' }, afterSend(SEND_BATCH));
        case 'ReceiveMessage':
          return issue(kind, { queueName: QUEUE, pollingWaitSeconds: '0' }, (reply) => {
            if (reply.code !== 0) return;
            totals.receivedMessages++;
            issue('DeleteMessage', { queueName: QUEUE, receiptHandle: reply.receiptHandle }, afterDelete(1));
          });
        case 'BatchReceiveMessage':
          return issue(kind, { queueName: QUEUE, numOfMsg: String(RECEIVE_BATCH), pollingWaitSeconds: '0' }, (reply) => {
            if (reply.code !== 0) return;
            const handles = reply.msgInfoList.map((m) => m.receiptHandle);
            totals.receivedMessages += handles.length;
            issue('BatchDeleteMessage', { queueName: QUEUE, ...batchHandles(handles) }, afterDelete(handles.length));
          });
      }
    };

    // RSS and CPU samples; the first before any load
    const samples = [];
    const cpu0 = cpuSeconds(pid);
    const selfCpu0 = process.cpuUsage();
    samples.push({ t: 0, rss: rssMb(pid) });
    console.log(
      `\nmixed workload, target ${rate} requests/s for ${duration} s, at most ${maxInFlight} in flight` +
        `${vacuumEvery > 0 ? `, VACUUM (ANALYZE) every ${vacuumEvery} s` : ''}; ` +
        `queue-api pid ${pid}, RSS before the load ${samples[0].rss.toFixed(1)} MB`,
    );
    const rows = [];
    let statsDone = Promise.resolve();
    const t0 = performance.now();
    let lastT = t0;
    let lastCpu = cpu0;
    const host0 = hostCpu();
    let lastHost = host0;
    const closeInterval = () => {
      const now = performance.now();
      const seconds = (now - lastT) / 1000;
      const c = cpuSeconds(pid);
      const row = {
        't s': Math.round((now - t0) / 1000),
        'req/s': Math.round(interval.replies / seconds),
        'p99 ms': ms2(interval.hist.percentile(99)),
        errors: interval.errors,
        'cap hits': interval.capHits,
        'RSS MB': Math.round(rssMb(pid) * 10) / 10,
        'queue-api CPU %': Math.round(((c - lastCpu) / seconds) * 100),
        'machine busy %': hostBusyPercent(lastHost, (lastHost = hostCpu())),
      };
      samples.push({ t: (now - t0) / 1000, rss: row['RSS MB'] });
      rows.push(row);
      // dead rows in the messages table (Postgres's estimate): what receives have to skip
      statsDone = messagesTableStats(db).then((st) => {
        row['dead rows'] = st.dead;
        console.log(Object.entries(row).map(([k, v]) => `${k} ${v}`).join('  '));
      });
      lastT = now;
      lastCpu = c;
      interval = newInterval();
    };

    // open loop: slot k of the scheduled kinds is due at t0 + k / (rate × 75%)
    const slotRate = (rate * SCHEDULED_SHARE) / 1000; // per ms
    const endAt = t0 + duration * 1000;
    let issued = 0;
    let nextSample = t0 + INTERVAL_S * 1000;
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        // the interval that ends with the run is closed after the drain below, so it holds it
        if (now >= nextSample && now < endAt) {
          closeInterval();
          nextSample += INTERVAL_S * 1000;
        }
        const due = Math.floor((Math.min(now, endAt) - t0) * slotRate);
        while (issued < due) {
          const kind = pattern[issued % pattern.length];
          issued++;
          if (inFlight >= maxInFlight) {
            interval.capHits++;
            totals.capHits++;
            continue;
          }
          dispatch(kind);
        }
        if (now >= endAt) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    // let the requests in flight (and the deletes they bring) finish
    if (inFlight > 0) await new Promise((resolve) => (drained = resolve));
    const elapsed = (performance.now() - t0) / 1000;
    closeInterval();
    await statsDone;
    const queueCpu = cpuSeconds(pid) - cpu0;
    const self = process.cpuUsage(selfCpu0);
    const vacuums = stopVacuum ? await stopVacuum() : 0;
    stopVacuum = undefined;
    const rowsAfter = await rowsCount();
    const table = await messagesTableStats(db);

    console.log(
      `\nMixed workload, ${bodySize}-byte bodies, target ${rate} requests/s, ${duration} s` +
        `${vacuumEvery > 0 ? `, VACUUM (ANALYZE) messages every ${vacuumEvery} s` : ''}, QUEUE_QPS_LIMIT ${qpsLimit}, ` +
        `${analyze ? 'ANALYZE after the prefill' : 'no ANALYZE after the prefill'}, Node client on the same machine`,
    );
    console.table(rows);
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
    const all = Object.values(byAction).reduce((acc, h) => acc.merge(h), new Histogram());
    const errorTotal = Object.values(errorsByCode).reduce((a, b) => a + b, 0);
    console.log(
      `requests: ${totals.replies} answered in ${elapsed.toFixed(1)} s = ${Math.round(totals.replies / elapsed)} requests/s ` +
        `(target ${rate}); overall p50 ${ms2(all.percentile(50))} ms, p99 ${ms2(all.percentile(99))} ms`,
    );
    console.log(`slots skipped because ${maxInFlight} requests were in flight: ${totals.capHits}`);
    console.log(`errors: ${errorTotal}${errorTotal ? ' ' + JSON.stringify(errorsByCode) : ''} (must be 0)`);
    console.log(
      `CPU: queue-api ${Math.round((queueCpu / elapsed) * 100)}% of a core, this load generator ` +
        `${Math.round(((self.user + self.system) / 1e6 / elapsed) * 100)}%; the machine (${os.availableParallelism()} cores) ` +
        `${hostBusyPercent(host0, hostCpu())}% busy, all processes counted`,
    );

    const measured = samples.slice(1);
    const rssValues = measured.map((s) => s.rss);
    console.log(
      `queue-api RSS: before the load ${samples[0].rss.toFixed(1)} MB, first sample ${rssValues[0]} MB, ` +
        `last ${rssValues[rssValues.length - 1]} MB, max ${Math.max(...rssValues)} MB`,
    );
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const second = measured.filter((s) => s.t > 60 && s.t <= 120).map((s) => s.rss);
    const last = measured.filter((s) => s.t > elapsed - 60).map((s) => s.rss);
    if (duration >= 180 && second.length && last.length) {
      const growth = (mean(last) / mean(second) - 1) * 100;
      console.log(
        `flat-memory check: mean RSS ${mean(second).toFixed(1)} MB in the 2nd minute, ${mean(last).toFixed(1)} MB ` +
          `in the last: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)}% → ${growth <= 10 ? 'flat' : 'GROWING'} (limit +10%)`,
      );
    } else {
      console.log('flat-memory check: needs --duration 180 or more (2nd minute vs last minute)');
    }

    console.log(
      `messages table at the end: ~${table.live} live rows, ~${table.dead} dead, vacuumed ${table.vacuums} times ` +
        `(autovacuum ${table.autovacuum}; ${vacuums} by --vacuum-every)`,
    );
    // Every acknowledged send is a row and every acknowledged delete removed one (rewindSeconds 0)
    const expected = rowsBefore + totals.sentMessages - totals.deletedMessages;
    const ok = rowsAfter <= expected + totals.sendUnknown && rowsAfter >= expected - totals.deleteUnknown;
    console.log(
      `rows: ${rowsBefore} + ${totals.sentMessages} sent − ${totals.deletedMessages} deleted = ${expected}; ` +
        `in the table: ${rowsAfter} (received ${totals.receivedMessages}): ${ok ? 'consistent' : 'MISMATCH'}`,
    );
    if (errorTotal > 0 || !ok) process.exitCode = 1;
  } finally {
    await stopVacuum?.();
    client.close();
    await db.end();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
