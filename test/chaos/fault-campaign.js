'use strict';
// `npm run chaos:faults`: the fault campaign (see fault-campaign-lib.js). Options:
//   --gap <s>        steady load between faults (default 30)
//   --warmup <s>     load before the first fault (default 15)
//   --hold <s>       how long the worker's clock stays jumped (default 20)
//   --rounds <n>     the whole list of faults this many times (default 2)
//   --visibility <s> the queues' visibility timeout (default 30)
//   --json <file>    write the result there too
const { writeFileSync } = require('node:fs');
const { numArg, strArg } = require('../../bench/lib');
const { runCampaign } = require('./fault-campaign-lib');

const FAULTS = ['kill-queue-api', 'kill-worker', 'postgres-restart', 'postgres-terminate', 'redis-flushall', 'redis-restart', 'worker-clock-jump'];

(async () => {
  const rounds = numArg('rounds', 2);
  const result = await runCampaign({
    warmup: numArg('warmup', 15) * 1000,
    gap: numArg('gap', 30) * 1000,
    hold: numArg('hold', 20) * 1000,
    visibility: numArg('visibility', 30),
    faults: Array.from({ length: rounds }, () => FAULTS).flat(),
  });
  console.log('');
  console.log('| fault | recovered after | note |');
  console.log('|---|---|---|');
  for (const f of result.faults) console.log(`| ${f.name} | ${f.recoveryMs === null ? 'not recovered' : `${f.recoveryMs} ms`} | ${f.note} |`);
  console.log('');
  console.log('| check | result | detail |');
  console.log('|---|---|---|');
  for (const c of result.checks) console.log(`| ${c.name} | ${c.ok ? 'pass' : 'FAIL'} | ${c.detail} |`);
  console.log('');
  console.log(JSON.stringify(result.figures));
  const out = strArg('json', null);
  if (out) writeFileSync(out, JSON.stringify(result, null, 2));
  process.exit(result.ok ? 0 : 1);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
