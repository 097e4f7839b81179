import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { APPLY_USAGE_JOB, JobQueue, Relay } from '@app/common';
import type { CommitOutbox } from '@app/queues';
import type { RequestMeter } from './request-meter';
import type { UsageRecord } from './usage-applier';

const MINUTE = 60_000;

/**
 * One outbox row holds the usage of one commit, summed per account, region, resource, action,
 * outcome and minute (every sum is exact, so nothing is lost by summing):
 * [account, region, resource, action, outcome, minute ms, calls, messages, bytes in, bytes out,
 *  billable calls by size bands, billable calls per 64 KiB].
 */
type OutboxRow = [string, string, string, string, string, number, number, number, number, number, number, number];

/** The usage records of one commit, summed by key (see {@link OutboxRow}). */
export function encodeUsage(records: UsageRecord[]): OutboxRow[] {
  const rows: OutboxRow[] = [];
  const byKey = new Map<string, OutboxRow>();
  let last: OutboxRow | undefined;
  for (const r of records) {
    const minute = Math.floor(r.at / MINUTE) * MINUTE;
    // a commit's records mostly share one key (one account sending to one queue): the row of
    // the record before is tried first, without building the key
    let row =
      last !== undefined &&
      last[5] === minute &&
      last[0] === r.accountId &&
      last[2] === r.resource &&
      last[3] === r.action &&
      last[4] === r.outcome &&
      last[1] === r.region
        ? last
        : undefined;
    if (row === undefined) {
      const key = `${r.accountId}\u0000${r.region}\u0000${r.resource}\u0000${r.action}\u0000${r.outcome}\u0000${minute}`;
      row = byKey.get(key);
      if (row === undefined) {
        row = [r.accountId, r.region, r.resource, r.action, r.outcome, minute, 0, 0, 0, 0, 0, 0];
        byKey.set(key, row);
        rows.push(row);
      }
    }
    row[6] += r.calls;
    row[7] += r.messages;
    row[8] += r.bytesIn;
    row[9] += r.bytesOut;
    row[10] += r.billable.size_bands;
    row[11] += r.billable.per_64k;
    last = row;
  }
  return rows;
}

export function decodeUsage(rows: OutboxRow[]): UsageRecord[] {
  return rows.map(([accountId, region, resource, action, outcome, at, calls, messages, bytesIn, bytesOut, sizeBands, per64k]) => ({
    accountId,
    region,
    resource,
    action,
    outcome: outcome as UsageRecord['outcome'],
    at,
    calls,
    messages,
    bytesIn,
    bytesOut,
    billable: { size_bands: sizeBands, per_64k: per64k },
  }));
}

/** The job id of a set of outbox rows: the same rows always make the same id. */
export function usageJobId(ids: readonly string[]): string {
  return `usage-${ids[0]}-${ids[ids.length - 1]}-${ids.length}`;
}

/** Rows one usage job carries at most. */
export const USAGE_JOB_MAX_ROWS = 500;

export async function enqueueUsage(queue: Queue, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += USAGE_JOB_MAX_ROWS) {
    const chunk = ids.slice(i, i + USAGE_JOB_MAX_ROWS);
    await queue.add(
      APPLY_USAGE_JOB,
      { ids: chunk },
      {
        jobId: usageJobId(chunk),
        removeOnComplete: true,
        removeOnFail: true,
        attempts: 5,
        backoff: { type: 'exponential', delay: 200 },
      },
    );
  }
}

/** The INSERT of an outbox row whose payload is `param` (a statement parameter or a literal). */
function insertRowSql(param: string): string {
  return `INSERT INTO usage_outbox (records) SELECT ${param}::json`;
}

/**
 * Writes one outbox row of `payload` (from {@link encodeUsage}) in the caller's transaction;
 * answers its id, for {@link enqueueUsage} once committed.
 */
export async function insertUsageRow(client: Pick<PoolClient, 'query'>, payload: string): Promise<string> {
  const { rows } = await client.query<{ id: string }>({ name: 'cmq-usage-outbox', text: `${insertRowSql('$1')} RETURNING id`, values: [payload] });
  return rows[0].id;
}

/**
 * The usage outbox of the CMQ hot path. Each group commit writes the usage of the requests it
 * answers as one row, in its own transaction, so an answered request is metered even if the
 * process dies at once. Once committed, the row ids are relayed to the usage workers through
 * BullMQ (gathered for a few milliseconds into one job); a relay lost on the way (Redis down,
 * process gone) is healed by the worker, which sends rows that are still there after a timeout
 * again.
 */
@Injectable()
export class UsageOutbox implements CommitOutbox<RequestMeter>, OnApplicationShutdown {
  private readonly logger = new Logger(UsageOutbox.name);
  private readonly relay: Relay<string>;

  constructor(@Inject(APP_CONFIG) config: AppConfig, @InjectQueue(JobQueue.Usage) queue: Queue) {
    this.relay = new Relay(
      (ids) => enqueueUsage(queue, ids),
      (err, ids) => this.logger.warn(`usage relay failed (${err.message}); the worker sends ${ids.length} rows again later`),
      config.usage.relayIntervalMs,
      USAGE_JOB_MAX_ROWS,
    );
  }

  write(client: PoolClient, entries: RequestMeter[]): Promise<string> {
    return insertUsageRow(client, this.encode(entries));
  }

  /** {@link write} and COMMIT in one round trip: the records go in as a literal of a simple query. */
  async writeAndCommit(client: PoolClient, entries: RequestMeter[]): Promise<string> {
    const results = (await client.query(
      `${this.insertRow(client.escapeLiteral(this.encode(entries)))} RETURNING id; COMMIT`,
    )) as unknown as Array<{ rows: Array<{ id: string }> }>;
    return results[0].rows[0].id;
  }

  /** The row's payload: the entries' usage, summed by key. */
  encode(entries: RequestMeter[]): string {
    const records = new Array<UsageRecord>(entries.length);
    for (let i = 0; i < entries.length; i++) records[i] = entries[i].record();
    return JSON.stringify(encodeUsage(records));
  }

  /** The INSERT of a row whose payload is `param` (a statement parameter or a literal). */
  insertRow(param: string): string {
    return insertRowSql(param);
  }

  committed(token: unknown, entries: RequestMeter[]): void {
    for (const m of entries) m.committed = true;
    this.relay.add([token as string]);
  }

  onApplicationShutdown(): Promise<void> {
    return this.relay.close();
  }
}
