import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { bullConnection, JobQueue } from '@app/common';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CmqClient } from '@app/cmq';
import { loadConfigWith } from '@app/config';
import { expectEventually, scratchDatabase, sleep, TestStack, TestTenant } from '@app/testing';
import { runMigrations } from '@app/db';
import { createWorker } from '../apps/worker/src/worker.app';

/** What a subscriber's endpoint does with each push, in turn; after the script, it answers 200. */
type Behaviour = 'fail' | 'hang' | 'ok';

interface Received {
  path: string;
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local HTTP receiver that records every push and follows a script per path. */
class Receiver {
  readonly got: Received[] = [];
  private readonly scripts = new Map<string, Behaviour[]>();
  private readonly hung: ServerResponse[] = [];
  server!: Server;

  async listen(port = 0): Promise<number> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        this.got.push({ path, at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const next = this.scripts.get(path)?.shift() ?? 'ok';
        if (next === 'hang') this.hung.push(res);
        else res.writeHead(next === 'ok' ? 200 : 500).end(next);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  script(path: string, behaviours: Behaviour[]): void {
    this.scripts.set(path, [...behaviours]);
  }

  on(path: string): Received[] {
    return this.got.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.hung.splice(0).forEach((r) => r.destroy());
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const PUSH: Record<string, string> = {
  PUSH_TIMEOUT_MS: '400',
  PUSH_BACKOFF_RETRY_MIN_MS: '300',
  PUSH_BACKOFF_RETRY_MAX_MS: '450',
  PUSH_BACKOFF_RETRIES: '3',
  PUSH_EXPONENTIAL_BASE_MS: '200',
  PUSH_RESEND_AFTER_MS: '1500',
};

describe('HTTP push of topic messages (retry strategies, headers, bodies, exactly one delivery, metering)', () => {
  let stack: TestStack;
  let worker: NestFastifyApplication;
  let receiver: Receiver;
  let port: number;
  let tenant: TestTenant;
  let cmq: CmqClient;
  let appId: string;
  let db: { url: string; drop: () => Promise<void> };

  beforeAll(async () => {
    // a database and a Redis prefix of its own: the pushes are no other spec's worker's to take
    // (their retry settings are the production ones), and their resend ticks never see these rows
    db = await scratchDatabase();
    Object.assign(PUSH, { DATABASE_URL: db.url, REDIS_PREFIX: `${process.env.REDIS_PREFIX}:topic-push` });
    await runMigrations(loadConfigWith(PUSH));
    stack = await TestStack.start(PUSH);
    worker = await createWorker(loadConfigWith({ ...PUSH, SWEEP_INTERVAL_MS: '600000', USAGE_RESEND_AFTER_MS: '3000' }));
    await worker.listen(0, '127.0.0.1');
    receiver = new Receiver();
    port = await receiver.listen();
    tenant = await stack.tenant('push');
    cmq = stack.client(tenant);
    const { rows } = await stack.db.query<{ app_id: string }>(`SELECT app_id::text FROM accounts WHERE id = $1`, [tenant.accountId]);
    appId = rows[0].app_id;
  });
  afterAll(async () => {
    await worker?.close();
    await receiver?.close();
    await stack?.stop();
    await db?.drop();
  });

  async function topicWith(topicName: string, subscription: Record<string, string | string[]>): Promise<void> {
    expect(await cmq.call('CreateTopic', { topicName })).toMatchObject({ code: 0 });
    expect(await cmq.call('Subscribe', { topicName, subscriptionName: 'receiver', protocol: 'http', ...subscription })).toMatchObject({ code: 0 });
  }

  const pending = async (topicName: string) =>
    (await cmq.call('GetSubscriptionAttributes', { topicName, subscriptionName: 'receiver' })).msgCount as number;

  describe.each([
    ['BACKOFF_RETRY', 'JSON', 300],
    ['EXPONENTIAL_DECAY_RETRY', 'SIMPLIFIED', 200],
  ] as const)('%s, %s', (strategy, format, firstDelayMs) => {
    const path = `/${strategy}`;
    const topicName = `push-${strategy.toLowerCase().replace(/_/g, '-')}`;

    it('a failure (500), then no answer within the timeout, then 2xx: three attempts, the last delivers, none after it', async () => {
      receiver.script(path, ['fail', 'hang', 'ok']);
      await topicWith(topicName, { endpoint: `http://127.0.0.1:${port}${path}`, notifyStrategy: strategy, notifyContentFormat: format });
      const before = Math.floor(Date.now() / 1000);
      const pub = await cmq.call('PublishMessage', { topicName, msgBody: 'order 42 paid, 已付款', msgTag: ['paid', '订单'] });
      expect(pub).toMatchObject({ code: 0, msgId: expect.stringMatching(/^\d+$/) });

      const attempts = await expectEventually(() => {
        const got = receiver.on(path);
        expect(got).toHaveLength(3);
        return got;
      }, 15_000);
      // the retry strategy's waits (the second attempt's time-out included in the third's)
      expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(firstDelayMs - 20);
      expect(attempts[2].at - attempts[1].at).toBeGreaterThanOrEqual(400 + (strategy === 'BACKOFF_RETRY' ? 300 : 400) - 20);

      for (const a of attempts) {
        expect(a.headers['content-type']).toBe('text/plain');
        expect(a.headers['user-agent']).toBe('Qcloud Notification Service Agent');
        expect(a.headers['x-cmq-message-id']).toBe(pub.msgId);
        expect(Buffer.from(String(a.headers['x-cmq-message-tag']), 'latin1').toString('utf8')).toBe('paid, 订单');
        if (format === 'JSON') {
          const body = JSON.parse(a.body);
          expect(Object.keys(body).sort()).toEqual(['TopicOwner', 'msgBody', 'msgId', 'publishTime', 'subscriptionName', 'topicName']);
          expect(body).toMatchObject({
            TopicOwner: appId,
            topicName,
            subscriptionName: 'receiver',
            msgId: pub.msgId,
            msgBody: 'order 42 paid, 已付款',
          });
          expect(body.publishTime).toBeGreaterThanOrEqual(before);
          expect(body.publishTime).toBeLessThanOrEqual(before + 2);
        } else {
          expect(a.body).toBe('order 42 paid, 已付款');
        }
      }
      expect(new Set(attempts.map((a) => a.headers['x-cmq-request-id'])).size).toBe(3);

      // delivered: nothing left, and no second push of it
      await expectEventually(async () => expect(await pending(topicName)).toBe(0), 3000);
      await sleep(1200);
      expect(receiver.on(path)).toHaveLength(3);
    });
  });

  it('BACKOFF_RETRY gives up after three retries', async () => {
    const path = '/always-fails';
    receiver.script(path, Array.from({ length: 10 }, () => 'fail' as const));
    await topicWith('gives-up', { endpoint: `http://127.0.0.1:${port}${path}`, notifyStrategy: 'BACKOFF_RETRY' });
    expect((await cmq.call('PublishMessage', { topicName: 'gives-up', msgBody: 'doomed' })).code).toBe(0);
    await expectEventually(() => expect(receiver.on(path)).toHaveLength(4), 10_000);
    await expectEventually(async () => expect(await pending('gives-up')).toBe(0), 3000);
    await sleep(1000);
    expect(receiver.on(path)).toHaveLength(4);
  });

  it('loses nothing while the receiver is down within retention, and pushes each message once when it is back', async () => {
    // a port with nobody listening: connections are refused
    const down = new Receiver();
    const downPort = await down.listen();
    await down.close();
    await topicWith('while-down', { endpoint: `http://127.0.0.1:${downPort}/back`, notifyStrategy: 'EXPONENTIAL_DECAY_RETRY' });
    const bodies = Array.from({ length: 8 }, (_, i) => `kept ${i}`);
    expect((await cmq.call('BatchPublishMessage', { topicName: 'while-down', msgBody: bodies })).code).toBe(0);
    expect((await cmq.call('PublishMessage', { topicName: 'while-down', msgBody: 'kept 8' })).code).toBe(0);
    await sleep(1500);
    expect(await pending('while-down')).toBe(9);
    const { rows } = await stack.db.query<{ attempts: number; last_error: string }>(
      `SELECT attempts, last_error FROM push_deliveries d JOIN subscriptions s ON s.id = d.subscription_id WHERE s.account_id = $1 AND s.endpoint LIKE '%/back'`,
      [tenant.accountId],
    );
    expect(rows.every((r) => r.attempts >= 2 && /ECONNREFUSED/.test(r.last_error))).toBe(true);

    const back = new Receiver();
    await back.listen(downPort);
    try {
      await expectEventually(() => expect(back.got.map((g) => JSON.parse(g.body).msgBody).sort()).toEqual([...bodies, 'kept 8'].sort()), 10_000);
      await expectEventually(async () => expect(await pending('while-down')).toBe(0), 3000);
      await sleep(1000);
      expect(back.got).toHaveLength(9);
    } finally {
      await back.close();
    }
  });

  it('meters every delivered push as a billable consume call (PushMessage), and only those', async () => {
    // the pushes delivered so far to this account: 1 + 1 (the two strategies) + 9 (while down)
    await expectEventually(async () => {
      const { rows } = await stack.db.query<{ calls: string; billable: string; action_class: string }>(
        `SELECT sum(calls)::text AS calls, sum(billable_calls)::text AS billable, min(action_class) AS action_class
           FROM usage_hourly WHERE account_id = $1 AND action = 'PushMessage'`,
        [tenant.accountId],
      );
      expect(rows[0]).toEqual({ calls: '11', billable: '11', action_class: 'consume' });
    }, 15_000);
  });

  it('a queue that is full at publish time gets its copy once it has room, by the same retry strategy', async () => {
    expect((await cmq.call('CreateQueue', { queueName: 'tiny' })).code).toBe(0);
    expect((await cmq.call('SendMessage', { queueName: 'tiny', msgBody: 'already here' })).code).toBe(0);
    // a limit below the protocol's minimum, set in storage to fill the queue with one message
    await stack.db.query(`UPDATE queues SET max_msg_heap_num = 1 WHERE account_id = $1 AND name = 'tiny'`, [tenant.accountId]);
    expect((await cmq.call('CreateTopic', { topicName: 'to-tiny' })).code).toBe(0);
    expect(
      (await cmq.call('Subscribe', { topicName: 'to-tiny', subscriptionName: 'receiver', protocol: 'queue', endpoint: 'tiny' })).code,
    ).toBe(0);
    expect((await cmq.call('PublishMessage', { topicName: 'to-tiny', msgBody: 'waits for room' })).code).toBe(0);
    expect(await pending('to-tiny')).toBe(1);
    expect(await cmq.call('GetQueueAttributes', { queueName: 'tiny' })).toMatchObject({ activeMsgNum: 1 });
    const first = await cmq.call('ReceiveMessage', { queueName: 'tiny' });
    expect(first).toMatchObject({ code: 0, msgBody: 'already here' });
    expect((await cmq.call('DeleteMessage', { queueName: 'tiny', receiptHandle: String(first.receiptHandle) })).code).toBe(0);
    const second = await cmq.call('ReceiveMessage', { queueName: 'tiny', pollingWaitSeconds: 10 });
    expect(second).toMatchObject({ code: 0, msgBody: 'waits for room' });
    expect(await pending('to-tiny')).toBe(0);
  });

  it('Unsubscribe drops the pushes a subscription still had to make', async () => {
    const path = '/never-answers';
    receiver.script(path, Array.from({ length: 50 }, () => 'fail' as const));
    await topicWith('dropped', { endpoint: `http://127.0.0.1:${port}${path}` });
    expect((await cmq.call('PublishMessage', { topicName: 'dropped', msgBody: 'x' })).code).toBe(0);
    await expectEventually(() => expect(receiver.on(path).length).toBeGreaterThanOrEqual(1), 5000);
    expect(await cmq.call('Unsubscribe', { topicName: 'dropped', subscriptionName: 'receiver' })).toMatchObject({ code: 0 });
    const { rows } = await stack.db.query(
      `SELECT count(*)::int AS n FROM push_deliveries d WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = d.subscription_id)`,
    );
    expect(rows[0].n).toBe(0);
    const seen = receiver.on(path).length;
    await sleep(1500);
    expect(receiver.on(path).length).toBeLessThanOrEqual(seen + 1);
  });

  it('a push whose job Redis lost is found and made by the resend tick', async () => {
    const path = '/after-loss';
    await topicWith('lost-job', { endpoint: `http://127.0.0.1:${port}${path}`, notifyContentFormat: 'SIMPLIFIED' });
    // no worker takes jobs while the publish's job is removed from Redis
    await worker.close();
    const pushQueue = new Queue(JobQueue.Push, { connection: bullConnection(stack.config.redis.url), prefix: `${stack.config.redis.prefix}:bull` });
    try {
      expect((await cmq.call('PublishMessage', { topicName: 'lost-job', msgBody: 'survives' })).code).toBe(0);
      await expectEventually(async () => expect(await pushQueue.getJobCounts('wait')).toMatchObject({ wait: 1 }), 3000);
      await pushQueue.obliterate({ force: true });
      expect(await pushQueue.getJobCounts('wait', 'delayed', 'active')).toEqual({ wait: 0, delayed: 0, active: 0 });
    } finally {
      await pushQueue.close();
    }
    worker = await createWorker(loadConfigWith({ ...PUSH, SWEEP_INTERVAL_MS: '600000', USAGE_RESEND_AFTER_MS: '3000' }));
    await worker.listen(0, '127.0.0.1');
    await expectEventually(() => expect(receiver.on(path).map((r) => r.body)).toEqual(['survives']), 10_000);
    await expectEventually(async () => expect(await pending('lost-job')).toBe(0), 3000);
  });
});
