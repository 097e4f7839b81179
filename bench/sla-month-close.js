'use strict';
// The SLA month close (sla.md §4–§5) over a fleet: `--accounts` accounts with queues in three
// regions, a month of probe results (4 a minute per region), `--incidents` incidents (runs of
// failed probes in a region, and server-error bursts of single accounts in usage_minutely),
// maintenance windows and attributions, usage minute data, and each account's month of usage
// charges in the ledger. The data is made with set-based SQL on a database of its own
// (`cmq_bench_sla`, dropped and re-created), then `MonthClose.close(month)` of the built code
// runs in this process, timed by phase, with its RSS sampled; then a second close, which must
// change nothing, and the ledger's reconciliation, which must find nothing.
// Usage: npm run bench:sla-close -- [--accounts 100000] [--incidents 1000] [--bursts 300]
//          [--usage-minutes 120 (minutes of traffic per account)] [--month 2026-10]
//          [--gaps 4 (probe coverage gaps)] [--keep (leave the database behind)]
//          [--reuse (a database kept by --keep with the same figures: undo its close, skip the generation)]
//          [--verbose (per-page timings)] [--statements (time of each statement the close sends, by its first words)]
// Exit status 1 when the close fails, the second close changes something, or the ledger does
// not reconcile.
const os = require('node:os');
const { readFileSync, writeFileSync } = require('node:fs');
const { Client, Pool } = require('pg');
const { numArg, flagArg, resetDatabase, postgresBackendsCpu, postgresCpuBetween, hostCpu, hostBusyPercent, checkpointsSoFar } = require('./lib');
const { loadConfigWith } = require('../dist/libs/config/src/config');
const { runMigrations } = require('../dist/libs/db/src/bootstrap-db');
const { LedgerService, formatAmount } = require('../dist/libs/billing/src');
const { MonthClose, SlaSignals, SlaOperations, monthBounds, MINUTE_MS } = require('../dist/libs/sla/src');

const DB_NAME = 'cmq_bench_sla';
const REGIONS = ['gz', 'sh', 'bj'];
const ZONE = 'Asia/Shanghai';

function strArg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : process.argv[i + 1];
}

const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
const sec = (ms) => Math.round(ms / 10) / 100;
const n0 = (v) => Number(v).toLocaleString('en-US');

/** Peak RSS of this process since the last reset (VmHWM), MiB; resettable on Linux by clear_refs 5. */
function peakRssMb() {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}
function resetPeakRss() {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function dropDatabase(name) {
  const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

const TABLES = [
  'accounts',
  'queues',
  'balances',
  'ledger_entries',
  'usage_minutely',
  'sla_probes',
  'sla_maintenance',
  'sla_attributions',
  'sla_results',
  'sla_month_closes',
  'notifications',
];

async function rowCounts(db) {
  const out = {};
  for (const t of TABLES) out[t] = Number((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
  return out;
}

/**
 * The fleet's month, made in a few set-based statements. Minute numbers are UTC minutes (Unix ms
 * ÷ 60,000) as the SLA code uses them; S and E are the month's first minute and the next
 * month's, in the policy's zone. Deterministic for a given set of figures (setseed, no
 * parallel plans), except the ids Postgres gives the identity columns.
 */
async function generate(db, o) {
  const { S, E, N } = o;
  const T = E - S;
  const step = async (label, sql, params = []) => {
    const t0 = performance.now();
    const r = await db.query(sql, params);
    const ms = performance.now() - t0;
    console.log(`  ${label.padEnd(44)} ${String(r.rowCount ?? '').padStart(11)} rows  ${sec(ms)} s`);
    return r;
  };
  await db.query(`SET max_parallel_workers_per_gather = 0`);
  await db.query(`SELECT setseed(0.4242)`);

  // the accounts: 1% created mid-month (no service period), 0.1% released before the month
  // (not evaluated), 0.1% released mid-month (no service period); 1–3 queues each in distinct
  // regions; vouchers before the month for 5% (their charges are paid from vouchers first)
  await step(
    'bench_acc (temp)',
    `CREATE TEMP TABLE bench_acc AS
     SELECT i, md5('sla-bench-' || i)::uuid AS id,
            CASE WHEN i % 100 = 50 THEN $1::int + 1440 + floor(random() * ($3::int - 2880))::int
                 ELSE $1::int - 43200 - floor(random() * 400000)::int END AS created_m,
            CASE WHEN i % 1000 = 7 THEN $1::int - 14400 WHEN i % 1000 = 507 THEN $1::int + 14400 END AS released_m,
            1 + floor(random() * 3)::int AS nq,
            floor(random() * 3)::int AS r0,
            (100 + floor(random() * 99900))::bigint * 10000000 AS charge,
            CASE WHEN i % 20 = 3 THEN floor(random() * 50000)::bigint * 10000000 ELSE 0 END AS vouchers,
            floor(random() * 100000)::bigint * 10000000 AS spare
       FROM generate_series(1, $2::int) AS i`,
    [S, N, T],
  );
  await db.query(`ALTER TABLE bench_acc ADD PRIMARY KEY (i)`);
  await step(
    'accounts',
    `INSERT INTO accounts (id, name, region, status, created_at, updated_at)
     SELECT id, 'sla-bench-' || i, ($1::text[])[1 + r0], CASE WHEN released_m IS NULL THEN 'active' ELSE 'released' END,
            to_timestamp(created_m * 60), to_timestamp(created_m * 60)
       FROM bench_acc ORDER BY i`,
    [REGIONS],
  );
  // queue j of an account in region (r0 + j) mod 3; 2% of accounts delete their last queue
  // mid-month, 2.5% create their last one mid-month; a released account's queues go with it
  await step(
    'queues',
    `INSERT INTO queues (queue_id, account_id, region, name, max_msg_heap_num, polling_wait_seconds, visibility_timeout,
                         max_msg_size, msg_retention_seconds, rewind_seconds, created_at, deleted_at)
     SELECT 'q-sla-' || a.i || '-' || j, a.id, ($1::text[])[1 + (a.r0 + j) % 3], 'bench-queue-' || j, 10000000, 0, 30, 65536, 345600, 0,
            to_timestamp(CASE WHEN a.i % 40 = 13 AND j = a.nq - 1 AND a.created_m < $2::int
                              THEN $2::int + floor(random() * $3::int)::int ELSE a.created_m + j END * 60),
            to_timestamp(CASE WHEN a.released_m IS NOT NULL THEN a.released_m
                              WHEN a.i % 50 = 25 AND j = a.nq - 1 THEN $2::int + floor(random() * $3::int)::int END * 60)
       FROM bench_acc a CROSS JOIN LATERAL generate_series(0, a.nq - 1) AS j
      ORDER BY a.i, j`,
    [REGIONS, S, T],
  );

  // region incidents: runs of 1–60 minutes of failed probes (all four of a minute, or for one in
  // ten exactly half, which is down too), four of them across the month's two boundaries
  const regionIncidents = Math.max(0, o.incidents - o.bursts);
  await step(
    'bench_inc (temp): region incidents',
    `CREATE TEMP TABLE bench_inc AS
     SELECT k, region, s, s + len AS e, failing FROM (
       SELECT k, ($1::text[])[1 + floor(random() * 3)::int] AS region,
              CASE k WHEN 1 THEN 8 WHEN 2 THEN 40 WHEN 3 THEN 10 WHEN 4 THEN 45 ELSE 1 + floor(random() * 60)::int END AS len,
              CASE WHEN random() < 0.1 THEN 2 ELSE 4 END AS failing, random() AS x
         FROM generate_series(1, $4::int) AS k) t,
       LATERAL (SELECT CASE k WHEN 1 THEN $2::int - 3 WHEN 2 THEN $2::int - 20 WHEN 3 THEN $3::int - 4 WHEN 4 THEN $3::int - 30
                              ELSE $2::int - 60 + floor(t.x * ($3::int - $2::int + 120 - t.len))::int END AS s) st`,
    [REGIONS, S, E, regionIncidents],
  );
  await db.query(
    `CREATE TEMP TABLE bench_down AS
     SELECT region, m, max(failing) AS failing FROM bench_inc CROSS JOIN LATERAL generate_series(s, e - 1) AS m GROUP BY region, m`,
  );
  // probe coverage gaps (no result at all: unknown minutes): the first three hours long (a
  // coverage alert for the region's accounts), the others 2–30 minutes
  await db.query(
    `CREATE TEMP TABLE bench_gap AS
     SELECT g, ($1::text[])[1 + floor(random() * 3)::int] AS region, s, s + len AS e
       FROM (SELECT g, CASE WHEN g = 1 THEN 180 ELSE 2 + floor(random() * 29)::int END AS len,
                    $2::int + floor(random() * ($3::int - $2::int - 200))::int AS s
               FROM generate_series(1, $4::int) AS g) t`,
    [REGIONS, S, E, o.gaps],
  );
  // a month of probes (and an hour either side), 4 a minute per region, at :00 :15 :30 :45;
  // 0.05% of the others fail at random (never half of a minute: noise, not down)
  await step(
    'sla_probes',
    `INSERT INTO sla_probes (region, prober, started_at, received_at, minute, ok, failed_step, code, latency_ms)
     SELECT region, 'bench-' || region, to_timestamp(m * 60 + p * 15), to_timestamp(m * 60 + p * 15 + 1), to_timestamp(m * 60), ok,
            CASE WHEN NOT ok THEN 'send' END, CASE WHEN NOT ok THEN 6000 END, CASE WHEN ok THEN 3 + floor(random() * 20)::int ELSE 3000 END
       FROM (SELECT rr.r AS region, mm.m, pp.p, NOT (pp.p < coalesce(d.failing, 0) OR (pp.p = 3 AND random() < 0.0005)) AS ok
               FROM unnest($1::text[]) AS rr(r) CROSS JOIN generate_series($2::int - 60, $3::int + 59) AS mm(m)
                    CROSS JOIN generate_series(0, 3) AS pp(p)
               LEFT JOIN bench_down d ON d.region = rr.r AND d.m = mm.m
              WHERE NOT EXISTS (SELECT 1 FROM bench_gap g WHERE g.region = rr.r AND mm.m >= g.s AND mm.m < g.e)) t
      ORDER BY m, region, p`,
    [REGIONS, S, E],
  );

  // maintenance: three windows announced two days ahead over the first 20 minutes of an
  // incident (excluded), two announced 30 minutes ahead (refused), one for every region
  // announced three days ahead, and one cancelled
  await step(
    'sla_maintenance',
    `INSERT INTO sla_maintenance (region, starts_at, ends_at, announced_at, reason, created_by, cancelled_at, cancelled_by)
     SELECT CASE WHEN k = 10 THEN NULL ELSE region END, to_timestamp((s - 5) * 60), to_timestamp((s + 20) * 60),
            to_timestamp((s - 5) * 60 - CASE WHEN k IN (8, 9) THEN 1800 WHEN k = 10 THEN 259200 ELSE 172800 END),
            CASE WHEN k IN (8, 9) THEN 'emergency patch, announced late' ELSE 'storage firmware upgrade' END, 'bench@ops',
            CASE WHEN k = 11 THEN to_timestamp((s - 60) * 60) END, CASE WHEN k = 11 THEN 'bench@ops' END
       FROM bench_inc WHERE k BETWEEN 5 AND 11 ORDER BY k`,
  );

  // server-error bursts of single accounts: 1–60 minutes of 20–220 requests a minute with 6–56%
  // server errors; one in ten at 15 requests a minute (too few to judge: not down)
  await db.query(
    `CREATE TEMP TABLE bench_burst AS
     SELECT b, a.id AS account_id, ($1::text[])[1 + a.r0] AS region, st.s, st.s + t.len AS e
       FROM (SELECT b, 1 + floor(random() * $4::int)::int AS i, 1 + floor(random() * 60)::int AS len, random() AS x
               FROM generate_series(1, $5::int) AS b) t
       JOIN bench_acc a ON a.i = t.i,
       LATERAL (SELECT $2::int + floor(t.x * ($3::int - $2::int - t.len))::int AS s) st`,
    [REGIONS, S, E, N, o.bursts],
  );
  // attributions: two incidents' first 10 minutes to a third party, one's to force majeure (all
  // regions), and one burst in five to its user
  await step(
    'sla_attributions',
    `INSERT INTO sla_attributions (region, account_id, starts_at, ends_at, cause, reason, created_by)
     SELECT CASE WHEN k = 14 THEN NULL ELSE region END, NULL, to_timestamp(s * 60), to_timestamp((s + 10) * 60),
            CASE WHEN k = 14 THEN 'force_majeure' ELSE 'third_party' END,
            CASE WHEN k = 14 THEN 'regional power grid failure' ELSE 'upstream DNS provider outage' END, 'bench@ops'
       FROM bench_inc WHERE k BETWEEN 12 AND 14
     UNION ALL
     SELECT NULL, account_id, to_timestamp(s * 60), to_timestamp(e * 60), 'user', 'consumer flooded its own queue with malformed batches', 'bench@ops'
       FROM bench_burst WHERE b % 5 = 0`,
  );

  // usage minutes: every account not released before the month has `usage-minutes`
  // consecutive minutes of traffic in its first region at a random time of the month (after it
  // was made), one in ten with client errors and throttling beside (not down); then the bursts
  await step(
    'usage_minutely: traffic',
    `INSERT INTO usage_minutely (account_id, region, minute, outcome, requests)
     SELECT a.id, ($1::text[])[1 + a.r0], to_timestamp((st.s + m) * 60), o.outcome, o.requests
       FROM bench_acc a,
            LATERAL (SELECT greatest(a.created_m + 1, $2::int) + floor(random() * ($3::int - greatest(a.created_m + 1, $2::int) - $4::int))::int AS s) st,
            generate_series(0, $4::int - 1) AS m,
            LATERAL (SELECT 'ok'::text AS outcome, 1 + floor(random() * 200)::bigint AS requests
                     UNION ALL SELECT 'client_error', 1 + floor(random() * 20)::bigint WHERE a.i % 10 = 1
                     UNION ALL SELECT 'throttled', 1 + floor(random() * 50)::bigint WHERE a.i % 10 = 1) o
      WHERE a.released_m IS NULL OR a.released_m >= $2::int
      ORDER BY a.i, m`,
    [REGIONS, S, E, o.usageMinutes],
  );
  await step(
    'usage_minutely: server-error bursts',
    `INSERT INTO usage_minutely (account_id, region, minute, outcome, requests)
     SELECT account_id, region, to_timestamp(m * 60), outcome, sum(requests)
       FROM (SELECT b.account_id, b.region, m, o.outcome, o.requests
               FROM bench_burst b CROSS JOIN LATERAL generate_series(b.s, b.e - 1) AS m,
                    LATERAL (SELECT CASE WHEN b.b % 10 = 1 THEN 10 ELSE 20 + floor(random() * 200)::int END AS ok) r,
                    LATERAL (SELECT 'ok'::text AS outcome, r.ok::bigint AS requests
                             UNION ALL SELECT 'server_error', CASE WHEN b.b % 10 = 1 THEN 5 ELSE ceil(r.ok * (0.06 + random() * 0.5))::bigint END) o) x
      GROUP BY account_id, region, m, outcome
     ON CONFLICT (account_id, region, minute, outcome) DO UPDATE SET requests = usage_minutely.requests + excluded.requests`,
  );

  // the ledger: a top-up when the account was made, vouchers for 5% before the month, and the
  // month's usage charge (vouchers first, the rest from cash), each entry with the balances it
  // left; the balance row is their sum
  await step(
    'ledger_entries',
    `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, voucher_delta_nano, cash_after_nano, voucher_after_nano,
                                 idempotency_key, reason, created_at)
     SELECT a.id, e.kind, e.cash, e.voucher, e.cash_after, e.voucher_after, 'sla-bench-' || e.kind || ':' || a.i, 'bench', to_timestamp(e.at * 60)
       FROM bench_acc a,
            LATERAL (SELECT least(a.vouchers, a.charge) AS vpart,
                            greatest(a.created_m + 2, $1::int) + floor(random() * ($2::int - greatest(a.created_m + 2, $1::int)))::int AS charged_m) c,
            LATERAL (VALUES
              (1, 'topup', a.charge + a.spare, 0::bigint, a.charge + a.spare, 0::bigint, a.created_m + 1),
              (2, 'voucher_grant', 0::bigint, a.vouchers, a.charge + a.spare, a.vouchers, a.created_m + 1),
              (3, 'usage_charge', -(a.charge - c.vpart), -c.vpart, a.spare + c.vpart, a.vouchers - c.vpart, c.charged_m)
            ) AS e(ord, kind, cash, voucher, cash_after, voucher_after, at)
      WHERE (e.ord <> 2 OR a.vouchers > 0) AND (e.ord <> 3 OR a.released_m IS NULL OR a.released_m > $1::int + 1)
      ORDER BY a.i, e.ord`,
    [S, E],
  );
  await step(
    'balances',
    `INSERT INTO balances (account_id, cash_nano, voucher_nano, spent_nano, last_usage_at, status, overdue_since, suspended_at,
                           release_notice_at, released_at, updated_at)
     SELECT e.account_id, sum(e.cash_delta_nano), sum(e.voucher_delta_nano),
            -coalesce(sum(e.cash_delta_nano + e.voucher_delta_nano) FILTER (WHERE e.kind = 'usage_charge'), 0),
            max(e.created_at) FILTER (WHERE e.kind = 'usage_charge'),
            CASE WHEN a.released_m IS NULL THEN 'active' ELSE 'released' END,
            to_timestamp((a.released_m - 28800) * 60), to_timestamp((a.released_m - 14400) * 60),
            to_timestamp((a.released_m - 4320) * 60), to_timestamp(a.released_m * 60), max(e.created_at)
       FROM ledger_entries e JOIN bench_acc a ON a.id = e.account_id
      GROUP BY e.account_id, a.released_m`,
  );
  const t0 = performance.now();
  await db.query('VACUUM (ANALYZE)');
  console.log(`  ${'VACUUM (ANALYZE) (autovacuum is off here)'.padEnd(44)} ${''.padStart(11)}       ${sec(performance.now() - t0)} s`);
  return { regionIncidents };
}

/** Undoes a close of `month` on a kept database (--reuse): its results, its credits, its notifications. */
async function undoClose(db, month) {
  await db.query('BEGIN');
  await db.query(`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`);
  await db.query(
    `UPDATE balances b SET voucher_nano = b.voucher_nano - s.v, cash_nano = b.cash_nano - s.c
       FROM (SELECT account_id, sum(voucher_delta_nano) AS v, sum(cash_delta_nano) AS c FROM ledger_entries
              WHERE idempotency_key LIKE 'sla-credit:%' GROUP BY account_id) s
      WHERE s.account_id = b.account_id`,
  );
  await db.query(`DELETE FROM ledger_entries WHERE idempotency_key LIKE 'sla-credit:%'`);
  await db.query(`ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only`);
  await db.query(`DELETE FROM notifications WHERE kind LIKE 'sla%'`);
  await db.query(`DELETE FROM sla_results WHERE month = $1::date`, [`${month}-01`]);
  await db.query(`DELETE FROM sla_month_closes WHERE month = $1::date`, [`${month}-01`]);
  await db.query('COMMIT');
  await db.query('VACUUM (ANALYZE)');
}

/**
 * Times the phases of the close by wrapping the methods it calls on these instances (the code
 * under test is not changed): signals read per page, evaluation, storing (which holds the credit
 * postings), the credit postings themselves.
 */
function instrument(close, signals, ledger) {
  const phases = {};
  const add = (name, ms) => {
    const p = (phases[name] ??= { calls: 0, ms: 0, maxMs: 0 });
    p.calls++;
    p.ms += ms;
    p.maxMs = Math.max(p.maxMs, ms);
  };
  const wrapAsync = (obj, method, name) => {
    const f = obj[method];
    if (typeof f !== 'function') return;
    obj[method] = async function (...args) {
      const t0 = performance.now();
      try {
        return await f.apply(this, args);
      } finally {
        add(name, performance.now() - t0);
      }
    };
  };
  const wrapSync = (obj, method, name) => {
    const f = obj[method];
    if (typeof f !== 'function') return;
    obj[method] = function (...args) {
      const t0 = performance.now();
      try {
        return f.apply(this, args);
      } finally {
        add(name, performance.now() - t0);
      }
    };
  };
  wrapAsync(close, 'context', 'context (policy, region states, maintenance, attributions)');
  wrapAsync(signals, 'accountPage', 'read: account page');
  wrapAsync(signals, 'accountSignals', 'read: account signals (queues, error minutes, fees)');
  wrapSync(close, 'evaluate', 'evaluate (per account)');
  wrapAsync(close, 'store', 'store (results + credits + notifications, one transaction a page)');
  wrapAsync(close, 'moveCredit', 'store: credit postings (moveCredit, per account)');
  wrapAsync(close, 'moveCredits', 'store: credit postings (moveCredits, per page)');
  wrapAsync(ledger, 'postWithin', 'store: ledger.postWithin');
  wrapAsync(ledger, 'postVoucherGrantsWithin', 'store: ledger.postVoucherGrantsWithin');
  return phases;
}

/**
 * Times every statement the close sends (--statements), by its first words, on each client the
 * pool makes (pool.query goes through them too).
 */
function instrumentStatements(pool) {
  const stats = new Map();
  const label = (sql) => (typeof sql === 'string' ? sql : sql.text).replace(/\s+/g, ' ').trim().slice(0, 70);
  pool.on('connect', (client) => {
    const query = client.query;
    client.query = function (sql, ...rest) {
      const t0 = performance.now();
      const out = query.call(this, sql, ...rest);
      if (out && typeof out.then === 'function') {
        const done = () => {
          const k = label(sql);
          const s = stats.get(k) ?? { calls: 0, ms: 0 };
          s.calls++;
          s.ms += performance.now() - t0;
          stats.set(k, s);
        };
        out.then(done, done);
      }
      return out;
    };
  });
  return stats;
}

async function main() {
  const N = numArg('accounts', 100_000);
  const incidents = numArg('incidents', 1000);
  const bursts = Math.min(numArg('bursts', 300), incidents);
  const usageMinutes = numArg('usage-minutes', 120);
  const gaps = numArg('gaps', 4);
  const month = strArg('month', '2026-10');
  const keep = flagArg('keep');
  const reuse = flagArg('reuse');
  const verbose = flagArg('verbose');
  const B = monthBounds(month, ZONE);
  const url = `postgres://postgres@127.0.0.1:5432/${DB_NAME}`;
  const config = loadConfigWith({ DATABASE_URL: url, REGIONS: REGIONS.join(','), LOG_LEVEL: 'error' });

  console.log(
    `SLA month close: ${n0(N)} accounts, ${n0(incidents)} incidents (${n0(incidents - bursts)} in regions, ${n0(bursts)} account bursts), ` +
      `month ${month} (${ZONE}: ${new Date(B.start * MINUTE_MS).toISOString()} .. ${new Date(B.end * MINUTE_MS).toISOString()}, T = ${n0(B.totalMinutes)}), ` +
      `regions ${REGIONS.join(',')}, ${usageMinutes} usage minutes per account; load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`,
  );
  let db;
  let failed = false;
  try {
    const tGen = performance.now();
    if (reuse) {
      db = new Client({ connectionString: url, application_name: 'bench-sla' });
      await db.connect();
      console.log(`reusing ${DB_NAME}: undoing its close of ${month}`);
      await undoClose(db, month);
    } else {
      await resetDatabase(DB_NAME);
      const t0 = performance.now();
      await runMigrations(config);
      console.log(`database ${DB_NAME} made and migrated in ${sec(performance.now() - t0)} s; generating:`);
      db = new Client({ connectionString: url, application_name: 'bench-sla' });
      await db.connect();
      await generate(db, { S: B.start, E: B.end, N, incidents, bursts, usageMinutes, gaps });
    }
    const genMs = performance.now() - tGen;
    const counts = await rowCounts(db);
    const size = (await db.query(`SELECT pg_size_pretty(pg_database_size(current_database())) AS s`)).rows[0].s;
    console.log(`${reuse ? 'reset' : 'generation'}: ${sec(genMs)} s; database ${size}; rows:`);
    console.table(Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, { rows: v }])));
    const downMinutes = (
      await db.query(
        `SELECT region, count(*)::int AS down FROM (SELECT region, minute FROM sla_probes WHERE minute >= $1 AND minute < $2
           GROUP BY region, minute HAVING count(*) FILTER (WHERE NOT ok) * 2 >= count(*)) t GROUP BY region ORDER BY region`,
        [new Date(B.start * MINUTE_MS), new Date(B.end * MINUTE_MS)],
      )
    ).rows;
    console.log(`down region-minutes in the month (probes): ${downMinutes.map((r) => `${r.region} ${n0(r.down)}`).join(', ')}`);

    // the close, as the worker runs it, in this process
    const pool = new Pool({ connectionString: url, max: config.database.poolSize, idleTimeoutMillis: 0, application_name: 'cmq-hot-path' });
    pool.on('error', () => undefined);
    const statements = flagArg('statements') ? instrumentStatements(pool) : null;
    const ledger = new LedgerService(pool);
    const signals = new SlaSignals(pool);
    const clock = { now: () => (B.end + 60) * MINUTE_MS };
    const close = new MonthClose(config, pool, signals, new SlaOperations(pool, config, clock), ledger, clock);
    const phases = instrument(close, signals, ledger);
    const pages = [];
    if (verbose) {
      const f = close.store;
      close.store = async function (ctx, page, ...rest) {
        const t0 = performance.now();
        const r = await f.call(this, ctx, page, ...rest);
        pages.push({
          accounts: page.length,
          'distinct results': new Set(page.map((a) => a.result)).size,
          'store ms': Math.round(performance.now() - t0),
          'RSS MB': mb(process.memoryUsage().rss),
          'heap MB': mb(process.memoryUsage().heapUsed),
        });
        return r;
      };
    }
    await pool.query('SELECT 1'); // one connection up before the clock starts

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const heapBefore = process.memoryUsage().heapUsed;
    const hwmReset = resetPeakRss();
    let rssMax = rssBefore;
    let heapMax = heapBefore;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      rssMax = Math.max(rssMax, m.rss);
      heapMax = Math.max(heapMax, m.heapUsed);
    }, 100);
    const pg0 = await postgresBackendsCpu(db);
    const cpu0 = process.cpuUsage();
    const host0 = hostCpu();
    const ckpt0 = await checkpointsSoFar(db);
    const wal0 = (await db.query('SELECT pg_current_wal_lsn() AS l')).rows[0].l;
    const t0 = performance.now();
    let result;
    try {
      result = await close.close(month);
    } catch (err) {
      console.error(`the close failed: ${err.stack ?? err}`);
      failed = true;
    }
    const wallMs = performance.now() - t0;
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpu0);
    const pgCpu = postgresCpuBetween(pg0, await postgresBackendsCpu(db));
    const host1 = hostCpu();
    const ckpt = (await checkpointsSoFar(db)) - ckpt0;
    const walMb = mb(Number((await db.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [wal0])).rows[0].d));
    const m = process.memoryUsage();
    rssMax = Math.max(rssMax, m.rss);
    heapMax = Math.max(heapMax, m.heapUsed);

    if (result) {
      const stats = (
        await db.query(
          `SELECT count(*)::int AS results, count(*) FILTER (WHERE NOT meets_target)::int AS breaches,
                  count(*) FILTER (WHERE NOT service_period)::int AS no_service_period,
                  count(*) FILTER (WHERE credit_nano > 0)::int AS credited,
                  count(*) FILTER (WHERE coverage_alert)::int AS coverage_alerts,
                  coalesce(sum(credit_nano), 0)::text AS credits,
                  coalesce(sum(jsonb_array_length(outages)), 0)::bigint AS outages,
                  pg_size_pretty(pg_total_relation_size('sla_results')) AS size
             FROM sla_results WHERE month = $1::date AND revision = 1`,
          [`${month}-01`],
        )
      ).rows[0];
      const bands = (
        await db.query(
          `SELECT credit_pct, count(*)::int AS accounts, min(downtime_minutes) AS min_down, max(downtime_minutes) AS max_down
             FROM sla_results WHERE month = $1::date GROUP BY credit_pct ORDER BY credit_pct`,
          [`${month}-01`],
        )
      ).rows;
      const grants = (
        await db.query(
          `SELECT count(*)::int AS entries, coalesce(sum(voucher_delta_nano), 0)::text AS vouchers FROM ledger_entries
            WHERE idempotency_key LIKE 'sla-credit:%' AND idempotency_key LIKE $1`,
          [`%:${month}:r1`],
        )
      ).rows[0];
      console.log(
        `\nclose(${month}): ${result.closed ? 'closed' : 'NOT closed'}, revision ${result.revision}, ${n0(result.accounts)} accounts evaluated, ` +
          `${n0(result.breaches)} below target, credits ${formatAmount(result.creditsNano)}`,
      );
      console.log(
        `  stored: ${n0(stats.results)} results (${stats.size} with indexes, ${n0(stats.outages)} outages in them), ${n0(stats.breaches)} breaches, ` +
          `${n0(stats.no_service_period)} without a service period, ${n0(stats.credited)} credited (${n0(grants.entries)} voucher_grant entries, ` +
          `${formatAmount(BigInt(grants.vouchers))}), ${n0(stats.coverage_alerts)} coverage alerts`,
      );
      console.log(`  bands: ${bands.map((b) => `${b.credit_pct}%: ${n0(b.accounts)} (down ${b.min_down}–${b.max_down} min)`).join('; ')}`);
      if (!result.closed || result.accounts !== stats.results || BigInt(grants.vouchers) !== result.creditsNano || grants.entries !== stats.credited) {
        console.error('!! the close did not store what it reported');
        failed = true;
      }
    }
    console.log(
      `  wall ${sec(wallMs)} s; this process CPU ${sec((cpu.user + cpu.system) / 1000)} s; Postgres backends CPU ${Math.round(pgCpu * 100) / 100} s; ` +
        `machine busy ${hostBusyPercent(host0, host1)}%; WAL ${walMb} MB; checkpoints during the close: ${ckpt}`,
    );
    console.log(
      `  RSS before ${mb(rssBefore)} MB, peak (100 ms samples) ${mb(rssMax)} MB` +
        (hwmReset ? `, peak (VmHWM since the start of the close) ${peakRssMb()} MB` : '') +
        `; heap used before ${mb(heapBefore)} MB, peak sampled ${mb(heapMax)} MB`,
    );
    console.log('  phases (totals; "store" holds the credit postings):');
    console.table(
      Object.fromEntries(
        Object.entries(phases).map(([k, p]) => [k, { calls: p.calls, 'total s': sec(p.ms), 'mean ms': Math.round((p.ms / p.calls) * 100) / 100, 'max ms': Math.round(p.maxMs) }]),
      ),
    );
    if (verbose) console.table(pages);
    if (statements) {
      console.log('  statements (totals, by their first words; concurrent ones overlap):');
      console.table(
        Object.fromEntries(
          [...statements.entries()]
            .sort((a, b) => b[1].ms - a[1].ms)
            .slice(0, 15)
            .map(([k, v]) => [k, { calls: v.calls, 'total s': sec(v.ms), 'mean ms': Math.round((v.ms / v.calls) * 10) / 10 }]),
        ),
      );
    }

    // the second close: the month is closed, nothing changes
    const before = await rowCounts(db);
    const sums0 = (await db.query(`SELECT sum(cash_nano)::text AS c, sum(voucher_nano)::text AS v FROM balances`)).rows[0];
    const t1 = performance.now();
    let second;
    try {
      second = await close.close(month);
    } catch (err) {
      console.error(`the second close failed: ${err.stack ?? err}`);
      failed = true;
    }
    const secondMs = performance.now() - t1;
    const after = await rowCounts(db);
    const sums1 = (await db.query(`SELECT sum(cash_nano)::text AS c, sum(voucher_nano)::text AS v FROM balances`)).rows[0];
    const changed = Object.keys(before).filter((k) => before[k] !== after[k]);
    if (sums0.c !== sums1.c || sums0.v !== sums1.v) changed.push('balances (sums)');
    console.log(
      `\nsecond close: ${Math.round(secondMs * 10) / 10} ms, ${second ? `closed: ${second.closed}, revision ${second.revision}, ${second.accounts} accounts` : 'failed'}; ` +
        (changed.length ? `!! changed: ${changed.join(', ')}` : 'no table changed (row counts, balance sums)'),
    );
    if (!second || second.closed || changed.length) failed = true;

    const t2 = performance.now();
    const mismatches = await ledger.reconcile();
    console.log(`ledger reconciliation: ${mismatches.length} mismatched balances (${Math.round(performance.now() - t2)} ms)`);
    if (mismatches.length) {
      console.error(mismatches.slice(0, 5));
      failed = true;
    }
    await pool.end();
  } finally {
    await db?.end();
    if (!keep) await dropDatabase(DB_NAME).catch(() => undefined);
    else console.log(`database ${DB_NAME} kept (--reuse runs the close on it again)`);
  }
  if (failed) {
    console.error('FAILED');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
