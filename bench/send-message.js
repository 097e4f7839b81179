'use strict';
// SendMessage to one queue, durable (each reply only after its commit), and a bare Fastify
// endpoint in the same run as the ceiling. Load from wrk on the same machine.
// Usage: npm run bench:send -- [--duration 20] [--connections 64] [--body 256]
//          [--group-commit-concurrency N (GROUP_COMMIT_CONCURRENCY; default: the app's)]
//          [--queue-qps-limit N (QUEUE_QPS_LIMIT of the queue-api; default 1,000,000: not the bottleneck)]
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { Client } = require('pg');
const { startStack, signedBody, call, wrkLoad, waitFor, BENCH_QUEUE_QPS_LIMIT } = require('./lib');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};

async function main() {
  const duration = arg('duration', 20);
  const connections = arg('connections', 64);
  const bodySize = arg('body', 256);
  const qpsLimit = arg('queue-qps-limit', BENCH_QUEUE_QPS_LIMIT);
  const extraEnv = { QUEUE_QPS_LIMIT: String(qpsLimit) };
  const commits = arg('group-commit-concurrency', 0);
  if (commits > 0) extraEnv.GROUP_COMMIT_CONCURRENCY = String(commits);
  const stack = await startStack({ extraEnv });
  const bare = spawn(process.execPath, [join(__dirname, 'bare-fastify.js'), '18081'], { stdio: 'inherit' });
  try {
    await waitFor('http://127.0.0.1:18081/health', 10000);
    const created = await call(stack.cmqPort, stack.tenant, 'CreateQueue', { queueName: 'bench' });
    if (created.code !== 0) throw new Error(JSON.stringify(created));
    const payload = 'x'.repeat(bodySize);
    const host = `127.0.0.1:${stack.cmqPort}`;
    const makeBody = () => signedBody(stack.tenant, host, 'SendMessage', { queueName: 'bench', msgBody: payload, delaySeconds: '0' });
    const count = 30_000 * duration;

    await wrkLoad({ port: stack.cmqPort, makeBody, count: 40_000, connections, duration: 3, title: 'warm-up' });
    const ceiling = await wrkLoad({ port: 18081, makeBody, count, connections, duration, title: 'bare Fastify' });
    const db = new Client({ connectionString: stack.databaseUrl });
    await db.connect();
    const before = Number((await db.query('SELECT count(*) FROM messages')).rows[0].count);
    const send = await wrkLoad({ port: stack.cmqPort, makeBody, count, connections, duration, title: 'SendMessage (durable)' });
    const after = Number((await db.query('SELECT count(*) FROM messages')).rows[0].count);
    await db.end();

    console.log(`\nSendMessage, ${bodySize}-byte bodies, ${connections} connections, ${duration} s each, wrk on the same machine`);
    console.table([ceiling, send]);
    console.log(`ratio to bare Fastify: ${(send.requestsPerSec / ceiling.requestsPerSec).toFixed(2)}`);
    console.log(`replies with code 0: ${send.total - send.cmqErrors}; message rows committed during the run: ${after - before}`);
  } finally {
    bare.kill('SIGTERM');
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
