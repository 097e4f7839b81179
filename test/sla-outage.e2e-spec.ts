import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Client } from 'pg';
import { nextMonth, type Clock } from '@app/common';
import { loadConfigWith } from '@app/config';
import { runMigrations } from '@app/db';
import { MINUTE_MS, monthBounds, monthOf } from '@app/sla';
import { expectEventually, scratchDatabase, sleep, TestStack } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

/**
 * A real outage in accelerated time, end to end: the queue-api, billing-api and worker run on one
 * clock that goes 120 times faster than real time (a minute every half second), starting 46
 * minutes before the end of the current month in Shanghai. The prober probes the real CMQ
 * endpoint and a client sends real traffic; for 25 minutes the endpoint fails (the messages table
 * is renamed away: every send answers 6000) for both. After the month ends the worker closes it
 * on its own, and the report, the voucher and its ledger entry are what sla.md says.
 */
describe('SLA: a real outage, measured, reported and credited in accelerated time', () => {
  const SPEED = 120;
  const TZ = 'Asia/Shanghai';
  const month = monthOf(Date.now(), TZ);
  const bounds = monthBounds(month, TZ);
  const simStart = (bounds.end - 46) * MINUTE_MS;
  /** the clock stands still at simStart while the apps start, then runs */
  let realStart: number | null = null;
  const clock: Clock = { now: () => simStart + (realStart === null ? 0 : (Date.now() - realStart) * SPEED) };
  /** real ms until the clock reads `minute` */
  const realUntil = (minute: number) => Math.max(0, (minute * MINUTE_MS - clock.now()) / SPEED);

  let db: { url: string; drop: () => Promise<void> };
  let stack: TestStack;
  let worker: NestFastifyApplication;
  let admin: Client;
  let accountId: string;
  let stopTraffic = false;
  let traffic: Promise<{ sent: number; failed: number }>;

  beforeAll(async () => {
    db = await scratchDatabase();
    const overrides = {
      DATABASE_URL: db.url,
      REDIS_PREFIX: `${process.env.REDIS_PREFIX}:sla-outage`,
      REGIONS: 'gz',
      PROBE_INTERVAL_MS: '100', // real ms: about five probes per accelerated minute
      PROBE_TIMEOUT_MS: '2000',
      SLA_CLOSE_CHECK_MS: '200',
      SLA_CLOSE_DELAY_SECONDS: '60',
      SLA_BURN_RATE_INTERVAL_MS: '3600000',
      LOG_LEVEL: 'silent', // the outage makes every failing send log an error
    };
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    stack = await TestStack.start(overrides, { clock });
    worker = await createWorker(loadConfigWith({ ...overrides, PROBE_ENDPOINT: stack.cmqEndpoint }), { clock });
    await worker.listen(0, '127.0.0.1');
    admin = new Client({ connectionString: db.url });
    admin.on('error', () => undefined);
    await admin.connect();

    const t = await stack.tenant('outage-customer');
    accountId = t.accountId;
    // a customer since last month: the whole month is its service period
    await admin.query(`UPDATE accounts SET created_at = $2 WHERE id = $1`, [accountId, new Date((bounds.start - 1440) * MINUTE_MS)]);
    const client = stack.client(t);
    expect((await client.call('CreateQueue', { queueName: 'orders' })).code).toBe(0);
    await admin.query(`UPDATE queues SET created_at = $2 WHERE account_id = $1`, [accountId, new Date((bounds.start - 1440) * MINUTE_MS)]);
    realStart = Date.now();
    // real traffic: a send every 12 ms real (about 40 a minute on the clock)
    traffic = (async () => {
      let sent = 0;
      let failed = 0;
      while (!stopTraffic) {
        const r = await client.call('SendMessage', { queueName: 'orders', msgBody: `order ${sent}` });
        sent++;
        if (r.code !== 0) failed++;
        await sleep(12);
      }
      return { sent, failed };
    })();
  }, 60_000);

  afterAll(async () => {
    stopTraffic = true;
    await traffic?.catch(() => undefined);
    await admin?.query(`ALTER TABLE IF EXISTS messages_away RENAME TO messages`).catch(() => undefined);
    await admin?.end();
    await worker?.close();
    await stack?.stop();
    await db?.drop();
  });

  it('the month closes by itself after it ends, with the outage counted, the credit granted as a voucher and ledgered', async () => {
    const outageFrom = bounds.end - 40;
    const outageTo = bounds.end - 15;
    await sleep(realUntil(outageFrom));
    await admin.query(`ALTER TABLE messages RENAME TO messages_away`);
    await sleep(realUntil(outageTo));
    await admin.query(`ALTER TABLE messages_away RENAME TO messages`);
    await sleep(realUntil(bounds.end + 1));
    stopTraffic = true;
    const sent = await traffic;
    expect(sent.failed).toBeGreaterThan(0);

    // closed by the worker once the clock is a minute past the month's end
    await expectEventually(async () => {
      const { rows } = await admin.query(`SELECT revision FROM sla_month_closes WHERE month = $1::date`, [`${month}-01`]);
      expect(rows).toEqual([{ revision: 1 }]);
    }, 30_000, 200);

    const report = await stack.admin('GET', `/v1/sla/accounts/${accountId}/months/${month}`);
    expect(report.status).toBe(200);
    const r = report.body;
    expect(r).toMatchObject({ closed: true, revision: 1, servicePeriod: true, meetsTarget: false, creditPercent: 10, timeZone: TZ });
    // 25 minutes of outage; the minutes at either edge may each count or not, by how the
    // failures fell in them
    expect(r.downtimeMinutes).toBeGreaterThanOrEqual(24);
    expect(r.downtimeMinutes).toBeLessThanOrEqual(27);
    const counted = r.outages.filter((o: { counted: boolean }) => o.counted);
    expect(counted).toHaveLength(1);
    expect(Math.abs(Date.parse(counted[0].startUtc) - outageFrom * MINUTE_MS)).toBeLessThanOrEqual(MINUTE_MS);
    expect(counted[0].startLocal).toMatch(/\+08:00$/);
    expect(r.coverageAlert).toBe(true); // the month's earlier days had no probes

    // the fee base is the cash the account's usage cost in the month; the credit 10% of it, as a voucher
    const fee = await admin.query(
      `SELECT -sum(cash_delta_nano)::bigint AS fee FROM ledger_entries WHERE account_id = $1 AND kind = 'usage_charge'`,
      [accountId],
    );
    const feeNano = BigInt(fee.rows[0].fee);
    expect(feeNano).toBeGreaterThan(0n);
    // the close took the fee as charged when it ran; usage of the month's last seconds applied
    // after it (a busy machine) is late usage, for a later revision: a few calls at most
    const closed = await admin.query(`SELECT fee_base_nano::bigint AS f FROM sla_results WHERE account_id = $1 AND month = $2::date AND revision = 1`, [accountId, `${month}-01`]);
    const feeBase = BigInt(closed.rows[0].f);
    expect(feeBase).toBeLessThanOrEqual(feeNano);
    expect(feeBase * 100n).toBeGreaterThanOrEqual(feeNano * 95n);
    const credit = (feeBase * 10n) / 100n;
    const entries = await admin.query(
      `SELECT kind, voucher_delta_nano::bigint AS v, idempotency_key AS key FROM ledger_entries WHERE account_id = $1 AND kind = 'voucher_grant'`,
      [accountId],
    );
    expect(entries.rows).toEqual([{ kind: 'voucher_grant', v: credit.toString(), key: `sla-credit:${accountId}:${month}:r1` }]);
    const bal = await stack.admin('GET', `/v1/accounts/${accountId}/balance`);
    expect(bal.body.vouchers).toBeDefined();

    // the prober's own account is not a customer: no result of its own
    const system = await admin.query(`SELECT count(*)::int AS n FROM sla_results r JOIN accounts a ON a.id = r.account_id WHERE a.system`);
    expect(system.rows[0].n).toBe(0);

    // a second close changes nothing
    const counts = () =>
      admin.query(`SELECT (SELECT count(*) FROM ledger_entries)::int AS l, (SELECT count(*) FROM sla_results)::int AS r`).then((x) => x.rows[0]);
    const before = await counts();
    const again = await stack.admin('POST', `/v1/sla/months/${month}/close`, undefined);
    expect(again.status).toBe(400); // who asks must say so
    const res = await fetch(`${stack.billingUrl}/v1/sla/months/${month}/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'x-operator': 'ops@test' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ closed: false, revision: 1 });
    expect(await counts()).toEqual(before);

    // the evidence, printable and for finance
    const html = await fetch(`${stack.billingUrl}/v1/sla/accounts/${accountId}/months/${month}/report.html`, {
      headers: { authorization: `Bearer ${stack.config.adminToken}` },
    });
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(await html.text()).toContain(`${r.availability}%`);
    const csv = await fetch(`${stack.billingUrl}/v1/sla/months/${month}/results.csv`, { headers: { authorization: `Bearer ${stack.config.adminToken}` } });
    const lines = (await csv.text()).trim().split('\r\n');
    expect(lines[0]).toBe('month,account_id,revision,policy_version,total_minutes,downtime_minutes,unknown_minutes,availability_percent,meets_target,coverage_percent,service_period,credit_percent,fee_base,credit,credit_change,computed_at');
    expect(lines.filter((l) => l.includes(accountId))).toHaveLength(1);
    // the same rows as the finance export of kind sla_results over a range of months
    const range = await fetch(`${stack.billingUrl}/v1/exports/sla-results.csv?from=${month}&to=${nextMonth(month)}`, {
      headers: { authorization: `Bearer ${stack.config.adminToken}` },
    });
    expect(range.headers.get('x-csv-columns')).toBe(lines[0]);
    expect((await range.text()).trim().split('\r\n')).toEqual(lines);
  }, 120_000);
});
