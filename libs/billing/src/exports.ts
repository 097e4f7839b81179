import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Query } from 'pg';
import type { Pool, PoolClient } from 'pg';
import { actorFields, appendAudit, AuditActor, AuditEvent } from '@app/audit';
import { inTransaction } from '@app/db';

/**
 * Finance CSV exports (billing.md §6) of the ledger, of hourly usage, and of monthly bills and
 * their lines.
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

/**
 * Columns of the hourly usage CSV, in their documented order. `action` is the CMQ action as
 * metered ('' for rows written before actions were kept); `amount` is what the hour's usage was
 * charged (an account's amounts add up to its `usage_charge` ledger entries; 0 for rows written
 * before amounts were kept).
 */
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
  'action',
  'amount',
] as const;

/**
 * Columns of the monthly bills CSV, in their documented order (the API's bill: money exact
 * except `amount_due`, the total rounded half-up to 0.01; `month` YYYY-MM in the billing zone).
 */
export const BILLS_CSV_COLUMNS = [
  'account_id',
  'month',
  'currency',
  'opening_balance',
  'topups',
  'usage_total',
  'vouchers_used',
  'cash_charged',
  'sla_credits',
  'other_vouchers',
  'adjustments',
  'refunds',
  'rounding',
  'closing_balance',
  'total',
  'amount_due',
  'late_usage',
  'created_at',
] as const;

/** Columns of the bill lines CSV, in their documented order (`late`: true or false). */
export const BILL_LINES_CSV_COLUMNS = [
  'account_id',
  'month',
  'usage_month',
  'region',
  'action_class',
  'late',
  'calls',
  'billable_calls',
  'amount',
] as const;

/**
 * Columns of the SLA results CSV (sla.md §6), in their documented order: per closed month and
 * account, its latest result (`meets_target` and `service_period` true or false; percentages
 * with four decimals; money exact).
 */
export const SLA_RESULTS_CSV_COLUMNS = [
  'month',
  'account_id',
  'revision',
  'policy_version',
  'total_minutes',
  'downtime_minutes',
  'unknown_minutes',
  'availability_percent',
  'meets_target',
  'coverage_percent',
  'service_period',
  'credit_percent',
  'fee_base',
  'credit',
  'credit_change',
  'computed_at',
] as const;

/**
 * Columns of the audit trail CSV, for auditors, in their documented order: an entry's id (the
 * trail's order) and place in its chain, its fields (`details` as JSON text) and the hashes
 * (hex) that chain it.
 */
export const AUDIT_CSV_COLUMNS = [
  'id',
  'chain',
  'seq',
  'at',
  'domain',
  'action',
  'actor_kind',
  'actor',
  'via',
  'account_id',
  'subject',
  'reason',
  'details',
  'prev_hash',
  'hash',
] as const;

export type ExportKind = 'ledger' | 'usage_hourly' | 'bills' | 'bill_lines' | 'sla_results' | 'audit';

export const EXPORT_KINDS: readonly ExportKind[] = ['ledger', 'usage_hourly', 'bills', 'bill_lines', 'sla_results', 'audit'];

export const EXPORT_COLUMNS: Record<ExportKind, readonly string[]> = {
  ledger: LEDGER_CSV_COLUMNS,
  usage_hourly: USAGE_HOURLY_CSV_COLUMNS,
  bills: BILLS_CSV_COLUMNS,
  bill_lines: BILL_LINES_CSV_COLUMNS,
  sla_results: SLA_RESULTS_CSV_COLUMNS,
  audit: AUDIT_CSV_COLUMNS,
};

/** Kinds filtered by a range of billing months (YYYY-MM, [from, to)) rather than of times. */
export const MONTH_KINDS: readonly ExportKind[] = ['bills', 'bill_lines', 'sla_results'];

export const isMonthKind = (kind: ExportKind): boolean => MONTH_KINDS.includes(kind);

/** The name of a kind's files (`<name>-<from>-<to>.csv`). */
export const EXPORT_FILE_NAMES: Record<ExportKind, string> = {
  ledger: 'ledger',
  usage_hourly: 'usage-hourly',
  bills: 'bills',
  bill_lines: 'bill-lines',
  sla_results: 'sla-results',
  audit: 'audit',
};

/** The name a download of `kind` over `filter` is offered under (times by their dates, months as YYYY-MM). */
export function downloadName(kind: ExportKind, filter: { from: string; to: string }): string {
  const n = isMonthKind(kind) ? 7 : 10;
  return `${EXPORT_FILE_NAMES[kind]}-${filter.from.slice(0, n)}-${filter.to.slice(0, n)}.csv`;
}

/** Rows read per keyset page. */
export const EXPORT_PAGE_ROWS = 10_000;

/** Rows per pushed chunk. */
const CHUNK_ROWS = 400;

export interface ExportFilter {
  /**
   * inclusive: ISO 8601 with offset, or Postgres's timestamptz text (microseconds kept); for the
   * month kinds, the first day of the month, YYYY-MM-01
   */
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
  keys: 6,
  sql: `SELECT account_id::text, region, resource, action_class, to_char(hour AT TIME ZONE 'UTC', ${ISO_UTC}),
               calls::text, billable_calls::text, messages::text, bytes_in::text, bytes_out::text, action, amount_nano::text, hour::text
          FROM usage_hourly u
         WHERE hour >= $1::timestamptz AND hour < $2::timestamptz AND ($3::uuid IS NULL OR account_id = $3::uuid)
           AND ($4::uuid IS NULL OR (account_id, region, resource, action_class, action, hour) > ($4::uuid, $5::text, $6::text, $7::text, $8::text, $9::timestamptz))
         ORDER BY u.account_id, u.region, u.resource, u.action_class, u.action, u.hour LIMIT $10`,
  after: (r) => [r[0], r[1], r[2], r[3], r[10], r[12]],
  line: (r) =>
    `${r[0]},${csvField(r[1])},${csvField(r[2])},${csvField(r[3])},${r[4]},${r[5]},${r[6]},${r[7]},${r[8]},${r[9]},${csvField(r[10])},${formatNanoText(r[11])}`,
};

// Bills and their lines by month, then account (the month's bills together, as finance reads
// them); with an account, its own rows by the primary key.
const BILLS: Source = {
  keys: 2,
  sql: `SELECT account_id::text, to_char(month, 'YYYY-MM'), currency::text, opening_balance_nano::text, topups_nano::text,
               usage_total_nano::text, vouchers_used_nano::text, cash_charged_nano::text, sla_credits_nano::text,
               other_vouchers_nano::text, adjustments_nano::text, refunds_nano::text, rounding_nano::text,
               closing_balance_nano::text, total_nano::text, amount_due::text, late_usage_nano::text,
               to_char(created_at AT TIME ZONE 'UTC', ${ISO_UTC}), month::text
          FROM bills b
         WHERE month >= $1::date AND month < $2::date AND ($3::uuid IS NULL OR account_id = $3::uuid)
           AND ($4::date IS NULL OR (month, account_id) > ($4::date, $5::uuid))
         ORDER BY b.month, b.account_id LIMIT $6`,
  after: (r) => [r[18], r[0]],
  line: (r) =>
    `${r[0]},${r[1]},${r[2]},${formatNanoText(r[3])},${formatNanoText(r[4])},${formatNanoText(r[5])},${formatNanoText(r[6])},` +
    `${formatNanoText(r[7])},${formatNanoText(r[8])},${formatNanoText(r[9])},${formatNanoText(r[10])},${formatNanoText(r[11])},` +
    `${formatNanoText(r[12])},${formatNanoText(r[13])},${formatNanoText(r[14])},${r[15]},${formatNanoText(r[16])},${r[17]}`,
};

const BILL_LINES: Source = {
  keys: 5,
  sql: `SELECT account_id::text, to_char(month, 'YYYY-MM'), to_char(usage_month, 'YYYY-MM'), region, action_class, late::text,
               calls::text, billable_calls::text, amount_nano::text, month::text, usage_month::text
          FROM bill_lines l
         WHERE month >= $1::date AND month < $2::date AND ($3::uuid IS NULL OR account_id = $3::uuid)
           AND ($4::date IS NULL OR (month, account_id, usage_month, region, action_class) > ($4::date, $5::uuid, $6::date, $7::text, $8::text))
         ORDER BY l.month, l.account_id, l.usage_month, l.region, l.action_class LIMIT $9`,
  after: (r) => [r[9], r[0], r[10], r[3], r[4]],
  line: (r) => `${r[0]},${r[1]},${r[2]},${csvField(r[3])},${csvField(r[4])},${r[5]},${r[6]},${r[7]},${formatNanoText(r[8])}`,
};

// The SLA results of closed months: per month and account the latest revision of the month's
// close (a recompute's revision once made), by month then account.
const SLA_RESULTS: Source = {
  keys: 2,
  sql: `SELECT to_char(r.month, 'YYYY-MM'), r.account_id::text, r.revision::text, r.policy_version::text, r.total_minutes::text,
               r.downtime_minutes::text, r.unknown_minutes::text, r.availability, r.meets_target::text,
               (r.coverage_ppm / 10000)::text || '.' || lpad((r.coverage_ppm % 10000)::text, 4, '0'), r.service_period::text,
               r.credit_pct::text, r.fee_base_nano::text, r.credit_nano::text, r.credit_delta_nano::text,
               to_char(r.computed_at AT TIME ZONE 'UTC', ${ISO_UTC}), r.month::text
          FROM (SELECT DISTINCT ON (s.month, s.account_id) s.*
                  FROM sla_results s JOIN sla_month_closes c ON c.month = s.month AND s.revision <= c.revision
                 WHERE s.month >= $1::date AND s.month < $2::date AND ($3::uuid IS NULL OR s.account_id = $3::uuid)
                   AND ($4::date IS NULL OR (s.month, s.account_id) > ($4::date, $5::uuid))
                 ORDER BY s.month, s.account_id, s.revision DESC LIMIT $6) r
         ORDER BY r.month, r.account_id`,
  after: (r) => [r[16], r[1]],
  line: (r) =>
    `${r[0]},${r[1]},${r[2]},${r[3]},${r[4]},${r[5]},${r[6]},${r[7]},${r[8]},${r[9]},${r[10]},${r[11]},` +
    `${formatNanoText(r[12])},${formatNanoText(r[13])},${formatNanoText(r[14])},${r[15]}`,
};

// The audit trail in the order of its ids over [from, to) of `at` (an account's entries, or all).
const AUDIT: Source = {
  keys: 1,
  sql: `SELECT id::text, chain::text, seq::text, to_char(at AT TIME ZONE 'UTC', ${ISO_UTC}), domain, action, actor_kind, actor, via,
               account_id::text, subject, reason, details::text, encode(prev_hash, 'hex'), encode(hash, 'hex')
          FROM audit_trail
         WHERE at >= $1::timestamptz AND at < $2::timestamptz AND ($3::uuid IS NULL OR account_id = $3::uuid)
           AND ($4::bigint IS NULL OR id > $4::bigint)
         ORDER BY audit_trail.id LIMIT $5`,
  after: (r) => [r[0]],
  line: (r) =>
    `${r[0]},${r[1]},${r[2]},${r[3]},${r[4]},${csvField(r[5])},${r[6]},${csvField(r[7])},${csvField(r[8])},${r[9] ?? ''},` +
    `${csvField(r[10])},${csvField(r[11])},${csvField(r[12])},${r[13]},${r[14]}`,
};

const SOURCES: Record<ExportKind, Source> = {
  ledger: LEDGER,
  usage_hourly: USAGE_HOURLY,
  bills: BILLS,
  bill_lines: BILL_LINES,
  sla_results: SLA_RESULTS,
  audit: AUDIT,
};

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
  return { from: from.text, to: to.text, accountId: exportAccountId(q.accountId) };
}

/** The optional account of an export: a UUID (lower-cased), or null when none is given. */
function exportAccountId(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || !UUID.test(v)) throw new ExportRangeError('accountId must be a UUID');
  return v.toLowerCase();
}

/** Months a direct download of bills or bill lines may span (about 400 days); an export job may span {@link MAX_JOB_MONTHS}. */
export const MAX_DOWNLOAD_MONTHS = 13;
export const MAX_JOB_MONTHS = 121;

const MONTH_RE = /^([1-9]\d{3})-(0[1-9]|1[0-2])$/;

/**
 * Validates a [from, to) range of billing months given as YYYY-MM (from inclusive, to
 * exclusive: from=2026-11&to=2026-12 is November's bills), at most `maxMonths` months. The
 * filter holds the first days of the months (YYYY-MM-01). Throws {@link ExportRangeError}.
 */
export function parseMonthExportFilter(
  q: { from?: unknown; to?: unknown; accountId?: unknown },
  maxMonths = MAX_DOWNLOAD_MONTHS,
): ExportFilter {
  const month = (name: string, v: unknown): number => {
    if (v === undefined || v === null || v === '') throw new ExportRangeError(`${name} is required (a billing month, YYYY-MM, e.g. 2026-11)`);
    const m = typeof v === 'string' ? MONTH_RE.exec(v) : null;
    if (!m) throw new ExportRangeError(`${name} must be a billing month, YYYY-MM (e.g. 2026-11)`);
    return Number(m[1]) * 12 + Number(m[2]) - 1;
  };
  const from = month('from', q.from);
  const to = month('to', q.to);
  if (from >= to) throw new ExportRangeError('from must be before to (the months are [from, to): from=2026-11&to=2026-12 is November)');
  if (to - from > maxMonths) throw new ExportRangeError(`the range spans more than ${maxMonths} months`);
  const day = (n: number) => `${Math.floor(n / 12)}-${String((n % 12) + 1).padStart(2, '0')}-01`;
  return { from: day(from), to: day(to), accountId: exportAccountId(q.accountId) };
}

/** An export job's row (export_jobs), as the API shows it. */
export interface ExportJobView {
  id: string;
  kind: ExportKind;
  /** ISO 8601 (UTC); for bills and bill lines the billing month, YYYY-MM */
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
  /** the bounds' days in UTC, YYYY-MM-DD (the month kinds' first days of months) */
  from_day?: string;
  to_day?: string;
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

// a month kind's bounds are stored as midnight UTC of the months' first days
const jobView = (r: ExportJobRow): ExportJobView => ({
  id: r.id,
  kind: r.kind,
  from: isMonthKind(r.kind) ? r.from_at.toISOString().slice(0, 7) : r.from_at.toISOString(),
  to: isMonthKind(r.kind) ? r.to_at.toISOString().slice(0, 7) : r.to_at.toISOString(),
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

/** The audit entry of an export requested or downloaded: who took what data, of which range. */
export function exportAudit(action: string, kind: ExportKind, filter: ExportFilter, by: AuditActor, details: Record<string, unknown> = {}): AuditEvent {
  return {
    domain: kind === 'audit' ? 'system' : 'billing',
    action,
    ...actorFields(by),
    accountId: filter.accountId ?? null,
    subject: `export:${kind}`,
    details: { kind, from: filter.from, to: filter.to, accountId: filter.accountId ?? null, ...details },
  };
}

/** The file of a finished export under EXPORT_DIR. */
export const exportFileName = (id: string) => `${id}.csv`;

/** The export_jobs table: requests, their progress and their files. */
export class ExportJobStore {
  constructor(private readonly pool: Pool) {}

  /** A requested export, audited as `by`'s in the same transaction. */
  async create(kind: ExportKind, filter: ExportFilter, bom: boolean, by: AuditActor): Promise<ExportJobView> {
    // from_at and to_at get the text: microseconds kept; months as midnight UTC of their first day
    const bound = (text: string) => (isMonthKind(kind) ? `${text}T00:00:00Z` : text);
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<ExportJobRow>(
        `INSERT INTO export_jobs (kind, from_at, to_at, account_id, bom) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
        [kind, bound(filter.from), bound(filter.to), filter.accountId ?? null, bom],
      );
      await appendAudit(c, exportAudit('export.create', kind, filter, by, { exportId: rows[0].id }));
      return jobView(rows[0]);
    });
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
        WHERE id = $1 AND status <> 'done'
        RETURNING *, from_at::text AS from_text, to_at::text AS to_text,
                  to_char(from_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS from_day, to_char(to_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS to_day`,
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
      isMonthKind(job.kind)
        ? { from: job.from_day!, to: job.to_day!, accountId: job.account_id }
        : { from: job.from_text!, to: job.to_text!, accountId: job.account_id },
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
