import { Client } from 'pg';
import { CmqClient } from '@app/cmq';
import { loadConfigWith } from '@app/config';
import { MIGRATIONS, runMigrations } from '@app/db';
import { freePort, scratchDatabase, sleep, spawnApp, TestStack, waitForHttp } from '@app/testing';

describe('resilience', () => {
  it('an unexpected failure is 6000 "(10050)server internal error" with HTTP 200, and stores nothing', async () => {
    const db = await scratchDatabase();
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    const stack = await TestStack.start({ DATABASE_URL: db.url });
    try {
      const t = await stack.tenant('broken');
      const cmq = stack.client(t);
      await cmq.call('CreateQueue', { queueName: 'q' });
      await stack.db.query('ALTER TABLE messages RENAME TO messages_away');
      const res = await cmq.raw(new URLSearchParams(cmq.signedParams('SendMessage', { queueName: 'q', msgBody: 'lost?' })).toString());
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ code: 6000, message: '(10050)server internal error' });
      await stack.db.query('ALTER TABLE messages_away RENAME TO messages');
      expect((await cmq.call('SendMessage', { queueName: 'q', msgBody: 'kept' })).code).toBe(0);
      expect(await stack.stored(t.accountId)).toEqual({ queues: 1, messages: 1 });
      expect(await cmq.call('ReceiveMessage', { queueName: 'q' })).toMatchObject({ msgBody: 'kept' });
    } finally {
      await stack.stop();
      await db.drop();
    }
  });

  it('replicas starting together on an empty database migrate it once', async () => {
    const db = await scratchDatabase();
    const ports = [await freePort(), await freePort(), await freePort()];
    const apps = ports.map((port) =>
      spawnApp('queue-api', { DATABASE_URL: db.url, MIGRATIONS_RUN: 'true', CMQ_PORT: String(port), HOST: '127.0.0.1' }),
    );
    try {
      await Promise.all(ports.map((p) => waitForHttp(`http://127.0.0.1:${p}/health`)));
      const c = new Client({ connectionString: db.url });
      await c.connect();
      const { rows } = await c.query('SELECT name FROM schema_migrations ORDER BY id');
      await c.end();
      expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await Promise.all(apps.map((a) => a.stop()));
      await db.drop();
    }
  }, 60_000);

  it('SIGTERM: open long polls answer at once, the process exits 0, acknowledged sends survive', async () => {
    const stack = await TestStack.start();
    const port = await freePort();
    const app = spawnApp('queue-api', { CMQ_PORT: String(port), HOST: '127.0.0.1' });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/health`);
      const t = await stack.tenant('shutdown');
      const cmq = new CmqClient({ endpoint: `http://127.0.0.1:${port}`, secretId: t.secretId, secretKey: t.secretKey });
      await cmq.call('CreateQueue', { queueName: 'waiting' });
      await cmq.call('CreateQueue', { queueName: 'kept' });
      const sent = await cmq.call('SendMessage', { queueName: 'kept', msgBody: 'acknowledged' });
      expect(sent.code).toBe(0);
      const poll = cmq.call('ReceiveMessage', { queueName: 'waiting', pollingWaitSeconds: 25 });
      await sleep(300);
      const stoppedAt = Date.now();
      const exit = app.stop('SIGTERM');
      expect(await poll).toMatchObject({ code: 7000 });
      expect(await exit).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(5000);
      cmq.close();
      // the same message, through the in-process queue-api on the same database
      const other = stack.client(t);
      expect(await other.call('ReceiveMessage', { queueName: 'kept' })).toMatchObject({ msgId: sent.msgId, msgBody: 'acknowledged' });
    } finally {
      await app.stop();
      await stack.stop();
    }
  }, 60_000);
});
