import { loadConfigWith } from '@app/config';
import { TestStack } from '@app/testing';

/** Data rights: where an account's data lives and how many copies exist, and its own audit records. */
describe('data rights: locations, copies, audit records', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await TestStack.start({
      REGIONS: 'gz,sh,bj',
      DATA_LOCATIONS: 'gz=Guangzhou, China (data center GZ-3); sh=Shanghai, China (SH-1)',
      DATA_REPLICAS: '3',
      DATA_BACKUP_COPIES: '2',
      DATA_BACKUP_RETENTION_DAYS: '30',
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('tells each region the account uses, its location, what it holds, and the copies', async () => {
    const t = await stack.tenant('residency');
    const c = stack.client(t);
    expect((await c.call('CreateQueue', { queueName: 'orders', Region: 'sh' })).code).toBe(0);
    expect((await c.call('CreateQueue', { queueName: 'audit', Region: 'bj' })).code).toBe(0);
    expect((await c.call('SendMessage', { queueName: 'orders', msgBody: 'a', Region: 'sh' })).code).toBe(0);
    expect((await c.call('SendMessage', { queueName: 'orders', msgBody: 'b', Region: 'sh' })).code).toBe(0);
    expect((await c.call('CreateTopic', { topicName: 'events', Region: 'sh' })).code).toBe(0);
    expect((await c.call('Subscribe', { topicName: 'events', subscriptionName: 'web', protocol: 'http', endpoint: 'http://127.0.0.1:9/', Region: 'sh' })).code).toBe(0);
    expect((await c.call('CreateTopic', { topicName: 'events', Region: 'gz' })).code).toBe(0);
    // no worker runs here: the push waits in the topic
    expect((await c.call('PublishMessage', { topicName: 'events', msgBody: 'c', Region: 'sh' })).code).toBe(0);
    const r = await stack.admin('GET', `/v1/accounts/${t.accountId}/data-rights`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      accountId: t.accountId,
      homeRegion: 'gz',
      stores: [
        { region: 'bj', location: null, holds: ['queues and their messages'], liveQueues: 1, messages: 0, liveTopics: 0, pendingPushes: 0 },
        {
          region: 'gz',
          location: 'Guangzhou, China (data center GZ-3)',
          holds: ['account and access keys', 'usage, ledger and bills', 'SLA results', 'audit records', 'topics, subscriptions and messages not yet pushed'],
          liveQueues: 0,
          messages: 0,
          liveTopics: 1,
          pendingPushes: 0,
        },
        {
          region: 'sh',
          location: 'Shanghai, China (SH-1)',
          holds: ['queues and their messages', 'topics, subscriptions and messages not yet pushed'],
          liveQueues: 1,
          messages: 2,
          liveTopics: 1,
          pendingPushes: 1,
        },
      ],
      replicas: 3,
      backupCopies: 2,
      backupRetentionDays: 30,
      copies: 5,
    });
  });

  it("lists the account's own audit records, newest first, paged, and no one else's", async () => {
    const a = await stack.tenant('audited');
    const b = await stack.tenant('other');
    const hook = { url: 'https://example.com/hook', secret: 'whsec-0123456789abcdef' };
    expect((await stack.admin('PUT', `/v1/accounts/${a.accountId}/webhook`, hook)).status).toBe(200);
    expect((await stack.admin('PUT', `/v1/accounts/${b.accountId}/alert-threshold`, { amount: '5.00' })).status).toBe(200);
    expect((await stack.admin('POST', `/v1/accounts/${a.accountId}/keys/${a.secretId}/disable`)).status).toBe(200);

    const first = await stack.admin('GET', `/v1/accounts/${a.accountId}/audit-records?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.entries.map((r: { action: string }) => r.action)).toEqual(['key.disable', 'webhook.set']);
    expect(first.body.entries[1]).toMatchObject({
      accountId: a.accountId,
      actorKind: 'operator',
      actor: 'admin',
      via: 'api:admin',
      details: { url: hook.url },
      at: expect.stringMatching(/Z$/),
    });
    expect(JSON.stringify(first.body)).not.toContain(hook.secret);
    const next = await stack.admin('GET', `/v1/accounts/${a.accountId}/audit-records?limit=2&cursor=${first.body.nextCursor}`);
    expect(next.body.entries.map((r: { action: string }) => r.action)).toEqual(['key.create', 'account.create']);
    expect(next.body.nextCursor).toBeNull();
    const theirs = await stack.admin('GET', `/v1/accounts/${b.accountId}/audit-records`);
    expect(theirs.body.entries.map((r: { action: string }) => r.action)).toEqual(['alert-threshold.set', 'key.create', 'account.create']);
    expect((await stack.admin('GET', `/v1/accounts/${a.accountId}/audit-records?cursor=abc`)).status).toBe(400);
  });

  it('an unknown account is 404; a malformed configuration stops the app at start', async () => {
    expect((await stack.admin('GET', '/v1/accounts/00000000-0000-4000-8000-000000000000/data-rights')).status).toBe(404);
    expect(() => loadConfigWith({ DATA_LOCATIONS: 'Guangzhou' })).toThrow(/region=location/);
    expect(() => loadConfigWith({ DATA_REPLICAS: '0' })).toThrow();
  });
});
