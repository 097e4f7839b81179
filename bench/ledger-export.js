'use strict';
// Finance CSV export of the ledger (billing.md §6): 1,000,000 ledger entries (by default) made
// with set-based SQL in a database of its own, then exported over the whole range through the
// real code path, twice:
//   1. the library (dist/libs/billing/src/exports.js, exportCsv) in this process, into a sink
//      that counts bytes and rows (CRLF) and throws the text away;
//   2. GET /v1/exports/ledger.csv of a billing-api started from dist/ in a child process, read
//      by this process and counted the same way; the server's peak RSS is its VmHWM.
// Rows/s = rows ÷ wall time from the first request to the last byte. Peak RSS of this process is
// sampled every 50 ms (process.memoryUsage().rss). With --csv-stringify, the same pages are also
// written through csv-stringify (one array per row, money through BigInt and formatAmount), for
// comparison with the hand-built lines.
// Usage: npm run bench:ledger-export -- [--rows 1000000] [--accounts 1000] [--csv-stringify]
//          [--keep (leave the database)] [--reuse (the database a --keep run left, not seeded again)]
// BENCH_BILLING_NODE_ARGS (environment): more node options for the billing-api.
const http = require('node:http');
const { Writable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const { randomBytes } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { Client, Pool } = require('pg');
const { resetDatabase, start, waitFor, numArg, flagArg, hostCpu, hostBusyPercent } = require('./lib');
const { exportCsv, LEDGER_CSV_COLUMNS } = require('../dist/libs/billing/src/exports');
const { formatAmount } = require('../dist/libs/billing/src/money');

const DB = 'cmq_bench_export';
const PORT = 13090;
const FROM = '2026-01-01T00:00:00Z';
const TO = '2026-02-01T00:00:00Z';

/** kB of a /proc/<pid>/status field (VmHWM: peak RSS, VmRSS: current), or NaN. */
function procKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Peak of process.memoryUsage().rss sampled every 50 ms while `fn` runs; resolves { result, peakMb }. */
async function withPeakRss(fn) {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, peakMb: Math.round(peak / 1048576) };
  } finally {
    clearInterval(timer);
  }
}

/** A sink that counts bytes and CRLFs (records; a CRLF inside a quoted field would count too: the bench's reasons have none). */
function countingSink() {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      sink.bytes += chunk.length;
      let i = -1;
      while ((i = chunk.indexOf(10, i + 1)) !== -1) sink.lines++;
      cb();
    },
  });
  sink.bytes = 0;
  sink.lines = 0;
  return sink;
}

async function seed(databaseUrl, rows, accounts) {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  const t0 = performance.now();
  await db.query(
    `INSERT INTO accounts (id, name, region) SELECT gen_random_uuid(), 'export-bench-' || g, 'gz' FROM generate_series(1, $1) g`,
    [accounts],
  );
  // set-based: amounts to the nano of every sign and size, a few reasons that need quoting, times
  // spread over January 2026 in id order (balances not kept consistent: the export does not check them)
  await db.query(
    `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, voucher_delta_nano, cash_after_nano, voucher_after_nano, idempotency_key, reason, created_at)
     SELECT a.ids[1 + (g % $2)::int],
            (ARRAY['usage_charge','usage_charge','usage_charge','topup','voucher_grant','adjustment','refund'])[1 + g % 7],
            CASE WHEN g % 7 < 3 THEN -((g * 7919) % 5000000000) ELSE (g * 104729) % 900000000000 END,
            CASE WHEN g % 7 = 4 THEN 10000000000 ELSE 0 END,
            (g * 15485863) % 1000000000000 - 200000000000, (g * 31) % 50000000000,
            'bench:' || g,
            CASE WHEN g % 50 = 0 THEN 'goodwill, ticket "' || g || '"' WHEN g % 7 = 5 THEN 'operator adjustment' END,
            timestamptz '${FROM}' + g * (interval '30 days' / $1::int)
       FROM generate_series(1::bigint, $1::bigint) g,
            (SELECT array_agg(id ORDER BY id) AS ids FROM accounts WHERE name LIKE 'export-bench-%') a`,
    [rows, accounts],
  );
  await db.query('VACUUM (ANALYZE) ledger_entries');
  const s = await rangeStats(db);
  await db.end();
  return { ...s, seconds: Math.round((performance.now() - t0) / 100) / 10 };
}

async function counted(databaseUrl) {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  const s = await rangeStats(db);
  await db.end();
  return { ...s, seconds: 0 };
}

async function rangeStats(db) {
  const { rows: s } = await db.query(
    `SELECT count(*)::int AS n, sum(cash_delta_nano)::text AS cash, pg_size_pretty(pg_total_relation_size('ledger_entries')) AS size
       FROM ledger_entries WHERE created_at >= $1 AND created_at < $2`,
    [FROM, TO],
  );
  return s[0];
}

async function viaLibrary(databaseUrl) {
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const sink = countingSink();
  const cpu0 = hostCpu();
  const t0 = performance.now();
  const { peakMb } = await withPeakRss(() => pipeline(exportCsv(pool, 'ledger', { from: FROM, to: TO }), sink));
  const ms = performance.now() - t0;
  const busy = hostBusyPercent(cpu0, hostCpu());
  await pool.end();
  return { path: 'library → counting sink', rows: sink.lines - 1, bytes: sink.bytes, ms, peakMb, hostBusy: busy };
}

async function viaCsvStringify(databaseUrl) {
  const { stringify } = require('csv-stringify');
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const sink = countingSink();
  const t0 = performance.now();
  const { peakMb } = await withPeakRss(async () => {
    const csv = stringify({ header: true, columns: [...LEDGER_CSV_COLUMNS], record_delimiter: '\r\n' });
    const done = pipeline(csv, sink);
    let after = null;
    for (;;) {
      const { rows } = await pool.query({
        text: `SELECT id::text, account_id::text, kind, cash_delta_nano::text, voucher_delta_nano::text, cash_after_nano::text,
                      voucher_after_nano::text, idempotency_key, reason, created_at
                 FROM ledger_entries WHERE created_at >= $1 AND created_at < $2 AND ($3::bigint IS NULL OR id > $3::bigint)
                ORDER BY ledger_entries.id LIMIT 10000`,
        values: [FROM, TO, after],
        rowMode: 'array',
      });
      if (rows.length === 0) break;
      for (const r of rows) {
        const ok = csv.write([r[0], r[1], r[2], formatAmount(BigInt(r[3])), formatAmount(BigInt(r[4])), formatAmount(BigInt(r[5])), formatAmount(BigInt(r[6])), r[7], r[8], r[9].toISOString()]);
        if (!ok) await new Promise((resolve) => csv.once('drain', resolve));
      }
      after = rows[rows.length - 1][0];
    }
    csv.end();
    await done;
  });
  await pool.end();
  return { path: 'csv-stringify (comparison) → counting sink', rows: sink.lines - 1, bytes: sink.bytes, ms: performance.now() - t0, peakMb };
}

async function viaHttp(env, pid) {
  const sink = countingSink();
  const before = procKb(pid, 'VmRSS');
  const hwmBefore = procKb(pid, 'VmHWM');
  let sampled = before;
  const timer = setInterval(() => (sampled = Math.max(sampled, procKb(pid, 'VmRSS') || 0)), 50);
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: PORT, path: `/v1/exports/ledger.csv?from=${FROM}&to=${TO}`, headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET ledger.csv: ${res.statusCode}`));
        pipeline(res, sink).then(resolve, reject);
      },
    );
    req.on('error', reject);
  });
  const ms = performance.now() - t0;
  clearInterval(timer);
  return {
    path: 'GET /v1/exports/ledger.csv (billing-api child)',
    rows: sink.lines - 1,
    bytes: sink.bytes,
    ms,
    serverRssBeforeMb: Math.round(before / 1024),
    /** VmHWM: the process's peak RSS since it started, export included */
    serverPeakMb: Math.round(procKb(pid, 'VmHWM') / 1024),
    serverPeakBeforeMb: Math.round(hwmBefore / 1024),
    /** VmRSS sampled every 50 ms during the export */
    serverSampledPeakMb: Math.round(sampled / 1024),
  };
}

const fmt = (r) => ({
  ...r,
  ms: Math.round(r.ms),
  rowsPerSec: Math.round(r.rows / (r.ms / 1000)),
  mbPerSec: Math.round((r.bytes / 1048576 / (r.ms / 1000)) * 10) / 10,
});

async function main() {
  const rows = numArg('rows', 1_000_000);
  const accounts = numArg('accounts', 1000);
  // --reuse: the database a previous run left with --keep, seeded already
  const reuse = flagArg('reuse');
  const databaseUrl = reuse ? `postgres://postgres@127.0.0.1:5432/${DB}` : await resetDatabase(DB);
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    REDIS_PREFIX: `cmqbench-export-${Date.now()}`,
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    MASTER_KEY: randomBytes(32).toString('base64'),
    BILLING_PORT: String(PORT),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  // the billing-api migrates the fresh database as it starts
  const billing = start('billing-api', env, (process.env.BENCH_BILLING_NODE_ARGS ?? '').split(' ').filter(Boolean));
  try {
    await waitFor(`http://127.0.0.1:${PORT}/health`);
    const seeded = reuse ? await counted(databaseUrl) : await seed(databaseUrl, rows, accounts);
    console.log(`seeded ${seeded.n} ledger entries over ${accounts} accounts in ${seeded.seconds} s (table + indexes ${seeded.size})`);
    const results = [];
    const lib = fmt(await viaLibrary(databaseUrl));
    results.push(lib);
    console.log(lib);
    const web = fmt(await viaHttp(env, billing.pid));
    results.push(web);
    console.log(web);
    if (flagArg('csv-stringify')) {
      const cs = fmt(await viaCsvStringify(databaseUrl));
      results.push(cs);
      console.log(cs);
    }
    for (const r of results) if (r.rows !== seeded.n) throw new Error(`${r.path}: ${r.rows} rows exported, ${seeded.n} in the range`);
    console.log(`\n| path | rows | MB | s | rows/s | peak RSS (MB) |\n|---|---:|---:|---:|---:|---:|`);
    for (const r of results) {
      const peak =
        r.peakMb ?? `${r.serverPeakMb} (server VmHWM, start-up included: ${r.serverPeakBeforeMb} before the export; VmRSS ${r.serverRssBeforeMb} → sampled peak ${r.serverSampledPeakMb})`;
      console.log(`| ${r.path} | ${r.rows} | ${Math.round(r.bytes / 1048576)} | ${(r.ms / 1000).toFixed(2)} | ${r.rowsPerSec} | ${peak} |`);
    }
  } finally {
    billing.kill('SIGTERM');
    await new Promise((r) => (billing.exitCode !== null ? r() : billing.on('exit', r)));
    if (!flagArg('keep')) {
      const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
      await admin.end();
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
