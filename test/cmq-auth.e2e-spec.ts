import { CredentialStore } from '@app/accounts';
import { RedisService } from '@app/common';
import { CmqClient, sign, signatureAlgorithm, sourceString } from '@app/cmq';
import { TestStack, TestTenant, expectEventually } from '@app/testing';
import { ReplayGuard } from '../apps/queue-api/src/cmq/replay-guard';

const form = (pairs: Array<[string, string]>) => new URLSearchParams(pairs).toString();

describe('CMQ authentication', () => {
  let stack: TestStack;
  let tenant: TestTenant;
  let cmq: CmqClient;
  let host: string;
  beforeAll(async () => {
    stack = await TestStack.start();
    tenant = await stack.tenant('auth');
    cmq = stack.client(tenant);
    host = `127.0.0.1:${stack.cmqPort}`;
    await cmq.call('CreateQueue', { queueName: 'q' });
  });
  afterAll(() => stack.stop());

  /** Signs `pairs` as a client would, with the given changes to what is signed. */
  function signed(
    pairs: Array<[string, string]>,
    o: { key?: string; host?: string; path?: string; method?: string; dropAt?: boolean } = {},
  ): Array<[string, string]> {
    const method = o.method ?? 'POST';
    const src = sourceString(method, o.host ?? host, o.path ?? '/v2/index.php', pairs, o.dropAt);
    const alg = signatureAlgorithm(pairs.find(([k]) => k === 'SignatureMethod')?.[1]);
    return [...pairs, ['Signature', sign(src, o.key ?? tenant.secretKey, alg)]];
  }

  function common(action: string, extra: Array<[string, string]> = [], ts = Math.floor(Date.now() / 1000)) {
    return [
      ['Action', action],
      ['SecretId', tenant.secretId],
      ['Timestamp', String(ts)],
      ['Nonce', String(Math.floor(Math.random() * 1e9))],
      ...extra,
    ] as Array<[string, string]>;
  }

  const post = async (pairs: Array<[string, string]>, headers?: Record<string, string>) => {
    const res = await cmq.raw(form(pairs), { headers });
    expect(res.status).toBe(200);
    return JSON.parse(res.body);
  };

  it('accepts a correct signature and matches Action ignoring case', async () => {
    expect(await post(signed(common('listqueue')))).toMatchObject({ code: 0 });
  });

  it('refuses an unknown SecretId (10270) and a disabled one (10080), and takes a re-enabled one within moments', async () => {
    const unknown = [['Action', 'ListQueue'], ['SecretId', 'AKIDnope'], ['Timestamp', String(Math.floor(Date.now() / 1000))], ['Nonce', '1']] as Array<[string, string]>;
    expect(await post(signed(unknown))).toMatchObject({ code: 4100, message: '(10270)secret id is not existed' });

    const t = await stack.tenant('toggle');
    const c = stack.client(t);
    expect((await c.call('ListQueue')).code).toBe(0);
    // a key change reaches the queue-api's credential cache by Redis pub/sub: within milliseconds,
    // not before the API's answer, so each first check may retry for a moment
    await stack.admin('POST', `/v1/accounts/${t.accountId}/keys/${t.secretId}/disable`);
    await expectEventually(async () => expect(await c.call('ListQueue')).toMatchObject({ code: 4100, message: '(10080)secret id status error' }), 2000);
    expect(await c.call('CreateQueue', { queueName: 'nope' })).toMatchObject({ code: 4100 });
    await stack.admin('POST', `/v1/accounts/${t.accountId}/keys/${t.secretId}/enable`);
    await expectEventually(async () => expect((await c.call('ListQueue')).code).toBe(0), 2000);
    await stack.admin('DELETE', `/v1/accounts/${t.accountId}/keys/${t.secretId}`);
    await expectEventually(async () => expect(await c.call('ListQueue')).toMatchObject({ code: 4100, message: '(10270)secret id is not existed' }), 2000);
    expect((await stack.stored(t.accountId)).queues).toBe(0);
  });

  it.each([
    ['a wrong key', { key: 'wrong' }],
    ['another host', { host: 'evil.example.com:8080' }],
    ['another path', { path: '/' }],
    ['another method', { method: 'GET' }],
  ])('refuses a signature made with %s (10030)', async (_what, o) => {
    expect(await post(signed(common('ListQueue'), o))).toMatchObject({ code: 4100, message: '(10030)authentication failed' });
  });

  it('refuses tampered parameters and stores nothing', async () => {
    const pairs = signed(common('SendMessage', [['queueName', 'q'], ['msgBody', 'original']]));
    const tampered = pairs.map(([k, v]) => [k, k === 'msgBody' ? 'changed' : v] as [string, string]);
    expect(await post(tampered)).toMatchObject({ code: 4100, message: '(10030)authentication failed' });
    expect((await stack.stored(tenant.accountId)).messages).toBe(0);
  });

  it('refuses timestamps outside the window either way, accepts inside it', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await post(signed(common('ListQueue', [], now - 301)))).toMatchObject({ code: 4100, message: '(10030)authentication failed' });
    expect(await post(signed(common('ListQueue', [], now + 301)))).toMatchObject({ code: 4100 });
    expect(await post(signed(common('ListQueue', [], now - 250)))).toMatchObject({ code: 0 });
  });

  it('refuses a replayed request inside the window, with no second effect', async () => {
    const pairs = signed(common('SendMessage', [['queueName', 'q'], ['msgBody', 'once']]));
    expect(await post(pairs)).toMatchObject({ code: 0 });
    expect(await post(pairs)).toMatchObject({ code: 4100, message: '(10030)authentication failed' });
    expect((await stack.stored(tenant.accountId)).messages).toBe(1);
    const got = await cmq.call('ReceiveMessage', { queueName: 'q' });
    await cmq.call('DeleteMessage', { queueName: 'q', receiptHandle: got.receiptHandle as string });
  });

  it('lets one copy through of a request sent many times at once, with one effect', async () => {
    const pairs = signed(common('SendMessage', [['queueName', 'q'], ['msgBody', 'burst']]));
    const others = Array.from({ length: 20 }, () => signed(common('ListQueue')));
    const replies = await Promise.all([...Array.from({ length: 10 }, () => post(pairs)), ...others.map((p) => post(p))]);
    expect(replies.slice(0, 10).map((r) => r.code).sort()).toEqual([0, ...Array(9).fill(4100)]);
    expect(replies.slice(10).map((r) => r.code)).toEqual(Array(20).fill(0));
    expect((await stack.stored(tenant.accountId)).messages).toBe(1);
    const got = await cmq.call('ReceiveMessage', { queueName: 'q' });
    await cmq.call('DeleteMessage', { queueName: 'q', receiptHandle: got.receiptHandle as string });
  });

  it('the replay guard answers the questions of one event-loop turn in one call: first use once per key, kept for two signature windows', async () => {
    const guard = stack.queueApi.get(ReplayGuard);
    const redis = stack.queueApi.get(RedisService);
    const run = Date.now();
    const key = (n: number) => redis.key('sig', 'guard-test', `${run}-${n}`);
    // asked in the same turn: a key asked twice is new only the first time, in order
    const answers = await Promise.all([guard.firstUse(key(1)), guard.firstUse(key(2)), guard.firstUse(key(1)), guard.firstUse(key(3))]);
    expect(answers).toEqual([true, true, false, true]);
    expect(await guard.firstUse(key(2))).toBe(false);
    const ttl = await redis.client.pttl(key(1));
    expect(ttl).toBeGreaterThan(2 * 300 * 1000 - 10_000);
    expect(ttl).toBeLessThanOrEqual(2 * 300 * 1000);
    // more keys than one call takes: every one answered, none lost
    const many = Array.from({ length: 1200 }, (_, i) => key(100 + i));
    expect(await Promise.all(many.map((k) => guard.firstUse(k)))).toEqual(Array(1200).fill(true));
    expect(await Promise.all(many.map((k) => guard.firstUse(k)))).toEqual(Array(1200).fill(false));
  });

  it('refuses a replay whose Signature is the same digest spelled otherwise, with no second effect', async () => {
    // Base64 decoders skip characters outside the alphabet and stop at `=`: each of these decodes
    // to the digest of the first request, and must be taken for the replay it is
    const pairs = signed(common('SendMessage', [['queueName', 'q'], ['msgBody', 'respelled']]));
    const sig = pairs.find(([k]) => k === 'Signature')![1];
    expect(await post(pairs)).toMatchObject({ code: 0 });
    for (const variant of [`${sig}x`, sig.replace(/=+$/, ''), `${sig.slice(0, 5)}*${sig.slice(5)}`, ` ${sig}`, sig + sig]) {
      const again = pairs.map(([k, v]) => [k, k === 'Signature' ? variant : v] as [string, string]);
      expect([variant, await post(again)]).toMatchObject([variant, { code: 4100, message: '(10030)authentication failed' }]);
    }
    expect((await stack.stored(tenant.accountId)).messages).toBe(1);
    const got = await cmq.call('ReceiveMessage', { queueName: 'q' });
    await cmq.call('DeleteMessage', { queueName: 'q', receiptHandle: got.receiptHandle as string });
  });

  it('refuses a SecretId no key can have (NUL, blanks, over 128 characters) as unknown, without keeping it', async () => {
    const store = stack.queueApi.get(CredentialStore);
    const cached = () => (store as unknown as { cache: Map<string, unknown> }).cache.size;
    const before = cached();
    for (const secretId of ['AKID\u0000x', '\u0000', 'AKID with blanks', `AKID${'x'.repeat(125)}`, `AKID${'y'.repeat(1_000_000)}`]) {
      const pairs = [['Action', 'ListQueue'], ['SecretId', secretId], ['Timestamp', String(Math.floor(Date.now() / 1000))], ['Nonce', '1']] as Array<[string, string]>;
      expect(await post(signed(pairs))).toMatchObject({ code: 4100, message: '(10270)secret id is not existed' });
    }
    // an id that cannot exist is not looked up, so it takes no place in the credential cache
    expect(cached()).toBe(before);
  });

  it('accepts the POST @-rule of the Python SDK and qcloudapi-sdk (value sent, unsigned)', async () => {
    const pairs = signed(common('SendMessage', [['queueName', 'q'], ['msgBody', '@file-like body']]), { dropAt: true });
    const sent = await post(pairs);
    expect(sent.code).toBe(0);
    const got = await cmq.call('ReceiveMessage', { queueName: 'q' });
    expect(got.msgBody).toBe('@file-like body');
    await cmq.call('DeleteMessage', { queueName: 'q', receiptHandle: got.receiptHandle as string });
  });

  it.each([
    ['no Content-Type', undefined],
    ['the Java SDK type', '*/*; charset=utf-8'],
    ['a JSON type', 'application/json'],
    ['form with charset', 'application/x-www-form-urlencoded;charset=utf-8'],
  ])('parses the body as a form whatever the Content-Type: %s', async (_what, type) => {
    const body = form(signed(common('ListQueue')));
    const res = await new Promise<string>((resolve, reject) => {
      const req = require('node:http').request(
        { host: '127.0.0.1', port: stack.cmqPort, method: 'POST', path: '/v2/index.php', headers: type ? { 'content-type': type } : {} },
        (r: import('node:http').IncomingMessage) => {
          let s = '';
          r.on('data', (d) => (s += d));
          r.on('end', () => resolve(s));
        },
      );
      req.on('error', reject);
      if (!type) req.removeHeader('content-type');
      req.end(body);
    });
    expect(JSON.parse(res)).toMatchObject({ code: 0 });
  });

  it("decodes `+` as a space, as the Python and Java SDKs encode it", async () => {
    const pairs = signed(common('SendMessage', [['queueName', 'q'], ['msgBody', 'a b+c']]));
    const body = pairs.map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%20/g, '+')}`).join('&');
    const res = JSON.parse((await cmq.raw(body)).body);
    expect(res.code).toBe(0);
    const got = await cmq.call('ReceiveMessage', { queueName: 'q' });
    expect(got.msgBody).toBe('a b+c');
    await cmq.call('DeleteMessage', { queueName: 'q', receiptHandle: got.receiptHandle as string });
  });

  it.each(['SecretId', 'Timestamp', 'Nonce', 'Signature'])('refuses a request without %s (10390)', async (name) => {
    const pairs = signed(common('ListQueue')).filter(([k]) => k !== name);
    expect(await post(pairs)).toMatchObject({ code: 4000, message: `(10390)lacked of required parameter ${name}` });
  });

  it('refuses a missing or unknown Action, and a malformed Timestamp', async () => {
    expect(await post(signed(common('ListQueue')).filter(([k]) => k !== 'Action'))).toMatchObject({
      code: 4000,
      message: '(10390)lacked of required parameter Action',
    });
    expect(await post(signed(common('DropEverything')))).toMatchObject({
      code: 4000,
      message: '(10430)action name DropEverything is not existed',
    });
    const bad = common('ListQueue').map(([k, v]) => [k, k === 'Timestamp' ? '12abc' : v] as [string, string]);
    expect(await post(signed(bad))).toMatchObject({ code: 4000, message: '(10360)parameter Timestamp error type' });
  });

  it('takes the region from a cmq-queue-<region> host or the Region parameter; refuses an unserved one', async () => {
    expect(await post(signed(common('ListQueue', [['Region', 'gz']])))).toMatchObject({ code: 0 });
    expect(await post(signed(common('ListQueue', [['Region', '']])))).toMatchObject({ code: 0 });
    expect(await post(signed(common('ListQueue', [['Region', 'sh']])))).toMatchObject({
      code: 4000,
      message: '(10350)parameter Region value or length is out of range',
    });
    // the host's region wins over the parameter
    const viaHost = 'cmq-queue-gz.api.example.com';
    const pairs = signed(common('ListQueue', [['Region', 'sh']]), { host: viaHost });
    expect(await post(pairs, { host: viaHost })).toMatchObject({ code: 0, totalCount: 1 });
  });
});
