import { CmqClient } from '@app/cmq';
import { freePort, spawnApp, waitForHttp } from '@app/testing';

describe('start-up and shutdown of the real processes', () => {
  it.each([
    ['Postgres', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/cmq' }, /^queue-api: Cannot reach Postgres at 127\.0\.0\.1:1 \(.+\)\. Set DATABASE_URL to a reachable server, or run `docker compose up -d postgres redis` to start one\.$/],
    ['Redis', { REDIS_URL: 'redis://127.0.0.1:1' }, /^queue-api: Cannot reach Redis at 127\.0\.0\.1:1 \(.+\)\. Set REDIS_URL to a reachable server, or run `docker compose up -d postgres redis` to start one\.$/],
  ])('fails at once with one clear line when %s is unreachable', async (_what, env, line) => {
    const started = Date.now();
    const app = spawnApp('queue-api', { ...env, CMQ_PORT: String(await freePort()) });
    expect(await app.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(8000);
    const out = app.output().trim();
    expect(out.split('\n')).toHaveLength(1);
    expect(out).toMatch(line);
  });

  it('refuses to start in production without ADMIN_TOKEN or MASTER_KEY', async () => {
    const noToken = spawnApp('billing-api', { NODE_ENV: 'production', ADMIN_TOKEN: '' });
    expect(await noToken.exited).toBe(1);
    expect(noToken.output().trim()).toBe('billing-api: Invalid configuration: ADMIN_TOKEN is required when NODE_ENV=production');
    const badKey = spawnApp('billing-api', { MASTER_KEY: 'short' });
    expect(await badKey.exited).toBe(1);
    expect(badKey.output()).toMatch(/MASTER_KEY must be 32 bytes/);
  });

  it('the launcher runs all three apps, serves the endpoints, and stops them together', async () => {
    const ports = { CMQ_PORT: await freePort(), BILLING_PORT: await freePort(), WORKER_PORT: await freePort() };
    const launcher = spawnApp('launcher', {
      CMQ_PORT: String(ports.CMQ_PORT),
      BILLING_PORT: String(ports.BILLING_PORT),
      WORKER_PORT: String(ports.WORKER_PORT),
      HOST: '127.0.0.1',
    });
    try {
      await waitForHttp(`http://127.0.0.1:${ports.WORKER_PORT}/health`, 40_000);
      await waitForHttp(`http://127.0.0.1:${ports.BILLING_PORT}/health`, 40_000);
      await waitForHttp(`http://127.0.0.1:${ports.CMQ_PORT}/health`, 40_000);
      const deadline = Date.now() + 10_000;
      while (!launcher.output().includes('CMQ Cloud is running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(launcher.output()).toContain(`CMQ endpoint   http://127.0.0.1:${ports.CMQ_PORT}/v2/index.php`);

      const { ADMIN_TOKEN } = process.env;
      const admin = (path: string, body?: unknown) =>
        fetch(`http://127.0.0.1:${ports.BILLING_PORT}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify(body ?? {}),
        }).then((r) => r.json() as Promise<Record<string, string>>);
      const account = await admin('/v1/accounts', { name: 'launcher' });
      const key = await admin(`/v1/accounts/${account.id}/keys`);
      const cmq = new CmqClient({ endpoint: `http://127.0.0.1:${ports.CMQ_PORT}`, secretId: key.secretId, secretKey: key.secretKey });
      expect((await cmq.call('CreateQueue', { queueName: 'hello' })).code).toBe(0);
      expect((await cmq.call('SendMessage', { queueName: 'hello', msgBody: 'world' })).code).toBe(0);
      expect(await cmq.call('ReceiveMessage', { queueName: 'hello' })).toMatchObject({ code: 0, msgBody: 'world' });
      cmq.close();
    } finally {
      expect(await launcher.stop('SIGTERM')).toBe(0);
    }
    await expect(fetch(`http://127.0.0.1:${ports.CMQ_PORT}/health`)).rejects.toThrow();
  }, 60_000);
});
