import { Inject, Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { localIso } from '@app/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { ExportRangeError, parseExportFilter } from './exports';
import type { ActionClass } from './metering';
import type { Nano } from './money';

/**
 * Usage and hourly statements of an account, read from `usage_hourly` (billing.md §6): the hourly
 * rows per region, resource, action class and action, with the exact amount each was charged
 * (every batch's charge spread over its hours by billable calls, so the amounts of an account add
 * up to its `usage_charge` ledger entries to the nano).
 */

export type UsageGranularity = 'hour' | 'day';
export const USAGE_GRANULARITIES: readonly UsageGranularity[] = ['hour', 'day'];

/** The dimensions a usage query may keep (the others are summed over), in their order. */
export type UsageDimension = 'region' | 'resource' | 'action';
export const USAGE_DIMENSIONS: readonly UsageDimension[] = ['region', 'resource', 'action'];

export const ACTION_CLASSES: readonly ActionClass[] = ['send', 'consume', 'ack', 'management'];

/** Days a usage or statement query may span. */
export const MAX_USAGE_DAYS = 400;

export class UsageQueryError extends Error {}

export interface UsageRange {
  /** inclusive, Unix ms */
  from: number;
  /** exclusive, Unix ms */
  to: number;
}

export interface UsageQuery extends UsageRange {
  granularity: UsageGranularity;
  /** kept dimensions, in {@link USAGE_DIMENSIONS} order */
  groupBy: UsageDimension[];
  region?: string;
  resource?: string;
  action?: string;
  actionClass?: ActionClass;
}

const REGION_RE = /^[a-z][a-z0-9-]{1,15}$/;
const ACTION_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_RESOURCE = 128;
const HOUR = 3_600_000;

/**
 * A [from, to) range of whole periods: ISO 8601 with an offset (or a date, midnight UTC), from
 * before to, at most {@link MAX_USAGE_DAYS} days; with `hour`, both on whole hours (UTC); with
 * `day`, both at midnight in `timeZone` (so every bucket is a whole day of the billing zone).
 */
export function parseUsageRange(q: { from?: unknown; to?: unknown }, granularity: UsageGranularity, timeZone: string): UsageRange {
  let filter: { from: string; to: string };
  try {
    filter = parseExportFilter({ from: q.from, to: q.to }, MAX_USAGE_DAYS);
  } catch (err) {
    if (err instanceof ExportRangeError) throw new UsageQueryError(err.message);
    throw err;
  }
  const at = (name: string, text: string): number => {
    const ms = new Date(text).getTime();
    if (/\.\d*[1-9]/.test(text)) throw new UsageQueryError(`${name} must be a whole ${granularity === 'hour' ? 'hour' : 'day'}: ${text}`);
    if (granularity === 'hour' && ms % HOUR !== 0) throw new UsageQueryError(`${name} must be on a whole hour (hourly usage is per UTC hour): ${text}`);
    const local = localIso(ms, timeZone);
    if (granularity === 'day' && local.slice(10, 19) !== 'T00:00:00') {
      throw new UsageQueryError(
        `${name} must be a midnight in the billing time zone ${timeZone} for day buckets (such as ${local.slice(0, 10)}T00:00:00${local.slice(19)}): ${text}`,
      );
    }
    return ms;
  };
  return { from: at('from', filter.from), to: at('to', filter.to) };
}

const given = (v: unknown): v is string => v !== undefined && v !== null && v !== '';

/** The query of `GET /v1/accounts/{id}/usage`, checked; {@link UsageQueryError} with the reason. */
export function parseUsageQuery(
  q: { granularity?: unknown; from?: unknown; to?: unknown; region?: unknown; resource?: unknown; action?: unknown; actionClass?: unknown; groupBy?: unknown },
  timeZone: string,
): UsageQuery {
  const granularity = given(q.granularity) ? q.granularity : 'hour';
  if (typeof granularity !== 'string' || !(USAGE_GRANULARITIES as readonly string[]).includes(granularity)) {
    throw new UsageQueryError('granularity must be hour or day');
  }
  const g = granularity as UsageGranularity;
  const range = parseUsageRange(q, g, timeZone);
  const out: UsageQuery = { ...range, granularity: g, groupBy: [...USAGE_DIMENSIONS] };
  if (given(q.region)) {
    if (typeof q.region !== 'string' || !REGION_RE.test(q.region)) throw new UsageQueryError('region must be a region code such as gz');
    out.region = q.region;
  }
  if (given(q.resource)) {
    if (typeof q.resource !== 'string' || q.resource.length > MAX_RESOURCE) throw new UsageQueryError(`resource must be a queue name of at most ${MAX_RESOURCE} characters`);
    out.resource = q.resource;
  }
  if (given(q.action)) {
    if (typeof q.action !== 'string' || !ACTION_RE.test(q.action)) throw new UsageQueryError('action must be a CMQ action such as SendMessage');
    out.action = q.action;
  }
  if (given(q.actionClass)) {
    if (typeof q.actionClass !== 'string' || !(ACTION_CLASSES as readonly string[]).includes(q.actionClass)) {
      throw new UsageQueryError(`actionClass must be one of ${ACTION_CLASSES.join(', ')}`);
    }
    out.actionClass = q.actionClass as ActionClass;
  }
  if (given(q.groupBy)) {
    if (typeof q.groupBy !== 'string') throw new UsageQueryError('groupBy must be given once, as a comma list');
    if (q.groupBy === 'none') out.groupBy = [];
    else {
      const names = q.groupBy.split(',').map((s) => s.trim());
      for (const n of names) {
        if (!(USAGE_DIMENSIONS as readonly string[]).includes(n)) {
          throw new UsageQueryError(`groupBy must be a comma list of ${USAGE_DIMENSIONS.join(', ')} (or none): not ${JSON.stringify(n).slice(0, 40)}`);
        }
      }
      if (new Set(names).size !== names.length) throw new UsageQueryError('groupBy names a dimension twice');
      out.groupBy = USAGE_DIMENSIONS.filter((d) => names.includes(d));
    }
  }
  return out;
}

/** One row of a usage query: a period and the kept dimensions (null: summed over). */
export interface UsageRow {
  /** start of the period, Unix ms */
  period: number;
  region: string | null;
  resource: string | null;
  action: string | null;
  calls: bigint;
  billableCalls: bigint;
  messages: bigint;
  bytesIn: bigint;
  bytesOut: bigint;
  amount: Nano;
}

/** The keyset after a row: its period (Unix ms) and kept dimensions, in order. */
export type UsageKey = [number, ...string[]];

/** One hourly statement line: an hour, region, resource and action class. */
export interface StatementLine {
  hour: number;
  region: string;
  resource: string;
  actionClass: string;
  calls: bigint;
  billableCalls: bigint;
  amount: Nano;
}

export type StatementKey = [number, string, string, string];

/** Reads usage and statements (read-only; one snapshot per call). */
@Injectable()
export class UsageReports {
  constructor(
    private readonly pool: PgPool,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  get timeZone(): string {
    return this.config.billing.timeZone;
  }

  /** The start of a period as shown: the UTC hour, or the day at midnight in the billing zone with its offset. */
  periodText(ms: number, granularity: UsageGranularity): string {
    return granularity === 'hour' ? new Date(ms).toISOString().replace('.000Z', 'Z') : localIso(ms, this.timeZone);
  }

  /**
   * Up to `limit` rows of `q` for the account, by period then the kept dimensions, after the
   * keyset `after` (the last row of the previous page).
   */
  async usage(accountId: string, q: UsageQuery, limit: number, after?: UsageKey): Promise<UsageRow[]> {
    const params: unknown[] = [accountId, new Date(q.from), new Date(q.to)];
    const p = (v: unknown) => `$${params.push(v)}`;
    const bucket = q.granularity === 'hour' ? 'hour' : `date_trunc('day', hour, ${p(this.timeZone)})`;
    const where = ['account_id = $1', 'hour >= $2', 'hour < $3'];
    if (q.region !== undefined) where.push(`region = ${p(q.region)}`);
    if (q.resource !== undefined) where.push(`resource = ${p(q.resource)}`);
    if (q.action !== undefined) where.push(`action = ${p(q.action)}`);
    if (q.actionClass !== undefined) where.push(`action_class = ${p(q.actionClass)}`);
    const dims = q.groupBy;
    if (after) {
      // a row of a later bucket starts at or after the bucket's start: the index bound
      const start = p(new Date(after[0]));
      where.push(`hour >= ${start}`);
      const keys = [`${start}::timestamptz`, ...dims.map((_, i) => `${p(after[i + 1])}::text`)];
      where.push(`(${[bucket, ...dims].join(', ')}) > (${keys.join(', ')})`);
    }
    const keys = ['1', ...dims.map((_, i) => String(i + 2))];
    const { rows } = await this.pool.query<{
      period: Date;
      region?: string;
      resource?: string;
      action?: string;
      calls: string;
      billable: string;
      messages: string;
      bytes_in: string;
      bytes_out: string;
      amount: string;
    }>(
      `SELECT ${bucket} AS period${dims.map((d) => `, ${d}`).join('')},
              sum(calls)::text AS calls, sum(billable_calls)::text AS billable, sum(messages)::text AS messages,
              sum(bytes_in)::text AS bytes_in, sum(bytes_out)::text AS bytes_out, sum(amount_nano)::text AS amount
         FROM usage_hourly
        WHERE ${where.join(' AND ')}
        GROUP BY ${keys.join(', ')}
        ORDER BY ${keys.join(', ')}
        LIMIT ${p(limit)}`,
      params,
    );
    return rows.map((r) => ({
      period: r.period.getTime(),
      region: dims.includes('region') ? r.region! : null,
      resource: dims.includes('resource') ? r.resource! : null,
      action: dims.includes('action') ? r.action! : null,
      calls: BigInt(r.calls),
      billableCalls: BigInt(r.billable),
      messages: BigInt(r.messages),
      bytesIn: BigInt(r.bytes_in),
      bytesOut: BigInt(r.bytes_out),
      amount: BigInt(r.amount),
    }));
  }

  /** The keyset of a usage row under `q` (its period and kept dimensions). */
  usageKey(row: UsageRow, q: UsageQuery): UsageKey {
    return [row.period, ...q.groupBy.map((d) => row[d] as string)];
  }

  /**
   * Hourly statement lines (per hour, region, resource and action class) of [from, to), up to
   * `limit` after the keyset `after`, and the total amount of the whole range, from one snapshot.
   */
  async statements(accountId: string, range: UsageRange, limit: number, after?: StatementKey): Promise<{ lines: StatementLine[]; total: Nano }> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const lines = await this.statementLines(c, accountId, range, limit, after);
      const { rows } = await c.query<{ total: string }>(
        `SELECT coalesce(sum(amount_nano), 0)::text AS total FROM usage_hourly WHERE account_id = $1 AND hour >= $2 AND hour < $3`,
        [accountId, new Date(range.from), new Date(range.to)],
      );
      await c.query('COMMIT');
      return { lines, total: BigInt(rows[0].total) };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  private async statementLines(c: PoolClient, accountId: string, range: UsageRange, limit: number, after?: StatementKey): Promise<StatementLine[]> {
    const { rows } = await c.query<{ hour: Date; region: string; resource: string; action_class: string; calls: string; billable: string; amount: string }>(
      `SELECT hour, region, resource, action_class, sum(calls)::text AS calls, sum(billable_calls)::text AS billable, sum(amount_nano)::text AS amount
         FROM usage_hourly
        WHERE account_id = $1 AND hour >= $2 AND hour < $3
          AND ($4::timestamptz IS NULL OR (hour >= $4::timestamptz AND (hour, region, resource, action_class) > ($4::timestamptz, $5::text, $6::text, $7::text)))
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        LIMIT $8`,
      [
        accountId,
        new Date(range.from),
        new Date(range.to),
        after ? new Date(after[0]) : null,
        after?.[1] ?? null,
        after?.[2] ?? null,
        after?.[3] ?? null,
        limit,
      ],
    );
    return rows.map((r) => ({
      hour: r.hour.getTime(),
      region: r.region,
      resource: r.resource,
      actionClass: r.action_class,
      calls: BigInt(r.calls),
      billableCalls: BigInt(r.billable),
      amount: BigInt(r.amount),
    }));
  }
}
