import { CmqClient } from '@app/cmq';
import { TestStack, TestTenant } from '@app/testing';

const ATTRIBUTE_FIELDS = [
  'maxMsgHeapNum',
  'pollingWaitSeconds',
  'visibilityTimeout',
  'maxMsgSize',
  'msgRetentionSeconds',
  'rewindSeconds',
  'createTime',
  'lastModifyTime',
  'activeMsgNum',
  'inactiveMsgNum',
  'delayMsgNum',
  'minMsgTime',
  'rewindMsgNum',
];

describe('CMQ queue management', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let cmq: CmqClient;
  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('queues');
    cmq = stack.client(tenant);
  });
  afterAll(() => stack.stop());

  it('creates a queue with defaults and returns every attribute as an integer', async () => {
    const created = await cmq.call('CreateQueue', { queueName: 'defaults' });
    expect(created).toMatchObject({ code: 0, message: '', queueId: expect.stringMatching(/^queue-[a-z0-9]{12}$/) });
    const a = await cmq.call('GetQueueAttributes', { queueName: 'defaults' });
    expect(a).toMatchObject({
      code: 0,
      queueId: created.queueId,
      queueName: 'defaults',
      maxMsgHeapNum: 10_000_000,
      pollingWaitSeconds: 0,
      visibilityTimeout: 30,
      maxMsgSize: 65_536,
      msgRetentionSeconds: 345_600,
      rewindSeconds: 0,
      activeMsgNum: 0,
      inactiveMsgNum: 0,
      delayMsgNum: 0,
      minMsgTime: 0,
      rewindMsgNum: 0,
      rewindmsgNum: 0,
    });
    for (const f of ATTRIBUTE_FIELDS) expect(Number.isInteger(a[f])).toBe(true);
    expect(Math.abs((a.createTime as number) - Date.now() / 1000)).toBeLessThan(5);
  });

  it('takes every attribute at creation, up to the Java default maxMsgSize of 1 MiB', async () => {
    const attrs = {
      maxMsgHeapNum: 1_000_000,
      pollingWaitSeconds: 30,
      visibilityTimeout: 43_200,
      maxMsgSize: 1_048_576,
      msgRetentionSeconds: 1_296_000,
      rewindSeconds: 43_200,
    };
    expect((await cmq.call('CreateQueue', { queueName: 'full', ...attrs })).code).toBe(0);
    expect(await cmq.call('GetQueueAttributes', { queueName: 'full' })).toMatchObject(attrs);
  });

  it('names are unique per account ignoring case (4460); lookups ignore case too', async () => {
    expect((await cmq.call('CreateQueue', { queueName: 'Orders' })).code).toBe(0);
    expect(await cmq.call('CreateQueue', { queueName: 'orders' })).toMatchObject({
      code: 4460,
      message: '(10210)queue is already existed',
    });
    expect((await cmq.call('SendMessage', { queueName: 'ORDERS', msgBody: 'x' })).code).toBe(0);
    expect(await cmq.call('GetQueueAttributes', { queueName: 'oRdErS' })).toMatchObject({ queueName: 'Orders', activeMsgNum: 1 });
  });

  it('SetQueueAttributes changes only what is sent and answers the result', async () => {
    await cmq.call('CreateQueue', { queueName: 'settable' });
    const before = await cmq.call('GetQueueAttributes', { queueName: 'settable' });
    const res = await cmq.call('SetQueueAttributes', { queueName: 'settable', visibilityTimeout: 5, maxMsgSize: 2048 });
    expect(res).toMatchObject({
      code: 0,
      queueId: before.queueId,
      visibilityTimeout: 5,
      maxMsgSize: 2048,
      pollingWaitSeconds: 0,
      msgRetentionSeconds: 345_600,
    });
    const after = await cmq.call('GetQueueAttributes', { queueName: 'settable' });
    expect(after).toMatchObject({ visibilityTimeout: 5, maxMsgSize: 2048, maxMsgHeapNum: before.maxMsgHeapNum });
    expect(after.lastModifyTime as number).toBeGreaterThanOrEqual(before.lastModifyTime as number);
    // the new maxMsgSize applies to sends at once
    expect(await cmq.call('SendMessage', { queueName: 'settable', msgBody: 'x'.repeat(2049) })).toMatchObject({
      code: 4400,
      message: '(10230)exceed maximum message size',
    });
    expect((await cmq.call('SendMessage', { queueName: 'settable', msgBody: 'x'.repeat(2048) })).code).toBe(0);
  });

  it('refuses rewindSeconds above msgRetentionSeconds (10700)', async () => {
    expect(await cmq.call('CreateQueue', { queueName: 'rw', msgRetentionSeconds: 60, rewindSeconds: 61 })).toMatchObject({
      code: 4000,
      message: '(10700)rewindSeconds cannot be greater than msgRetentionSeconds',
    });
    await cmq.call('CreateQueue', { queueName: 'rw', msgRetentionSeconds: 60 });
    expect((await cmq.call('SetQueueAttributes', { queueName: 'rw', rewindSeconds: 120 })).code).toBe(4000);
  });

  it('ListQueue pages with offset and limit, reports the total, and searches by substring', async () => {
    const c = stack.client(await stack.tenant('lister'));
    for (const n of ['alpha-1', 'alpha-2', 'beta-1', 'alpha_3', 'gamma']) await c.call('CreateQueue', { queueName: n });
    const all = await c.call('ListQueue', {});
    expect(all).toMatchObject({ code: 0, totalCount: 5 });
    expect((all.queueList as Array<{ queueName: string }>).map((q) => q.queueName)).toEqual([
      'alpha-1',
      'alpha-2',
      'beta-1',
      'alpha_3',
      'gamma',
    ]);
    for (const q of all.queueList as Array<Record<string, unknown>>) expect(Object.keys(q).sort()).toEqual(['queueId', 'queueName']);
    const page = await c.call('ListQueue', { offset: 1, limit: 2 });
    expect(page.totalCount).toBe(5);
    expect((page.queueList as Array<{ queueName: string }>).map((q) => q.queueName)).toEqual(['alpha-2', 'beta-1']);
    const search = await c.call('ListQueue', { searchWord: 'ALPHA' });
    expect(search.totalCount).toBe(3);
    // `_` and `%` are literal characters, not wildcards
    expect((await c.call('ListQueue', { searchWord: '_' })).totalCount).toBe(1);
    expect((await c.call('ListQueue', { searchWord: '%' })).totalCount).toBe(0);
    const beyond = await c.call('ListQueue', { offset: 10 });
    expect(beyond).toMatchObject({ totalCount: 5, queueList: [] });
    expect((await c.call('ListQueue', { limit: 1000 })).code).toBe(0);
  });

  it('DeleteQueue removes the queue; the name can be used again after the cool-down (6040 before)', async () => {
    await cmq.call('CreateQueue', { queueName: 'doomed' });
    await cmq.call('SendMessage', { queueName: 'doomed', msgBody: 'x' });
    expect(await cmq.call('DeleteQueue', { queueName: 'doomed' })).toMatchObject({ code: 0, message: '' });
    for (const action of ['GetQueueAttributes', 'DeleteQueue', 'ReceiveMessage', 'SetQueueAttributes']) {
      expect(await cmq.call(action, { queueName: 'doomed' })).toMatchObject({
        code: 4440,
        message: '(10100)queue is not existed, or deleted',
      });
    }
    expect(await cmq.call('SendMessage', { queueName: 'doomed', msgBody: 'x' })).toMatchObject({ code: 4440 });
    const cooling = await cmq.call('CreateQueue', { queueName: 'DOOMED' });
    expect(cooling).toMatchObject({
      code: 6040,
      message:
        '(10660)it will take some time to release resources of previous queue before you create a new one with the same name, please try later',
    });
    expect((await cmq.call('ListQueue', { searchWord: 'doomed' })).totalCount).toBe(0);
    // the cool-down is QUEUE_NAME_COOLDOWN_SECONDS after the deletion
    await stack.db.query(`UPDATE queues SET deleted_at = deleted_at - interval '11 seconds' WHERE account_id = $1 AND name = 'doomed'`, [
      tenant.accountId,
    ]);
    expect((await cmq.call('CreateQueue', { queueName: 'doomed' })).code).toBe(0);
    expect(await cmq.call('ReceiveMessage', { queueName: 'doomed' })).toMatchObject({ code: 7000 });
  });

  it('serves any number of queues: no limit by default', async () => {
    const c = stack.client(await stack.tenant('many'));
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => c.call('CreateQueue', { queueName: `m${i}` })));
    expect(results.every((r) => r.code === 0)).toBe(true);
    expect((await c.call('ListQueue', {})).totalCount).toBe(60);
  });

  describe('tenant isolation', () => {
    let a: CmqClient;
    let b: CmqClient;
    let tb: TestTenant;
    beforeAll(async () => {
      a = stack.client(await stack.tenant('a'));
      tb = await stack.tenant('b');
      b = stack.client(tb);
      await a.call('CreateQueue', { queueName: 'shared-name' });
      await a.call('CreateQueue', { queueName: 'only-a' });
      await a.call('SendMessage', { queueName: 'only-a', msgBody: 'secret of a' });
    });

    it('two accounts can each have a queue of the same name', async () => {
      expect((await b.call('CreateQueue', { queueName: 'shared-name' })).code).toBe(0);
      await b.call('SendMessage', { queueName: 'shared-name', msgBody: 'b' });
      expect(await a.call('ReceiveMessage', { queueName: 'shared-name' })).toMatchObject({ code: 7000 });
      expect(await b.call('ReceiveMessage', { queueName: 'shared-name' })).toMatchObject({ code: 0, msgBody: 'b' });
    });

    it("every action of one account against the other's queue fails or sees nothing", async () => {
      const q = { queueName: 'only-a' };
      const calls: Array<[string, Record<string, unknown>]> = [
        ['GetQueueAttributes', q],
        ['SetQueueAttributes', { ...q, visibilityTimeout: 1 }],
        ['SendMessage', { ...q, msgBody: 'x' }],
        ['BatchSendMessage', { ...q, msgBody: ['x'] }],
        ['ReceiveMessage', q],
        ['BatchReceiveMessage', { ...q, numOfMsg: 1 }],
        ['DeleteMessage', { ...q, receiptHandle: '1-1' }],
        ['BatchDeleteMessage', { ...q, receiptHandle: ['1-1'] }],
        ['DeleteQueue', q],
      ];
      for (const [action, params] of calls) {
        expect([action, (await b.call(action, params as never)).code]).toEqual([action, 4440]);
      }
      const list = await b.call('ListQueue', { searchWord: 'only' });
      expect(list).toMatchObject({ totalCount: 0, queueList: [] });
      // a's queue and message are untouched
      expect(await a.call('GetQueueAttributes', q)).toMatchObject({ activeMsgNum: 1, visibilityTimeout: 30 });
    });

    it("a receipt handle of one account's queue does not delete through another's", async () => {
      const got = await a.call('ReceiveMessage', { queueName: 'only-a' });
      expect(got.code).toBe(0);
      const r = await b.call('DeleteMessage', { queueName: 'shared-name', receiptHandle: got.receiptHandle as string });
      expect(r.code).toBe(4430);
      expect((await a.call('DeleteMessage', { queueName: 'only-a', receiptHandle: got.receiptHandle as string })).code).toBe(0);
    });

    it("a key of one account cannot sign for the other's SecretId", async () => {
      const forged = new CmqClient({ endpoint: stack.cmqEndpoint, secretId: tb.secretId, secretKey: tenant.secretKey });
      expect(await forged.call('ListQueue', {})).toMatchObject({ code: 4100, message: '(10030)authentication failed' });
      forged.close();
    });
  });
});
