import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfigWith } from '@app/config';
import type { CmqReply } from '@app/cmq';
import { expectEventually, TestStack, TestTenant } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

/*
 * Metering end to end: CMQ requests through the real queue-api, their usage committed in the
 * outbox, relayed through BullMQ and applied by the real worker; checked against what the test
 * itself sent and was answered, computed here without the product's metering code.
 */

const KIB = 1024;
/** the size rule, written out independently: upper bound → weight */
const BANDS: Array<[number, number]> = [
  [2 * KIB, 1],
  [4 * KIB, 2],
  [16 * KIB, 4],
  [100 * KIB, 16],
  [1024 * KIB, 64],
];
const weight = (n: number) => BANDS.find(([upTo]) => n <= upTo)![1];
/** sizes in every band, with both edges of some; the big ones are rarer */
const SMALL = [1, 100, 2 * KIB, 2 * KIB + 1, 3 * KIB, 4 * KIB, 4 * KIB + 1, 10 * KIB, 16 * KIB, 16 * KIB + 1, 50 * KIB];
const LARGE = [100 * KIB, 100 * KIB + 1, 300 * KIB, 1024 * KIB];

const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)];
const body = (n: number) => {
  const head = `${Date.now()}-${Math.random()}-`;
  return (head + 'x'.repeat(Math.max(0, n - head.length))).slice(0, n);
};
const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

type Cls = 'send' | 'consume' | 'ack' | 'management';
interface Expected {
  byOutcome: Record<string, number>;
  byClass: Record<Cls, { calls: number; billable: number; messages: number; bytesIn: number; bytesOut: number }>;
  billable: number;
}

function outcome(code: number): string {
  if (code === 0 || code === 6010) return 'ok';
  if (code === 7000) return 'no_message';
  if (code === 4420) return 'throttled';
  if (code === 4300) return 'overdue';
  if (code === 6020 || code === 6040 || code === 6050) return 'client_error';
  if (code >= 6000) return 'server_error';
  return 'client_error';
}

/** Tallies requests as the test saw them. */
class Tally {
  readonly e: Expected = {
    byOutcome: {},
    byClass: {
      send: { calls: 0, billable: 0, messages: 0, bytesIn: 0, bytesOut: 0 },
      consume: { calls: 0, billable: 0, messages: 0, bytesIn: 0, bytesOut: 0 },
      ack: { calls: 0, billable: 0, messages: 0, bytesIn: 0, bytesOut: 0 },
      management: { calls: 0, billable: 0, messages: 0, bytesIn: 0, bytesOut: 0 },
    },
    billable: 0,
  };
  requests = 0;

  add(cls: Cls, reply: CmqReply, moved: { sizes?: number[]; deleted?: number } = {}): void {
    const o = outcome(reply.code);
    this.requests++;
    this.e.byOutcome[o] = (this.e.byOutcome[o] ?? 0) + 1;
    const c = this.e.byClass[cls];
    c.calls++;
    if (o !== 'ok' && o !== 'no_message') return;
    const sizes = moved.sizes ?? [];
    let billable = 0;
    if (cls === 'send') billable = sizes.reduce((n, s) => n + weight(s), 0);
    if (cls === 'consume') billable = sizes.length === 0 ? 1 : sizes.reduce((n, s) => n + weight(s), 0);
    if (cls === 'ack') billable = moved.deleted!;
    c.billable += billable;
    this.e.billable += billable;
    c.messages += cls === 'ack' ? moved.deleted! : sizes.length;
    const bytes = sizes.reduce((n, s) => n + s, 0);
    if (cls === 'send') c.bytesIn += bytes;
    if (cls === 'consume') c.bytesOut += bytes;
  }
}

describe('metering: every authenticated CMQ request counted once, charged exactly', () => {
  let stack: TestStack;
  let worker: NestFastifyApplication;

  beforeAll(async () => {
    stack = await TestStack.start();
    worker = await createWorker(loadConfigWith({ SWEEP_INTERVAL_MS: '600000', USAGE_RESEND_AFTER_MS: '3000' }));
    await worker.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    await worker?.close();
    await stack?.stop();
  });

  async function topup(t: TestTenant, amount: string): Promise<void> {
    const res = await fetch(`${stack.billingUrl}/v1/accounts/${t.accountId}/topups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': `t-${t.accountId}` },
      body: JSON.stringify({ amount }),
    });
    expect(res.status).toBe(201);
  }

  /** Waits until the account's usage shows `requests` requests, then reads everything back. */
  async function applied(t: TestTenant, requests: number) {
    await expectEventually(
      async () => {
        const { rows } = await stack.db.query(`SELECT coalesce(sum(requests), 0)::int AS n FROM usage_minutely WHERE account_id = $1`, [
          t.accountId,
        ]);
        expect(rows[0].n).toBe(requests);
      },
      20_000,
      100,
    );
    const minutely = await stack.db.query(
      `SELECT outcome, sum(requests)::int AS n FROM usage_minutely WHERE account_id = $1 GROUP BY outcome`,
      [t.accountId],
    );
    const hourly = await stack.db.query(
      `SELECT action_class, sum(calls)::int AS calls, sum(billable_calls)::int AS billable, sum(messages)::int AS messages,
              sum(bytes_in)::bigint AS bytes_in, sum(bytes_out)::bigint AS bytes_out
         FROM usage_hourly WHERE account_id = $1 GROUP BY action_class`,
      [t.accountId],
    );
    const ledger = await stack.db.query(
      `SELECT coalesce(sum(cash_delta_nano), 0)::text AS cash, count(*)::int AS n FROM ledger_entries WHERE account_id = $1 AND kind = 'usage_charge'`,
      [t.accountId],
    );
    const balance = await stack.db.query(`SELECT cash_nano::text FROM balances WHERE account_id = $1`, [t.accountId]);
    return {
      byOutcome: Object.fromEntries(minutely.rows.map((r) => [r.outcome, r.n])),
      byClass: Object.fromEntries(
        hourly.rows.map((r) => [
          r.action_class,
          { calls: r.calls, billable: r.billable, messages: r.messages, bytesIn: Number(r.bytes_in), bytesOut: Number(r.bytes_out) },
        ]),
      ),
      charged: -BigInt(ledger.rows[0].cash),
      cash: BigInt(balance.rows[0].cash_nano),
    };
  }

  it('thousands of mixed requests (every size band, batches, every outcome): aggregates, balance and ledger to the nano', async () => {
    const t = await stack.tenant('metering-mixed');
    await topup(t, '1000.00');
    const cmq = stack.client(t);
    const tally = new Tally();
    const call = async (cls: Cls, action: string, params: Record<string, string | number | Array<string | number> | undefined>) => {
      const r = await cmq.call(action, params);
      return r;
    };
    for (const q of ['m0', 'm1']) {
      tally.add('management', await call('management', 'CreateQueue', { queueName: q, maxMsgSize: 1_048_576, pollingWaitSeconds: 0 }));
    }
    tally.add('management', await call('management', 'CreateQueue', { queueName: 'bad name!' }));
    tally.add('management', await call('management', 'CreateQueue', { queueName: 'throttled', pollingWaitSeconds: 0 }));
    const limited = await stack.admin('PUT', `/v1/accounts/${t.accountId}/queues/throttled/qps-limit`, { qpsLimit: 3 });
    expect(limited.status).toBe(200);

    // a receive from a queue still empty: the no_message outcome, which the random mix below
    // reaches only if one of its receives happens to come before that queue's first send
    const empty = await call('consume', 'ReceiveMessage', { queueName: 'm0', pollingWaitSeconds: 0 });
    expect(empty.code).toBe(7000);
    tally.add('consume', empty, { sizes: [] });

    const handles: Array<{ q: string; h: string }> = [];
    const one = async () => {
      const q = pick(['m0', 'm1']);
      const roll = Math.random();
      if (roll < 0.25) {
        const size = Math.random() < 0.03 ? pick(LARGE) : pick(SMALL);
        const r = await call('send', 'SendMessage', { queueName: q, msgBody: body(size) });
        tally.add('send', r, { sizes: [size] });
      } else if (roll < 0.4) {
        const sizes = Array.from({ length: 1 + Math.floor(Math.random() * 16) }, () => pick(SMALL));
        const r = await call('send', 'BatchSendMessage', { queueName: q, msgBody: sizes.map(body) });
        tally.add('send', r, { sizes });
      } else if (roll < 0.55) {
        const r = await call('consume', 'ReceiveMessage', { queueName: q, pollingWaitSeconds: 0 });
        if (r.code === 0) handles.push({ q, h: r.receiptHandle as string });
        tally.add('consume', r, { sizes: r.code === 0 ? [utf8(r.msgBody as string)] : [] });
      } else if (roll < 0.65) {
        const r = await call('consume', 'BatchReceiveMessage', { queueName: q, numOfMsg: 1 + Math.floor(Math.random() * 16), pollingWaitSeconds: 0 });
        const list = (r.msgInfoList as Array<{ msgBody: string; receiptHandle: string }>) ?? [];
        for (const m of list) handles.push({ q, h: m.receiptHandle });
        tally.add('consume', r, { sizes: list.map((m) => utf8(m.msgBody)) });
      } else if (roll < 0.75) {
        const own = handles.splice(0, 1 + Math.floor(Math.random() * 4));
        const hs = own.map((x) => x.h);
        const target = own[0]?.q ?? q;
        // some handles of another queue or made up: they delete nothing
        if (Math.random() < 0.3) hs.push('12345-678');
        if (hs.length === 1 && Math.random() < 0.5) {
          const r = await call('ack', 'DeleteMessage', { queueName: target, receiptHandle: hs[0] });
          tally.add('ack', r, { deleted: r.code === 0 ? 1 : 0 });
        } else if (hs.length > 0) {
          const r = await call('ack', 'BatchDeleteMessage', { queueName: target, receiptHandle: hs });
          const failed = ((r.errorList as unknown[]) ?? []).length;
          tally.add('ack', r, { deleted: r.code === 0 ? hs.length : r.code === 6010 ? hs.length - failed : 0 });
        }
      } else if (roll < 0.82) {
        tally.add('send', await call('send', 'SendMessage', { queueName: 'throttled', msgBody: body(10) }), { sizes: [10] });
      } else if (roll < 0.87) {
        tally.add('send', await call('send', 'SendMessage', { queueName: 'missing', msgBody: body(10) }));
      } else if (roll < 0.92) {
        // a message over the queue's size limit: a client error, nothing moved
        tally.add('send', await call('send', 'SendMessage', { queueName: 'throttled', msgBody: body(70 * KIB) }));
      } else if (roll < 0.96) {
        tally.add('management', await call('management', 'GetQueueAttributes', { queueName: q }));
      } else {
        tally.add('management', await call('management', 'ListQueue', {}));
      }
    };
    const workers = Array.from({ length: 12 }, async () => {
      for (let i = 0; i < 250; i++) await one();
    });
    await Promise.all(workers);
    // the random mix may have reached the throttled queue too slowly to be refused (a slow
    // machine, or its limit not yet read from the queue cache): bursts until one is, all tallied
    const until = Date.now() + 15_000;
    while (!tally.e.byOutcome.throttled && Date.now() < until) {
      const burst = await Promise.all(
        Array.from({ length: 12 }, () => call('send', 'SendMessage', { queueName: 'throttled', msgBody: body(10) })),
      );
      for (const r of burst) tally.add('send', r, { sizes: [10] });
      if (!tally.e.byOutcome.throttled) await new Promise((r) => setTimeout(r, 500));
    }
    expect(tally.requests).toBeGreaterThan(2500);
    for (const o of ['ok', 'no_message', 'client_error', 'throttled']) expect(tally.e.byOutcome[o]).toBeGreaterThan(0);

    const got = await applied(t, tally.requests);
    expect(got.byOutcome).toEqual(tally.e.byOutcome);
    const expectedClasses = Object.fromEntries(Object.entries(tally.e.byClass).filter(([, v]) => v.calls > 0));
    expect(got.byClass).toEqual(expectedClasses);
    // the default plan in gz: ¥2.00 per million billable calls = 2,000 nano per call
    const charge = 2000n * BigInt(tally.e.billable);
    expect(got.charged).toBe(charge);
    expect(got.cash).toBe(1000_000_000_000n - charge);
    // nothing of the account is left waiting (other specs' usage may be: they share the database)
    const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM usage_outbox WHERE strpos(records::text, $1) > 0`, [t.accountId]);
    expect(rows[0].n).toBe(0);
  }, 240_000);

  it('a tiered plan with a free quota, assigned to the account: the month charged F(total), across batch boundaries', async () => {
    const t = await stack.tenant('metering-tiered');
    await topup(t, '1000.00');
    // the plan, as data; assigned from an hour ago (the API assigns from the next hour, tested below)
    const { rows: plan } = await stack.db.query(
      `INSERT INTO price_plans (code, region_group, version, currency, metering_rule, effective_from)
       VALUES ('tiered-test', 'mainland', 1, 'CNY', 'size_bands', '2020-01-01T00:00:00Z') RETURNING id`,
    );
    await stack.db.query(`INSERT INTO price_plan_regions VALUES ($1, 'gz')`, [plan[0].id]);
    await stack.db.query(`INSERT INTO price_plan_lines VALUES ($1, 'calls', 500)`, [plan[0].id]);
    const tiers: Array<[bigint | null, bigint]> = [
      [2_000n, 2_000_000_000_000n],
      [20_000n, 1_000_000_000_001n],
      [null, 333_333_333_333n],
    ];
    for (const [i, [upTo, price]] of tiers.entries()) {
      await stack.db.query(`INSERT INTO price_plan_tiers VALUES ($1, 'calls', $2, $3, $4)`, [plan[0].id, i, upTo?.toString() ?? null, price.toString()]);
    }
    await stack.db.query(
      `INSERT INTO account_plans (account_id, region, plan_code, effective_from) VALUES ($1, 'gz', 'tiered-test', date_trunc('hour', now()) - interval '1 hour')`,
      [t.accountId],
    );
    const cmq = stack.client(t);
    expect((await cmq.call('CreateQueue', { queueName: 'tiers', maxMsgSize: 1_048_576 })).code).toBe(0);
    let billable = 0;
    let requests = 1;
    const sizes = [1, 3 * KIB, 10 * KIB, 17 * KIB, 40 * KIB];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 40; i++) {
          // 8 to 16 messages: about 34,000 billable calls in all, past every tier bound
          const batch = Array.from({ length: 8 + Math.floor(Math.random() * 9) }, () => pick(sizes));
          const r = await cmq.call('BatchSendMessage', { queueName: 'tiers', msgBody: batch.map(body) });
          expect(r.code).toBe(0);
          requests++;
          billable += batch.reduce((n, s) => n + weight(s), 0);
        }
      }),
    );
    expect(billable).toBeGreaterThan(20_000);
    // F(u), written out: the free quota first, then each tier's price per million over the
    // calls beyond it
    const F = (u: bigint): bigint => {
      let left = u > 500n ? u - 500n : 0n;
      let from = 0n;
      let nano = 0n;
      for (const [upTo, price] of tiers) {
        const width = upTo === null ? left : upTo - from < left ? upTo - from : left;
        nano += width * price;
        left -= width;
        if (upTo !== null) from = upTo;
        if (left === 0n) break;
      }
      // per million, floored to the nano once
      return nano / 1_000_000n;
    };
    const got = await applied(t, requests);
    const { rows: monthly } = await stack.db.query(`SELECT billable_calls::int AS b, charged_nano::text AS c FROM usage_monthly WHERE account_id = $1`, [
      t.accountId,
    ]);
    expect(monthly).toEqual([{ b: billable, c: got.charged.toString() }]);
    const { rows: batches } = await stack.db.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE account_id = $1 AND kind = 'usage_charge'`, [
      t.accountId,
    ]);
    expect(batches[0].n).toBeGreaterThan(1);
    expect(got.charged).toBe(F(BigInt(billable)));
    expect(got.cash).toBe(1000_000_000_000n - F(BigInt(billable)));
  }, 240_000);

  it('a plan assignment takes effect from the next hour, only for plans covering the region, and is kept as history', async () => {
    const t = await stack.tenant('metering-assign');
    const bad = await stack.admin('PUT', `/v1/accounts/${t.accountId}/plans/gz`, { plan: 'no-such-plan' });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toContain('no plan no-such-plan');
    expect((await stack.admin('PUT', `/v1/accounts/${t.accountId}/plans/mars`, { plan: 'default' })).status).toBe(400);
    const ok = await stack.admin('PUT', `/v1/accounts/${t.accountId}/plans/gz`, { plan: 'default', reason: 'contract 7' });
    expect(ok.status).toBe(200);
    const nextHour = (Math.floor(Date.now() / 3_600_000) + 1) * 3_600_000;
    expect(Date.parse(ok.body.effectiveFrom)).toBe(nextHour);
    const list = await stack.admin('GET', `/v1/accounts/${t.accountId}/plans`);
    expect(list.body).toEqual([expect.objectContaining({ region: 'gz', plan: 'default', reason: 'contract 7' })]);
    await expect(stack.db.query(`DELETE FROM account_plans WHERE account_id = $1`, [t.accountId])).rejects.toThrow(/append-only/);
  });
});
