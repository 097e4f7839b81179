import { mkdtempSync, rmSync } from 'node:fs';
import { ClientRequest, get as httpGet, IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Pool } from 'pg';
import { formatAmount, parseAmount } from '@app/billing';
import { exportCsv, formatNanoText, LEDGER_CSV_COLUMNS, USAGE_HOURLY_CSV_COLUMNS } from '@app/billing/exports';
import { expectEventually, TestStack } from '@app/testing';
import { createWorker } from '../apps/worker/src/worker.app';

/**
 * Finance CSV exports (billing.md §6) of the ledger and of hourly usage: the CSV parses back
 * (RFC 4180, CRLF, one header of the documented columns), money is exact decimals whose sum is
 * the ledger's to the nano and the API's balance, filters by time [from, to) and account, the BOM
 * only when asked, bad input refused with 400 before anything starts, and export jobs run by the
 * worker from pending to done with their progress, their file equal to the direct download.
 * Constant memory on 1,000,000 rows is not measured here but by `npm run bench:ledger-export`
 * (docs/benchmarks.md, "Finance exports"); here pages of 7 rows check that keyset paging loses
 * and repeats nothing across page boundaries.
 */

/** RFC 4180 records of `text` (quoted fields, doubled quotes, CRLF or LF inside quotes). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else if (c === '\n' || c === '\r') {
      throw new Error(`bare line break at ${i}: records end with CRLF`);
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || record.length) throw new Error('the last record has no CRLF');
  return records;
}

const sumNano = (values: string[]) => values.reduce((a, v) => a + parseAmount(v), 0n);
const streamText = async (s: NodeJS.ReadableStream) => {
  let text = '';
  for await (const c of s) text += typeof c === 'string' ? c : (c as Buffer).toString('utf8');
  return text;
};

describe('finance CSV exports of the ledger and hourly usage', () => {
  let stack: TestStack;
  let exportDir: string;
  let a: string;
  let b: string;
  let worker: NestFastifyApplication | null = null;
  const FROM = '2031-01-01T00:00:00Z';
  const TO = '2031-02-01T00:00:00Z';

  const get = async (path: string, token: string | null = stack.config.adminToken) => {
    const res = await fetch(stack.billingUrl + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const buf = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, buf, text: buf.toString('utf8') };
  };

  beforeAll(async () => {
    exportDir = mkdtempSync(join(tmpdir(), 'cmq-exports-'));
    // a queue prefix of its own: workers of other specs on the run's prefix (and another EXPORT_DIR) must not take its export jobs
    stack = await TestStack.start({ EXPORT_DIR: exportDir, REDIS_PREFIX: `${process.env.REDIS_PREFIX}:exports` });
    a = (await stack.tenant('export-a')).accountId;
    b = (await stack.tenant('export-b')).accountId;
    const db = stack.db;
    // 1,000 entries of a and 300 of b in January 2031, varied amounts to the nano, awkward reasons;
    // and some just outside the range on both sides
    await db.query(
      `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, voucher_delta_nano, cash_after_nano, voucher_after_nano, idempotency_key, reason, created_at)
       SELECT CASE WHEN g <= 1000 THEN $1::uuid ELSE $2::uuid END,
              (ARRAY['topup','usage_charge','voucher_grant','adjustment','refund'])[1 + g % 5],
              CASE WHEN g % 5 = 1 THEN -(g * 1234567 + g % 9) WHEN g % 7 = 0 THEN -g ELSE g * 1000000007 END,
              CASE WHEN g % 5 = 2 THEN 5000000000 ELSE 0 END,
              g * 31 - 40000, g * 3,
              'export-spec:' || $1::text || ':' || g,
              CASE g % 4 WHEN 0 THEN NULL WHEN 1 THEN 'plain' WHEN 2 THEN 'a, "quoted"' || chr(13) || chr(10) || 'reason' ELSE 'café 中文' END,
              timestamptz '2031-01-01T00:00:00Z' + (g * interval '33 minutes 7.123456 seconds')
         FROM generate_series(1::bigint, 1300::bigint) g`,
      [a, b],
    );
    await db.query(
      `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, cash_after_nano, voucher_after_nano, idempotency_key, created_at)
       VALUES ($1::uuid, 'topup', 999, 0, 0, 'export-spec:before:' || $1::text, '2030-12-31T23:59:59.999999Z'),
              ($1::uuid, 'topup', 777, 0, 0, 'export-spec:at-to:' || $1::text, '2031-02-01T00:00:00Z')`,
      [a],
    );
    await db.query(
      `INSERT INTO usage_hourly (account_id, region, resource, action_class, hour, calls, billable_calls, messages, bytes_in, bytes_out)
       SELECT acc, r, 'queue-' || q, c, timestamptz '2031-01-01T00:00:00Z' + h * interval '1 hour', h + q, h, q, h * 100, q * 100
         FROM unnest(ARRAY[$1::uuid, $2::uuid]) acc, unnest(ARRAY['gz', 'sh']) r, generate_series(0, 2) q,
              unnest(ARRAY['send', 'receive,batch']) c, generate_series(-1, 40) h`,
      [a, b],
    );
  });

  afterAll(async () => {
    await worker?.close();
    await stack.stop();
    rmSync(exportDir, { recursive: true, force: true });
  }, 15000);

  it('money from the text of a bigint is formatAmount exactly', () => {
    for (const n of [0n, 1n, -1n, 10n, 999999999n, 1000000000n, -1000000000n, 1230000000n, 1234567891n, -98765432100n, 9223372036854775807n, -9223372036854775808n, 100n, -120000000n]) {
      expect(formatNanoText(n.toString())).toBe(formatAmount(n));
    }
  });

  it('the ledger CSV parses back with the documented header, one snapshot, sums to the nano', async () => {
    const r = await get(`/v1/exports/ledger.csv?from=${FROM}&to=${TO}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(r.headers.get('x-csv-columns')).toBe(LEDGER_CSV_COLUMNS.join(','));
    expect(r.buf[0]).not.toBe(0xef); // no BOM unless asked
    const [header, ...rows] = parseCsv(r.text);
    expect(header).toEqual([...LEDGER_CSV_COLUMNS]);
    const mine = rows.filter((x) => x[1] === a || x[1] === b);
    expect(mine).toHaveLength(1300);
    for (const x of rows) expect(x).toHaveLength(LEDGER_CSV_COLUMNS.length);
    // ordered by id, each once
    const ids = rows.map((x) => BigInt(x[0]));
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    const { rows: sums } = await stack.db.query(
      `SELECT sum(cash_delta_nano)::text AS cash, sum(voucher_delta_nano)::text AS voucher, count(*)::int AS n
         FROM ledger_entries WHERE created_at >= $1 AND created_at < $2`,
      [FROM, TO],
    );
    expect(rows).toHaveLength(sums[0].n);
    expect(sumNano(rows.map((x) => x[3]))).toBe(BigInt(sums[0].cash));
    expect(sumNano(rows.map((x) => x[4]))).toBe(BigInt(sums[0].voucher));
    // one row in full: decimal strings, ISO 8601 UTC with microseconds, quoting of the reason
    const { rows: one } = await stack.db.query(
      `SELECT id::text, cash_delta_nano::text AS c, created_at FROM ledger_entries WHERE idempotency_key = $1`,
      [`export-spec:${a}:2`],
    );
    const row = rows.find((x) => x[0] === one[0].id)!;
    expect(row).toEqual([
      one[0].id,
      a,
      'voucher_grant',
      formatAmount(BigInt(one[0].c)),
      '5.00',
      formatAmount(2n * 31n - 40000n),
      '0.000000006',
      `export-spec:${a}:2`,
      'a, "quoted"\r\nreason',
      '2031-01-01T01:06:14.246912Z',
    ]);
    expect(new Date(row[9]).getTime()).toBe(one[0].created_at.getTime());
    expect(rows.some((x) => x[8] === 'café 中文')).toBe(true);
    expect(rows.some((x) => x[1] === a && x[8] === '' && x[2] === 'topup')).toBe(true);
  });

  it('filters by account and by [from, to): the bounds as given, with an offset', async () => {
    const r = await get(`/v1/exports/ledger.csv?from=${encodeURIComponent('2031-01-01T08:00:00+08:00')}&to=2031-02-01&accountId=${a}`);
    expect(r.status).toBe(200);
    const [, ...rows] = parseCsv(r.text);
    expect(rows).toHaveLength(1000);
    expect(rows.every((x) => x[1] === a)).toBe(true);
    expect(rows.some((x) => x[7].startsWith('export-spec:before') || x[7].startsWith('export-spec:at-to'))).toBe(false);
    const { rows: s } = await stack.db.query(
      `SELECT sum(cash_delta_nano)::text AS cash FROM ledger_entries WHERE account_id = $1 AND created_at >= $2 AND created_at < $3`,
      [a, FROM, TO],
    );
    expect(sumNano(rows.map((x) => x[3]))).toBe(BigInt(s[0].cash));

    const wide = parseCsv((await get(`/v1/exports/ledger.csv?from=2030-12-31T23:59:59.999999Z&to=2031-02-01T00:00:00.000001Z&accountId=${a}`)).text);
    expect(wide).toHaveLength(1 + 1002);
    const narrow = parseCsv((await get(`/v1/exports/ledger.csv?from=2031-01-25T00:00:00Z&to=2031-01-26T00:00:00Z&accountId=${b}`)).text);
    expect(narrow.length).toBeGreaterThan(40);
    for (const x of narrow.slice(1)) {
      expect(x[1]).toBe(b);
      expect(x[9] >= '2031-01-25T00:00:00' && x[9] < '2031-01-26T00:00:00').toBe(true);
    }
    // an account with nothing in the range: the header alone
    const empty = await get(`/v1/exports/ledger.csv?from=2031-01-01T00:00:00Z&to=2031-01-02T00:00:00Z&accountId=00000000-0000-4000-8000-000000000000`);
    expect(empty.text).toBe(LEDGER_CSV_COLUMNS.join(',') + '\r\n');
  });

  it('the totals of an account equal the API: its balance is the sum of its cash deltas and the last cash_after', async () => {
    const t = (await stack.tenant('export-api')).accountId;
    const post = (path: string, body: unknown, key: string) =>
      fetch(`${stack.billingUrl}/v1/accounts/${t}/${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      }).then((x) => expect(x.status).toBe(201));
    await post('topups', { amount: '100.000000001' }, 't1');
    await post('adjustments', { amount: '-33.3333', reason: 'ticket, "42"' }, 'a1');
    await post('topups', { amount: '0.07' }, 't2');
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    const [, ...rows] = parseCsv((await get(`/v1/exports/ledger.csv?from=${from}&to=${to}&accountId=${t}`)).text);
    expect(rows.map((x) => x[3])).toEqual(['100.000000001', '-33.3333', '0.07']);
    expect(rows[1][8]).toBe('ticket, "42"');
    const balance = await stack.admin('GET', `/v1/accounts/${t}/balance`);
    expect(formatAmount(sumNano(rows.map((x) => x[3])))).toBe(balance.body.cash);
    expect(rows[2][5]).toBe(balance.body.cash);
    expect(balance.body.cash).toBe('66.736700001');
  });

  it('the BOM only when asked', async () => {
    const q = `from=${FROM}&to=${TO}&accountId=${b}`;
    const plain = await get(`/v1/exports/ledger.csv?${q}`);
    const bom = await get(`/v1/exports/ledger.csv?${q}&bom=true`);
    expect([...bom.buf.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(bom.buf.subarray(3).equals(plain.buf)).toBe(true);
    expect(plain.text.startsWith('id,account_id,')).toBe(true);
  });

  it('hourly usage: the documented columns, every row of the range once, counts summing to the table', async () => {
    const r = await get(`/v1/exports/usage-hourly.csv?from=${FROM}&to=2031-01-02T00:00:00Z`);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-csv-columns')).toBe(USAGE_HOURLY_CSV_COLUMNS.join(','));
    const [header, ...rows] = parseCsv(r.text);
    expect(header).toEqual([...USAGE_HOURLY_CSV_COLUMNS]);
    const mine = rows.filter((x) => x[0] === a || x[0] === b);
    expect(mine).toHaveLength(2 * 2 * 3 * 2 * 24);
    expect(new Set(mine.map((x) => x.slice(0, 5).join('|'))).size).toBe(mine.length);
    expect(mine.some((x) => x[3] === 'receive,batch')).toBe(true);
    expect(mine.every((x) => /^2031-01-01T\d{2}:00:00\.000000Z$/.test(x[4]))).toBe(true);
    const { rows: s } = await stack.db.query(
      `SELECT sum(calls)::text AS calls, sum(bytes_in)::text AS bytes_in, count(*)::int AS n FROM usage_hourly WHERE hour >= $1 AND hour < '2031-01-02T00:00:00Z'`,
      [FROM],
    );
    expect(rows).toHaveLength(s[0].n);
    expect(rows.reduce((t, x) => t + BigInt(x[5]), 0n)).toBe(BigInt(s[0].calls));
    expect(rows.reduce((t, x) => t + BigInt(x[8]), 0n)).toBe(BigInt(s[0].bytes_in));
    const one = parseCsv((await get(`/v1/exports/usage-hourly.csv?from=${FROM}&to=${TO}&accountId=${b}`)).text).slice(1);
    expect(one).toHaveLength(2 * 3 * 2 * 41);
    expect(one.every((x) => x[0] === b)).toBe(true);
  });

  it('keyset pages lose and repeat nothing across page boundaries (pages of 7 rows)', async () => {
    for (const kind of ['ledger', 'usage_hourly'] as const) {
      const filter = { from: FROM, to: TO, accountId: a };
      const pages: number[] = [];
      const small = await streamText(exportCsv(stack.db as unknown as Pool, kind, filter, { pageRows: 7, onProgress: (n) => pages.push(n) }));
      const big = await streamText(exportCsv(stack.db as unknown as Pool, kind, filter));
      expect(small).toBe(big);
      const rows = parseCsv(small).length - 1;
      expect(rows).toBe(kind === 'ledger' ? 1000 : 2 * 3 * 2 * 41);
      expect(pages[pages.length - 1]).toBe(rows);
      expect(pages.length).toBe(Math.ceil(rows / 7));
    }
  });

  it('a reader that goes away mid-export gives its connection back (no leak, no transaction left open)', async () => {
    // a name of its own: other specs share the database, and their transactions are not this pool's
    const pool = new Pool({ connectionString: stack.config.database.url, max: 2, application_name: 'cmq-export-abandon-test' });
    pool.on('error', () => undefined);
    try {
      for (let i = 0; i < 5; i++) {
        const s = exportCsv(pool, 'ledger', { from: FROM, to: TO }, { pageRows: 7 });
        await new Promise<void>((resolve, reject) => {
          s.once('data', () => {
            s.destroy();
            resolve();
          });
          s.once('error', reject);
        });
        await new Promise((r) => s.once('close', r));
      }
      // five abandoned exports on a pool of two: a leaked connection would hang this one
      const text = await streamText(exportCsv(pool, 'ledger', { from: FROM, to: TO, accountId: b }));
      expect(parseCsv(text)).toHaveLength(1 + 300);
      expect(pool.waitingCount).toBe(0);
      const { rows } = await stack.db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'cmq-export-abandon-test' AND state LIKE 'idle in transaction%'`,
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it('at most 4 downloads stream at once per process: the fifth is 503 with a reason, and once one is gone a download goes through', async () => {
    const c = (await stack.tenant('export-big')).accountId;
    // ~30 MB of CSV: more than the sockets of a reader that does not read can hold
    await stack.db.query(
      `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, cash_after_nano, voucher_after_nano, idempotency_key, reason, created_at)
       SELECT $1::uuid, 'topup', g, g, 0, 'export-spec-big:' || g, 'a reason long enough to make the rows a little heavier', timestamptz '2032-01-01T00:00:00Z' + g * interval '1 second'
         FROM generate_series(1, 200000) g`,
      [c],
    );
    const path = `/v1/exports/ledger.csv?from=2032-01-01T00:00:00Z&to=2032-02-01T00:00:00Z&accountId=${c}`;
    const open = async () => fetch(stack.billingUrl + path, { headers: { authorization: `Bearer ${stack.config.adminToken}` } });
    // readers that read nothing, on sockets of their own (node:http, no keep-alive): destroyed to go away
    const readers: ClientRequest[] = [];
    for (let i = 0; i < 4; i++) {
      const req = httpGet(`${stack.billingUrl}${path}`, { headers: { authorization: `Bearer ${stack.config.adminToken}` }, agent: false });
      req.on('error', () => undefined); // destroyed on purpose below
      readers.push(req);
      const res = await new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
      expect(res.statusCode).toBe(200);
      res.pause();
    }
    const fifth = await open();
    expect(fifth.status).toBe(503);
    expect(fifth.headers.get('retry-after')).toBe('10');
    expect(((await fifth.json()) as any).detail).toMatch(/4 exports are streaming from this process already.*POST \/v1\/exports/);
    readers[0].destroy();
    const ok = await expectEventually(async () => {
      const r = await open();
      if (r.status !== 200) await r.body?.cancel();
      expect(r.status).toBe(200);
      return r;
    }, 10000);
    const rows = parseCsv(await ok.text());
    expect(rows).toHaveLength(1 + 200000);
    expect(sumNano(rows.slice(1).map((x) => x[3]))).toBe(200000n * 200001n / 2n);
    for (const reader of readers) reader.destroy();
    // the server lets go of them: no snapshot left open
    await expectEventually(async () => {
      const { rows: open } = await stack.db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'cmq-export-abandon-test' AND state LIKE 'idle in transaction%'`,
      );
      expect(open[0].n).toBe(0);
    }, 10000);
  });

  it.each([
    ['from=2031-02-01T00:00:00Z&to=2031-01-01T00:00:00Z', /from must be before to/],
    ['from=2031-01-01T00:00:00Z&to=2031-01-01T00:00:00Z', /from must be before to/],
    ['from=yesterday&to=2031-01-01T00:00:00Z', /from must be ISO 8601/],
    ['from=2031-01-01T00:00:00&to=2031-01-02T00:00:00Z', /from must be ISO 8601 with an offset/],
    ['from=2031-01-01T00:00:00Z&to=2031-13-45T00:00:00Z', /to is not a valid time|to must be ISO 8601/],
    ['to=2031-01-01T00:00:00Z', /from is required/],
    ['from=2030-01-01T00:00:00Z&to=2031-02-06T00:00:00Z', /more than 400 days/],
    ['from=2031-01-01T00:00:00Z&to=2031-01-02T00:00:00Z&accountId=nope', /accountId must be a UUID/],
    ['from=2031-01-01T00:00:00Z&to=2031-01-02T00:00:00Z&bom=yes', /bom must be true or false/],
  ])('a download with %s is 400 with its reason', async (q, reason) => {
    for (const path of ['ledger.csv', 'usage-hourly.csv']) {
      const r = await get(`/v1/exports/${path}?${q}`);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text).detail).toMatch(reason);
    }
  });

  it('no token, no export', async () => {
    expect((await get(`/v1/exports/ledger.csv?from=${FROM}&to=${TO}`, null)).status).toBe(401);
    expect((await stack.admin('POST', '/v1/exports', { kind: 'ledger', from: FROM, to: TO }, '')).status).toBe(401);
  });

  it.each([
    [{ kind: 'invoices', from: FROM, to: TO }, /kind must be one of ledger, usage_hourly, bills, bill_lines/],
    [{ kind: 'ledger', from: TO, to: FROM }, /from must be before to/],
    [{ kind: 'ledger', from: 'soon', to: TO }, /from must be ISO 8601/],
    [{ kind: 'ledger', from: '2000-01-01T00:00:00Z', to: TO }, /more than 3700 days/],
    [{ kind: 'ledger', from: FROM, to: TO, accountId: 'x' }, /accountId must be a UUID/],
    [{ kind: 'ledger', from: FROM, to: TO, extra: 1 }, /extra/],
  ])('an export job %j is 400 with its reason, and nothing is started', async (body, reason) => {
    const before = await stack.db.query(`SELECT count(*)::int AS n FROM export_jobs`);
    const r = await stack.admin('POST', '/v1/exports', body);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body.detail)).toMatch(reason);
    const after = await stack.db.query(`SELECT count(*)::int AS n FROM export_jobs`);
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('an export job goes pending → done in the worker, its progress the rows, its file the direct download', async () => {
    const created = await stack.admin('POST', '/v1/exports', { kind: 'ledger', from: FROM, to: TO, accountId: a });
    expect(created.status).toBe(202);
    expect(created.body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'pending' });
    const id = created.body.id as string;
    // no worker yet: pending, and no file
    expect((await stack.admin('GET', `/v1/exports/${id}`)).body).toMatchObject({ id, kind: 'ledger', status: 'pending', rows: 0, accountId: a, from: '2031-01-01T00:00:00.000Z' });
    expect((await get(`/v1/exports/${id}/file`)).status).toBe(404);
    expect((await stack.admin('GET', `/v1/exports/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    const usage = await stack.admin('POST', '/v1/exports', { kind: 'usage_hourly', from: FROM, to: TO, bom: true });
    expect(usage.status).toBe(202);

    worker = await createWorker(stack.config);
    await worker.listen(0, '127.0.0.1');
    let job: any;
    await expectEventually(async () => {
      job = (await stack.admin('GET', `/v1/exports/${id}`)).body;
      expect(job.status).toBe('done');
    }, 20000);
    const file = await get(`/v1/exports/${id}/file`);
    expect(file.status).toBe(200);
    const direct = await get(`/v1/exports/ledger.csv?from=${FROM}&to=${TO}&accountId=${a}`);
    expect(file.buf.equals(direct.buf)).toBe(true);
    expect(job).toMatchObject({ rows: 1000, bytes: direct.buf.length, error: null });
    expect(job.finishedAt >= job.startedAt).toBe(true);

    let u: any;
    await expectEventually(async () => {
      u = (await stack.admin('GET', `/v1/exports/${usage.body.id}`)).body;
      expect(u.status).toBe('done');
    }, 20000);
    const ufile = await get(`/v1/exports/${usage.body.id}/file`);
    const udirect = await get(`/v1/exports/usage-hourly.csv?from=${FROM}&to=${TO}&bom=1`);
    expect(ufile.buf.equals(udirect.buf)).toBe(true);
    expect(u.rows).toBe(parseCsv(udirect.buf.subarray(3).toString('utf8')).length - 1);
    // the job id is deterministic: queuing the same export again runs nothing more
    const { rows } = await stack.db.query(`SELECT status, rows::int, file FROM export_jobs WHERE id = $1`, [id]);
    expect(rows[0]).toEqual({ status: 'done', rows: 1000, file: `${id}.csv` });
  });

  it('a large export job shows its progress while it runs: rows only grow, and end at the file\'s rows and bytes', async () => {
    const d = (await stack.tenant('export-job-big')).accountId;
    await stack.db.query(
      `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, cash_after_nano, voucher_after_nano, idempotency_key, created_at)
       SELECT $1::uuid, 'usage_charge', -g, -g, 0, 'export-spec-job:' || g, timestamptz '2033-01-01T00:00:00Z' + g * interval '1 second'
         FROM generate_series(1, 300000) g`,
      [d],
    );
    if (!worker) {
      worker = await createWorker(stack.config);
      await worker.listen(0, '127.0.0.1');
    }
    const created = await stack.admin('POST', '/v1/exports', { kind: 'ledger', from: '2033-01-01T00:00:00Z', to: '2033-02-01T00:00:00Z', accountId: d });
    expect(created.status).toBe(202);
    const seen: Array<{ status: string; rows: number }> = [];
    let job: any;
    await expectEventually(
      async () => {
        job = (await stack.admin('GET', `/v1/exports/${created.body.id}`)).body;
        seen.push({ status: job.status, rows: job.rows });
        expect(job.status).toBe('done');
      },
      30000,
      20,
    );
    for (let i = 1; i < seen.length; i++) expect(seen[i].rows).toBeGreaterThanOrEqual(seen[i - 1].rows);
    expect(seen.every((x) => ['pending', 'running', 'done'].includes(x.status))).toBe(true);
    expect(job.rows).toBe(300000);
    const file = await get(`/v1/exports/${created.body.id}/file`);
    expect(file.buf.length).toBe(job.bytes);
    expect(file.headers.get('content-length')).toBe(String(job.bytes));
    const rows = parseCsv(file.text);
    expect(rows).toHaveLength(1 + 300000);
    expect(sumNano(rows.slice(1).map((x) => x[3]))).toBe(-(300000n * 300001n) / 2n);
  });
});
