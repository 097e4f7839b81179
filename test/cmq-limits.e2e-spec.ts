import { Caller, caller, CLIENT_MODES, sleep, TestStack, TestTenant } from '@app/testing';

type Msg = { msgId: string; receiptHandle: string };

const ours = CLIENT_MODES.find((m) => m.client === 'ours')!;
const sdk = CLIENT_MODES.find((m) => m.client === 'qcloudapi-sdk')!;

describe('maxMsgHeapNum, the queue limit and the counters', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  const callers: Array<[string, Caller]> = [];
  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('limits');
    callers.push(['ours', caller(stack, tenant, ours)], ['qcloudapi-sdk', caller(stack, tenant, sdk)]);
  });
  afterAll(() => stack.stop());

  it('a full queue refuses sends with 4410 and stores nothing; a delete makes room', async () => {
    const [, cmq] = callers[0];
    expect((await cmq('CreateQueue', { queueName: 'heap', maxMsgHeapNum: 1_000_000, visibilityTimeout: 600 })).code).toBe(0);
    const { rows } = await stack.db.query(`SELECT id FROM queues WHERE account_id = $1 AND name = 'heap'`, [tenant.accountId]);
    const qid = rows[0].id;
    // 999,991 messages, stored as sends store them: rows and their counter
    await stack.db.query(
      `WITH ins AS (
         INSERT INTO messages (queue_id, body, enqueue_ms, visible_ms)
         SELECT $1, '\\x78', cmq_now_ms(), cmq_now_ms() + 3600000 FROM generate_series(1, 999991)
         RETURNING 1)
       INSERT INTO queue_counters (queue_id, shard, msgs) SELECT $1, 0, count(*) FROM ins`,
      [qid],
    );
    for (const [, c] of callers) {
      expect((await c('BatchSendMessage', { queueName: 'heap', msgBody: ['a', 'b', 'c', 'd'] })).code).toBe(0);
    }
    const before = await stack.stored(tenant.accountId);
    for (const [, c] of callers) {
      expect(await c('BatchSendMessage', { queueName: 'heap', msgBody: ['a', 'b', 'c'] })).toMatchObject({
        code: 4410,
        message: '(10240)reach maximum retention number of message',
      });
    }
    expect((await callers[0][1]('SendMessage', { queueName: 'heap', msgBody: 'last' })).code).toBe(0);
    expect((await callers[1][1]('SendMessage', { queueName: 'heap', msgBody: 'one too many' })).code).toBe(4410);
    expect((await stack.stored(tenant.accountId)).messages).toBe(before.messages + 1);
    const attrs = await callers[0][1]('GetQueueAttributes', { queueName: 'heap' });
    expect(attrs).toMatchObject({ activeMsgNum: 9, delayMsgNum: 999_991, inactiveMsgNum: 0 });

    const got = await callers[1][1]('ReceiveMessage', { queueName: 'heap' });
    expect((await callers[1][1]('DeleteMessage', { queueName: 'heap', receiptHandle: got.receiptHandle as string })).code).toBe(0);
    expect((await callers[1][1]('SendMessage', { queueName: 'heap', msgBody: 'room again' })).code).toBe(0);
    expect((await callers[0][1]('SendMessage', { queueName: 'heap', msgBody: 'full again' })).code).toBe(4410);
    // the rows go before the next test counts anything
    await stack.db.query(`DELETE FROM messages WHERE queue_id = $1`, [qid]);
    await stack.db.query(`DELETE FROM queue_counters WHERE queue_id = $1`, [qid]);
  }, 120_000);

  it('no queue limit by default: an account holds more than 1,000 queues', async () => {
    const t = await stack.tenant('many-queues');
    const cmq = caller(stack, t, ours);
    const names = Array.from({ length: 1001 }, (_, i) => `many${i}`);
    for (let i = 0; i < names.length; i += 50) {
      const replies = await Promise.all(names.slice(i, i + 50).map((queueName) => cmq('CreateQueue', { queueName })));
      for (const r of replies) expect(r.code).toBe(0);
    }
    expect((await cmq('ListQueue', {})).totalCount).toBe(1001);
  }, 120_000);

  it('counters stay exact under concurrent sends, receives and deletes', async () => {
    const [, cmq] = callers[0];
    expect((await cmq('CreateQueue', { queueName: 'counted', visibilityTimeout: 600 })).code).toBe(0);
    const handles: string[] = [];
    const until = Date.now() + 2000;
    // unique bodies: qcloudapi-sdk draws its Nonce from 0..65535, and a repeated signature is a replay
    let n = 0;
    await Promise.all(
      Array.from({ length: 12 }, async (_, w) => {
        const [, c] = callers[w % 2];
        while (Date.now() < until) {
          switch (w % 4) {
            case 0:
              expect((await c('BatchSendMessage', { queueName: 'counted', msgBody: ['a', 'b', `c${n++}`] })).code).toBe(0);
              break;
            case 1:
              expect((await c('SendMessage', { queueName: 'counted', msgBody: `later${n++}`, delaySeconds: 600 })).code).toBe(0);
              break;
            case 2: {
              // receivers stop early, so sends leave visible messages behind
              if (Date.now() > until - 700) {
                await sleep(20);
                break;
              }
              const r = await c('BatchReceiveMessage', { queueName: 'counted', numOfMsg: 4 });
              if (r.code === 0) handles.push(...(r.msgInfoList as Msg[]).map((m) => m.receiptHandle));
              break;
            }
            default: {
              // every other received message stays in flight
              const batch = handles.splice(0, 4).filter((_, i) => i % 2 === 0);
              if (batch.length) expect((await c('BatchDeleteMessage', { queueName: 'counted', receiptHandle: batch })).code).toBe(0);
              else expect((await c('SendMessage', { queueName: 'counted', msgBody: `x${n++}` })).code).toBe(0);
            }
          }
        }
      }),
    );
    const attrs = await cmq('GetQueueAttributes', { queueName: 'counted' });
    const { rows } = await stack.db.query(
      `SELECT count(*) FILTER (WHERE visible_ms <= cmq_now_ms())::int AS active,
              count(*) FILTER (WHERE visible_ms > cmq_now_ms() AND dequeue_count > 0)::int AS inactive,
              count(*) FILTER (WHERE visible_ms > cmq_now_ms() AND dequeue_count = 0)::int AS delayed,
              (min(enqueue_ms) / 1000)::int AS min_s
         FROM messages m JOIN queues q ON q.id = m.queue_id
        WHERE q.account_id = $1 AND q.name = 'counted' AND m.deleted_ms IS NULL`,
      [tenant.accountId],
    );
    const truth = rows[0];
    expect(truth.active).toBeGreaterThan(0);
    expect(truth.inactive).toBeGreaterThan(0);
    expect(truth.delayed).toBeGreaterThan(0);
    expect(attrs).toMatchObject({
      activeMsgNum: truth.active,
      inactiveMsgNum: truth.inactive,
      delayMsgNum: truth.delayed,
      minMsgTime: truth.min_s,
      rewindMsgNum: 0,
    });
  }, 60_000);
});

describe('the optional queue limit (MAX_QUEUES_PER_ACCOUNT)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ MAX_QUEUES_PER_ACCOUNT: '3' });
  });
  afterAll(() => stack.stop());

  it.each([ours, sdk])('refuses the queue beyond the limit with 4450, counting live queues only ($client)', async (mode) => {
    const t = await stack.tenant('limited');
    const cmq = caller(stack, t, mode);
    // concurrent creates cannot both take the last place
    const first = await Promise.all(['a1', 'a2', 'a3', 'a4', 'a5'].map((queueName) => cmq('CreateQueue', { queueName })));
    expect(first.filter((r) => r.code === 0)).toHaveLength(3);
    for (const r of first.filter((r) => r.code !== 0)) {
      expect(r).toMatchObject({ code: 4450, message: '(10220)number of queues has reached the limit' });
    }
    expect((await stack.stored(t.accountId)).queues).toBe(3);
    const live = ((await cmq('ListQueue', {})).queueList as Array<{ queueName: string }>).map((q) => q.queueName);
    expect((await cmq('DeleteQueue', { queueName: live[0] })).code).toBe(0);
    expect((await cmq('CreateQueue', { queueName: 'b1' })).code).toBe(0);
    expect((await cmq('CreateQueue', { queueName: 'b2' })).code).toBe(4450);
  });
});
