'use strict';
// Shared pieces of the benchmarks: a queue-api and billing-api started from dist/ against a
// database made for the run, a tenant, signed CMQ request bodies, and wrk runs.
const { spawn } = require('node:child_process');
const { randomBytes, randomInt } = require('node:crypto');
const { join } = require('node:path');
const { Client } = require('pg');
const { sign, sourceString } = require('../dist/libs/cmq/src/signature');
const { waitForHttp } = require('../dist/libs/common/src/wait-for-http');

const ROOT = join(__dirname, '..');

async function resetDatabase(name) {
  const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return `postgres://postgres@127.0.0.1:5432/${name}`;
}

function start(app, env, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'dist/apps', app, 'src/main.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

/** Waits until `url` answers 200, or throws. */
async function waitFor(url, ms = 30000) {
  if (!(await waitForHttp(url, ms))) throw new Error(`${url} not up within ${ms} ms`);
}

/** Starts queue-api (+ billing-api for the tenant) on a fresh database; returns what a bench needs. */
async function startStack({ cmqPort = 18080, billingPort = 13000, extraEnv = {}, queueNodeArgs = [] } = {}) {
  const databaseUrl = await resetDatabase('cmq_bench');
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: databaseUrl,
    REDIS_PREFIX: `cmqbench-${Date.now()}`,
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    MASTER_KEY: randomBytes(32).toString('base64'),
    CMQ_PORT: String(cmqPort),
    BILLING_PORT: String(billingPort),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const billing = start('billing-api', env);
  await waitFor(`http://127.0.0.1:${billingPort}/health`);
  const queue = start('queue-api', { ...env, MIGRATIONS_RUN: 'false' }, queueNodeArgs);
  await waitFor(`http://127.0.0.1:${cmqPort}/health`);
  const admin = async (path) => {
    const res = await fetch(`http://127.0.0.1:${billingPort}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench' }),
    });
    const body = await res.json();
    if (res.status !== 201) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const account = await admin('/v1/accounts');
  const key = await admin(`/v1/accounts/${account.id}/keys`);
  return {
    env,
    databaseUrl,
    cmqPort,
    tenant: { accountId: account.id, secretId: key.secretId, secretKey: key.secretKey },
    stop: () => {
      queue.kill('SIGTERM');
      billing.kill('SIGTERM');
      return Promise.all([queue, billing].map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))));
    },
  };
}

/** A signed form body, exactly as a client builds it (fresh Timestamp, Nonce and Signature). */
function signedBody(tenant, host, action, params) {
  const pairs = [
    ['Action', action],
    ['SecretId', tenant.secretId],
    ['Timestamp', String(Math.floor(Date.now() / 1000))],
    ['Nonce', String(randomInt(0, 2 ** 47))],
    ['RequestClient', 'bench'],
    ...Object.entries(params),
  ];
  const src = sourceString('POST', host, '/v2/index.php', pairs);
  pairs.push(['Signature', sign(src, tenant.secretKey, 'sha1')]);
  return new URLSearchParams(pairs).toString();
}

async function call(port, tenant, action, params) {
  const res = await fetch(`http://127.0.0.1:${port}/v2/index.php`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: signedBody(tenant, `127.0.0.1:${port}`, action, params),
  });
  return res.json();
}

/**
 * wrk (C, from Debian's package `wrk`) as the load generator: far lighter than a Node one, so
 * the server, not the generator, is what the figures measure. The bodies are signed before the
 * run, each unique (the server refuses a replayed signature), and written one per line to a file;
 * they stay valid for the signature window (300 s by default), so make them just before the run.
 */
async function wrkLoad({ port, makeBody, count, connections, duration, threads = 2, title }) {
  const { execFileSync } = require('node:child_process');
  const { writeFileSync, mkdtempSync } = require('node:fs');
  const { tmpdir } = require('node:os');
  const file = join(mkdtempSync(join(tmpdir(), 'cmq-bench-')), 'bodies.txt');
  const lines = new Array(count);
  for (let i = 0; i < count; i++) lines[i] = makeBody();
  writeFileSync(file, lines.join('\n') + '\n');
  const out = execFileSync(
    'wrk',
    [`-t${threads}`, `-c${connections}`, `-d${duration}s`, '--timeout', '10s', '-s', join(__dirname, 'wrk-cmq.lua'), `http://127.0.0.1:${port}/v2/index.php`],
    { env: { ...process.env, BODIES: file, WRK_THREADS: String(threads) }, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const num = (key) => Number((new RegExp(`^${key} ([\\d.]+)$`, 'm').exec(out) || [])[1]);
  const socketErrors = /Socket errors: (.*)/.exec(out);
  return {
    title,
    requestsPerSec: Math.round(num('REQUESTS') / num('DURATION_S')),
    total: num('REQUESTS'),
    p50: num('P50_MS'),
    p90: num('P90_MS'),
    p99: num('P99_MS'),
    'p99.9': num('P99.9_MS'),
    cmqErrors: num('CMQ_ERRORS'),
    exhausted: num('EXHAUSTED'),
    socketErrors: socketErrors ? socketErrors[1] : 'none',
  };
}

module.exports = { startStack, signedBody, call, wrkLoad, start, waitFor, ROOT };
