import { CmqClient } from '@app/cmq';
import { expectEventually, QueueApiProcesses, sleep, TestStack, TestTenant } from '@app/testing';

/**
 * Two queue-api processes on one database and one Redis, as a load balancer would run them.
 * The periodic long-poll recheck is set far beyond the test's deadlines, so a waiter can only
 * be woken in time by the announcement of a send in the other process.
 */
describe('two queue-api processes on one database', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let processes: QueueApiProcesses;
  let clients: CmqClient[];

  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('multiprocess');
    processes = await QueueApiProcesses.start(tenant, 2, { LONG_POLL_RECHECK_MS: '60000' });
    clients = processes.clients;
  }, 60_000);

  afterAll(async () => {
    await processes?.stop();
    await stack.stop();
  });

  it('never delivers a message twice within its visibility timeout across processes', async () => {
    const [a, b] = clients;
    expect((await a.call('CreateQueue', { queueName: 'shared', visibilityTimeout: 120 })).code).toBe(0);
    const sent: string[] = [];
    await Promise.all(
      Array.from({ length: 25 }, async (_, i) => {
        const c = i % 2 ? a : b;
        const r = await c.call('BatchSendMessage', { queueName: 'shared', msgBody: Array.from({ length: 16 }, (_, j) => `${i}-${j}`) });
        expect(r.code).toBe(0);
        sent.push(...(r.msgList as Array<{ msgId: string }>).map((m) => m.msgId));
      }),
    );
    expect(sent).toHaveLength(400);
    const received: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const c = clients[i % 2];
        for (;;) {
          const r = i % 4 === 0 ? await c.call('ReceiveMessage', { queueName: 'shared' }) : await c.call('BatchReceiveMessage', { queueName: 'shared', numOfMsg: 5 });
          if (r.code === 7000) return;
          expect(r.code).toBe(0);
          if (r.msgInfoList) received.push(...(r.msgInfoList as Array<{ msgId: string }>).map((m) => m.msgId));
          else received.push(r.msgId as string);
        }
      }),
    );
    expect(received).toHaveLength(400);
    expect(new Set(received).size).toBe(400);
    expect(new Set(received)).toEqual(new Set(sent));
  });

  it('a long poll on one process is woken at once by a send on the other', async () => {
    const [a, b] = clients;
    await a.call('CreateQueue', { queueName: 'wake' });
    for (const [waiter, sender] of [
      [a, b],
      [b, a],
    ]) {
      const started = Date.now();
      const waiting = waiter.call('ReceiveMessage', { queueName: 'wake', pollingWaitSeconds: 20 });
      await sleep(300);
      const sent = await sender.call('SendMessage', { queueName: 'wake', msgBody: 'ping' });
      const got = await waiting;
      expect(got).toMatchObject({ code: 0, msgId: sent.msgId });
      expect(Date.now() - started).toBeLessThan(1500);
      await waiter.call('DeleteMessage', { queueName: 'wake', receiptHandle: got.receiptHandle as string });
    }
  });

  it('a key disabled through the internal API is refused by every process at once', async () => {
    const t = await stack.tenant('revoke');
    const [a, b] = clients.map((c) => new CmqClient({ ...c.options, secretId: t.secretId, secretKey: t.secretKey }));
    expect((await a.call('ListQueue')).code).toBe(0);
    expect((await b.call('ListQueue')).code).toBe(0);
    await stack.admin('POST', `/v1/accounts/${t.accountId}/keys/${t.secretId}/disable`);
    await expectEventually(async () => {
      expect((await a.call('ListQueue')).code).toBe(4100);
      expect((await b.call('ListQueue')).code).toBe(4100);
    }, 1000);
    a.close();
    b.close();
  });
});
