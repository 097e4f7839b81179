import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { childEnv, ConfigError, loadConfig, sharedSecretsEnv } from '@app/config';
import { prepareInfrastructure, waitForHttp } from '@app/common';
import { StartupError } from '@app/db';

/**
 * `npm start`: the whole system on one machine. Checks Postgres and Redis, applies migrations,
 * then runs queue-api, billing-api and worker as child processes sharing one ADMIN_TOKEN and
 * MASTER_KEY, and stops them all together.
 */
const APPS = ['queue-api', 'billing-api', 'worker'] as const;

async function main(): Promise<void> {
  const config = loadConfig();
  await prepareInfrastructure(config);
  const env = childEnv({ ...sharedSecretsEnv(config), MIGRATIONS_RUN: 'false' });
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const c of children.values()) c.kill('SIGTERM');
    setTimeout(() => process.exit(code), 10_000).unref();
    const check = setInterval(() => {
      if ([...children.values()].every((c) => c.exitCode !== null || c.signalCode !== null)) {
        clearInterval(check);
        process.exit(code);
      }
    }, 100);
  };
  for (const app of APPS) {
    const child = fork(join(__dirname, '..', '..', app, 'src', 'main.js'), [], { env, stdio: 'inherit' });
    children.set(app, child);
    child.on('exit', (code, signal) => {
      if (!stopping) {
        console.error(`launcher: ${app} exited (${signal ?? code}); stopping the others`);
        stopAll(1);
      }
    });
  }
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));

  const host = `http://${config.publicHost}`;
  const ok = await Promise.all(
    [config.ports.cmq, config.ports.billing, config.ports.worker].map((port) =>
      waitForHttp(`${host}:${port}/health`, 60_000, 250),
    ),
  );
  if (!ok.every(Boolean)) {
    console.error('launcher: not every app became healthy within 60 s');
    stopAll(1);
    return;
  }
  console.log(
    [
      '',
      'CMQ Cloud is running:',
      `  CMQ endpoint   ${host}:${config.ports.cmq}/v2/index.php   (also /)`,
      `  billing API    ${host}:${config.ports.billing}/v1          (OpenAPI: /docs)`,
      `  web console    ${host}:${config.ports.billing}/console/`,
      `  worker health  ${host}:${config.ports.worker}/health`,
      config.adminTokenGenerated
        ? `  ADMIN_TOKEN    ${config.adminToken}   (generated for this run; set ADMIN_TOKEN to fix it)`
        : '  ADMIN_TOKEN    as configured',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(
    err instanceof StartupError || err instanceof ConfigError ? `launcher: ${err.message}` : err,
  );
  process.exit(1);
});
