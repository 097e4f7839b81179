import type { PgPool } from '@app/db';
import { MessageSweeper } from '@app/queues';
import { Caller, caller, CLIENT_MODES, describeMode, sleep, TestStack, TestTenant } from '@app/testing';

type Msg = { msgId: string; msgBody: string; receiptHandle: string };

const policy = (o: Record<string, unknown>) => JSON.stringify(o);

/**
 * Dead-letter queues, rewinding and the route query through the real endpoint, each scenario run
 * by our client and by the third-party qcloudapi-sdk, in POST and GET, SHA-1 and SHA-256.
 */
describe.each(CLIENT_MODES)('CMQ queue core: $client $method $signatureMethod $path', (mode) => {
  let stack: TestStack;
  let tenant: TestTenant;
  let cmq: Caller;
  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant(describeMode(mode));
    cmq = caller(stack, tenant, mode);
  });
  afterAll(() => stack.stop());

  let seq = 0;
  async function newQueue(prefix: string, attrs: Record<string, number | string> = {}): Promise<string> {
    const name = `${prefix}${seq++}`;
    expect(await cmq('CreateQueue', { queueName: name, ...attrs })).toMatchObject({ code: 0, queueId: expect.any(String) });
    return name;
  }

  async function attrs(queueName: string) {
    const a = await cmq('GetQueueAttributes', { queueName });
    expect(a.code).toBe(0);
    return a;
  }

  it('policy 0: a message received maxReceiveCount times goes to the dead-letter queue, id and body kept', async () => {
    const dlq = await newQueue('dlq');
    const src = await newQueue('src', {
      visibilityTimeout: 1,
      deadLetterPolicy: policy({ deadLetterQueue: dlq, policy: 0, maxReceiveCount: 2 }),
    });
    expect((await attrs(src)).deadLetterPolicy).toBe(policy({ deadLetterQueue: dlq, policy: 0, maxReceiveCount: 2 }));
    const sent = await cmq('SendMessage', { queueName: src, msgBody: 'poison' });
    for (const n of [1, 2]) {
      expect(await cmq('ReceiveMessage', { queueName: src, pollingWaitSeconds: 3 })).toMatchObject({
        code: 0,
        msgId: sent.msgId,
        dequeueCount: n,
      });
      await sleep(1100);
    }
    // the third receive finds it dead: moved, not delivered
    expect(await cmq('ReceiveMessage', { queueName: src })).toMatchObject({ code: 7000 });
    expect(await attrs(src)).toMatchObject({ activeMsgNum: 0, inactiveMsgNum: 0 });
    expect(await attrs(dlq)).toMatchObject({ activeMsgNum: 1 });
    const dead = await cmq('ReceiveMessage', { queueName: dlq });
    expect(dead).toMatchObject({ code: 0, msgId: sent.msgId, msgBody: 'poison', dequeueCount: 1 });
    expect((await cmq('DeleteMessage', { queueName: dlq, receiptHandle: dead.receiptHandle as string })).code).toBe(0);
  });

  it('policy 1: a message older than maxTimeToLive goes to the dead-letter queue, by a receive or by the sweep', async () => {
    const dlq = await newQueue('dlq');
    const src = await newQueue('src', {
      msgRetentionSeconds: 3600,
      deadLetterPolicy: policy({ deadLetterQueue: dlq, policy: 1, maxTimeToLive: 300 }),
    });
    const old = await cmq('SendMessage', { queueName: src, msgBody: 'stale' });
    const swept = await cmq('SendMessage', { queueName: src, msgBody: 'stale too' });
    const fresh = await cmq('SendMessage', { queueName: src, msgBody: 'fresh' });
    // the first two were sent 301 s ago (the stored times moved back)
    await stack.db.query(`UPDATE messages SET enqueue_ms = enqueue_ms - 301000 WHERE msg_id = $1`, [old.msgId]);
    await stack.db.query(`UPDATE messages SET enqueue_ms = enqueue_ms - 301000, visible_ms = visible_ms - 301000 WHERE msg_id = $1`, [
      swept.msgId,
    ]);
    expect(await new MessageSweeper(stack.db as unknown as PgPool).moveDeadLetters(100)).toBeGreaterThanOrEqual(1);
    const got = await cmq('BatchReceiveMessage', { queueName: src, numOfMsg: 16 });
    expect((got.msgInfoList as Msg[]).map((m) => m.msgId)).toEqual([fresh.msgId]);
    const dead = await cmq('BatchReceiveMessage', { queueName: dlq, numOfMsg: 16 });
    expect(new Set((dead.msgInfoList as Msg[]).map((m) => m.msgBody))).toEqual(new Set(['stale', 'stale too']));
    expect(await attrs(src)).toMatchObject({ activeMsgNum: 0, inactiveMsgNum: 1 });
    expect(await attrs(dlq)).toMatchObject({ activeMsgNum: 0, inactiveMsgNum: 2 });
  });

  it('bindings: no nesting, at most six sources, a dead-letter queue in use cannot be deleted, unbind frees it', async () => {
    const dlq = await newQueue('dlq');
    const bind = (target: string) => policy({ deadLetterQueue: target, policy: 0, maxReceiveCount: 5 });
    const sources: string[] = [];
    for (let i = 0; i < 6; i++) sources.push(await newQueue('src', { deadLetterPolicy: bind(dlq) }));
    const seventh = await cmq('CreateQueue', { queueName: `src${seq++}`, deadLetterPolicy: bind(dlq) });
    expect(seventh).toMatchObject({ code: 4000, message: '(10780)the deadLetter Queue bind too many times' });
    const other = await newQueue('other');
    expect(await cmq('SetQueueAttributes', { queueName: other, deadLetterPolicy: bind(dlq) })).toMatchObject({ code: 4000, message: '(10780)the deadLetter Queue bind too many times' });

    // nesting, both ways: the target has a dead-letter queue, or the source serves as one
    expect(await cmq('SetQueueAttributes', { queueName: other, deadLetterPolicy: bind(sources[0]) })).toMatchObject({
      code: 4000,
      message: '(10740)deadLetter queue is not allowed to nest',
    });
    expect(await cmq('SetQueueAttributes', { queueName: dlq, deadLetterPolicy: bind(other) })).toMatchObject({
      code: 4000,
      message: '(10740)deadLetter queue is not allowed to nest',
    });

    expect(await cmq('DeleteQueue', { queueName: dlq })).toMatchObject({
      code: 4000,
      message: '(10750)it is not allowed to be deleted when the queue is dead letter queue',
    });

    const listed = await cmq('ListDeadLetterSourceQueues', { deadLetterQueueName: dlq });
    expect(listed).toMatchObject({ code: 0, totalCount: 6 });
    expect((listed.queueList as Array<{ queueName: string; queueId: string }>).map((q) => q.queueName)).toEqual(sources);
    const page = await cmq('ListDeadLetterSourceQueues', { deadLetterQueueName: dlq, offset: 4, limit: 5 });
    expect((page.queueList as Array<{ queueName: string }>).map((q) => q.queueName)).toEqual(sources.slice(4));
    const search = await cmq('ListDeadLetterSourceQueues', { deadLetterQueueName: dlq, searchWord: sources[2] });
    expect(search).toMatchObject({ totalCount: 1, queueList: [{ queueName: sources[2] }] });

    // one source unbound and one deleted: the seventh fits, and only live sources count
    expect(await cmq('UnbindDeadLetterQueue', { queueName: sources[0] })).toMatchObject({ code: 0, message: '' });
    expect((await attrs(sources[0])).deadLetterPolicy).toBeUndefined();
    expect((await cmq('DeleteQueue', { queueName: sources[1] })).code).toBe(0);
    expect((await cmq('SetQueueAttributes', { queueName: other, deadLetterPolicy: bind(dlq) })).code).toBe(0);
    expect((await cmq('ListDeadLetterSourceQueues', { deadLetterQueueName: dlq })).totalCount).toBe(5);
    for (const q of [other, ...sources.slice(2)]) expect((await cmq('UnbindDeadLetterQueue', { queueName: q })).code).toBe(0);
    expect(await cmq('DeleteQueue', { queueName: dlq })).toMatchObject({ code: 0 });
  });

  it('a shorter retention must still outlive a bound maxTimeToLive', async () => {
    const dlq = await newQueue('dlq');
    const src = await newQueue('src', { msgRetentionSeconds: 3600, deadLetterPolicy: policy({ deadLetterQueue: dlq, policy: 1, maxTimeToLive: 1800 }) });
    expect(await cmq('SetQueueAttributes', { queueName: src, msgRetentionSeconds: 1800 })).toMatchObject({
      code: 4000,
      message: '(10720)deadLetterPolicy params error,please check it',
    });
    expect((await attrs(src)).msgRetentionSeconds).toBe(3600);
  });

  it('RewindQueue redelivers from startConsumeTime in production order, deleted messages included', async () => {
    const q = await newQueue('rw', { rewindSeconds: 3600, visibilityTimeout: 60 });
    const start = Math.floor(Date.now() / 1000) - 1;
    const ids: string[] = [];
    for (const body of ['m1', 'm2', 'm3']) ids.push((await cmq('SendMessage', { queueName: q, msgBody: body })).msgId as string);
    const got = (await cmq('BatchReceiveMessage', { queueName: q, numOfMsg: 16 })).msgInfoList as Msg[];
    expect(got.map((m) => m.msgId)).toEqual(ids);
    expect(await cmq('BatchDeleteMessage', { queueName: q, receiptHandle: got.map((m) => m.receiptHandle) })).toMatchObject({ code: 0 });
    expect(await attrs(q)).toMatchObject({ activeMsgNum: 0, inactiveMsgNum: 0, rewindMsgNum: 3, rewindmsgNum: 3 });
    ids.push((await cmq('SendMessage', { queueName: q, msgBody: 'm4' })).msgId as string);
    const inFlight = await cmq('ReceiveMessage', { queueName: q });
    expect(inFlight.msgId).toBe(ids[3]);
    expect(await cmq('ReceiveMessage', { queueName: q })).toMatchObject({ code: 7000 });

    const now = Math.floor(Date.now() / 1000);
    for (const t of [now - 3700, now + 120]) {
      expect(await cmq('RewindQueue', { queueName: q, startConsumeTime: t })).toMatchObject({
        code: 4000,
        message: '(10680)invalid rewind time, you can get the vaild range of that via GetQueueAttributes',
      });
    }
    expect(await cmq('RewindQueue', { queueName: q, startConsumeTime: start })).toMatchObject({ code: 0, message: '' });
    expect(await attrs(q)).toMatchObject({ activeMsgNum: 4, inactiveMsgNum: 0, rewindMsgNum: 0 });
    // the handle issued before the rewind is dead
    expect(await cmq('DeleteMessage', { queueName: q, receiptHandle: inFlight.receiptHandle as string })).toMatchObject({ code: 4430 });
    const again = (await cmq('BatchReceiveMessage', { queueName: q, numOfMsg: 16 })).msgInfoList as Msg[];
    expect(again.map((m) => m.msgId)).toEqual(ids);
    expect(again.map((m) => m.msgBody)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect((await cmq('BatchDeleteMessage', { queueName: q, receiptHandle: again.map((m) => m.receiptHandle) })).code).toBe(0);
    expect(await attrs(q)).toMatchObject({ activeMsgNum: 0, rewindMsgNum: 4 });
  });

  it('concurrent receivers of one queue share claims: each message goes to exactly one, the rest hear 7000', async () => {
    const q = await newQueue('shared', { visibilityTimeout: 120 });
    const sent = await cmq('BatchSendMessage', { queueName: q, msgBody: Array.from({ length: 10 }, (_, i) => `s${i}`) });
    const ids = (sent.msgList as Array<{ msgId: string }>).map((m) => m.msgId);
    const replies = await Promise.all([
      ...Array.from({ length: 12 }, () => cmq('ReceiveMessage', { queueName: q })),
      cmq('BatchReceiveMessage', { queueName: q, numOfMsg: 3 }),
    ]);
    const got = replies.flatMap((r) => (r.code !== 0 ? [] : r.msgInfoList ? (r.msgInfoList as Msg[]) : [r as unknown as Msg]));
    expect(got.map((m) => m.msgId).sort()).toEqual([...ids].sort());
    for (const r of replies.filter((r) => r.code !== 0)) expect(r).toMatchObject({ code: 7000, message: '(10200)no message' });
    expect(await attrs(q)).toMatchObject({ activeMsgNum: 0, inactiveMsgNum: 10 });
  });

  it('refuses bad dead-letter policies, rewinds and recreations with the protocol errors, storing nothing', async () => {
    const target = await newQueue('target');
    const before = await stack.stored(tenant.accountId);
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ deadLetterPolicy: 'not json' }, 4000, '(10710)deadLetterPolicy must be a json string'],
      [{ deadLetterPolicy: policy({ policy: 0, maxReceiveCount: 3 }) }, 4000, '(10760)the deadLetterPolicy must has deadLetterQueue member, only be a string'],
      [{ deadLetterPolicy: policy({ deadLetterQueue: target, policy: 3 }) }, 4000, '(10770)the deadLetterPolicy must has policy member , only set 0 or 1'],
      [{ deadLetterPolicy: policy({ deadLetterQueue: target, policy: 1, maxTimeToLive: 100 }) }, 4000, '(10720)deadLetterPolicy params error,please check it'],
      [{ deadLetterPolicy: policy({ deadLetterQueue: 'absent', policy: 0, maxReceiveCount: 3 }) }, 4000, '(10730)deadLetter queue not exist'],
    ];
    for (const [params, code, message] of cases) {
      expect(await cmq('CreateQueue', { queueName: `bad${seq++}`, ...params })).toMatchObject({ code, message });
    }
    expect(await cmq('RewindQueue', { queueName: target, startConsumeTime: Math.floor(Date.now() / 1000) })).toMatchObject({
      code: 6050,
      message: '(10670)your queue cannot be rewinded',
    });
    expect(await stack.stored(tenant.accountId)).toEqual(before);

    expect((await cmq('DeleteQueue', { queueName: target })).code).toBe(0);
    expect(await cmq('CreateQueue', { queueName: target })).toMatchObject({
      code: 6040,
      message:
        '(10660)it will take some time to release resources of previous queue before you create a new one with the same name, please try later',
    });
  });

  it('QueryQueueRoute answers an empty gateway list for an existing queue', async () => {
    const q = await newQueue('route');
    const r = await cmq('QueryQueueRoute', { queueName: q });
    expect(r).toMatchObject({ code: 0, message: '', addr: [] });
    expect(typeof r.requestId).toBe('string');
  });

  it('GetQueueAttributes reports the requests/s limit in force', async () => {
    const q = await newQueue('qps');
    expect((await attrs(q)).qps).toBe(stack.config.cmq.queueQpsLimit);
  });
});
