import { Caller, caller, CLIENT_MODES, describeMode, expectEventually, sleep, TestStack, TestTenant } from '@app/testing';

/**
 * The message cycle through the real endpoint, each scenario run by our client and by the
 * third-party qcloudapi-sdk, in POST and GET, HMAC-SHA1 and HMAC-SHA256, on both paths.
 */
describe.each(CLIENT_MODES)('CMQ message cycle: $client $method $signatureMethod $path', (mode) => {
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
  async function newQueue(attrs: Record<string, number> = {}): Promise<string> {
    const name = `q${Date.now().toString(36)}${seq++}`;
    const res = await cmq('CreateQueue', { queueName: name, ...attrs });
    expect(res).toMatchObject({ code: 0, message: '' });
    return name;
  }

  it('sends, receives and deletes, single and batch', async () => {
    const c = cmq;
    const queueName = await newQueue();
    const sent = await c('SendMessage', { queueName, msgBody: 'hello world + 你好 & =', delaySeconds: 0 });
    expect(sent).toMatchObject({ code: 0, message: '', msgId: expect.stringMatching(/^\d+$/) });
    expect(typeof sent.requestId).toBe('string');

    const got = await c('ReceiveMessage', { queueName });
    expect(got).toMatchObject({
      code: 0,
      msgId: sent.msgId,
      msgBody: 'hello world + 你好 & =',
      dequeueCount: 1,
    });
    for (const f of ['enqueueTime', 'nextVisibleTime', 'firstDequeueTime']) expect(Number.isInteger(got[f])).toBe(true);
    expect(got.receiptHandle).toMatch(/^[a-zA-Z0-9%#:_-]{1,256}$/);
    expect(got.nextVisibleTime).toBeGreaterThanOrEqual(got.enqueueTime as number);
    expect(await c('DeleteMessage', { queueName, receiptHandle: got.receiptHandle as string })).toMatchObject({ code: 0 });

    const bodies = Array.from({ length: 12 }, (_, i) => `m${i}`);
    const batch = await c('BatchSendMessage', { queueName, msgBody: bodies });
    expect(batch.code).toBe(0);
    const ids = (batch.msgList as Array<{ msgId: string }>).map((m) => m.msgId);
    expect(ids).toHaveLength(12);
    const recv = await c('BatchReceiveMessage', { queueName, numOfMsg: 16 });
    expect(recv.code).toBe(0);
    const infos = recv.msgInfoList as Array<Record<string, unknown>>;
    expect(infos.map((m) => m.msgBody)).toEqual(bodies);
    expect(infos.map((m) => m.msgId)).toEqual(ids);
    for (const m of infos) {
      expect(Object.keys(m).sort()).toEqual(
        ['dequeueCount', 'enqueueTime', 'firstDequeueTime', 'msgBody', 'msgId', 'nextVisibleTime', 'receiptHandle'].sort(),
      );
    }
    const del = await c('BatchDeleteMessage', { queueName, receiptHandle: infos.map((m) => m.receiptHandle as string) });
    expect(del).toMatchObject({ code: 0, message: '' });
    expect(await c('ReceiveMessage', { queueName, pollingWaitSeconds: 0 })).toMatchObject({
      code: 7000,
      message: '(10200)no message',
    });
  });

  it('an empty queue answers 7000 for single and batch receive', async () => {
    const queueName = await newQueue();
    expect(await cmq('ReceiveMessage', { queueName })).toMatchObject({ code: 7000, message: '(10200)no message' });
    expect(await cmq('BatchReceiveMessage', { queueName, numOfMsg: 3 })).toMatchObject({ code: 7000 });
  });

  it('echoes clientRequestId as a JSON number', async () => {
    const queueName = await newQueue();
    const plain = stack.client(tenant);
    const res = await plain.raw(
      new URLSearchParams(plain.signedParams('GetQueueAttributes', { queueName, clientRequestId: '4294967295' })).toString(),
    );
    expect(res.body).toContain('"clientRequestId":4294967295');
    expect(JSON.parse(res.body).code).toBe(0);
    expect(await cmq('GetQueueAttributes', { queueName })).toMatchObject({ code: 0, clientRequestId: 0 });
  });

  it('long polling: a send wakes a waiting receiver at once', async () => {
    const queueName = await newQueue();
    const started = Date.now();
    const waiting = cmq('ReceiveMessage', { queueName, pollingWaitSeconds: 10 });
    await sleep(300);
    await cmq('SendMessage', { queueName, msgBody: 'wake' });
    const got = await waiting;
    const elapsed = Date.now() - started;
    expect(got).toMatchObject({ code: 0, msgBody: 'wake' });
    expect(elapsed).toBeLessThan(1200);
  });

  it('long polling waits the full time and then answers 7000; the queue default applies', async () => {
    const explicit = await newQueue();
    let t = Date.now();
    expect(await cmq('ReceiveMessage', { queueName: explicit, pollingWaitSeconds: 2 })).toMatchObject({ code: 7000 });
    expect(Date.now() - t).toBeGreaterThanOrEqual(1900);

    const byDefault = await newQueue({ pollingWaitSeconds: 1 });
    t = Date.now();
    expect(await cmq('BatchReceiveMessage', { queueName: byDefault, numOfMsg: 2 })).toMatchObject({ code: 7000 });
    expect(Date.now() - t).toBeGreaterThanOrEqual(900);
  });

  it('visibility timeout: an undeleted message comes back with a new handle; old handles are invalid', async () => {
    const queueName = await newQueue({ visibilityTimeout: 1 });
    await cmq('SendMessage', { queueName, msgBody: 'again' });
    const first = await cmq('ReceiveMessage', { queueName });
    expect(first.dequeueCount).toBe(1);
    expect(first.nextVisibleTime as number).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1);
    // invisible while in flight
    expect(await cmq('ReceiveMessage', { queueName })).toMatchObject({ code: 7000 });
    const second = await expectEventually(async () => {
      const r = await cmq('ReceiveMessage', { queueName });
      expect(r.code).toBe(0);
      return r;
    }, 4000);
    expect(second).toMatchObject({ msgId: first.msgId, dequeueCount: 2, firstDequeueTime: first.firstDequeueTime });
    expect(second.receiptHandle).not.toBe(first.receiptHandle);
    // the first handle no longer deletes; the latest does, once
    expect(await cmq('DeleteMessage', { queueName, receiptHandle: first.receiptHandle as string })).toMatchObject({
      code: 4430,
      message: '(10260)receipt handle is invalid',
    });
    expect(await cmq('DeleteMessage', { queueName, receiptHandle: second.receiptHandle as string })).toMatchObject({ code: 0 });
    expect(await cmq('DeleteMessage', { queueName, receiptHandle: second.receiptHandle as string })).toMatchObject({ code: 4430 });
  });

  it('a handle is invalid once its visibility timeout ran out', async () => {
    const queueName = await newQueue({ visibilityTimeout: 1 });
    await cmq('SendMessage', { queueName, msgBody: 'late' });
    const got = await cmq('ReceiveMessage', { queueName });
    await sleep(1600);
    expect(await cmq('DeleteMessage', { queueName, receiptHandle: got.receiptHandle as string })).toMatchObject({ code: 4430 });
    const again = await cmq('ReceiveMessage', { queueName });
    expect(again).toMatchObject({ code: 0, msgId: got.msgId, dequeueCount: 2 });
  });

  it('delaySeconds keeps a message invisible until it is due, and counts it as delayed', async () => {
    const queueName = await newQueue();
    const sent = await cmq('SendMessage', { queueName, msgBody: 'later', delaySeconds: 2 });
    expect(sent.code).toBe(0);
    const attrs = await cmq('GetQueueAttributes', { queueName });
    expect(attrs).toMatchObject({ delayMsgNum: 1, activeMsgNum: 0, inactiveMsgNum: 0 });
    expect(await cmq('ReceiveMessage', { queueName })).toMatchObject({ code: 7000 });
    const t = Date.now();
    const got = await cmq('ReceiveMessage', { queueName, pollingWaitSeconds: 5 });
    expect(got).toMatchObject({ code: 0, msgId: sent.msgId });
    expect(Date.now() - t).toBeLessThan(4000);
  });

  it('a batch delete reports the handles that failed (6010), or all (6020)', async () => {
    const queueName = await newQueue();
    await cmq('BatchSendMessage', { queueName, msgBody: ['a', 'b'] });
    const recv = await cmq('BatchReceiveMessage', { queueName, numOfMsg: 2 });
    const handles = (recv.msgInfoList as Array<{ receiptHandle: string }>).map((m) => m.receiptHandle);
    const partial = await cmq('BatchDeleteMessage', { queueName, receiptHandle: [handles[0], '123-456'] });
    expect(partial).toMatchObject({
      code: 6010,
      message: '(10150)delete message partially failed',
      errorList: [{ code: 4430, message: 'invalid receiptHandle', receiptHandle: '123-456' }],
    });
    const all = await cmq('BatchDeleteMessage', { queueName, receiptHandle: [handles[0], 'garbage'] });
    expect(all).toMatchObject({ code: 6020, message: '(10290)batch delete message failed' });
    expect((all.errorList as unknown[]).length).toBe(2);
    expect(await cmq('DeleteMessage', { queueName, receiptHandle: handles[1] })).toMatchObject({ code: 0 });
  });

  it('at-least-once: concurrent receivers never get one message twice within its visibility timeout', async () => {
    const queueName = await newQueue({ visibilityTimeout: 60 });
    const bodies = Array.from({ length: 200 }, (_, i) => `c${i}`);
    for (let i = 0; i < bodies.length; i += 16) {
      expect((await cmq('BatchSendMessage', { queueName, msgBody: bodies.slice(i, i + 16) })).code).toBe(0);
    }
    const seen: string[] = [];
    let calls = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        for (;;) {
          // qcloudapi-sdk draws its Nonce from 0..65535: identical calls in one second could sign
          // identically, which the server rightly refuses as a replay; a distinct clientRequestId
          // keeps each call's signature its own
          const r = await cmq('BatchReceiveMessage', { queueName, numOfMsg: 7, clientRequestId: String(++calls) });
          if (r.code === 7000) return;
          expect(r.code).toBe(0);
          for (const m of r.msgInfoList as Array<{ msgBody: string }>) seen.push(m.msgBody);
        }
      }),
    );
    expect(seen.length).toBe(200);
    expect(new Set(seen).size).toBe(200);
  });

  it('GetQueueAttributes counts active, inactive and delayed messages and the oldest one', async () => {
    const queueName = await newQueue();
    const before = Math.floor(Date.now() / 1000);
    await cmq('BatchSendMessage', { queueName, msgBody: ['1', '2', '3'] });
    await cmq('SendMessage', { queueName, msgBody: 'd', delaySeconds: 100 });
    await cmq('ReceiveMessage', { queueName });
    const a = await cmq('GetQueueAttributes', { queueName });
    expect(a).toMatchObject({ activeMsgNum: 2, inactiveMsgNum: 1, delayMsgNum: 1, rewindMsgNum: 0, rewindmsgNum: 0 });
    expect(a.minMsgTime as number).toBeGreaterThanOrEqual(before);
  });
});
