import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CmqClient, CmqValue } from '@app/cmq';
import { TestStack, TestTenant } from '@app/testing';

type Case = [string, string, Record<string, CmqValue>, number, string];

const big = (n: number) => 'x'.repeat(n);

/** Each case: action, parameters, expected code and message. Every one must store nothing. */
const CASES: Case[] = [
  ['missing queueName', 'CreateQueue', {}, 4000, '(10390)lacked of required parameter queueName'],
  ['name starting with a digit', 'CreateQueue', { queueName: '1abc' }, 4000, '(10020)queue name format error'],
  ['name too long', 'CreateQueue', { queueName: big(65) }, 4000, '(10020)queue name format error'],
  ['SQL injection in a name', 'CreateQueue', { queueName: "q'; DROP TABLE queues;--" }, 4000, '(10020)queue name format error'],
  ['script in a name', 'CreateQueue', { queueName: '<script>alert(1)</script>' }, 4000, '(10020)queue name format error'],
  ['NUL in a name', 'CreateQueue', { queueName: 'q\u0000x' }, 4000, '(10020)queue name format error'],
  ['empty name', 'CreateQueue', { queueName: '' }, 4000, '(10020)queue name format error'],
  ['visibilityTimeout 0', 'CreateQueue', { queueName: 'v', visibilityTimeout: 0 }, 4000, '(10350)parameter visibilityTimeout value or length is out of range'],
  ['visibilityTimeout too big', 'CreateQueue', { queueName: 'v', visibilityTimeout: 43_201 }, 4000, '(10350)parameter visibilityTimeout value or length is out of range'],
  ['maxMsgSize too small', 'CreateQueue', { queueName: 'v', maxMsgSize: 1023 }, 4000, '(10350)parameter maxMsgSize value or length is out of range'],
  ['maxMsgSize too big', 'CreateQueue', { queueName: 'v', maxMsgSize: 1_048_577 }, 4000, '(10350)parameter maxMsgSize value or length is out of range'],
  ['retention too short', 'CreateQueue', { queueName: 'v', msgRetentionSeconds: 59 }, 4000, '(10350)parameter msgRetentionSeconds value or length is out of range'],
  ['pollingWaitSeconds 31 at creation', 'CreateQueue', { queueName: 'v', pollingWaitSeconds: 31 }, 4000, '(10350)parameter pollingWaitSeconds value or length is out of range'],
  ['maxMsgHeapNum too small', 'CreateQueue', { queueName: 'v', maxMsgHeapNum: 1 }, 4000, '(10350)parameter maxMsgHeapNum value or length is out of range'],
  ['huge number', 'CreateQueue', { queueName: 'v', visibilityTimeout: '99999999999999999999999999999999' }, 4000, '(10350)parameter visibilityTimeout value or length is out of range'],
  ['negative huge number', 'CreateQueue', { queueName: 'v', maxMsgSize: '-99999999999999999999999999999999' }, 4000, '(10350)parameter maxMsgSize value or length is out of range'],
  ['decimal number', 'CreateQueue', { queueName: 'v', visibilityTimeout: '1.5' }, 4000, '(10360)parameter visibilityTimeout error type'],
  ['exponent number', 'CreateQueue', { queueName: 'v', visibilityTimeout: '1e3' }, 4000, '(10360)parameter visibilityTimeout error type'],
  ['text for a number', 'CreateQueue', { queueName: 'v', rewindSeconds: 'abc' }, 4000, '(10360)parameter rewindSeconds error type'],
  ['empty number', 'CreateQueue', { queueName: 'v', rewindSeconds: '' }, 4000, '(10360)parameter rewindSeconds error type'],
  ['dead-letter policy that is not JSON', 'CreateQueue', { queueName: 'v', deadLetterPolicy: 'target' }, 4000, '(10710)deadLetterPolicy must be a json string'],
  ['dead-letter policy without its queue', 'CreateQueue', { queueName: 'v', deadLetterPolicy: '{"policy":0,"maxReceiveCount":3}' }, 4000, '(10760)the deadLetterPolicy must has deadLetterQueue member, only be a string'],
  ['dead-letter policy without a policy', 'CreateQueue', { queueName: 'v', deadLetterPolicy: '{"deadLetterQueue":"target"}' }, 4000, '(10770)the deadLetterPolicy must has policy member , only set 0 or 1'],
  ['dead-letter maxReceiveCount 0', 'CreateQueue', { queueName: 'v', deadLetterPolicy: '{"deadLetterQueue":"target","policy":0,"maxReceiveCount":0}' }, 4000, '(10720)deadLetterPolicy params error,please check it'],
  ['dead-letter maxTimeToLive not below retention', 'CreateQueue', { queueName: 'v', msgRetentionSeconds: 600, deadLetterPolicy: '{"deadLetterQueue":"target","policy":1,"maxTimeToLive":600}' }, 4000, '(10720)deadLetterPolicy params error,please check it'],
  ['dead-letter queue that does not exist', 'CreateQueue', { queueName: 'v', deadLetterPolicy: '{"deadLetterQueue":"nowhere","policy":0,"maxReceiveCount":3}' }, 4000, '(10730)deadLetter queue not exist'],
  ['a queue as its own dead-letter queue', 'SetQueueAttributes', { queueName: 'target', deadLetterPolicy: '{"deadLetterQueue":"TARGET","policy":0,"maxReceiveCount":3}' }, 4000, '(10740)deadLetter queue is not allowed to nest'],
  ['dead-letter policy on a missing queue', 'SetQueueAttributes', { queueName: 'missing', deadLetterPolicy: '{"deadLetterQueue":"target","policy":0,"maxReceiveCount":3}' }, 4440, '(10100)queue is not existed, or deleted'],
  ['rewind of a queue without a rewind window', 'RewindQueue', { queueName: 'target', startConsumeTime: Math.floor(Date.now() / 1000) }, 6050, '(10670)your queue cannot be rewinded'],
  ['rewind without startConsumeTime', 'RewindQueue', { queueName: 'target' }, 4000, '(10390)lacked of required parameter startConsumeTime'],
  ['rewind with a text time', 'RewindQueue', { queueName: 'target', startConsumeTime: 'yesterday' }, 4000, '(10360)parameter startConsumeTime error type'],
  ['rewind of a missing queue', 'RewindQueue', { queueName: 'missing', startConsumeTime: 1 }, 4440, '(10100)queue is not existed, or deleted'],
  ['unbind on a missing queue', 'UnbindDeadLetterQueue', { queueName: 'missing' }, 4440, '(10100)queue is not existed, or deleted'],
  ['dead-letter sources of a missing queue', 'ListDeadLetterSourceQueues', { deadLetterQueueName: 'missing' }, 4440, '(10100)queue is not existed, or deleted'],
  ['dead-letter sources without a name', 'ListDeadLetterSourceQueues', {}, 4000, '(10390)lacked of required parameter deadLetterQueueName'],
  ['route of a missing queue', 'QueryQueueRoute', { queueName: 'missing' }, 4440, '(10100)queue is not existed, or deleted'],
  ['scalar as an array', 'CreateQueue', { 'queueName.1': 'v' }, 4000, '(10330)parameter queueName is NOT a repeatable parameter'],
  ['missing msgBody', 'SendMessage', { queueName: 'target' }, 4000, '(10390)lacked of required parameter msgBody'],
  ['empty msgBody', 'SendMessage', { queueName: 'target', msgBody: '' }, 4000, "(10120)message body can't be empty"],
  ['oversized msgBody', 'SendMessage', { queueName: 'target', msgBody: big(65_537) }, 4400, '(10230)exceed maximum message size'],
  ['oversized multi-byte msgBody', 'SendMessage', { queueName: 'target', msgBody: '你'.repeat(21_846) }, 4400, '(10230)exceed maximum message size'],
  ['negative delay', 'SendMessage', { queueName: 'target', msgBody: 'x', delaySeconds: -1 }, 4000, '(10692)delay seconds is out of range'],
  ['delay too long', 'SendMessage', { queueName: 'target', msgBody: 'x', delaySeconds: 6_048_001 }, 4000, '(10692)delay seconds is out of range'],
  ['huge delay', 'SendMessage', { queueName: 'target', msgBody: 'x', delaySeconds: '999999999999999999999' }, 4000, '(10692)delay seconds is out of range'],
  ['text delay', 'SendMessage', { queueName: 'target', msgBody: 'x', delaySeconds: 'soon' }, 4000, '(10360)parameter delaySeconds error type'],
  ['send to a missing queue', 'SendMessage', { queueName: 'missing', msgBody: 'x' }, 4440, '(10100)queue is not existed, or deleted'],
  ['17 messages in a batch', 'BatchSendMessage', { queueName: 'target', msgBody: Array.from({ length: 17 }, () => 'x') }, 4000, '(10370)msgBody parameter batch size is out of range'],
  ['gap in a batch', 'BatchSendMessage', { queueName: 'target', 'msgBody.1': 'a', 'msgBody.3': 'b' }, 4000, '(10380)msgBody parameter is not consequent'],
  ['batch starting at 2', 'BatchSendMessage', { queueName: 'target', 'msgBody.2': 'a' }, 4000, '(10380)msgBody parameter is not consequent'],
  ['bad batch index', 'BatchSendMessage', { queueName: 'target', 'msgBody.x': 'a' }, 4000, '(10310)error: parameter msgBody.x key format error'],
  ['empty message in a batch', 'BatchSendMessage', { queueName: 'target', msgBody: ['a', ''] }, 4000, "(10120)message body can't be empty"],
  ['oversized message in a batch', 'BatchSendMessage', { queueName: 'target', msgBody: ['a', big(65_537)] }, 4400, '(10230)exceed maximum message size'],
  ['batch over 1 MiB in total', 'BatchSendMessage', { queueName: 'bigq', msgBody: [big(600_000), big(600_000)] }, 4470, '(10300)total message size exceed 1MB'],
  ['numOfMsg 0', 'BatchReceiveMessage', { queueName: 'target', numOfMsg: 0 }, 4000, '(10350)parameter numOfMsg value or length is out of range'],
  ['numOfMsg 17', 'BatchReceiveMessage', { queueName: 'target', numOfMsg: 17 }, 4000, '(10350)parameter numOfMsg value or length is out of range'],
  ['missing numOfMsg', 'BatchReceiveMessage', { queueName: 'target' }, 4000, '(10390)lacked of required parameter numOfMsg'],
  ['negative wait', 'ReceiveMessage', { queueName: 'target', pollingWaitSeconds: -1 }, 4000, '(10350)parameter pollingWaitSeconds value or length is out of range'],
  ['missing receiptHandle', 'DeleteMessage', { queueName: 'target' }, 4000, '(10390)lacked of required parameter receiptHandle'],
  ['foreign receiptHandle', 'DeleteMessage', { queueName: 'target', receiptHandle: "1' OR '1'='1" }, 4430, '(10260)receipt handle is invalid'],
  ['huge receiptHandle numbers', 'DeleteMessage', { queueName: 'target', receiptHandle: '99999999999999999999-1' }, 4430, '(10260)receipt handle is invalid'],
  ['17 handles', 'BatchDeleteMessage', { queueName: 'target', receiptHandle: Array.from({ length: 17 }, () => '1-1') }, 4000, '(10370)receiptHandle parameter batch size is out of range'],
  ['negative offset', 'ListQueue', { offset: -1 }, 4000, '(10350)parameter offset value or length is out of range'],
  ['zero limit', 'ListQueue', { limit: 0 }, 4000, '(10350)parameter limit value or length is out of range'],
  ['long searchWord', 'ListQueue', { searchWord: big(65) }, 4000, '(10350)parameter searchWord value or length is out of range'],
  ['NUL in a searchWord', 'ListQueue', { searchWord: 'a\u0000b' }, 4000, '(10350)parameter searchWord value or length is out of range'],
  ['control character in a searchWord', 'ListQueue', { searchWord: '\u0001' }, 4000, '(10350)parameter searchWord value or length is out of range'],
  ['NUL in a dead-letter sources searchWord', 'ListDeadLetterSourceQueues', { deadLetterQueueName: 'target', searchWord: '\u0000' }, 4000, '(10350)parameter searchWord value or length is out of range'],
  ['NUL in a topic searchWord', 'ListTopic', { searchWord: '\u0000' }, 4000, '(10350)parameter searchWord value or length is out of range'],
];

describe('CMQ bad input: the protocol error, HTTP 200, and nothing stored', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let cmq: CmqClient;
  let baseline: { queues: number; messages: number };
  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('bad-input');
    cmq = stack.client(tenant);
    await cmq.call('CreateQueue', { queueName: 'target' });
    await cmq.call('CreateQueue', { queueName: 'bigq', maxMsgSize: 1_048_576 });
    baseline = await stack.stored(tenant.accountId);
  });
  afterEach(async () => {
    expect(await stack.stored(tenant.accountId)).toEqual(baseline);
  });
  afterAll(() => stack.stop());

  it.each(CASES)('%s', async (_name, action, params, code, message) => {
    expect(await cmq.call(action, params)).toMatchObject({ code, message });
  });

  it('a forged receipt handle (receipt 0, never issued) deletes no delayed message', async () => {
    // a message not yet received has receipt 0 and a visible time in the future: `<msgId>-0`
    // must not pass for its handle
    await cmq.call('CreateQueue', { queueName: 'delayed' });
    const sent = await cmq.call('SendMessage', { queueName: 'delayed', msgBody: 'later', delaySeconds: 3600 });
    for (const handle of [`${sent.msgId}-0`, `${sent.msgId}-000`]) {
      expect(await cmq.call('DeleteMessage', { queueName: 'delayed', receiptHandle: handle })).toMatchObject({ code: 4430, message: '(10260)receipt handle is invalid' });
    }
    expect(await cmq.call('BatchDeleteMessage', { queueName: 'delayed', receiptHandle: [`${sent.msgId}-0`] })).toMatchObject({ code: 6020 });
    expect(await cmq.call('GetQueueAttributes', { queueName: 'delayed' })).toMatchObject({ delayMsgNum: 1 });
    await cmq.call('DeleteQueue', { queueName: 'delayed' });
    // the queue and its message were this test's own, sent as valid requests
    baseline = await stack.stored(tenant.accountId);
  });

  it('an oversized request body: 4000/10420', async () => {
    const res = await cmq.raw(`Action=SendMessage&msgBody=${'x'.repeat(stack.config.cmq.maxRequestBytes)}`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ code: 4000, message: '(10420)cannot parse request, or request size is more than 1MB' });
  });

  it('an oversized body sent whole, as plain clients do: the reply arrives, never a reset connection', async () => {
    // A client that writes its whole body before it reads (Node's req.end(body), most SDKs) must
    // get the 10420 reply. A server that answers and closes while the client still writes resets
    // the connection under it, and the reply is lost (EPIPE); Node closes at once after a reply
    // to a request with Connection: close (what its client sends without an agent). The client
    // runs in a process of its own: in this one, the shared event loop orders the events so the
    // race never shows.
    const size = stack.config.cmq.maxRequestBytes + 1;
    const client = `
      const http = require('node:http');
      const body = Buffer.alloc(${size}, 'x');
      const once = () => new Promise((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: ${stack.cmqPort}, method: 'POST', path: '/v2/index.php', headers: { 'content-length': '${size}' }, agent: false }, (r) => {
          let s = '';
          r.on('data', (d) => (s += d));
          r.on('end', () => resolve(r.statusCode + ' ' + JSON.parse(s).message));
        });
        req.on('error', (err) => resolve('error ' + err.code));
        req.end(body);
      });
      (async () => {
        const out = [];
        for (let i = 0; i < 30; i++) out.push(await once());
        process.stdout.write(JSON.stringify(out));
      })();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', client], { maxBuffer: 1 << 20 });
    const outcomes: string[] = JSON.parse(stdout);
    expect(outcomes).toHaveLength(30);
    expect(new Set(outcomes)).toEqual(new Set(['200 (10420)cannot parse request, or request size is more than 1MB']));
  });

  it('an oversized chunked body (no Content-Length): 4000/10420, read no further', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = require('node:http').request(
        { host: '127.0.0.1', port: stack.cmqPort, method: 'POST', path: '/', headers: { 'transfer-encoding': 'chunked' } },
        (r: import('node:http').IncomingMessage) => {
          let s = '';
          r.on('data', (d) => (s += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: s }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024, 'x');
      req.write('Action=SendMessage&queueName=target&msgBody=');
      let sent = 0;
      const pump = () => {
        while (sent <= stack.config.cmq.maxRequestBytes) {
          sent += chunk.length;
          if (!req.write(chunk)) return req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ code: 4000, message: '(10420)cannot parse request, or request size is more than 1MB' });
  });

  it('a GET whose query is too large for the HTTP parser: 4000/10420 with HTTP 200', async () => {
    const get = stack.client(tenant, { method: 'GET' });
    const res = await get.raw(`Action=SendMessage&queueName=target&msgBody=${'x'.repeat(64 * 1024)}`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ code: 4000, message: '(10420)cannot parse request, or request size is more than 1MB' });
  });

  it('non-UTF-8 bytes: 4000/10420, before and after percent-decoding', async () => {
    const pairs = cmq.signedParams('SendMessage', { queueName: 'target', msgBody: 'x' });
    const body = new URLSearchParams(pairs).toString().replace('msgBody=x', 'msgBody=%C3%28');
    expect(JSON.parse((await cmq.raw(body)).body)).toMatchObject({ code: 4000, message: '(10420)cannot parse request, or request size is more than 1MB' });
    const raw = await new Promise<string>((resolve, reject) => {
      const req = require('node:http').request(
        { host: '127.0.0.1', port: stack.cmqPort, method: 'POST', path: '/v2/index.php' },
        (r: import('node:http').IncomingMessage) => {
          let s = '';
          r.on('data', (d) => (s += d));
          r.on('end', () => resolve(s));
        },
      );
      req.on('error', reject);
      req.end(Buffer.concat([Buffer.from('Action=SendMessage&msgBody='), Buffer.from([0xff, 0xfe, 0x80])]));
    });
    expect(JSON.parse(raw)).toMatchObject({ code: 4000, message: '(10420)cannot parse request, or request size is more than 1MB' });
  });

  it('broken percent escapes and repeated keys', async () => {
    expect(JSON.parse((await cmq.raw('Action=ListQueue&x=%G1')).body)).toMatchObject({ code: 4000, message: expect.stringMatching(/^\(10420\)/) });
    expect(JSON.parse((await cmq.raw('Action=ListQueue&Action=ListQueue')).body)).toMatchObject({
      code: 4000,
      message: '(10330)parameter Action is NOT a repeatable parameter',
    });
  });

  it.each(['PUT', 'DELETE', 'PATCH', 'OPTIONS'])('method %s: 4000/10410 with HTTP 200', async (method) => {
    const pairs = cmq.signedParams('SendMessage', { queueName: 'target', msgBody: 'x' });
    const res = await cmq.raw(new URLSearchParams(pairs).toString(), { method });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ code: 4000, message: `(10410)unexpected http ${method} only GET or POST is supported` });
  });

  it('every reply carries code (integer), message (string) and requestId (string)', async () => {
    const r = await cmq.call('CreateQueue', {});
    expect(typeof r.code).toBe('number');
    expect(typeof r.message).toBe('string');
    expect(r.requestId).toMatch(/^\d+$/);
  });
});
