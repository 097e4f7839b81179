import { execFileSync } from 'node:child_process';
import { CmqClient } from '@app/cmq';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { expectEventually, freePortRun, scratchDatabase, spawnApp, SpawnedApp, waitForHttp } from '@app/testing';

/** The launcher's children: name (from the entry point), pid and command line. */
function children(launcher: SpawnedApp): Array<{ pid: number; app: string; args: string }> {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(launcher.child.pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pid, ...words] = line.trim().split(/\s+/);
      const args = words.join(' ');
      return { pid: Number(pid), app: /apps\/([a-z-]+)\/src\/main\.js/.exec(args)?.[1] ?? '?', args };
    });
}

/**
 * `npm run start:cluster`: two queue-api processes behind the launcher's balancer, two workers
 * and the billing API on one database and Redis; a process killed with SIGKILL is started again
 * while the endpoint keeps answering through the other queue-api.
 */
describe('the cluster topology (launcher --cluster)', () => {
  it('serves through the balancer, restarts killed processes, and stops them all on SIGTERM', async () => {
    const db = await scratchDatabase();
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    const cmqPort = await freePortRun(3);
    const workerPort = await freePortRun(2);
    const billingPort = await freePortRun(1);
    const launcher = spawnApp(
      'launcher',
      {
        DATABASE_URL: db.url,
        REDIS_PREFIX: `${process.env.REDIS_PREFIX}:cluster`,
        CMQ_PORT: String(cmqPort),
        WORKER_PORT: String(workerPort),
        BILLING_PORT: String(billingPort),
        HOST: '127.0.0.1',
      },
      ['--cluster'],
    );
    const clients: CmqClient[] = [];
    try {
      const deadline = Date.now() + 60_000;
      while (!launcher.output().includes('CMQ Cloud is running (cluster)') && Date.now() < deadline) {
        if (launcher.child.exitCode !== null) throw new Error(`launcher exited: ${launcher.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const [name, port] of [['queue-api-1', cmqPort + 1], ['queue-api-2', cmqPort + 2], ['worker-1', workerPort], ['worker-2', workerPort + 1], ['billing-api', billingPort]] as const) {
        expect(launcher.output()).toContain(`${name.padEnd(14)} http://127.0.0.1:${port}/health`);
      }
      const before = children(launcher);
      expect(before.map((c) => c.app).sort()).toEqual(['billing-api', 'queue-api', 'queue-api', 'worker', 'worker']);
      // the queue-api processes run with their larger young generation, the others with V8's defaults
      for (const c of before) expect(c.args.includes('--max-semi-space-size=64')).toBe(c.app === 'queue-api');

      const admin = (path: string) =>
        fetch(`http://127.0.0.1:${billingPort}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${process.env.ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'cluster' }),
        }).then((r) => r.json() as Promise<Record<string, string>>);
      const account = await admin('/v1/accounts');
      const key = await admin(`/v1/accounts/${account.id}/keys`);
      const client = () => {
        const c = new CmqClient({ endpoint: `http://127.0.0.1:${cmqPort}`, secretId: key.secretId, secretKey: key.secretKey });
        clients.push(c);
        return c;
      };
      expect((await client().call('CreateQueue', { queueName: 'spread', visibilityTimeout: 600 })).code).toBe(0);

      // each new connection goes to the next queue-api: both serve the one queue
      const sent: string[] = [];
      for (let i = 0; i < 10; i++) {
        const c = client();
        const r = await c.call('SendMessage', { queueName: 'spread', msgBody: `m${i}` });
        expect(r.code).toBe(0);
        sent.push(r.msgId as string);
        c.close();
      }

      // SIGKILL one queue-api and one worker: the endpoint keeps answering, both come back
      const [queueApi] = before.filter((c) => c.app === 'queue-api');
      const [worker] = before.filter((c) => c.app === 'worker');
      process.kill(queueApi.pid, 'SIGKILL');
      process.kill(worker.pid, 'SIGKILL');
      // Sends only once the launcher has seen both exits. A process is gone only when its last
      // thread is: node's other threads outlive the main one (which shows as a zombie meanwhile)
      // and hold its listening socket, so the kernel still accepts connections for it, lost with
      // it, as on any balancer. The parent hears of the exit after the last thread.
      await expectEventually(() => {
        expect(launcher.output()).toMatch(/queue-api-\d exited \(SIGKILL\); starting it again/);
        expect(launcher.output()).toMatch(/worker-\d exited \(SIGKILL\); starting it again/);
      }, 10_000);
      for (let i = 10; i < 20; i++) {
        const c = client();
        const r = await c.call('SendMessage', { queueName: 'spread', msgBody: `m${i}` });
        expect(r.code).toBe(0);
        sent.push(r.msgId as string);
        c.close();
      }
      await expectEventually(() => {
        const now = children(launcher);
        expect(now.map((c) => c.app).sort()).toEqual(['billing-api', 'queue-api', 'queue-api', 'worker', 'worker']);
        expect(now.map((c) => c.pid)).not.toContain(queueApi.pid);
        expect(now.map((c) => c.pid)).not.toContain(worker.pid);
      }, 15_000);
      await waitForHttp(`http://127.0.0.1:${cmqPort + 1}/health`);
      await waitForHttp(`http://127.0.0.1:${cmqPort + 2}/health`);
      await waitForHttp(`http://127.0.0.1:${workerPort}/health`);
      await waitForHttp(`http://127.0.0.1:${workerPort + 1}/health`);

      // every acknowledged message is there once, whichever process took it
      const got = new Map<string, string>();
      const reader = client();
      for (;;) {
        const r = await reader.call('ReceiveMessage', { queueName: 'spread' });
        if (r.code === 7000) break;
        expect(r.code).toBe(0);
        expect(got.has(r.msgId as string)).toBe(false);
        got.set(r.msgId as string, r.msgBody as string);
      }
      expect([...got.keys()].sort()).toEqual([...sent].sort());
    } finally {
      clients.forEach((c) => c.close());
      const pids = children(launcher).map((c) => c.pid);
      expect(await launcher.stop('SIGTERM')).toBe(0);
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
      await db.drop();
    }
  }, 120_000);
});
