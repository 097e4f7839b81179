import { CmqClient, CmqReply } from '@app/cmq';
import { caller, CLIENT_MODES, QueueApiProcesses, sleep, TestStack, TestTenant } from '@app/testing';

/** Waits for the start of a wall-clock second, so a short burst falls in one limit window. */
async function startOfSecond(): Promise<number> {
  const ms = Date.now() % 1000;
  if (ms > 20) await sleep(1000 - ms + 5);
  return Math.floor(Date.now() / 1000);
}

describe('the per-queue QPS cap', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let processes: QueueApiProcesses;
  let clients: CmqClient[];

  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('qps');
    processes = await QueueApiProcesses.start(tenant, 2);
    clients = processes.clients;
  }, 60_000);

  afterAll(async () => {
    await processes?.stop();
    await stack.stop();
  });

  async function limitQueue(queueName: string, qpsLimit: number | null) {
    const res = await stack.admin('PUT', `/v1/accounts/${tenant.accountId}/queues/${queueName}/qps-limit`, { qpsLimit });
    expect(res.status).toBe(200);
    return res.body;
  }

  async function storedIds(queueName: string): Promise<Set<string>> {
    const { rows } = await stack.db.query(
      `SELECT m.msg_id::text AS id FROM messages m JOIN queues q ON q.id = m.queue_id WHERE q.account_id = $1 AND q.name = $2`,
      [tenant.accountId, queueName],
    );
    return new Set(rows.map((r) => r.id));
  }

  it('the internal API sets and clears a queue limit, and refuses bad input with a reason', async () => {
    await clients[0].call('CreateQueue', { queueName: 'settings' });
    expect(await limitQueue('settings', 250)).toMatchObject({ queueName: 'settings', qpsLimit: 250, effectiveQpsLimit: 250 });
    expect((await clients[1].call('GetQueueAttributes', { queueName: 'settings' })).qps).toBe(250);
    expect(await limitQueue('settings', null)).toMatchObject({ qpsLimit: null, effectiveQpsLimit: 5000 });
    expect((await clients[0].call('GetQueueAttributes', { queueName: 'settings' })).qps).toBe(5000);
    for (const bad of [{ qpsLimit: 0 }, { qpsLimit: 1.5 }, { qpsLimit: 'fast' }, {}]) {
      const res = await stack.admin('PUT', `/v1/accounts/${tenant.accountId}/queues/settings/qps-limit`, bad);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.detail)).toMatch(/qpsLimit/);
    }
    const missing = await stack.admin('PUT', `/v1/accounts/${tenant.accountId}/queues/nowhere/qps-limit`, { qpsLimit: 5 });
    expect(missing.status).toBe(404);
    const other = await stack.tenant('other');
    const foreign = await stack.admin('PUT', `/v1/accounts/${other.accountId}/queues/settings/qps-limit`, { qpsLimit: 5 });
    expect(foreign.status).toBe(404);
    const noToken = await stack.admin('PUT', `/v1/accounts/${tenant.accountId}/queues/settings/qps-limit`, { qpsLimit: 5 }, '');
    expect(noToken.status).toBe(401);
  });

  it('a burst from two processes gets exactly the limit through, 4420 for the rest, every accepted send stored', async () => {
    const limit = 30;
    await clients[0].call('CreateQueue', { queueName: 'burst' });
    await limitQueue('burst', limit);
    // both processes know the queue (and its limit) before the burst
    for (const c of clients) expect((await c.call('GetQueueAttributes', { queueName: 'burst' })).qps).toBe(limit);
    let replies: Array<{ via: number; reply: CmqReply }> = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const second = await startOfSecond();
      replies = await Promise.all(
        Array.from({ length: 120 }, async (_, i) => ({
          via: i % 2,
          reply: await clients[i % 2].call('SendMessage', { queueName: 'burst', msgBody: `m${attempt}-${i}` }),
        })),
      );
      if (Math.floor(Date.now() / 1000) === second) break; // the whole burst fell in one window
      await sleep(1100);
      await stack.db.query(`DELETE FROM messages m USING queues q WHERE q.id = m.queue_id AND q.account_id = $1 AND q.name = 'burst'`, [
        tenant.accountId,
      ]);
    }
    const accepted = replies.filter((r) => r.reply.code === 0);
    const throttled = replies.filter((r) => r.reply.code !== 0);
    expect(accepted).toHaveLength(limit);
    for (const r of throttled) expect(r.reply).toMatchObject({ code: 4420, message: '(10250)qps throttling' });
    // the budget is shared: both processes turned requests away
    expect(new Set(throttled.map((r) => r.via)).size).toBe(2);
    expect(await storedIds('burst')).toEqual(new Set(accepted.map((r) => r.reply.msgId)));
  });

  it('qcloudapi-sdk hears 4420 "(10250)qps throttling" too', async () => {
    const sdk = caller(stack, tenant, CLIENT_MODES.find((m) => m.client === 'qcloudapi-sdk' && m.method === 'POST')!);
    await sdk('CreateQueue', { queueName: 'tiny' });
    await limitQueue('tiny', 1);
    await startOfSecond();
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await sdk('SendMessage', { queueName: 'tiny', msgBody: `t${i}` }));
    const accepted = replies.filter((r) => r.code === 0);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(accepted.length).toBeLessThanOrEqual(2); // the five may straddle two windows
    for (const r of replies.filter((r) => r.code !== 0)) expect(r).toMatchObject({ code: 4420, message: '(10250)qps throttling' });
    expect(await storedIds('tiny')).toEqual(new Set(accepted.map((r) => r.msgId)));
  });

  it('sustained load well above the cap from two processes: the cap holds every second, nothing accepted is lost', async () => {
    const limit = 50;
    const sdk = caller(stack, tenant, CLIENT_MODES.find((m) => m.client === 'qcloudapi-sdk')!);
    await sdk('CreateQueue', { queueName: 'sustained' });
    await limitQueue('sustained', limit);
    const start = await startOfSecond();
    const end = start + 3;
    // accepted requests sent and answered within one wall-clock second were admitted in that second's window
    const perSecond = new Map<number, number>();
    const acceptedIds: string[] = [];
    let throttled = 0;
    let accepted = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        const c = clients[w % 2];
        while (Date.now() < end * 1000 - 50) {
          const sent = Math.floor(Date.now() / 1000);
          const r = await (w % 4 === 3
            ? c.call('BatchSendMessage', { queueName: 'sustained', msgBody: ['a', 'b'] })
            : c.call('SendMessage', { queueName: 'sustained', msgBody: 'x' }));
          if (r.code === 0) {
            accepted++;
            if (Math.floor(Date.now() / 1000) === sent) perSecond.set(sent, (perSecond.get(sent) ?? 0) + 1);
            if (r.msgId) acceptedIds.push(r.msgId as string);
            else acceptedIds.push(...(r.msgList as Array<{ msgId: string }>).map((m) => m.msgId));
          } else {
            expect(r).toMatchObject({ code: 4420, message: '(10250)qps throttling' });
            throttled++;
          }
          await sleep(20); // 8 loops of at most 50 requests/s each: offered load several times the cap
        }
      }),
    );
    expect(throttled).toBeGreaterThan(limit);
    for (const n of perSecond.values()) expect(n).toBeLessThanOrEqual(limit);
    // three windows, and the last requests may fall in a fourth
    expect(accepted).toBeLessThanOrEqual(limit * 4);
    expect(accepted).toBeGreaterThanOrEqual(limit * 2);
    expect(await storedIds('sustained')).toEqual(new Set(acceptedIds));
  }, 30_000);
});
