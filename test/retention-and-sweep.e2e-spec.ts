import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { CmqClient } from '@app/cmq';
import { loadConfigWith } from '@app/config';
import { Caller, caller, CLIENT_MODES, expectEventually, freePort, sleep, spawnApp, TestStack, TestTenant, waitForHttp } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

/**
 * Retention is at least 60 s by the protocol, so this spec waits it out for real: expired
 * messages stop being delivered and counted at once, and the worker's sweep deletes them, as it
 * purges the messages of deleted queues.
 */
describe('message retention and the worker sweep', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let cmq: CmqClient;
  let worker: NestFastifyApplication;

  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('retention');
    cmq = stack.client(tenant);
    worker = await createWorker(loadConfigWith({ SWEEP_INTERVAL_MS: '500' }));
    await worker.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    await worker?.close();
    await stack.stop();
  });

  const rowsOf = async (queueName: string) =>
    (
      await stack.db.query(
        `SELECT count(m.*)::int AS n FROM queues q LEFT JOIN messages m ON m.queue_id = q.id
          WHERE q.account_id = $1 AND q.name = $2 GROUP BY q.id ORDER BY q.id DESC LIMIT 1`,
        [tenant.accountId, queueName],
      )
    ).rows[0].n as number;

  it('purges the messages of a deleted queue in the background', async () => {
    await cmq.call('CreateQueue', { queueName: 'gone' });
    await cmq.call('BatchSendMessage', { queueName: 'gone', msgBody: ['a', 'b', 'c'] });
    expect(await rowsOf('gone')).toBe(3);
    await cmq.call('DeleteQueue', { queueName: 'gone' });
    await expectEventually(async () => expect(await rowsOf('gone')).toBe(0), 10_000, 200);
  });

  it('folds the counter shards of a stopped process into one row, the counts unchanged', async () => {
    await cmq.call('CreateQueue', { queueName: 'folded', visibilityTimeout: 300 });
    const port = await freePort();
    const app = spawnApp('queue-api', { CMQ_PORT: String(port), HOST: '127.0.0.1' });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/health`);
      const other = new CmqClient({ endpoint: `http://127.0.0.1:${port}`, secretId: tenant.secretId, secretKey: tenant.secretKey });
      await Promise.all(Array.from({ length: 10 }, (_, i) => other.call('BatchSendMessage', { queueName: 'folded', msgBody: [`a${i}`, `b${i}`, `c${i}`] })));
      const got = await other.call('BatchReceiveMessage', { queueName: 'folded', numOfMsg: 4 });
      const handles = (got.msgInfoList as Array<{ receiptHandle: string }>).map((m) => m.receiptHandle);
      expect((await other.call('BatchDeleteMessage', { queueName: 'folded', receiptHandle: handles.slice(0, 2) })).code).toBe(0);
      other.close();
    } finally {
      await app.stop();
    }
    const shards = async () =>
      (
        await stack.db.query(
          `SELECT c.shard, c.msgs::int AS msgs FROM queue_counters c JOIN queues q ON q.id = c.queue_id
            WHERE q.account_id = $1 AND q.name = 'folded'`,
          [tenant.accountId],
        )
      ).rows as Array<{ shard: number; msgs: number }>;
    await expectEventually(async () => expect(await shards()).toEqual([{ shard: 0, msgs: 28 }]), 10_000, 200);
    expect(await cmq.call('GetQueueAttributes', { queueName: 'folded' })).toMatchObject({ activeMsgNum: 26, inactiveMsgNum: 2 });
  });

  /** One client's run of the retention scenario, on queues of its own. */
  async function expiry(call: Caller, suffix: string): Promise<void> {
    const short = `short-${suffix}`;
    const long = `long-${suffix}`;
    await call('CreateQueue', { queueName: short, msgRetentionSeconds: 60, visibilityTimeout: 1 });
    await call('CreateQueue', { queueName: long });
    await call('BatchSendMessage', { queueName: short, msgBody: ['1', '2', '3'] });
    await call('SendMessage', { queueName: long, msgBody: 'stays' });
    const inFlight = await call('ReceiveMessage', { queueName: short });
    expect(inFlight.code).toBe(0);
    const sentAt = inFlight.enqueueTime as number;
    expect(await call('GetQueueAttributes', { queueName: short })).toMatchObject({ activeMsgNum: 2, inactiveMsgNum: 1 });

    // just before expiry the messages are still there
    await sleep(Math.max(0, (sentAt + 57) * 1000 - Date.now()));
    expect(await rowsOf(short)).toBe(3);
    // expired: the two never received at once; the received one's visible time (the counters'
    // index key) passes the retention cutoff a visibility timeout later
    await sleep(Math.max(0, Math.max(sentAt + 61.5, (inFlight.nextVisibleTime as number) + 61) * 1000 - Date.now()));

    expect(await call('ReceiveMessage', { queueName: short })).toMatchObject({ code: 7000 });
    expect(await call('GetQueueAttributes', { queueName: short })).toMatchObject({
      activeMsgNum: 0,
      inactiveMsgNum: 0,
      delayMsgNum: 0,
      minMsgTime: 0,
    });
    expect(await call('DeleteMessage', { queueName: short, receiptHandle: inFlight.receiptHandle as string })).toMatchObject({
      code: 4430,
    });
    await expectEventually(async () => expect(await rowsOf(short)).toBe(0), 10_000, 200);
    // a queue with the default retention keeps its message
    expect(await rowsOf(long)).toBe(1);
    expect(await call('ReceiveMessage', { queueName: long })).toMatchObject({ code: 0, msgBody: 'stays' });
  }

  it(
    'expires messages after msgRetentionSeconds: not delivered, not counted, then deleted (our client and qcloudapi-sdk)',
    async () => {
      await Promise.all(CLIENT_MODES.filter((m) => m.method === 'POST').map((m, i) => expiry(caller(stack, tenant, m), String(i))));
    },
    90_000,
  );
});
