'use strict';
/**
 * The bad-input campaign against the compiled apps (dist/): a queue-api and a billing-api started
 * on a database, Redis prefix and ports of their own, then at least 10,000 hostile requests
 * (test/chaos/bad-input-lib.js) with the documented answer of each checked, and the global checks:
 * no 5xx, no CMQ 6000, no error logged, both processes still up with the same pids, nothing
 * stored but the usage billing.md meters, nothing of tenant B leaked.
 *
 *   npm run chaos:bad-input -- --count 12000 --seed bad-input-1 --concurrency 16
 *
 * Writes test-artifacts/bad-input.json (and the apps' log beside it); exit code 0 only if every
 * check passed.
 */
const { mkdirSync, writeFileSync, createWriteStream, readFileSync } = require('node:fs');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const { spawn } = require('node:child_process');
const { Client } = require('pg');
const { assertPortFree, forgetRedisKeys, resetDatabase, waitFor, ROOT } = require('../../bench/lib');
const { runCampaign, summaryTable, CATEGORIES } = require('./bad-input-lib');

/** `--name value` from the command line, or `def` (a number when `def` is one). */
function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  if (typeof def !== 'number') return v;
  if (!Number.isSafeInteger(Number(v)) || Number(v) <= 0) throw new Error(`--${name} needs a positive integer`);
  return Number(v);
}

const COUNT = arg('count', 12000);
const SEED = arg('seed', 'bad-input-1');
const CONCURRENCY = arg('concurrency', 16);
const OUT = arg('out', join(ROOT, 'test-artifacts/bad-input.json'));
const CMQ_PORT = arg('cmq-port', 18580);
const BILLING_PORT = arg('billing-port', 13580);
const DATABASE = 'cmq_chaos_badinput';
const REDIS_PREFIX = `cmqchaos-badinput-${Date.now()}`;
const SIGNATURE_WINDOW_SECONDS = 300;
const MAX_REQUEST_BYTES = 3 * 1024 * 1024 + 64 * 1024;

function startApp(app, env, log) {
  const child = spawn(process.execPath, [join(ROOT, 'dist/apps', app, 'src/main.js')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  return child;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function healthy(port) {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200;
  } catch {
    return false;
  }
}

async function clearRedis(prefix) {
  const Redis = require('ioredis');
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    await forgetRedisKeys(redis, prefix);
  } finally {
    await redis.quit();
  }
}

async function main() {
  const started = new Date();
  mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
  const logPath = OUT.replace(/\.json$/, '') + '-apps.log';
  const log = createWriteStream(logPath);
  for (const port of [CMQ_PORT, BILLING_PORT]) {
    // else /health would be answered by someone else's app
    await assertPortFree(port).catch(() => {
      throw new Error(`port ${port} is taken: choose others with --cmq-port and --billing-port`);
    });
  }
  const databaseUrl = await resetDatabase(DATABASE);
  const tokens = { admin: randomBytes(24).toString('base64url'), ops: randomBytes(24).toString('base64url'), finance: randomBytes(24).toString('base64url') };
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    REDIS_PREFIX,
    ADMIN_TOKEN: tokens.admin,
    API_TOKENS: `chaos-ops:ops:${tokens.ops},chaos-finance:finance:${tokens.finance}`,
    MASTER_KEY: randomBytes(32).toString('base64'),
    CMQ_PORT: String(CMQ_PORT),
    BILLING_PORT: String(BILLING_PORT),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // the documented defaults, set so the run does not depend on the environment
    SIGNATURE_WINDOW_SECONDS: String(SIGNATURE_WINDOW_SECONDS),
    CMQ_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
    QUEUE_QPS_LIMIT: '5000',
    TOPIC_QPS_LIMIT: '5000',
    REGIONS: 'gz',
    CONSOLE_CMQ_ENDPOINT: `http://127.0.0.1:${CMQ_PORT}`,
  };
  const children = [];
  const exits = [];
  const stop = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.on('exit', r)))));
  };
  let report;
  let db;
  try {
    const billing = startApp('billing-api', env, log);
    children.push(billing);
    billing.on('exit', (code, signal) => exits.push({ app: 'billing-api', pid: billing.pid, code, signal }));
    await waitFor(`http://127.0.0.1:${BILLING_PORT}/health`);
    const queue = startApp('queue-api', { ...env, MIGRATIONS_RUN: 'false' }, log);
    children.push(queue);
    queue.on('exit', (code, signal) => exits.push({ app: 'queue-api', pid: queue.pid, code, signal }));
    await waitFor(`http://127.0.0.1:${CMQ_PORT}/health`);
    const pids = { 'queue-api': queue.pid, 'billing-api': billing.pid };
    console.log(`bad-input campaign: queue-api pid ${queue.pid} on :${CMQ_PORT}, billing-api pid ${billing.pid} on :${BILLING_PORT}, database ${DATABASE}`);

    db = new Client({ connectionString: databaseUrl });
    await db.connect();
    report = await runCampaign({
      cmqPort: CMQ_PORT,
      billingPort: BILLING_PORT,
      tokens,
      limits: { maxRequestBytes: MAX_REQUEST_BYTES, signatureWindowSeconds: SIGNATURE_WINDOW_SECONDS },
      db,
      seed: SEED,
      count: COUNT,
      concurrency: CONCURRENCY,
      tag: randomBytes(4).toString('hex'),
      log: (m) => console.log(m),
    });

    // the processes: the same ones, still up and healthy
    const processes = {};
    for (const [app, pid] of Object.entries(pids)) {
      const port = app === 'queue-api' ? CMQ_PORT : BILLING_PORT;
      processes[app] = { pid, alive: alive(pid), healthy: await healthy(port) };
      if (!processes[app].alive || !processes[app].healthy) report.failures.push(`${app} (pid ${pid}) is not up and healthy at the end`);
    }
    for (const e of exits) report.failures.push(`${e.app} (pid ${e.pid}) exited during the run (code ${e.code}, signal ${e.signal})`);
    report.processes = processes;
  } finally {
    await db?.end().catch(() => undefined);
    await stop();
    log.end();
    await new Promise((r) => log.on('close', r));
    await clearRedis(REDIS_PREFIX).catch(() => undefined);
  }
  // anything logged at error level (pino 50+) is a failure the replies may not show
  const errorLines = readFileSync(logPath, 'utf8').split('\n').filter((l) => /"level":(50|60)/.test(l));
  report.errorLogLines = errorLines.length;
  if (errorLines.length) report.failures.push(`${errorLines.length} lines logged at error level (first: ${errorLines[0].slice(0, 300)})`);
  report.ok = report.failures.length === 0 && report.sent >= COUNT;
  report.date = started.toISOString();
  report.node = process.version;

  console.log('');
  console.log(summaryTable(report));
  console.log('');
  console.log(`requests ${report.sent} in ${(report.sendMs / 1000).toFixed(1)} s (${Math.round(report.sent / (report.sendMs / 1000))}/s, ${CONCURRENCY} at a time); whole run ${(report.durationMs / 1000).toFixed(1)} s`);
  console.log(`5xx: ${report.global.fiveXX}   CMQ 6000: ${report.global.code6000}   leaks: ${report.global.leaks}   stack/SQL/paths: ${report.global.hygiene}   no answer: ${report.global.noAnswer}   error log lines: ${report.errorLogLines}`);
  console.log(`metered (passed authentication): ${report.meteredCalls} calls; replayed sends stored once each: ${report.replayedSendsStored}; tables changed: ${report.changedTables.length ? report.changedTables.join(', ') : 'none'}`);
  console.log(`processes: ${Object.entries(report.processes ?? {}).map(([a, p]) => `${a} pid ${p.pid} ${p.alive && p.healthy ? 'up and healthy' : 'DOWN'}`).join(', ')}`);
  if (report.mismatches.length) {
    console.log(`\nfirst mismatches (of ${report.mismatches.length}):`);
    for (const m of report.mismatches.slice(0, 8)) console.log(JSON.stringify(m, null, 2));
  }
  if (report.failures.length) {
    console.log('\nFAILED:');
    for (const f of report.failures) console.log(`  - ${f}`);
  } else {
    console.log(`\nOK: ${CATEGORIES.length} categories, every answer as documented, nothing stored or leaked`);
  }
  writeFileSync(OUT, JSON.stringify({ ...report, mismatches: report.mismatches.slice(0, 200) }, null, 2));
  console.log(`written ${OUT}`);
  process.exitCode = report.ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
