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
    const r = await stack.admin('GET', `/v1/accounts/${t.accountId}/data-rights`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      accountId: t.accountId,
      homeRegion: 'gz',
      stores: [
        { region: 'bj', location: null, holds: ['queues and their messages'], liveQueues: 1, messages: 0 },
        {
          region: 'gz',
          location: 'Guangzhou, China (data center GZ-3)',
          holds: ['account and access keys', 'usage, ledger and bills', 'SLA results', 'audit records'],
          liveQueues: 0,
          messages: 0,
        },
        { region: 'sh', location: 'Shanghai, China (SH-1)', holds: ['queues and their messages'], liveQueues: 1, messages: 2 },
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
    for (const [acct, action] of [
      [a.accountId, 'release_notice'],
      [b.accountId, 'released'],
      [a.accountId, 'released'],
      [a.accountId, 'queues_deleted'],
    ]) {
      await stack.db.query(`INSERT INTO audit_log (account_id, action, actor, details) VALUES ($1, $2, 'worker', '{"queues": 2}')`, [acct, action]);
    }
    const first = await stack.admin('GET', `/v1/accounts/${a.accountId}/audit-records?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.records.map((r: { action: string }) => r.action)).toEqual(['queues_deleted', 'released']);
    expect(first.body.records[0]).toMatchObject({ actor: 'worker', details: { queues: 2 }, at: expect.stringMatching(/Z$/) });
    const next = await stack.admin('GET', `/v1/accounts/${a.accountId}/audit-records?limit=2&before=${first.body.nextBefore}`);
    expect(next.body.records.map((r: { action: string }) => r.action)).toEqual(['release_notice']);
    expect(next.body.nextBefore).toBeNull();
    expect((await stack.admin('GET', `/v1/accounts/${a.accountId}/audit-records?before=abc`)).status).toBe(400);
  });

  it('an unknown account is 404; a malformed configuration stops the app at start', async () => {
    expect((await stack.admin('GET', '/v1/accounts/00000000-0000-4000-8000-000000000000/data-rights')).status).toBe(404);
    expect(() => loadConfigWith({ DATA_LOCATIONS: 'Guangzhou' })).toThrow(/region=location/);
    expect(() => loadConfigWith({ DATA_REPLICAS: '0' })).toThrow();
  });
});
