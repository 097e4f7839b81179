import { join } from 'node:path';
import { AppConfig, childEnv, ConfigError, loadConfig, sharedSecretsEnv } from '@app/config';
import { prepareInfrastructure, waitForHttp } from '@app/common';
import { StartupError } from '@app/db';
import { TcpBalancer } from './balancer';
import { AppName, nodeFlagsOf } from './node-flags';
import { ProcessSpec, Supervisor } from './supervisor';

/**
 * `npm start`: the whole system on one machine. Checks Postgres and Redis, applies migrations,
 * then runs queue-api, billing-api and worker as child processes sharing one ADMIN_TOKEN and
 * MASTER_KEY, and stops them all together.
 *
 * `npm run start:cluster` (`--cluster`): the production topology on one machine. CLUSTER_QUEUE_APIS
 * queue-api processes on CMQ_PORT+1, +2, ... behind a TCP balancer on CMQ_PORT, CLUSTER_WORKERS
 * workers (health and metrics on WORKER_PORT, +1, ...) and the billing API, all on the one Postgres
 * and Redis; a process that dies is started again.
 */
const entry = (app: AppName) => join(__dirname, '..', '..', app, 'src', 'main.js');

/** A child process of `app`: its entry point and its node flags go together. */
const processOf = (app: AppName, name: string, env: NodeJS.ProcessEnv): ProcessSpec => ({ name, entry: entry(app), env, execArgv: nodeFlagsOf(app) });

interface Plan {
  processes: ProcessSpec[];
  /** where each process answers /health (and /metrics) */
  health: Array<{ name: string; port: number }>;
  /** the queue-api ports the balancer spreads over (none: queue-api listens on CMQ_PORT itself) */
  backends: number[];
}

export function plan(config: AppConfig, cluster: boolean): Plan {
  const base = { ...sharedSecretsEnv(config), MIGRATIONS_RUN: 'false' };
  if (!cluster) {
    const env = childEnv(base);
    return {
      processes: (['queue-api', 'billing-api', 'worker'] as AppName[]).map((app) => processOf(app, app, env)),
      health: [
        { name: 'queue-api', port: config.ports.cmq },
        { name: 'billing-api', port: config.ports.billing },
        { name: 'worker', port: config.ports.worker },
      ],
      backends: [],
    };
  }
  const p: Plan = { processes: [], health: [], backends: [] };
  for (let i = 1; i <= config.cluster.queueApis; i++) {
    const port = config.ports.cmq + i;
    p.processes.push(processOf('queue-api', `queue-api-${i}`, childEnv({ ...base, CMQ_PORT: String(port) })));
    p.health.push({ name: `queue-api-${i}`, port });
    p.backends.push(port);
  }
  for (let i = 1; i <= config.cluster.workers; i++) {
    const port = config.ports.worker + i - 1;
    // CMQ_PORT stays the balancer's: the SLA prober goes through it, as users do
    p.processes.push(processOf('worker', `worker-${i}`, childEnv({ ...base, WORKER_PORT: String(port) })));
    p.health.push({ name: `worker-${i}`, port });
  }
  p.processes.push(processOf('billing-api', 'billing-api', childEnv(base)));
  p.health.push({ name: 'billing-api', port: config.ports.billing });
  return p;
}

async function main(): Promise<void> {
  const cluster = process.argv.includes('--cluster');
  const config = loadConfig();
  await prepareInfrastructure(config);
  const { processes, health, backends } = plan(config, cluster);

  const supervisor = new Supervisor({ restart: cluster });
  const balancer = backends.length ? new TcpBalancer(backends.map((port) => ({ host: '127.0.0.1', port }))) : null;
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code), 15_000).unref();
    void Promise.all([balancer?.close(), supervisor.stop('SIGTERM')]).then(() => process.exit(code));
  };
  supervisor.on('gave-up', () => stopAll(1));
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));

  if (balancer) await balancer.listen(config.ports.cmq, config.host);
  for (const spec of processes) supervisor.start(spec);

  const host = `http://${config.publicHost}`;
  const ok = await Promise.all(health.map(({ port }) => waitForHttp(`${host}:${port}/health`, 60_000, 250)));
  if (!ok.every(Boolean)) {
    console.error(`launcher: not healthy within 60 s: ${health.filter((_, i) => !ok[i]).map((h) => h.name).join(', ')}`);
    stopAll(1);
    return;
  }
  const lines = [
    '',
    cluster ? 'CMQ Cloud is running (cluster):' : 'CMQ Cloud is running:',
    `  CMQ endpoint   ${host}:${config.ports.cmq}/v2/index.php   (also /)`,
    `  billing API    ${host}:${config.ports.billing}/v1          (OpenAPI: /docs)`,
    `  web console    ${host}:${config.ports.billing}/console/`,
  ];
  if (cluster) {
    for (const h of health) lines.push(`  ${h.name.padEnd(14)} ${host}:${h.port}/health   /metrics`);
  } else {
    lines.push(`  worker health  ${host}:${config.ports.worker}/health`);
  }
  lines.push(
    config.adminTokenGenerated
      ? `  ADMIN_TOKEN    ${config.adminToken}   (generated for this run; set ADMIN_TOKEN to fix it)`
      : '  ADMIN_TOKEN    as configured',
    '',
  );
  console.log(lines.join('\n'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof StartupError || err instanceof ConfigError ? `launcher: ${err.message}` : err);
    process.exit(1);
  });
}
