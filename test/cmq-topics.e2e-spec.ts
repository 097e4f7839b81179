import { CmqClient, routingMatches } from '@app/cmq';
import { expectEventually, TestStack, TestTenant } from '@app/testing';
// A third-party signer nobody here wrote: compatibility is checked by its code, not ours.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const QcloudApi = require('qcloudapi-sdk');

type Reply = Record<string, any>;
type Params = Record<string, string | number | Array<string | number>>;
type Call = (action: string, params?: Params) => Promise<Reply>;

/** `w0.w1…` of n words (n - 1 dots). */
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join('.');

type Client = (t: TestTenant) => Call;

/** Our signing client (arrays 1-based) and qcloudapi-sdk (its own signer, arrays 0-based, POST HmacSHA256). */
function clientsOf(stack: () => TestStack): Array<[string, Client]> {
  return [
    [
      'our client',
      (t) => {
        const c: CmqClient = stack().client(t);
        return (action, params = {}) => c.call(action, params);
      },
    ],
    [
      'qcloudapi-sdk',
      (t) => {
        const opts = {
          protocol: 'http',
          host: `127.0.0.1:${stack().cmqPort}`,
          path: '/v2/index.php',
          method: 'POST',
          signatureMethod: 'sha256',
          SecretId: t.secretId,
          SecretKey: t.secretKey,
        };
        const api = new QcloudApi(opts);
        return (action, params = {}) =>
          new Promise((resolve, reject) =>
            api.request({ Action: action, ...params }, opts, (err: Error | null, body: Reply) => (err ? reject(err) : resolve(body))),
          );
      },
    ],
  ];
}

const MAX_TOPICS = 6;
const MAX_SUBSCRIPTIONS = 6;

describe('CMQ topics and subscriptions (spec §10)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({
      MAX_TOPICS_PER_ACCOUNT: String(MAX_TOPICS),
      MAX_SUBSCRIPTIONS_PER_TOPIC: String(MAX_SUBSCRIPTIONS),
    });
  });
  afterAll(() => stack.stop());

  const CLIENTS = clientsOf(() => stack);

  describe.each(CLIENTS)('with %s', (clientName, make) => {
    let tenant: TestTenant;
    let call: Call;
    beforeAll(async () => {
      tenant = await stack.tenant(`topics ${clientName}`);
      call = make(tenant);
    });

    /** Everything a queue holds, as bodies, received and deleted. */
    async function drain(queueName: string): Promise<string[]> {
      const out: string[] = [];
      for (;;) {
        const r = await call('BatchReceiveMessage', { queueName, numOfMsg: 16, pollingWaitSeconds: 0 });
        if (r.code === 7000) return out.sort();
        expect(r.code).toBe(0);
        out.push(...r.msgInfoList.map((m: Reply) => m.msgBody));
        const del = await call('BatchDeleteMessage', { queueName, receiptHandle: r.msgInfoList.map((m: Reply) => m.receiptHandle) });
        expect(del.code).toBe(0);
      }
    }

    it('creates, describes, changes, lists, routes and deletes topics', async () => {
      const created = await call('CreateTopic', { topicName: 'life', maxMsgSize: 4096, filterType: 1 });
      expect(created).toMatchObject({ code: 0, message: '', topicId: expect.stringMatching(/^topic-[a-z0-9]{12}$/) });
      const a = await call('GetTopicAttributes', { topicName: 'life' });
      expect(a).toMatchObject({
        code: 0,
        topicId: created.topicId,
        topicName: 'life',
        msgCount: 0,
        maxMsgSize: 4096,
        msgRetentionSeconds: 86400,
        filterType: 1,
        qps: 5000,
        tags: [],
      });
      for (const f of ['msgCount', 'maxMsgSize', 'msgRetentionSeconds', 'createTime', 'lastModifyTime', 'filterType', 'createUin']) {
        expect(Number.isInteger(a[f])).toBe(true);
      }
      expect(Math.abs(a.createTime - Date.now() / 1000)).toBeLessThan(60);

      expect(await call('SetTopicAttributes', { topicName: 'LIFE', maxMsgSize: 1_048_576 })).toMatchObject({ code: 0 });
      expect(await call('GetTopicAttributes', { topicName: 'life' })).toMatchObject({ maxMsgSize: 1_048_576, filterType: 1 });

      // the default of CreateTopic: tags, 64 KiB
      expect(await call('CreateTopic', { topicName: 'life-routing', filterType: 2 })).toMatchObject({ code: 0 });
      expect(await call('GetTopicAttributes', { topicName: 'life-routing' })).toMatchObject({ maxMsgSize: 65536, filterType: 2 });

      const list = await call('ListTopic', { searchWord: 'life' });
      expect(list).toMatchObject({ code: 0, totalCount: 2 });
      expect(list.topicList.map((t: Reply) => t.topicName)).toEqual(['life', 'life-routing']);
      expect(list.topicList[0]).toEqual({ topicId: created.topicId, topicName: 'life' });
      expect(await call('ListTopic', { searchWord: 'life', offset: 1, limit: 1 })).toMatchObject({
        totalCount: 2,
        topicList: [{ topicName: 'life-routing' }],
      });
      expect(await call('QueryTopicRoute', { topicName: 'life' })).toMatchObject({ code: 0, addr: [] });

      expect(await call('DeleteTopic', { topicName: 'life' })).toMatchObject({ code: 0 });
      expect(await call('DeleteTopic', { topicName: 'life-routing' })).toMatchObject({ code: 0 });
      expect(await call('GetTopicAttributes', { topicName: 'life' })).toMatchObject({
        code: 4440,
        message: '(10600)topic is not existed, or deleted',
      });
      expect((await call('ListTopic', { searchWord: 'life' })).totalCount).toBe(0);
      // the name rests a while after deletion
      expect(await call('CreateTopic', { topicName: 'life' })).toMatchObject({
        code: 6040,
        message: '(10660)topic name reused too soon after deletion',
      });
    });

    it('subscribes, describes, changes, clears, lists and unsubscribes', async () => {
      expect(await call('CreateTopic', { topicName: 'subs' })).toMatchObject({ code: 0 });
      expect(await call('CreateQueue', { queueName: 'subs-q' })).toMatchObject({ code: 0 });
      const http = await call('Subscribe', {
        topicName: 'subs',
        subscriptionName: 'web',
        protocol: 'HTTP',
        endpoint: 'http://127.0.0.1:9/push',
        notifyStrategy: 'BACKOFF_RETRY',
        filterTag: ['a', 'b'],
      });
      expect(http).toMatchObject({ code: 0, subscriptionId: expect.stringMatching(/^subscription-[a-z0-9]{12}$/) });
      const queue = await call('Subscribe', { topicName: 'subs', subscriptionName: 'to-queue', protocol: 'queue', endpoint: 'subs-q' });
      expect(queue).toMatchObject({ code: 0, subscriptionId: expect.any(String) });

      const a = await call('GetSubscriptionAttributes', { topicName: 'subs', subscriptionName: 'web' });
      expect(a).toMatchObject({
        code: 0,
        subscriptionId: http.subscriptionId,
        topicOwner: expect.stringMatching(/^\d+$/),
        msgCount: 0,
        protocol: 'http',
        endpoint: 'http://127.0.0.1:9/push',
        notifyStrategy: 'BACKOFF_RETRY',
        notifyContentFormat: 'JSON',
        bindingKey: [],
        filterTags: ['a', 'b'],
        filterTag: ['a', 'b'],
      });
      expect(Number.isInteger(a.createTime) && Number.isInteger(a.lastModifyTime)).toBe(true);
      // a queue subscription is SIMPLIFIED, and the default strategy is EXPONENTIAL_DECAY_RETRY
      expect(await call('GetSubscriptionAttributes', { topicName: 'subs', subscriptionName: 'to-queue' })).toMatchObject({
        protocol: 'queue',
        endpoint: 'subs-q',
        notifyStrategy: 'EXPONENTIAL_DECAY_RETRY',
        notifyContentFormat: 'SIMPLIFIED',
        filterTag: [],
        filterTags: [],
      });

      expect(
        await call('SetSubscriptionAttributes', {
          topicName: 'subs',
          subscriptionName: 'web',
          notifyStrategy: 'EXPONENTIAL_DECAY_RETRY',
          notifyContentFormat: 'SIMPLIFIED',
          filterTag: ['c'],
        }),
      ).toMatchObject({ code: 0 });
      expect(await call('GetSubscriptionAttributes', { topicName: 'subs', subscriptionName: 'web' })).toMatchObject({
        notifyStrategy: 'EXPONENTIAL_DECAY_RETRY',
        notifyContentFormat: 'SIMPLIFIED',
        filterTag: ['c'],
      });
      // Java's spelling of the action
      expect(await call('ClearSUbscriptionFIlterTags', { topicName: 'subs', subscriptionName: 'web' })).toMatchObject({ code: 0 });
      expect(await call('GetSubscriptionAttributes', { topicName: 'subs', subscriptionName: 'web' })).toMatchObject({
        filterTag: [],
        filterTags: [],
        notifyStrategy: 'EXPONENTIAL_DECAY_RETRY',
      });
      expect(await call('ClearSubscriptionFilterTags', { topicName: 'subs', subscriptionName: 'web' })).toMatchObject({ code: 0 });

      const list = await call('ListSubscriptionByTopic', { topicName: 'subs' });
      expect(list).toMatchObject({ code: 0, totalCount: 2 });
      expect(list.subscriptionList).toEqual([
        { subscriptionId: http.subscriptionId, subscriptionName: 'web', protocol: 'http', endpoint: 'http://127.0.0.1:9/push' },
        { subscriptionId: queue.subscriptionId, subscriptionName: 'to-queue', protocol: 'queue', endpoint: 'subs-q' },
      ]);
      expect(await call('ListSubscriptionByTopic', { topicName: 'subs', searchWord: 'queue' })).toMatchObject({
        totalCount: 1,
        subscriptionList: [{ subscriptionName: 'to-queue' }],
      });
      expect(await call('ListSubscriptionByTopic', { topicName: 'subs', offset: 1, limit: 1 })).toMatchObject({
        totalCount: 2,
        subscriptionList: [{ subscriptionName: 'to-queue' }],
      });

      expect(await call('Unsubscribe', { topicName: 'subs', subscriptionName: 'WEB' })).toMatchObject({ code: 0 });
      expect(await call('GetSubscriptionAttributes', { topicName: 'subs', subscriptionName: 'web' })).toMatchObject({
        code: 4440,
        message: '(10600)subscription is not existed, or deleted',
      });
      expect(await call('Unsubscribe', { topicName: 'subs', subscriptionName: 'to-queue' })).toMatchObject({ code: 0 });
      expect(await call('DeleteTopic', { topicName: 'subs' })).toMatchObject({ code: 0 });
    });

    it('publishes single and batch messages into every subscribed queue, as the raw body', async () => {
      expect(await call('CreateTopic', { topicName: 'fan' })).toMatchObject({ code: 0 });
      for (const q of ['fan-a', 'fan-b']) {
        expect(await call('CreateQueue', { queueName: q })).toMatchObject({ code: 0 });
        expect(await call('Subscribe', { topicName: 'fan', subscriptionName: q, protocol: 'queue', endpoint: q })).toMatchObject({ code: 0 });
      }
      const one = await call('PublishMessage', { topicName: 'fan', msgBody: 'hello, 你好 & =', routingKey: '' });
      expect(one).toMatchObject({ code: 0, msgId: expect.stringMatching(/^\d+$/) });
      const bodies = Array.from({ length: 16 }, (_, i) => `batch ${i}`);
      const batch = await call('BatchPublishMessage', { topicName: 'fan', msgBody: bodies, msgTag: ['x'] });
      expect(batch.code).toBe(0);
      expect(batch.msgList).toHaveLength(16);
      expect(new Set(batch.msgList.map((m: Reply) => m.msgId)).size).toBe(16);
      const expected = ['hello, 你好 & =', ...bodies].sort();
      expect(await drain('fan-a')).toEqual(expected);
      expect(await drain('fan-b')).toEqual(expected);
    });

    describe('errors', () => {
      beforeAll(async () => {
        const setup: Array<[string, Params]> = [
          ['CreateQueue', { queueName: 'eq' }],
          ['CreateTopic', { topicName: 'et' }],
          ['Subscribe', { topicName: 'et', subscriptionName: 'only-a', protocol: 'queue', endpoint: 'eq', filterTag: ['a'] }],
          ['CreateTopic', { topicName: 'er', filterType: 2 }],
          ['CreateTopic', { topicName: 'empty' }],
          ['CreateTopic', { topicName: 'ebig', maxMsgSize: 1024 }],
          ['CreateTopic', { topicName: 'efull' }],
        ];
        for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) {
          setup.push(['Subscribe', { topicName: 'efull', subscriptionName: `s${i}`, protocol: 'queue', endpoint: 'eq' }]);
        }
        for (const [action, params] of setup) expect(await call(action, params)).toMatchObject({ code: 0 });
      });

      const E = (code: number, module: number, text: string) => ({ code, message: `(${module})${text}` });
      const CASES: Array<[string, string, Params, { code: number; message: string }]> = [
        ['a topic name that breaks the rule', 'CreateTopic', { topicName: '1bad' }, E(4000, 10590, 'topic name format error')],
        ['an existing topic name, in other case', 'CreateTopic', { topicName: 'ET' }, E(4460, 10210, 'topic is already existed')],
        ['maxMsgSize below 1 KiB', 'CreateTopic', { topicName: 'x1', maxMsgSize: 1023 }, E(4000, 10350, 'parameter maxMsgSize value or length is out of range')],
        ['filterType 3', 'CreateTopic', { topicName: 'x2', filterType: 3 }, E(4000, 10350, 'parameter filterType value or length is out of range')],
        ['no topicName', 'GetTopicAttributes', {}, E(4000, 10390, 'lacked of required parameter topicName')],
        ['a missing topic', 'GetTopicAttributes', { topicName: 'nope' }, E(4440, 10600, 'topic is not existed, or deleted')],
        ['maxMsgSize over 1 MiB', 'SetTopicAttributes', { topicName: 'et', maxMsgSize: 1_048_577 }, E(4000, 10350, 'parameter maxMsgSize value or length is out of range')],
        ['a topic with subscriptions', 'DeleteTopic', { topicName: 'et' }, E(4000, 10540, 'there exists subscriptions under this topic, please unsubscribe all of them before DeleteTopic')],
        ['a missing topic', 'DeleteTopic', { topicName: 'nope' }, E(4440, 10600, 'topic is not existed, or deleted')],
        ['a limit that is no number', 'ListTopic', { limit: 'ten' }, E(4000, 10360, 'parameter limit error type')],
        ['a missing topic', 'PublishMessage', { topicName: 'nope', msgBody: 'x' }, E(4440, 10600, 'topic is not existed, or deleted')],
        ['a topic without subscriptions', 'PublishMessage', { topicName: 'empty', msgBody: 'x' }, E(6030, 10650, 'topic has no subscription, please create a subscription before publishing message')],
        ['tags no subscription wants', 'PublishMessage', { topicName: 'et', msgBody: 'x', msgTag: ['zzz'] }, E(6030, 10730, 'no bindingKey or filterTag matches the routingKey or msgTag')],
        ['an untagged message to tagged subscriptions', 'PublishMessage', { topicName: 'et', msgBody: 'x' }, E(6030, 10730, 'no bindingKey or filterTag matches the routingKey or msgTag')],
        ['an empty body', 'PublishMessage', { topicName: 'et', msgBody: '' }, E(4000, 10120, "message body can't be empty")],
        ['a body over the topic maxMsgSize', 'PublishMessage', { topicName: 'ebig', msgBody: 'x'.repeat(1025) }, E(4400, 10230, 'exceed maximum message size')],
        ['six tags', 'PublishMessage', { topicName: 'et', msgBody: 'x', msgTag: ['a', 'b', 'c', 'd', 'e', 'f'] }, E(4000, 10720, 'too many msgTag')],
        ['a tag of 17 characters', 'PublishMessage', { topicName: 'et', msgBody: 'x', msgTag: ['t'.repeat(17)] }, E(4000, 10350, 'parameter msgTag value or length is out of range')],
        ['no routingKey on a routing topic', 'PublishMessage', { topicName: 'er', msgBody: 'x' }, E(4000, 10700, 'parameters lack of routingKey')],
        ['a routingKey of 16 dots', 'PublishMessage', { topicName: 'er', msgBody: 'x', routingKey: words(17) }, E(4000, 10691, 'too many delimeters')],
        ['a routingKey over 64 bytes', 'PublishMessage', { topicName: 'er', msgBody: 'x', routingKey: 'k'.repeat(65) }, E(4000, 10350, 'parameter routingKey value or length is out of range')],
        ['17 messages', 'BatchPublishMessage', { topicName: 'et', msgBody: Array.from({ length: 17 }, (_, i) => `m${i}`) }, E(4000, 10370, 'msgBody parameter batch size is out of range')],
        ['a missing topic', 'Subscribe', { topicName: 'nope', subscriptionName: 's', protocol: 'queue', endpoint: 'eq' }, E(4440, 10600, 'topic is not existed, or deleted')],
        ['a subscription name that breaks the rule', 'Subscribe', { topicName: 'et', subscriptionName: '-s', protocol: 'queue', endpoint: 'eq' }, E(4000, 10580, 'subscription name format error')],
        ['protocol smtp', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'smtp', endpoint: 'eq' }, E(4000, 10510, 'undefined protocol')],
        ['an unknown strategy', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'queue', endpoint: 'eq', notifyStrategy: 'NEVER' }, E(4000, 10520, 'undefined notify retry stragety')],
        ['an unknown format', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'http', endpoint: 'http://h/', notifyContentFormat: 'XML' }, E(4000, 10530, 'undefined notify content format')],
        ['JSON into a queue', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'queue', endpoint: 'eq', notifyContentFormat: 'JSON' }, E(4000, 10640, 'notifyContentFormat of protocol queue must be SIMPLIFIED')],
        ['a URL with a blank', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'http', endpoint: 'http://h/a b' }, E(4510, 10570, 'url connot contain any blank characters')],
        ['a URL that is no http URL', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'http', endpoint: 'mailto:a@b.c' }, E(4000, 10500, 'endpoint format error')],
        ['a URL with credentials', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'http', endpoint: 'http://u:p@h/' }, E(4000, 10630, 'illegal endpoint')],
        ['a missing queue', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'queue', endpoint: 'noq' }, E(4440, 10100, 'queue is not existed, or deleted')],
        ['a routing topic without bindingKey', 'Subscribe', { topicName: 'er', subscriptionName: 's', protocol: 'queue', endpoint: 'eq' }, E(4000, 10710, 'parameters lack of bindingKey')],
        ['six filterTags', 'Subscribe', { topicName: 'et', subscriptionName: 's', protocol: 'queue', endpoint: 'eq', filterTag: ['a', 'b', 'c', 'd', 'e', 'f'] }, E(4000, 10670, 'too many filterTag')],
        ['six bindingKeys', 'Subscribe', { topicName: 'er', subscriptionName: 's', protocol: 'queue', endpoint: 'eq', bindingKey: ['a', 'b', 'c', 'd', 'e', 'f'] }, E(4000, 10680, 'too many bindingKey')],
        ['a bindingKey of 16 dots', 'Subscribe', { topicName: 'er', subscriptionName: 's', protocol: 'queue', endpoint: 'eq', bindingKey: [words(17)] }, E(4000, 10691, 'too many delimeters')],
        ['an existing subscription name', 'Subscribe', { topicName: 'et', subscriptionName: 'ONLY-A', protocol: 'queue', endpoint: 'eq' }, E(4490, 10470, 'subscribtion is already existed')],
        ['one subscription too many', 'Subscribe', { topicName: 'efull', subscriptionName: 'more', protocol: 'queue', endpoint: 'eq' }, E(4500, 10480, 'number of subscription has reached the limit')],
        ['a missing subscription', 'Unsubscribe', { topicName: 'et', subscriptionName: 'nope' }, E(4440, 10600, 'subscription is not existed, or deleted')],
        ['a missing subscription', 'SetSubscriptionAttributes', { topicName: 'et', subscriptionName: 'nope', notifyStrategy: 'BACKOFF_RETRY' }, E(4440, 10600, 'subscription is not existed, or deleted')],
        ['JSON into a queue', 'SetSubscriptionAttributes', { topicName: 'et', subscriptionName: 'only-a', notifyContentFormat: 'JSON' }, E(4000, 10640, 'notifyContentFormat of protocol queue must be SIMPLIFIED')],
        ['six filterTags', 'SetSubscriptionAttributes', { topicName: 'et', subscriptionName: 'only-a', filterTag: ['a', 'b', 'c', 'd', 'e', 'f'] }, E(4000, 10670, 'too many filterTag')],
        ['a missing topic', 'GetSubscriptionAttributes', { topicName: 'nope', subscriptionName: 'only-a' }, E(4440, 10600, 'topic is not existed, or deleted')],
        ['offset 1001', 'ListSubscriptionByTopic', { topicName: 'et', offset: 1001 }, E(4000, 10350, 'parameter offset value or length is out of range')],
        ['limit 101', 'ListSubscriptionByTopic', { topicName: 'et', limit: 101 }, E(4000, 10350, 'parameter limit value or length is out of range')],
        ['a missing subscription', 'ClearSubscriptionFilterTags', { topicName: 'et', subscriptionName: 'nope' }, E(4440, 10600, 'subscription is not existed, or deleted')],
        ['a missing topic', 'QueryTopicRoute', { topicName: 'nope' }, E(4440, 10600, 'topic is not existed, or deleted')],
      ];

      it.each(CASES)('%s: %s answers the protocol error and stores nothing', async (_label, action, params, expected) => {
        const before = await stack.db.query(
          `SELECT (SELECT count(*) FROM topics WHERE account_id = $1)::int AS topics,
                  (SELECT count(*) FROM subscriptions WHERE account_id = $1)::int AS subs,
                  (SELECT count(*) FROM messages m JOIN queues q ON q.id = m.queue_id WHERE q.account_id = $1)::int AS msgs`,
          [tenant.accountId],
        );
        const reply = await call(action, params);
        expect({ code: reply.code, message: reply.message }).toEqual(expected);
        {
          const after = await stack.db.query(
            `SELECT (SELECT count(*) FROM topics WHERE account_id = $1)::int AS topics,
                    (SELECT count(*) FROM subscriptions WHERE account_id = $1)::int AS subs,
                    (SELECT count(*) FROM messages m JOIN queues q ON q.id = m.queue_id WHERE q.account_id = $1)::int AS msgs`,
            [tenant.accountId],
          );
          expect(after.rows[0]).toEqual(before.rows[0]);
        }
      });

      it('a batch over 1 MiB in all: 4470', async () => {
        expect(await call('SetTopicAttributes', { topicName: 'ebig', maxMsgSize: 1_048_576 })).toMatchObject({ code: 0 });
        const half = 'y'.repeat(600 * 1024);
        expect(await call('BatchPublishMessage', { topicName: 'ebig', msgBody: [half, half] })).toMatchObject(
          E(4470, 10300, 'total message size exceed 1MB'),
        );
      });

      it(`the ${MAX_TOPICS + 1}th topic: 4450`, async () => {
        const own = make(await stack.tenant(`topic limit ${clientName}`));
        for (let i = 0; i < MAX_TOPICS; i++) expect(await own('CreateTopic', { topicName: `lim${i}` })).toMatchObject({ code: 0 });
        expect(await own('CreateTopic', { topicName: 'one-more' })).toMatchObject(E(4450, 10610, 'number of topics has reached the limit'));
      });
    });
  });

  describe('filtering', () => {
    let cmq: CmqClient;
    beforeAll(async () => {
      cmq = stack.client(await stack.tenant('filters'));
    });

    async function bodiesIn(queueName: string): Promise<string[]> {
      const out: string[] = [];
      for (;;) {
        const r = await cmq.call('BatchReceiveMessage', { queueName, numOfMsg: 16 });
        if (r.code === 7000) return out.sort();
        out.push(...(r.msgInfoList as Reply[]).map((m) => m.msgBody));
      }
    }

    it('tags (filterType 1): overlap delivers, an untagged subscription takes all, a tagged one never takes untagged messages', async () => {
      expect((await cmq.call('CreateTopic', { topicName: 'tags', filterType: 1 })).code).toBe(0);
      const subs: Record<string, string[]> = { all: [], a: ['a'], bc: ['b', 'c'], ad: ['a', 'd'] };
      for (const [q, tags] of Object.entries(subs)) {
        expect((await cmq.call('CreateQueue', { queueName: `tag-${q}` })).code).toBe(0);
        const r = await cmq.call('Subscribe', { topicName: 'tags', subscriptionName: q, protocol: 'queue', endpoint: `tag-${q}`, filterTag: tags });
        expect(r.code).toBe(0);
      }
      const messages: Array<[string, string[]]> = [
        ['untagged', []],
        ['m-a', ['a']],
        ['m-c', ['c']],
        ['m-ac', ['a', 'c']],
        ['m-d', ['d']],
        ['m-e', ['e']],
        ['m-cb', ['c', 'b', 'zz']],
      ];
      for (const [body, tags] of messages) expect((await cmq.call('PublishMessage', { topicName: 'tags', msgBody: body, msgTag: tags })).code).toBe(0);
      expect(await bodiesIn('tag-all')).toEqual(messages.map(([b]) => b).sort());
      expect(await bodiesIn('tag-a')).toEqual(['m-a', 'm-ac']);
      expect(await bodiesIn('tag-bc')).toEqual(['m-ac', 'm-c', 'm-cb']);
      expect(await bodiesIn('tag-ad')).toEqual(['m-a', 'm-ac', 'm-d']);
    });

    /** Binding keys per subscription: `*` and `#` at start, middle and end, and 15 dots. */
    const BINDINGS: Record<string, string[]> = {
      star: ['*.b.c', 'a.*.c', 'a.b.*'],
      hash: ['#.end', 'start.#', 'x.#.y'],
      mixed: ['*.#.z', '#.*'],
      deep: [words(16), `${words(15)}.*`, `#.w15`],
      exact: ['a.b.c'],
      literal: ['a*.b', '[x]'],
    };
    const KEYS = [
      'a.b.c', 'x.b.c', 'a.x.c', 'a.b.x', 'b.c', 'a.b', 'a.b.c.d', 'end', 'p.q.end', 'start', 'start.1.2.3', 'x.y', 'x.1.2.y',
      'z', 'q.z', 'q.r.z', words(16), `${words(15)}.other`, 'a*.b', 'ab.b', '[x]', 'x',
    ];

    it('routing keys (filterType 2): the stored patterns match as the reference matcher does, end to end', async () => {
      expect((await cmq.call('CreateTopic', { topicName: 'routes', filterType: 2 })).code).toBe(0);
      for (const [q, keys] of Object.entries(BINDINGS)) {
        expect((await cmq.call('CreateQueue', { queueName: `route-${q}` })).code).toBe(0);
        const r = await cmq.call('Subscribe', { topicName: 'routes', subscriptionName: q, protocol: 'queue', endpoint: `route-${q}`, bindingKey: keys });
        expect(r).toMatchObject({ code: 0 });
      }
      const published: string[] = [];
      for (const key of KEYS) {
        const r = await cmq.call('PublishMessage', { topicName: 'routes', msgBody: `key ${key}`, routingKey: key });
        const wanted = Object.values(BINDINGS).some((keys) => keys.some((b) => routingMatches(b, key)));
        if (wanted) {
          expect(r).toMatchObject({ code: 0 });
          published.push(key);
        } else {
          expect(r).toMatchObject({ code: 6030, message: '(10730)no bindingKey or filterTag matches the routingKey or msgTag' });
        }
      }
      expect(published.length).toBeGreaterThan(KEYS.length / 2);
      for (const [q, keys] of Object.entries(BINDINGS)) {
        const expected = KEYS.filter((k) => keys.some((b) => routingMatches(b, k))).map((k) => `key ${k}`).sort();
        expect({ q, got: await bodiesIn(`route-${q}`) }).toEqual({ q, got: expected });
      }
    });

    it('Postgres matches every case of the reference table as the unit-tested matcher does', async () => {
      const cases: Array<[string, string]> = [];
      for (const keys of Object.values(BINDINGS)) for (const b of keys) for (const k of KEYS) cases.push([b, k]);
      const { rows } = await stack.db.query<{ m: boolean }>(
        `SELECT ('.' || k) ~ s.pattern AS m FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(b, k, i)
           CROSS JOIN LATERAL (SELECT binding_patterns[array_position(binding_keys, u.b)] AS pattern
                                 FROM subscriptions WHERE u.b = ANY (binding_keys) LIMIT 1) s
          ORDER BY i`,
        [cases.map((c) => c[0]), cases.map((c) => c[1])],
      );
      expect(rows.map((r) => r.m)).toEqual(cases.map(([b, k]) => routingMatches(b, k)));
    });
  });

  it('fans out atomically: every answered publish is in every subscribed queue, exactly once', async () => {
    const cmq = stack.client(await stack.tenant('atomic'));
    expect((await cmq.call('CreateTopic', { topicName: 'atomic' })).code).toBe(0);
    const queues = ['q1', 'q2', 'q3', 'q4', 'q5'];
    for (const q of queues) {
      expect((await cmq.call('CreateQueue', { queueName: q })).code).toBe(0);
      expect((await cmq.call('Subscribe', { topicName: 'atomic', subscriptionName: q, protocol: 'queue', endpoint: q })).code).toBe(0);
    }
    const answered: string[] = [];
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const batch = i % 4 === 0;
        const bodies = batch ? [`b${i}-0`, `b${i}-1`, `b${i}-2`] : [`s${i}`];
        const r = batch
          ? await cmq.call('BatchPublishMessage', { topicName: 'atomic', msgBody: bodies })
          : await cmq.call('PublishMessage', { topicName: 'atomic', msgBody: bodies[0] });
        if (r.code === 0) answered.push(...bodies);
      }),
    );
    expect(answered).toHaveLength(150 + 50 * 3);
    const { rows } = await stack.db.query<{ name: string; bodies: string[] }>(
      `SELECT q.name, array_agg(convert_from(m.body, 'UTF8') ORDER BY convert_from(m.body, 'UTF8')) AS bodies
         FROM queues q JOIN messages m ON m.queue_id = q.id
        WHERE q.account_id = (SELECT account_id FROM topics WHERE name = 'atomic') GROUP BY q.name ORDER BY q.name`,
    );
    expect(rows.map((r) => r.name)).toEqual(queues);
    for (const r of rows) expect(r.bodies).toEqual([...answered].sort());
    // and the counters agree
    for (const q of queues) expect(await cmq.call('GetQueueAttributes', { queueName: q })).toMatchObject({ activeMsgNum: answered.length });
  });

  it.each(CLIENTS)('a suspended account cannot publish or subscribe, and may still delete (%s)', async (clientName, make) => {
    const t = await stack.tenant(`suspended ${clientName}`);
    const call = make(t);
    const cmq = { call };
    expect((await cmq.call('CreateQueue', { queueName: 'sq' })).code).toBe(0);
    expect((await cmq.call('CreateTopic', { topicName: 'st' })).code).toBe(0);
    expect((await cmq.call('Subscribe', { topicName: 'st', subscriptionName: 's', protocol: 'queue', endpoint: 'sq' })).code).toBe(0);
    // the standing the arrears ladder writes (its own tests drive the ladder itself), on the
    // balance row a first top-up makes
    const topup = await fetch(`${stack.billingUrl}/v1/accounts/${t.accountId}/topups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': `topics-suspended-${t.accountId}` },
      body: JSON.stringify({ amount: '1.00' }),
    });
    expect(topup.status).toBe(201);
    await stack.db.query(`UPDATE balances SET status = 'suspended', overdue_since = now(), suspended_at = now() WHERE account_id = $1`, [t.accountId]);
    const overdue = { code: 4300, message: '(10040)charge overdue' };
    // in force once a refused action that would store nothing says so (a rewind of a queue without a window)
    await expectEventually(async () => expect(await cmq.call('RewindQueue', { queueName: 'sq', startConsumeTime: 0 })).toMatchObject(overdue), 3000);
    expect(await cmq.call('PublishMessage', { topicName: 'st', msgBody: 'x' })).toMatchObject(overdue);
    expect(await cmq.call('BatchPublishMessage', { topicName: 'st', msgBody: ['x'] })).toMatchObject(overdue);
    expect(await cmq.call('CreateTopic', { topicName: 'st2' })).toMatchObject(overdue);
    expect(await cmq.call('Subscribe', { topicName: 'st', subscriptionName: 's2', protocol: 'queue', endpoint: 'sq' })).toMatchObject(overdue);
    expect(await cmq.call('GetTopicAttributes', { topicName: 'st' })).toMatchObject({ code: 0 });
    expect(await cmq.call('Unsubscribe', { topicName: 'st', subscriptionName: 's' })).toMatchObject({ code: 0 });
    expect(await cmq.call('DeleteTopic', { topicName: 'st' })).toMatchObject({ code: 0 });
    expect(await stack.stored(t.accountId)).toEqual({ queues: 1, messages: 0 });
  });

  it('audits every topic and subscription change, by the key that made it, through CMQ', async () => {
    const t = await stack.tenant('audited');
    const cmq = stack.client(t);
    const steps: Array<[string, Params]> = [
      ['CreateQueue', { queueName: 'aq' }],
      ['CreateTopic', { topicName: 'at' }],
      ['SetTopicAttributes', { topicName: 'at', maxMsgSize: 2048 }],
      ['Subscribe', { topicName: 'at', subscriptionName: 's', protocol: 'queue', endpoint: 'aq', filterTag: ['x'] }],
      ['SetSubscriptionAttributes', { topicName: 'at', subscriptionName: 's', filterTag: ['y'] }],
      ['ClearSubscriptionFilterTags', { topicName: 'at', subscriptionName: 's' }],
      ['PublishMessage', { topicName: 'at', msgBody: 'not a change of resources' }],
      ['Unsubscribe', { topicName: 'at', subscriptionName: 's' }],
      ['DeleteTopic', { topicName: 'at' }],
    ];
    for (const [action, params] of steps) expect((await cmq.call(action, params)).code).toBe(0);
    const { rows } = await stack.db.query(
      `SELECT action, subject, actor_kind, actor, via FROM audit_trail WHERE account_id = $1 AND domain = 'queues' ORDER BY id`,
      [t.accountId],
    );
    expect(rows.map((r) => [r.action, r.subject])).toEqual([
      ['queue.create', 'queue:gz/aq'],
      ['topic.create', 'topic:gz/at'],
      ['topic.set', 'topic:gz/at'],
      ['subscription.create', 'subscription:gz/at/s'],
      ['subscription.set', 'subscription:gz/at/s'],
      ['subscription.clear-filter-tags', 'subscription:gz/at/s'],
      ['subscription.delete', 'subscription:gz/at/s'],
      ['topic.delete', 'topic:gz/at'],
    ]);
    expect(rows.every((r) => r.actor_kind === 'user' && r.actor === t.secretId && r.via === 'cmq')).toBe(true);
  });

  it("one account never reaches another's topics or subscriptions", async () => {
    const owner = stack.client(await stack.tenant('owner'));
    const other = stack.client(await stack.tenant('other'));
    expect((await owner.call('CreateQueue', { queueName: 'mine' })).code).toBe(0);
    expect((await owner.call('CreateTopic', { topicName: 'private' })).code).toBe(0);
    expect((await owner.call('Subscribe', { topicName: 'private', subscriptionName: 's', protocol: 'queue', endpoint: 'mine' })).code).toBe(0);
    const missing = { code: 4440, message: '(10600)topic is not existed, or deleted' };
    expect(await other.call('GetTopicAttributes', { topicName: 'private' })).toMatchObject(missing);
    expect(await other.call('PublishMessage', { topicName: 'private', msgBody: 'x' })).toMatchObject(missing);
    expect(await other.call('GetSubscriptionAttributes', { topicName: 'private', subscriptionName: 's' })).toMatchObject(missing);
    expect(await other.call('DeleteTopic', { topicName: 'private' })).toMatchObject(missing);
    expect((await other.call('ListTopic', {})).totalCount).toBe(0);
    // a subscription may only point at the subscriber's own queues
    expect((await other.call('CreateTopic', { topicName: 'private' })).code).toBe(0);
    expect(await other.call('Subscribe', { topicName: 'private', subscriptionName: 's', protocol: 'queue', endpoint: 'mine' })).toMatchObject({
      code: 4440,
      message: '(10100)queue is not existed, or deleted',
    });
    expect((await owner.call('GetTopicAttributes', { topicName: 'private' })).code).toBe(0);
  });
});

describe('topic QPS cap', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ TOPIC_QPS_LIMIT: '20' });
  });
  afterAll(() => stack.stop());

  it.each(clientsOf(() => stack))('admits about TOPIC_QPS_LIMIT publishes per second per topic, then 4420 (10250), storing nothing for those (%s)', async (clientName, make) => {
    const cmq = { call: make(await stack.tenant(`qps ${clientName}`)) };
    expect((await cmq.call('CreateQueue', { queueName: 'qq' })).code).toBe(0);
    expect((await cmq.call('CreateTopic', { topicName: 'busy' })).code).toBe(0);
    expect((await cmq.call('Subscribe', { topicName: 'busy', subscriptionName: 's', protocol: 'queue', endpoint: 'qq' })).code).toBe(0);
    // align to the start of a second, so the burst falls in one
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => cmq.call('PublishMessage', { topicName: 'busy', msgBody: `m${i}` })));
    const ok = replies.filter((r) => r.code === 0).length;
    const throttled = replies.filter((r) => r.code === 4420);
    expect(ok + throttled.length).toBe(60);
    expect(ok).toBeLessThanOrEqual(20);
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(throttled[0]).toMatchObject({ message: '(10250)qps throttling' });
    expect(await cmq.call('GetQueueAttributes', { queueName: 'qq' })).toMatchObject({ activeMsgNum: ok });
    // management calls do not count
    expect((await cmq.call('GetTopicAttributes', { topicName: 'busy' })).code).toBe(0);
  });
});
