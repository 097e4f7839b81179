import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { loadConfigWith } from '@app/config';
import { PgPool, runMigrations } from '@app/db';
import { formatAmount, LedgerService, parseAmount } from '@app/billing';
import { BurnRateAlerts, burnRateMilli, MINUTE_MS, monthBounds, MonthClose, SlaClock, SlaOperations, SlaReports, SlaSignals } from '@app/sla';
import { parseCsv, scratchDatabase } from '@app/testing';
import { nextMonth } from '@app/common';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The month close on a database of its own (it evaluates every account there is), with the
 * signals written as the prober and the usage stream write them, and time given by a clock the
 * test sets: November 2026 in Shanghai, closed on December 1st.
 */
describe('SLA month close: results, credits as vouchers, revisions by difference', () => {
  const MONTH = '2026-11';
  const TZ = 'Asia/Shanghai';
  const B = monthBounds(MONTH, TZ); // 30 days: T = 43,200
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let close: MonthClose;
  let burn: BurnRateAlerts;
  let reports: SlaReports;
  let ledger: LedgerService;
  let now = (B.end + 20) * MINUTE_MS;
  const clock: SlaClock = { now: () => now };
  const iso = (minute: number) => new Date(minute * MINUTE_MS).toISOString();

  const ids = { a: randomUUID(), b: randomUUID(), c: randomUUID(), d: randomUUID(), e: randomUUID() };
  let attributionId: string;

  async function account(id: string, createdAt: string) {
    await pool.query(`INSERT INTO accounts (id, name, region, created_at) VALUES ($1, $2, 'gz', $3)`, [id, `acct-${id.slice(0, 8)}`, createdAt]);
  }
  async function queue(accountId: string, region: string, createdAt: string, deletedAt: string | null = null) {
    await pool.query(
      `INSERT INTO queues (queue_id, account_id, region, name, max_msg_heap_num, polling_wait_seconds, visibility_timeout,
                           max_msg_size, msg_retention_seconds, rewind_seconds, created_at, deleted_at)
       VALUES ($1, $2, $3, $4, 10000000, 0, 30, 65536, 345600, 0, $5, $6)`,
      [`q-${randomUUID()}`, accountId, region, `q${Math.floor(Math.random() * 1e9)}`, createdAt, deletedAt],
    );
  }
  /** one probe per minute in [from, to) for `region`, failing in [downFrom, downTo) */
  async function probes(region: string, from: number, to: number, downFrom = 0, downTo = 0) {
    await pool.query(
      `INSERT INTO sla_probes (region, prober, started_at, received_at, minute, ok, failed_step, code, latency_ms)
       SELECT $1, 'test', to_timestamp(m * 60), to_timestamp(m * 60 + 1), to_timestamp(m * 60),
              NOT (m >= $4 AND m < $5), CASE WHEN m >= $4 AND m < $5 THEN 'send' END, CASE WHEN m >= $4 AND m < $5 THEN 6000 END, 12
         FROM generate_series($2::bigint, $3::bigint - 1) AS m`,
      [region, from, to, downFrom, downTo],
    );
  }
  async function traffic(accountId: string, fromMinute: number, minutes: number, perMinute: Record<string, number>) {
    for (const [outcome, requests] of Object.entries(perMinute)) {
      await pool.query(
        `INSERT INTO usage_minutely (account_id, region, minute, outcome, requests)
         SELECT $1, 'sh', to_timestamp(m * 60), $4, $5 FROM generate_series($2::bigint, $3::bigint - 1) AS m`,
        [accountId, fromMinute, fromMinute + minutes, outcome, requests],
      );
    }
  }
  /**
   * A usage charge dated inside the month (the fee base is the month's cash charged), whatever
   * the day the spec runs: posted, then moved back past the ledger's append-only trigger.
   */
  async function fee(accountId: string, amount: string) {
    const key = `fee-${accountId}`;
    await ledger.post({ accountId, kind: 'usage_charge', charge: parseAmount(amount), idempotencyKey: key, request: { amount } });
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL session_replication_role = replica');
      await c.query(`UPDATE ledger_entries SET created_at = $2 WHERE idempotency_key = $1`, [key, iso(B.start + 1_000)]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  }
  const entries = async (accountId: string) =>
    (
      await pool.query(
        `SELECT kind, voucher_delta_nano::text AS v, idempotency_key AS key FROM ledger_entries WHERE account_id = $1 AND kind <> 'usage_charge' ORDER BY id`,
        [accountId],
      )
    ).rows;
  const results = async (accountId: string) =>
    (
      await pool.query(
        `SELECT revision, downtime_minutes AS down, availability, meets_target AS meets, service_period AS service, credit_pct AS pct,
                fee_base_nano::text AS fee, credit_nano::text AS credit, credit_delta_nano::text AS delta, outages, reason
           FROM sla_results WHERE account_id = $1 AND month = $2::date ORDER BY revision`,
        [accountId, `${MONTH}-01`],
      )
    ).rows;

  beforeAll(async () => {
    db = await scratchDatabase();
    const config = loadConfigWith({ DATABASE_URL: db.url, REGIONS: 'gz,sh' });
    await runMigrations(config);
    pool = new Pool({ connectionString: db.url, max: 6 });
    pool.on('error', () => undefined);
    const pg = pool as unknown as PgPool;
    ledger = new LedgerService(pg);
    close = new MonthClose(config, pg, new SlaSignals(pg), new SlaOperations(pg, config, clock), ledger, clock);
    burn = new BurnRateAlerts(config, pg, new SlaSignals(pg), clock);
    reports = new SlaReports(config, pg, new SlaSignals(pg), close, new SlaOperations(pg, config, clock));

    const outage = { from: B.start + 15_000, to: B.start + 15_040 }; // gz: 40 minutes down
    await probes('gz', B.start - 10, B.end + 10, outage.from, outage.to);
    await probes('sh', B.start - 10, B.end + 10);
    // gz maintenance announced two days ahead over the outage's first 10 minutes
    await pool.query(
      `INSERT INTO sla_maintenance (region, starts_at, ends_at, announced_at, reason, created_by)
       VALUES ('gz', $1, $2, $3, 'storage firmware upgrade', 'ops@test')`,
      [iso(outage.from), iso(outage.from + 10), iso(outage.from - 2 * 1440)],
    );
    // the same window for sh, announced only an hour ahead: excludes nothing
    await pool.query(
      `INSERT INTO sla_maintenance (region, starts_at, ends_at, announced_at, reason, created_by)
       VALUES ('sh', $1, $2, $3, 'late notice', 'ops@test')`,
      [iso(B.start + 20_000), iso(B.start + 20_060), iso(B.start + 20_000 - 60)],
    );

    // a: a gz queue all month, a fee of 100.00: 30 counted minutes, a breach (2000 × 30 > 43,200), 10%
    await account(ids.a, '2026-10-01T00:00:00Z');
    await queue(ids.a, 'gz', '2026-10-01T00:00:00Z');
    await fee(ids.a, '100.00');
    // b: sh only; 25 minutes of 10% server errors at 20 requests a minute, 5 of them attributed to the user
    await account(ids.b, '2026-10-01T00:00:00Z');
    await queue(ids.b, 'sh', '2026-10-01T00:00:00Z');
    await traffic(ids.b, B.start + 30_000, 25, { ok: 18, server_error: 2 });
    await traffic(ids.b, B.start + 31_000, 10, { ok: 1, server_error: 18 }); // 19 requests a minute: too few to judge
    await traffic(ids.b, B.start + 32_000, 60, { client_error: 50, throttled: 50 }); // case 13: not down
    await fee(ids.b, '50.00');
    const { rows } = await pool.query(
      `INSERT INTO sla_attributions (account_id, starts_at, ends_at, cause, reason, created_by)
       VALUES ($1, $2, $3, 'user', 'consumer flooded its own queue with malformed batches', 'ops@test') RETURNING id::text`,
      [ids.b, iso(B.start + 30_000), iso(B.start + 30_005)],
    );
    attributionId = rows[0].id;
    // c: created mid-month with a gz queue: down too, but no service period, no credit
    await account(ids.c, '2026-11-10T00:00:00Z');
    await queue(ids.c, 'gz', '2026-11-10T00:00:00Z');
    await fee(ids.c, '100.00');
    // d: its gz queue deleted before the outage: not affected
    await account(ids.d, '2026-10-01T00:00:00Z');
    await queue(ids.d, 'gz', '2026-10-01T00:00:00Z', iso(B.start + 5_000));
    await fee(ids.d, '100.00');
    // e: a fee of 0.000000003 and the 30 minutes of gz: 10% of it rounds down to nothing
    await account(ids.e, '2026-10-01T00:00:00Z');
    await queue(ids.e, 'gz', '2026-10-01T00:00:00Z');
    await fee(ids.e, '0.000000003');
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('knows which month to close: the one that ended, once the delay has passed', async () => {
    now = (B.end + 5) * MINUTE_MS;
    expect(await close.monthToClose(900)).toBe('2026-10');
    now = (B.end + 20) * MINUTE_MS;
    expect(await close.monthToClose(900)).toBe(MONTH);
  });

  it('closes the month: every account evaluated, breaches credited as vouchers, the rest not (sla.md §7 cases 11 and 13 among them)', async () => {
    const r = await close.close(MONTH);
    expect(r).toMatchObject({ month: MONTH, closed: true, revision: 1, accounts: 5 });
    expect(formatAmount(r.creditsNano)).toBe('10.00');

    const [a] = await results(ids.a);
    expect(a).toMatchObject({ revision: 1, down: 30, meets: false, service: true, pct: 10, fee: '100000000000', credit: '10000000000', delta: '10000000000' });
    expect(a.availability).toBe('99.9305');
    expect(a.outages).toHaveLength(1);
    expect(a.outages[0]).toMatchObject({ minutes: 40, counted: true, countedMinutes: 30 });
    expect(a.outages[0].exclusions).toEqual([{ cause: 'maintenance', id: expect.any(String), reason: 'storage firmware upgrade', minutes: 10 }]);
    expect(await entries(ids.a)).toEqual([{ kind: 'voucher_grant', v: '10000000000', key: `sla-credit:${ids.a}:${MONTH}:r1` }]);
    const bal = await pool.query(`SELECT voucher_nano::text AS v FROM balances WHERE account_id = $1`, [ids.a]);
    expect(bal.rows[0].v).toBe('10000000000');
    const notes = await pool.query(`SELECT kind, payload FROM notifications WHERE account_id = $1 AND kind LIKE 'sla%'`, [ids.a]);
    expect(notes.rows).toEqual([{ kind: 'sla_credit', payload: expect.objectContaining({ month: MONTH, credit: '10.00', availability: '99.9305', revision: 1 }) }]);

    const [b] = await results(ids.b);
    expect(b).toMatchObject({ down: 20, meets: true, pct: 0, credit: '0' });
    expect(b.outages).toEqual([
      expect.objectContaining({ minutes: 25, countedMinutes: 20, exclusions: [{ cause: 'user', id: attributionId, reason: 'consumer flooded its own queue with malformed batches', minutes: 5 }] }),
    ]);
    // case 13: b's hour of only client errors and throttling is not down (b's downtime is the 20 error minutes)
    // case 11: c, created mid-month, has no service period and no credit
    const [c] = await results(ids.c);
    expect(c).toMatchObject({ down: 30, meets: false, service: false, pct: 10, credit: '0' });
    const [d] = await results(ids.d);
    expect(d).toMatchObject({ down: 0, meets: true, availability: '100.0000', outages: [] });
    const [e] = await results(ids.e);
    expect(e).toMatchObject({ down: 30, pct: 10, fee: '3', credit: '0' });
    for (const id of [ids.b, ids.c, ids.d, ids.e]) expect(await entries(id)).toEqual([]);

    // the attributed exclusion is in b's report with its cause and reason
    const report = await reports.account(ids.b, MONTH);
    expect(report).toMatchObject({ closed: true, revision: 1, downtimeMinutes: 20, availability: '99.9537', meetsTarget: true });
    expect(report!.outages[0].exclusions).toEqual([{ cause: 'user', id: attributionId, reason: 'consumer flooded its own queue with malformed batches', minutes: 5 }]);
    expect(report!.outages[0].startLocal).toBe('2026-11-21T20:00:00+08:00'); // minute 30,000 of the month
    // a's report shows the maintenance window that excluded 10 minutes, and the fleet view the gz outage
    const ra = await reports.account(ids.a, MONTH);
    expect(ra!.maintenance).toEqual([expect.objectContaining({ region: 'gz', reason: 'storage firmware upgrade', inTime: true, applied: true })]);
    const fleet = await reports.fleet(MONTH);
    expect(fleet.regions.find((x) => x.region === 'gz')).toMatchObject({ downtimeMinutes: 30, availability: '99.9305', coverageAlert: false });
    expect(fleet.accounts).toEqual({ evaluated: 5, affected: 4, belowTarget: 3, credited: 1 });
    expect(fleet.creditsTotal).toBe('10.00');
  });

  it('a second close of the month changes nothing', async () => {
    const before = await pool.query(`SELECT (SELECT count(*) FROM ledger_entries)::int AS l, (SELECT count(*) FROM sla_results)::int AS r, (SELECT count(*) FROM notifications)::int AS n`);
    const r = await close.close(MONTH);
    expect(r).toMatchObject({ closed: false, revision: 1, accounts: 0 });
    const after = await pool.query(`SELECT (SELECT count(*) FROM ledger_entries)::int AS l, (SELECT count(*) FROM sla_results)::int AS r, (SELECT count(*) FROM notifications)::int AS n`);
    expect(after.rows[0]).toEqual(before.rows[0]);
  });

  it('case 15: a late correction makes a new revision for the accounts it changes, credits moved by the difference only', async () => {
    // the attribution is withdrawn: b's 25 minutes all count (2000 × 25 > 43,200): 10% of 50.00
    await pool.query(`UPDATE sla_attributions SET withdrawn_at = now(), withdrawn_by = 'ops@test' WHERE id = $1`, [attributionId]);
    const r2 = await close.recompute(MONTH, 'ops@test', 'attribution withdrawn: the errors were ours');
    expect(r2).toMatchObject({ revision: 2, changed: 1 });
    expect(formatAmount(r2.creditDeltaNano)).toBe('5.00');
    expect((await results(ids.a)).map((x) => x.revision)).toEqual([1]);
    const bRevisions = await results(ids.b);
    expect(bRevisions.map((x) => [x.revision, x.down, x.credit, x.delta, x.reason])).toEqual([
      [1, 20, '0', '0', null],
      [2, 25, '5000000000', '5000000000', 'attribution withdrawn: the errors were ours'],
    ]);
    expect(await entries(ids.b)).toEqual([{ kind: 'voucher_grant', v: '5000000000', key: `sla-credit:${ids.b}:${MONTH}:r2` }]);

    // put back: revision 3 takes the 5.00 back from b's unspent vouchers; a is untouched again
    await pool.query(`UPDATE sla_attributions SET withdrawn_at = NULL, withdrawn_by = NULL WHERE id = $1`, [attributionId]);
    const r3 = await close.recompute(MONTH, 'ops@test', 'attribution confirmed after review');
    expect(r3).toMatchObject({ revision: 3, changed: 1 });
    expect(formatAmount(r3.creditDeltaNano)).toBe('-5.00');
    expect(await entries(ids.b)).toEqual([
      { kind: 'voucher_grant', v: '5000000000', key: `sla-credit:${ids.b}:${MONTH}:r2` },
      { kind: 'adjustment', v: '-5000000000', key: `sla-credit:${ids.b}:${MONTH}:r3` },
    ]);
    expect(await entries(ids.a)).toHaveLength(1);

    // nothing changed since: a recompute makes a revision that holds no account
    const r4 = await close.recompute(MONTH, 'ops@test', 'no change');
    expect(r4).toMatchObject({ revision: 4, changed: 0 });
    const audit = await pool.query(`SELECT actor, action, subject, reason FROM audit_trail WHERE action = 'month.recompute' ORDER BY id`);
    expect(audit.rows.map((x) => x.reason)).toEqual(['attribution withdrawn: the errors were ours', 'attribution confirmed after review', 'no change']);
    const closes = await pool.query(`SELECT revision FROM sla_month_closes WHERE month = $1::date`, [`${MONTH}-01`]);
    expect(closes.rows[0].revision).toBe(4);
  });

  it('the results CSV: each account once, at its latest revision, as the download and as an export job of kind sla_results', async () => {
    const read = async (stream: NodeJS.ReadableStream) => {
      let text = '';
      for await (const c of stream) text += typeof c === 'string' ? c : (c as Buffer).toString('utf8');
      return text;
    };
    const [header, ...rows] = parseCsv(await read(await reports.csv(MONTH)));
    expect(header.join(',')).toBe(
      'month,account_id,revision,policy_version,total_minutes,downtime_minutes,unknown_minutes,availability_percent,meets_target,coverage_percent,service_period,credit_percent,fee_base,credit,credit_change,computed_at',
    );
    const byAccount = new Map(rows.map((r) => [r[1], Object.fromEntries(header.map((h, i) => [h, r[i]]))]));
    expect(rows).toHaveLength(5);
    expect(byAccount.size).toBe(5);
    // a: revision 1, its breach; b: the revision after the corrections (3 put the attribution back)
    expect(byAccount.get(ids.a)).toMatchObject({ month: MONTH, revision: '1', downtime_minutes: '30', meets_target: 'false', service_period: 'true', credit_percent: '10', fee_base: '100.00', credit: '10.00' });
    expect(byAccount.get(ids.b)).toMatchObject({ revision: '3', downtime_minutes: '20', credit: '0.00', credit_change: '-5.00' });
    expect(byAccount.get(ids.a)!.computed_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(byAccount.get(ids.a)!.coverage_percent).toMatch(/^\d{1,3}\.\d{4}$/);

    const { ExportJobStore, parseMonthExportFilter } = await import('@app/billing/exports');
    const store = new ExportJobStore(pool);
    const job = await store.create('sla_results', parseMonthExportFilter({ from: MONTH, to: nextMonth(MONTH) }), false, { kind: 'operator', name: 'finance@test' });
    const dir = await mkdtemp(join(tmpdir(), 'sla-export-'));
    try {
      expect(await store.run(job.id, dir)).toMatchObject({ status: 'done', rows: 5, from: MONTH });
      expect(await readFile(join(dir, `${job.id}.csv`), 'utf8')).toBe(await read(await reports.csv(MONTH)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await expect(reports.csv(nextMonth(MONTH))).rejects.toThrow(/is not closed/);
  });

  it('burn-rate alerts: during the gz outage the accounts with gz resources are warned once an hour, the others not', async () => {
    // 99.95% allows 0.05% of the month: 40 down minutes of the last 60 burn it 1,333 times too fast
    expect(burnRateMilli(40, 60, 999_500)).toBe(1_333_333);
    expect(burnRateMilli(0, 5, 999_500)).toBe(0);
    expect(burnRateMilli(1, 360, 999_500)).toBe(5_555); // one minute in six hours: under the ticket rule's 6
    const saved = now;
    try {
      now = (B.start + 15_040) * MINUTE_MS; // the outage's last minute has just ended
      const alerts = await burn.run();
      expect(alerts.map((a) => [a.accountId, a.severity]).sort()).toEqual([[ids.a, 'page'], [ids.c, 'page'], [ids.e, 'page']].sort());
      const stored = async () =>
        (await pool.query(`SELECT account_id, payload->>'severity' AS severity FROM notifications WHERE kind = 'sla_burn_rate' ORDER BY account_id`)).rows;
      expect(await stored()).toHaveLength(3);
      await burn.run(); // the same hour: no second notification
      expect(await stored()).toHaveLength(3);
      now = (B.start + 15_040 + 120) * MINUTE_MS; // two hours later, quiet again: nothing fires
      expect(await burn.run()).toEqual([]);
      // coverage: every minute of the last day has probes; a day after the month's probes stop, none has
      expect(await burn.coverage()).toEqual([
        { region: 'gz', coveragePpm: 1_000_000, alert: false, windowMinutes: 1440 },
        { region: 'sh', coveragePpm: 1_000_000, alert: false, windowMinutes: 1440 },
      ]);
      now = (B.end + 1440) * MINUTE_MS;
      expect((await burn.coverage()).map((r) => [r.region, r.coveragePpm, r.alert])).toEqual([
        ['gz', 6944, true],
        ['sh', 6944, true],
      ]);
      // a fresh deployment: its first hour is all it has, and all of it was probed
      now = (B.start - 10 + 60) * MINUTE_MS;
      expect(await burn.coverage()).toEqual([
        { region: 'gz', coveragePpm: 1_000_000, alert: false, windowMinutes: 60 },
        { region: 'sh', coveragePpm: 1_000_000, alert: false, windowMinutes: 60 },
      ]);
      // ... then a 3-hour gap in its probes (sla.md case 12): lost coverage over the 4 hours since the first probe
      await pool.query(`UPDATE sla_probes SET region = 'gz-gap' WHERE region = 'gz' AND minute >= $1 AND minute < $2`, [
        new Date((B.start - 10 + 60) * MINUTE_MS),
        new Date((B.start - 10 + 240) * MINUTE_MS),
      ]);
      try {
        now = (B.start - 10 + 240) * MINUTE_MS;
        expect((await burn.coverage()).map((r) => [r.region, r.coveragePpm, r.alert, r.windowMinutes])).toEqual([
          ['gz', 250_000, true, 240],
          ['sh', 1_000_000, false, 240],
        ]);
      } finally {
        await pool.query(`UPDATE sla_probes SET region = 'gz' WHERE region = 'gz-gap'`);
      }
      // before any probe: never measured, blind over the whole window
      now = (B.start - 100) * MINUTE_MS;
      expect((await burn.coverage()).map((r) => [r.region, r.coveragePpm, r.alert])).toEqual([
        ['gz', 0, true],
        ['sh', 0, true],
      ]);
      expect((await burn.coverage()).map((r) => r.windowMinutes)).toEqual([1440, 1440]);
    } finally {
      now = saved;
    }
  });

  it('the ledger still reconciles: balances equal the sums of their entries', async () => {
    expect(await ledger.reconcile()).toEqual([]);
  });
});
