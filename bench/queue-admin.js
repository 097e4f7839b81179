'use strict';
// CreateQueue and DeleteQueue throughput: management calls that change state, each recorded in
// the audit trail in its own transaction (the chain's head row is locked until commit, so these
// appends are serialised across the whole system).
//
//   npm run bench:queue-admin -- --queues 3000 --callers 32
const { startStack, call } = require('./lib');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function phase(title, port, tenant, action, names, callers) {
  const latencies = [];
  let next = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= names.length) return;
        const s = process.hrtime.bigint();
        const r = await call(port, tenant, action, { queueName: names[i] });
        latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
        if (r.code !== 0) failed++;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  const out = {
    title,
    calls: names.length,
    failed,
    perSecond: Math.round(names.length / seconds),
    p50: +pct(latencies, 50).toFixed(1),
    p99: +pct(latencies, 99).toFixed(1),
  };
  console.log(JSON.stringify(out));
  return out;
}

(async () => {
  const queues = arg('queues', 3000);
  const callers = arg('callers', 32);
  const stack = await startStack({ extraEnv: { QUEUE_NAME_COOLDOWN_SECONDS: '0' } });
  try {
    // several tenants, as real traffic has (one account's queue changes take its own lock too)
    const tenants = [stack.tenant, ...(await Promise.all(Array.from({ length: 7 }, (_, i) => stack.newTenant(`bench-${i}`))))];
    const names = Array.from({ length: queues }, (_, i) => `bq${i}`);
    const per = tenants.map((t, k) => ({ t, names: names.filter((_, i) => i % tenants.length === k) }));
    for (const action of ['CreateQueue', 'DeleteQueue']) {
      const t0 = process.hrtime.bigint();
      const results = await Promise.all(per.map(({ t, names: n }) => phase(`${action} (one tenant)`, stack.cmqPort, t, action, n, Math.max(1, Math.floor(callers / tenants.length)))));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(
        JSON.stringify({
          title: `${action}, ${tenants.length} tenants, ${callers} callers`,
          calls: queues,
          failed: results.reduce((a, r) => a + r.failed, 0),
          perSecond: Math.round(queues / seconds),
          p99Worst: Math.max(...results.map((r) => r.p99)),
        }),
      );
    }
  } finally {
    await stack.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
