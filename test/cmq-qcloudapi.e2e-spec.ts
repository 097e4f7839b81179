import { TestStack, TestTenant } from '@app/testing';
// A third-party signer nobody here wrote: compatibility is checked by its code, not ours.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const QcloudApi = require('qcloudapi-sdk');

type Reply = Record<string, any>;

const MODES = [
  { method: 'POST', signatureMethod: 'sha1', path: '/v2/index.php' },
  { method: 'POST', signatureMethod: 'sha256', path: '/' },
  { method: 'GET', signatureMethod: 'sha1', path: '/' },
  { method: 'GET', signatureMethod: 'sha256', path: '/v2/index.php' },
] as const;

describe('qcloudapi-sdk (npm) against the CMQ endpoint', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('qcloudapi');
  });
  afterAll(() => stack.stop());

  function client(mode: (typeof MODES)[number], key: Partial<TestTenant> = {}) {
    const opts = {
      protocol: 'http',
      host: `127.0.0.1:${stack.cmqPort}`,
      path: mode.path,
      method: mode.method,
      signatureMethod: mode.signatureMethod,
      SecretId: key.secretId ?? tenant.secretId,
      SecretKey: key.secretKey ?? tenant.secretKey,
    };
    const api = new QcloudApi(opts);
    return (params: Record<string, unknown>): Promise<Reply> =>
      new Promise((resolve, reject) =>
        api.request(params, opts, (err: Error | null, body: Reply) => (err ? reject(err) : resolve(body))),
      );
  }

  describe.each(MODES)('$method $signatureMethod $path', (mode) => {
    const queueName = `qc-${mode.method}-${mode.signatureMethod}-${mode.path.length}`;

    it('runs the whole message cycle', async () => {
      const call = client(mode);
      expect(await call({ Action: 'CreateQueue', queueName, visibilityTimeout: 10 })).toMatchObject({ code: 0, message: '' });
      expect(await call({ Action: 'CreateQueue', queueName })).toMatchObject({ code: 4460, message: '(10210)queue is already existed' });
      const list = await call({ Action: 'ListQueue', searchWord: queueName });
      expect(list).toMatchObject({ code: 0, totalCount: 1, queueList: [{ queueName }] });

      const sent = await call({ Action: 'SendMessage', queueName, msgBody: 'hello from qcloudapi, 你好!', delaySeconds: 0 });
      expect(sent).toMatchObject({ code: 0, msgId: expect.any(String) });
      const got = await call({ Action: 'ReceiveMessage', queueName, pollingWaitSeconds: 1 });
      expect(got).toMatchObject({ code: 0, msgId: sent.msgId, msgBody: 'hello from qcloudapi, 你好!', dequeueCount: 1 });
      expect(await call({ Action: 'DeleteMessage', queueName, receiptHandle: got.receiptHandle })).toMatchObject({ code: 0 });

      // qcloudapi flattens arrays 0-based: msgBody.0, msgBody.1, ...
      const bodies = Array.from({ length: 11 }, (_, i) => `batch ${i}`);
      const batch = await call({ Action: 'BatchSendMessage', queueName, msgBody: bodies });
      expect(batch.code).toBe(0);
      expect(batch.msgList).toHaveLength(11);
      const recv = await call({ Action: 'BatchReceiveMessage', queueName, numOfMsg: 16 });
      expect(recv.code).toBe(0);
      expect(recv.msgInfoList.map((m: Reply) => m.msgBody)).toEqual(bodies);
      const del = await call({
        Action: 'BatchDeleteMessage',
        queueName,
        receiptHandle: recv.msgInfoList.map((m: Reply) => m.receiptHandle),
      });
      expect(del).toMatchObject({ code: 0 });
      expect(await call({ Action: 'ReceiveMessage', queueName, pollingWaitSeconds: 0 })).toMatchObject({
        code: 7000,
        message: '(10200)no message',
      });

      const attrs = await call({ Action: 'GetQueueAttributes', queueName });
      expect(attrs).toMatchObject({ code: 0, visibilityTimeout: 10, activeMsgNum: 0, inactiveMsgNum: 0 });
      expect(await call({ Action: 'SetQueueAttributes', queueName, maxMsgSize: 4096 })).toMatchObject({ code: 0, maxMsgSize: 4096 });
      expect(await call({ Action: 'SendMessage', queueName, msgBody: 'x'.repeat(4097) })).toMatchObject({ code: 4400 });
      expect(await call({ Action: 'DeleteQueue', queueName })).toMatchObject({ code: 0 });
      expect(await call({ Action: 'GetQueueAttributes', queueName })).toMatchObject({
        code: 4440,
        message: '(10100)queue is not existed, or deleted',
      });
    });

    it('gets the protocol errors', async () => {
      const call = client(mode);
      expect(await call({ Action: 'CreateQueue', queueName: '9bad' })).toMatchObject({ code: 4000, message: '(10020)queue name format error' });
      expect(await call({ Action: 'NoSuchAction' })).toMatchObject({ code: 4000, message: '(10430)action name NoSuchAction is not existed' });
      expect(await call({ Action: 'BatchReceiveMessage', queueName: 'q', numOfMsg: 99 })).toMatchObject({ code: 4000 });
      expect(await call({ Action: 'DeleteMessage', queueName: 'missing', receiptHandle: '1-1' })).toMatchObject({ code: 4440 });
      const wrongKey = client(mode, { secretKey: 'not-the-key' });
      expect(await wrongKey({ Action: 'ListQueue' })).toMatchObject({ code: 4100, message: '(10030)authentication failed' });
      const unknownId = client(mode, { secretId: 'AKIDunknown' });
      expect(await unknownId({ Action: 'ListQueue' })).toMatchObject({ code: 4100, message: '(10270)secret id is not existed' });
    });
  });

  it("signs a POST '@' value the way the Python SDK does, and the server accepts it", async () => {
    const call = client(MODES[0]);
    await call({ Action: 'CreateQueue', queueName: 'at-rule' });
    expect(await call({ Action: 'SendMessage', queueName: 'at-rule', msgBody: '@not-a-file' })).toMatchObject({ code: 0 });
    expect(await call({ Action: 'ReceiveMessage', queueName: 'at-rule' })).toMatchObject({ msgBody: '@not-a-file' });
  });
});
