import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Query } from 'pg';
import type { Pool, PoolClient } from 'pg';

/**
 * Finance CSV exports (billing.md §6) of the ledger and of hourly usage.
 *
 * - RFC 4180: one header row, fields separated by commas, records ended by CRLF, a field quoted
 *   (with its quotes doubled) only when it holds a comma, a quote, CR or LF.
 * - UTF-8; a byte-order mark first only when asked (`bom`), for spreadsheet users.
 * - Money as exact decimal strings (the {@link formatAmount} form: at least two decimals, at
 *   most nine, no trailing zeros beyond two), formatted from the database's text of the bigint
 *   nano column, never through a JavaScript number.
 * - Times in ISO 8601, UTC with a `Z` offset and microseconds (Postgres's own precision), e.g.
 *   `2026-11-25T05:49:11.123456Z`.
 * - Streamed: rows are read in keyset pages ({@link EXPORT_PAGE_ROWS}) by primary key, inside
 *   one REPEATABLE READ READ ONLY transaction (the whole file is one snapshot, so its totals are
 *   the totals of the ledger at one instant), and a page is read only when the consumer asks for
 *   more (Readable backpressure): memory is one page at most, however large the export. Rows
 *   are not even held for a whole page: each becomes its CSV line as it arrives from Postgres,
 *   so its strings die young in the V8 heap instead of being promoted with the page.
 *
 * The CSV lines are built here rather than by csv-stringify: the fields are a fixed, known set,
 * and csv-stringify (an array per row, money through BigInt) measured ~40% slower and heavier
 * on 1,000,000 ledger rows (bench/ledger-export.js --csv-stringify, docs/benchmarks.md).
 */

/** Columns of the ledger CSV, in their documented order. */
export const LEDGER_CSV_COLUMNS = [
  'id',
  'account_id',
  'kind',
  'cash_delta',
  'voucher_delta',
  'cash_after',
  'voucher_after',
  'idempotency_key',
  'reason',
  'created_at',
] as const;

/** Columns of the hourly usage CSV, in their documented order (usage_hourly holds no amount: usage is charged per batch, in the ledger). */
export const USAGE_HOURLY_CSV_COLUMNS = [
  'account_id',
  'region',
  'resource',
  'action_class',
  'hour',
  'calls',
  'billable_calls',
  'messages',
  'bytes_in',
  'bytes_out',
] as const;

export type ExportKind = 'ledger' | 'usage_hourly';

export const EXPORT_KINDS: readonly ExportKind[] = ['ledger', 'usage_hourly'];

export const EXPORT_COLUMNS: Record<ExportKind, readonly string[]> = {
  ledger: LEDGER_CSV_COLUMNS,
  usage_hourly: USAGE_HOURLY_CSV_COLUMNS,
};

/** Rows read per keyset page. */
export const EXPORT_PAGE_ROWS = 10_000;

/** Rows per pushed chunk. */
const CHUNK_ROWS = 400;

export interface ExportFilter {
  /** inclusive: ISO 8601 with offset, or Postgres's timestamptz text (microseconds kept) */
  from: string;
  /** exclusive */
  to: string;
  accountId?: string | null;
}

export interface ExportOptions {
  bom?: boolean;
  pageRows?: number;
  /** called after each page is handed on, with the rows so far */
  onProgress?: (rows: number) => void;
}

const ISO_UTC = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/**
 * The decimal string of a bigint nano amount given as its decimal text, exactly as
 * formatAmount(BigInt(text)) would write it, without the BigInt.
 */
export function formatNanoText(text: string): string {
  let neg = false;
  let digits = text;
  if (digits.charCodeAt(0) === 45 /* - */) {
    neg = true;
    digits = digits.slice(1);
  }
  if (digits.length < 10) digits = '0000000000'.slice(digits.length) + digits;
  const cut = digits.length - 9;
  let end = 9;
  while (end > 2 && digits.charCodeAt(cut + end - 1) === 48 /* 0 */) end--;
  const body = `${digits.slice(0, cut)}.${digits.slice(cut, cut + end)}`;
  return neg ? `-${body}` : body;
}

const NEEDS_QUOTES = /[",\r\n]/;

/** One RFC 4180 field. */
export function csvField(v: string | null): string {
  if (v === null) return '';
  return NEEDS_QUOTES.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

interface Source {
  sql: string;
  /** the keyset parameters after a row */
  after(row: string[]): unknown[];
  /** the CSV line of a row, without its CRLF */
  line(row: string[]): string;
  /** how many keyset parameters (null before the first page) */
  keys: number;
}

// Every column comes as text (rowMode array + ::text): nothing is parsed into JS values. ORDER BY
// names the table's columns: an output column of the same name (id::text AS id) would sort as text.
const LEDGER: Source = {
  keys: 1,
  sql: `SELECT id::text, account_id::text, kind, cash_delta_nano::text, voucher_delta_nano::text,
               cash_after_nano::text, voucher_after_nano::text, idempotency_key, reason,
               to_char(created_at AT TIME ZONE 'UTC', ${ISO_UTC})
          FROM ledger_entries
         WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz AND ($3::uuid IS NULL OR account_id = $3::uuid)
           AND ($4::bigint IS NULL OR id > $4::bigint)
         ORDER BY ledger_entries.id LIMIT $5`,
  after: (r) => [r[0]],
  line: (r) =>
    `${r[0]},${r[1]},${r[2]},${formatNanoText(r[3])},${formatNanoText(r[4])},${formatNanoText(r[5])},${formatNanoText(r[6])},` +
    `${csvField(r[7])},${csvField(r[8])},${r[9]}`,
};

const USAGE_HOURLY: Source = {
  keys: 5,
  sql: `SELECT account_id::text, region, resource, action_class, to_char(hour AT TIME ZONE 'UTC', ${ISO_UTC}),
               calls::text, billable_calls::text, messages::text, bytes_in::text, bytes_out::text, hour::text
          FROM usage_hourly u
         WHERE hour >= $1::timestamptz AND hour < $2::timestamptz AND ($3::uuid IS NULL OR account_id = $3::uuid)
           AND ($4::uuid IS NULL OR (account_id, region, resource, action_class, hour) > ($4::uuid, $5::text, $6::text, $7::text, $8::timestamptz))
         ORDER BY u.account_id, u.region, u.resource, u.action_class, u.hour LIMIT $9`,
  after: (r) => [r[0], r[1], r[2], r[3], r[10]],
  line: (r) => `${r[0]},${csvField(r[1])},${csvField(r[2])},${csvField(r[3])},${r[4]},${r[5]},${r[6]},${r[7]},${r[8]},${r[9]}`,
};

const SOURCES: Record<ExportKind, Source> = { ledger: LEDGER, usage_hourly: USAGE_HOURLY };

/**
 * A finance CSV as a stream of text (UTF-8 strings, ~60 KB each): pages are read from the
 * database only as the consumer reads, and each row is turned into its line as it arrives.
 * `rows` counts the rows pushed, `bytes` their UTF-8 bytes.
 * The connection it holds (one snapshot for the whole file) goes back to the pool at the end,
 * on an error, or when the stream is destroyed (a client that went away).
 */
export class CsvExportStream extends Readable {
  rows = 0;
  bytes = 0;
  private client: PoolClient | null = null;
  private cursor: unknown[] | null = null;
  private started = false;
  private busy = false;
  private wanted = false;
  private ended = false;
  private readonly source: Source;
  private readonly pageRows: number;

  constructor(
    private readonly pool: Pool,
    readonly kind: ExportKind,
    private readonly range: ExportFilter,
    private readonly opts: ExportOptions = {},
  ) {
    // one page in flight: what a page pushed is read before the next page is asked for
    super({ highWaterMark: 1, encoding: 'utf8' });
    this.source = SOURCES[kind];
    this.pageRows = opts.pageRows ?? EXPORT_PAGE_ROWS;
  }

  private send(text: string): void {
    this.bytes += Buffer.byteLength(text, 'utf8');
    this.push(text, 'utf8');
  }

  override _read(): void {
    // a chunk pushed in the middle of a page lets the stream ask again: the page goes on, and
    // the next one starts when it is over
    if (this.busy) {
      this.wanted = true;
      return;
    }
    this.pump();
  }

  private pump(): void {
    this.busy = true;
    this.wanted = false;
    this.next().then(
      () => {
        this.busy = false;
        if (this.wanted && !this.ended && !this.destroyed) this.pump();
      },
      (err: Error) => this.destroy(err),
    );
  }

  private end(): void {
    this.ended = true;
    this.push(null);
  }

  private async next(): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.client = await this.pool.connect();
      await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      this.send(`${this.opts.bom ? '\ufeff' : ''}${EXPORT_COLUMNS[this.kind].join(',')}\r\n`);
      return;
    }
    const client = this.client;
    if (!client) return;
    const keys = this.cursor ?? new Array(this.source.keys).fill(null);
    const { line, after } = this.source;
    // rows are turned into CSV as they arrive (a Query with a row listener keeps none): each
    // row's strings die young, and what is pushed is chunks of CHUNK_ROWS rows (~60 KB)
    const count = await new Promise<number>((resolve, reject) => {
      // rowMode is a Query option @types/pg leaves out of QueryConfig
      const config = {
        text: this.source.sql,
        values: [this.range.from, this.range.to, this.range.accountId ?? null, ...keys, this.pageRows],
        rowMode: 'array',
      };
      const query = new Query(config);
      let n = 0;
      let inChunk = 0;
      let text = '';
      let last: string[] | null = null;
      query.on('row', (row: string[]) => {
        text += line(row) + '\r\n';
        last = row;
        n++;
        if (++inChunk === CHUNK_ROWS) {
          this.send(text);
          text = '';
          inChunk = 0;
        }
      });
      query.on('end', () => {
        if (text) this.send(text);
        if (last) this.cursor = after(last);
        resolve(n);
      });
      query.on('error', reject);
      client.query(query);
    });
    if (this.destroyed) return;
    this.rows += count;
    if (count > 0) this.opts.onProgress?.(this.rows);
    if (count < this.pageRows) {
      await this.finish();
      this.end();
    }
  }

  private async finish(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    try {
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      client.release(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const client = this.client;
    this.client = null;
    // a query may still be running on it: throw the connection away rather than reuse it mid-transaction
    if (client) client.release(err ?? new Error('export stream destroyed'));
    cb(err);
  }
}

/** The CSV of `kind` over `filter`, streamed (see {@link CsvExportStream}). */
export function exportCsv(pool: Pool, kind: ExportKind, filter: ExportFilter, opts: ExportOptions = {}): CsvExportStream {
  return new CsvExportStream(pool, kind, filter, opts);
}

export class ExportRangeError extends Error {}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Days a direct download may span; an export job may span {@link MAX_JOB_DAYS}. */
export const MAX_DOWNLOAD_DAYS = 400;
export const MAX_JOB_DAYS = 3700;

/**
 * Validates a [from, to) range given as ISO 8601 text: a timestamp with its offset (`Z` or
 * ±hh:mm), or a date (midnight UTC). Throws {@link ExportRangeError} with the reason.
 */
export function parseExportFilter(
  q: { from?: unknown; to?: unknown; accountId?: unknown },
  maxDays = MAX_DOWNLOAD_DAYS,
): ExportFilter {
  const time = (name: string, v: unknown): { text: string; micros: bigint } => {
    if (v === undefined || v === null || v === '') throw new ExportRangeError(`${name} is required (ISO 8601, e.g. 2026-11-01T00:00:00+08:00)`);
    if (typeof v !== 'string' || !ISO_8601.test(v)) {
      throw new ExportRangeError(`${name} must be ISO 8601 with an offset, e.g. 2026-11-01T00:00:00+08:00, or a date (midnight UTC)`);
    }
    const text = v.length === 10 ? `${v}T00:00:00Z` : v;
    const d = new Date(text);
    // Date rejects 2031-13-45 but rolls 2031-02-30 over: ask for the day as written
    if (Number.isNaN(d.getTime()) || new Date(`${v.slice(0, 10)}T00:00:00Z`).toISOString().slice(0, 10) !== v.slice(0, 10)) {
      throw new ExportRangeError(`${name} is not a valid time: ${v}`);
    }
    // microseconds: Date keeps milliseconds, Postgres (which gets the text) keeps microseconds
    const frac = /\.(\d+)/.exec(text)?.[1] ?? '';
    return { text, micros: BigInt(d.getTime()) * 1000n + BigInt(frac.padEnd(6, '0').slice(3, 6) || '0') };
  };
  const from = time('from', q.from);
  const to = time('to', q.to);
  if (from.micros >= to.micros) throw new ExportRangeError('from must be before to (the range is [from, to))');
  if (to.micros - from.micros > BigInt(maxDays) * 86_400_000_000n) throw new ExportRangeError(`the range spans more than ${maxDays} days`);
  let accountId: string | null = null;
  if (q.accountId !== undefined && q.accountId !== null && q.accountId !== '') {
    if (typeof q.accountId !== 'string' || !UUID.test(q.accountId)) throw new ExportRangeError('accountId must be a UUID');
    accountId = q.accountId.toLowerCase();
  }
  return { from: from.text, to: to.text, accountId };
}

/** An export job's row (export_jobs), as the API shows it. */
export interface ExportJobView {
  id: string;
  kind: ExportKind;
  from: string;
  to: string;
  accountId: string | null;
  bom: boolean;
  status: 'pending' | 'running' | 'done' | 'failed';
  /** rows written so far (all of them once done) */
  rows: number;
  bytes: number;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

interface ExportJobRow {
  id: string;
  kind: ExportKind;
  from_at: Date;
  to_at: Date;
  /** the bounds as Postgres's text, microseconds kept (a Date keeps milliseconds) */
  from_text?: string;
  to_text?: string;
  account_id: string | null;
  bom: boolean;
  status: ExportJobView['status'];
  rows: string;
  bytes: string;
  file: string | null;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const jobView = (r: ExportJobRow): ExportJobView => ({
  id: r.id,
  kind: r.kind,
  from: r.from_at.toISOString(),
  to: r.to_at.toISOString(),
  accountId: r.account_id,
  bom: r.bom,
  status: r.status,
  rows: Number(r.rows),
  bytes: Number(r.bytes),
  error: r.error,
  createdAt: r.created_at.toISOString(),
  startedAt: r.started_at?.toISOString() ?? null,
  finishedAt: r.finished_at?.toISOString() ?? null,
});

/** The BullMQ job id of an export: deterministic, so enqueuing it twice runs it once. */
export const exportJobId = (id: string) => `export-${id}`;

/** Job name on the exports queue. */
export const RUN_EXPORT_JOB = 'run-export';

/** The file of a finished export under EXPORT_DIR. */
export const exportFileName = (id: string) => `${id}.csv`;

/** The export_jobs table: requests, their progress and their files. */
export class ExportJobStore {
  constructor(private readonly pool: Pool) {}

  async create(kind: ExportKind, filter: ExportFilter, bom: boolean): Promise<ExportJobView> {
    // from_at and to_at get the text: microseconds kept
    const { rows } = await this.pool.query<ExportJobRow>(
      `INSERT INTO export_jobs (kind, from_at, to_at, account_id, bom) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      [kind, filter.from, filter.to, filter.accountId ?? null, bom],
    );
    return jobView(rows[0]);
  }

  async get(id: string): Promise<(ExportJobView & { file: string | null }) | null> {
    const { rows } = await this.pool.query<ExportJobRow>(`SELECT * FROM export_jobs WHERE id = $1`, [id]);
    return rows[0] ? { ...jobView(rows[0]), file: rows[0].file } : null;
  }

  /**
   * Runs export `id` into `dir` (created if missing): written to a temporary file, progress
   * stored after each page, renamed into place and marked done at the end. A job already done
   * is left alone; a failed or interrupted one starts again from the beginning.
   */
  async run(id: string, dir: string): Promise<ExportJobView> {
    const { rows } = await this.pool.query<ExportJobRow>(
      `UPDATE export_jobs SET status = 'running', started_at = now(), rows = 0, bytes = 0, error = NULL
        WHERE id = $1 AND status <> 'done' RETURNING *, from_at::text AS from_text, to_at::text AS to_text`,
      [id],
    );
    if (!rows[0]) {
      const done = await this.get(id);
      if (!done) throw new Error(`no export ${id}`);
      return done;
    }
    const job = rows[0];
    await mkdir(dir, { recursive: true });
    const file = exportFileName(id);
    const tmp = join(dir, `${file}.${process.pid}.part`);
    let lastSaved = 0;
    let saving: Promise<unknown> = Promise.resolve();
    const stream = exportCsv(
      this.pool,
      job.kind,
      { from: job.from_text!, to: job.to_text!, accountId: job.account_id },
      {
        bom: job.bom,
        onProgress: (n) => {
          // at most one progress write in flight, about every 50,000 rows
          if (n - lastSaved < 50_000) return;
          lastSaved = n;
          saving = saving.then(() =>
            this.pool.query(`UPDATE export_jobs SET rows = $2, bytes = $3 WHERE id = $1 AND status = 'running'`, [id, n, stream.bytes]).catch(() => undefined),
          );
        },
      },
    );
    try {
      await pipeline(stream, createWriteStream(tmp));
      await saving;
      await rename(tmp, join(dir, file));
      const { rows: done } = await this.pool.query<ExportJobRow>(
        `UPDATE export_jobs SET status = 'done', rows = $2, bytes = $3, file = $4, finished_at = now() WHERE id = $1 RETURNING *`,
        [id, stream.rows, stream.bytes, file],
      );
      return jobView(done[0]);
    } catch (err) {
      await saving;
      await rm(tmp, { force: true });
      await this.pool.query(`UPDATE export_jobs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1`, [
        id,
        (err as Error).message.slice(0, 1000),
      ]);
      throw err;
    }
  }
}
