import { randomBytes } from 'node:crypto';
import { runMigrations } from '@app/db';
import { loadConfigWith } from '@app/config';
import { scratchDatabase, TestStack } from '@app/testing';

// the generator and checker of `npm run chaos:bad-input` (plain CommonJS, shared with the script)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runCampaign, summaryTable, judge, inspectAnswer, buildCases, E } = require('./chaos/bad-input-lib');

/**
 * The bad-input campaign in small (test/chaos/bad-input.js runs it at 12,000 requests against
 * the compiled apps): ~1,500 hostile requests of every category against the CMQ endpoint, the
 * internal API and the console, each answer checked against the documented one; no 5xx, no CMQ
 * 6000, nothing stored but the metered usage of authenticated requests, nothing of the other
 * tenant leaked. A database and Redis prefix of its own: the snapshot before and after must see
 * no other spec's writes.
 */
describe('bad-input campaign (small)', () => {
  const tokens = { ops: randomBytes(24).toString('base64url'), finance: randomBytes(24).toString('base64url') };
  let stack: TestStack;
  let db: { url: string; drop: () => Promise<void> };

  beforeAll(async () => {
    db = await scratchDatabase();
    const overrides = {
      DATABASE_URL: db.url,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:bad-input`,
      API_TOKENS: `chaos-ops:ops:${tokens.ops},chaos-finance:finance:${tokens.finance}`,
    };
    await runMigrations(loadConfigWith(overrides));
    stack = await TestStack.start(overrides);
  });

  afterAll(async () => {
    await stack?.stop();
    await db?.drop();
  });

  it('the checker refuses what it must: another code or status, a leak, a stack trace, SQL', () => {
    const cmq = { http: 200, code: E.queueNotExist[0], message: E.queueNotExist[1] };
    const reply = (o: object) => ({ status: 200, text: JSON.stringify({ requestId: '1', ...o }) });
    expect(judge(cmq, reply({ code: 4440, message: '(10100)queue is not existed, or deleted' }), {})).toEqual([]);
    expect(judge(cmq, reply({ code: 6000, message: '(10050)server internal error' }), {})).toHaveLength(2);
    expect(judge(cmq, { status: 500, text: '{}' }, {}).join()).toMatch(/HTTP 500/);
    expect(judge(cmq, { error: 'transport ECONNRESET' }, {})).toEqual(['no answer (transport ECONNRESET)']);
    const api = { status: 404, detail: 'no such account' };
    expect(judge(api, { status: 404, text: '{"detail":"no such account"}' }, {})).toEqual([]);
    expect(judge(api, { status: 200, text: '{"id":"x"}' }, {})).toHaveLength(2);
    expect(judge({ status: 400 }, { status: 400, text: '' }, {})).toEqual(['no reason in the body']);
    const fx = { secrets: [["B's message body", 'b-secret-body-1'], ["B's queue name", 'bq-1-held']], secretIds: new Set(['42']) };
    expect(inspectAnswer(fx, 'GET /x', '{"msgBody":"b-secret-body-1"}', { msgBody: 'b-secret-body-1' })).toEqual(["leak: B's message body"]);
    // what the request itself carried is no leak when the answer repeats it
    expect(inspectAnswer(fx, 'queueName=bq-1-held', '{"x":"BQ-1-HELD"}', { x: 'BQ-1-HELD' })).toEqual([]);
    expect(inspectAnswer(fx, '', '{"msgId":"42"}', { msgId: '42' })).toEqual(["leak: another tenant's msgId"]);
    expect(inspectAnswer(fx, '', '{"receiptHandle":"42-77"}', { receiptHandle: '42-77' })).toEqual(["leak: another tenant's receipt handle"]);
    expect(inspectAnswer(fx, '', 'x', { detail: 'TypeError: x\n    at f (/work/main/dist/apps/a.js:1:2)' }).join()).toMatch(/stack trace/);
    expect(inspectAnswer(fx, '', 'x', { detail: 'select secret_key_enc from access_keys' }).join()).toMatch(/SQL/);
    expect(inspectAnswer(fx, '', 'x', { detail: 'invalid byte sequence for encoding "UTF8": 0x00' }).join()).toMatch(/database error/);
  });

  it('generates the same campaign from the same seed', () => {
    const fx = {
      startedAt: 1_796_300_000,
      cmq: { port: 1, host: '127.0.0.1:1' }, api: { port: 2 }, limits: { maxRequestBytes: 100, signatureWindowSeconds: 300, smallQueueMsgSize: 1024, tagsTopicMsgSize: 1024 },
      tokens: { admin: 'a'.repeat(20), ops: 'o'.repeat(20), finance: 'f'.repeat(20) },
      A: { accountId: 'a', key: { secretId: 'AKIDa', secretKey: 'ka' }, disabledKey: { secretId: 'AKIDd', secretKey: 'kd' }, deletedKey: { secretId: 'AKIDx', secretKey: 'kx' }, console: 'cs_a', queues: { small: 's', big: 'b', main: 'm', replay: 'r', delay: 'd' }, topics: { tags: 't', route: 'u' }, delayedMsgId: '1' },
      B: { accountId: 'b', key: { secretId: 'AKIDb', secretKey: 'kb' }, queues: { held: 'bh', sub: 'bs' }, topic: 'bt', sub: 'bsub', handles: ['2-3', '4-5'], delayedMsgId: '6' },
    };
    const shape = (seed: string) => buildCases(fx, { seed, count: 2000 }).map((c: { tpl: string; describe: string }) => `${c.tpl}|${c.describe}`);
    expect(shape('s1')).toEqual(shape('s1'));
    expect(shape('s1')).not.toEqual(shape('s2'));
  });

  it('answers ~1,500 hostile requests as documented, stores and leaks nothing', async () => {
    const report = await runCampaign({
      cmqPort: stack.cmqPort,
      billingPort: Number(new URL(stack.billingUrl).port),
      tokens: { admin: stack.config.adminToken, ...tokens },
      limits: { maxRequestBytes: stack.config.cmq.maxRequestBytes, signatureWindowSeconds: stack.config.cmq.signatureWindowSeconds },
      db: stack.db,
      seed: 'jest-bad-input',
      count: 1500,
      concurrency: 8,
      tag: randomBytes(4).toString('hex'),
    });
    const explain = [summaryTable(report), ...report.failures, ...report.mismatches.slice(0, 5).map((m: unknown) => JSON.stringify(m))].join('\n');
    expect([report.sent >= 1500, report.failures, explain]).toEqual([true, [], explain]);
    expect(report.global).toEqual({ fiveXX: 0, code6000: 0, leaks: 0, hygiene: 0, noAnswer: 0 });
    // every category was exercised, against both endpoints where it has cases for both
    for (const cat of ['malformed', 'oversized', 'mis-signed', 'cross-tenant']) {
      expect([cat, report.tallies[cat].cmq > 0, report.tallies[cat].api > 0]).toEqual([cat, true, true]);
    }
    expect(report.tallies.replayed.cmq).toBeGreaterThan(0);
    // both apps still serve
    expect((await fetch(`${stack.cmqEndpoint}/health`)).status).toBe(200);
    expect((await fetch(`${stack.billingUrl}/health`)).status).toBe(200);
  }, 120_000);
});
