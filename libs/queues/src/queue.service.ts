import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { CmqError, CmqErrors, QUEUE_ATTRIBUTE_NAMES, QueueLimits } from '@app/cmq';
import { PgPool } from '@app/db';
import { QueueRegistry } from './queue-registry';
import { QUEUE_COLUMNS, QueueAttributes, QueueRow, TenantScope, toQueueInfo } from './queue.types';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function newQueueId(): string {
  let s = 'queue-';
  for (const b of randomBytes(12)) s += ID_ALPHABET[b % 36];
  return s;
}

const COLUMN: Record<keyof QueueAttributes, string> = {
  maxMsgHeapNum: 'max_msg_heap_num',
  pollingWaitSeconds: 'polling_wait_seconds',
  visibilityTimeout: 'visibility_timeout',
  maxMsgSize: 'max_msg_size',
  msgRetentionSeconds: 'msg_retention_seconds',
  rewindSeconds: 'rewind_seconds',
};

function rewindWithinRetention(a: QueueAttributes): void {
  if (a.rewindSeconds > a.msgRetentionSeconds) {
    throw new CmqError(4000, 10700, 'rewindSeconds cannot be greater than msgRetentionSeconds');
  }
}

export interface QueueCounts {
  activeMsgNum: number;
  inactiveMsgNum: number;
  delayMsgNum: number;
  minMsgTime: number;
  rewindMsgNum: number;
}

/** Queue management: the CMQ actions that create, list, describe, change and delete queues. */
@Injectable()
export class QueueService {
  constructor(
    private readonly pool: PgPool,
    private readonly registry: QueueRegistry,
  ) {}

  async create(scope: TenantScope, name: string, given: Partial<QueueAttributes>): Promise<string> {
    const attrs = {} as QueueAttributes;
    for (const a of QUEUE_ATTRIBUTE_NAMES) attrs[a] = given[a] ?? QueueLimits[a].default;
    rewindWithinRetention(attrs);
    const queueId = newQueueId();
    try {
      await this.pool.query(
        `INSERT INTO queues (queue_id, account_id, region, name, ${QUEUE_ATTRIBUTE_NAMES.map((a) => COLUMN[a]).join(', ')})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [queueId, scope.accountId, scope.region, name, ...QUEUE_ATTRIBUTE_NAMES.map((a) => attrs[a])],
      );
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw CmqErrors.queueExists();
      throw err;
    }
    // evicts a stale copy of a deleted queue of this name that a missed announcement left behind
    await this.registry.changed(scope, name);
    return queueId;
  }

  async list(
    scope: TenantScope,
    searchWord: string | undefined,
    offset: number,
    limit: number,
  ): Promise<{ totalCount: number; queueList: Array<{ queueId: string; queueName: string }> }> {
    const pattern = searchWord ? '%' + searchWord.replace(/[\\%_]/g, (c) => '\\' + c) + '%' : '%';
    const where = `account_id = $1 AND region = $2 AND deleted_at IS NULL AND name ILIKE $3`;
    const [count, page] = await Promise.all([
      this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM queues WHERE ${where}`, [scope.accountId, scope.region, pattern]),
      this.pool.query<{ queue_id: string; name: string }>(
        `SELECT queue_id, name FROM queues WHERE ${where} ORDER BY id LIMIT $4 OFFSET $5`,
        [scope.accountId, scope.region, pattern, limit, offset],
      ),
    ]);
    return {
      totalCount: Number(count.rows[0].n),
      queueList: page.rows.map((r) => ({ queueId: r.queue_id, queueName: r.name })),
    };
  }

  /** Live counts by one scan of the queue's index range. */
  async counts(queueInternalId: string, retentionSeconds: number): Promise<QueueCounts> {
    const { rows } = await this.pool.query<{ active: string; inactive: string; delayed: string; min_ms: string | null }>(
      `SELECT count(*) FILTER (WHERE visible_ms <= cmq_now_ms()) AS active,
              count(*) FILTER (WHERE visible_ms > cmq_now_ms() AND dequeue_count > 0) AS inactive,
              count(*) FILTER (WHERE visible_ms > cmq_now_ms() AND dequeue_count = 0) AS delayed,
              min(enqueue_ms) AS min_ms
         FROM messages
        WHERE queue_id = $1 AND enqueue_ms > cmq_now_ms() - $2::bigint`,
      [queueInternalId, retentionSeconds * 1000],
    );
    const r = rows[0];
    return {
      activeMsgNum: Number(r.active),
      inactiveMsgNum: Number(r.inactive),
      delayMsgNum: Number(r.delayed),
      minMsgTime: r.min_ms === null ? 0 : Math.floor(Number(r.min_ms) / 1000),
      rewindMsgNum: 0,
    };
  }

  /** GetQueueAttributes: every field as an integer, `rewindmsgNum` spelled both ways. */
  async attributes(scope: TenantScope, name: string): Promise<Record<string, unknown>> {
    const q = await this.registry.load(scope, name);
    const counts = await this.counts(q.id, q.msgRetentionSeconds);
    return {
      queueId: q.queueId,
      queueName: q.name,
      maxMsgHeapNum: q.maxMsgHeapNum,
      pollingWaitSeconds: q.pollingWaitSeconds,
      visibilityTimeout: q.visibilityTimeout,
      maxMsgSize: q.maxMsgSize,
      msgRetentionSeconds: q.msgRetentionSeconds,
      rewindSeconds: q.rewindSeconds,
      createTime: q.createTime,
      lastModifyTime: q.lastModifyTime,
      activeMsgNum: counts.activeMsgNum,
      inactiveMsgNum: counts.inactiveMsgNum,
      delayMsgNum: counts.delayMsgNum,
      minMsgTime: counts.minMsgTime,
      rewindMsgNum: counts.rewindMsgNum,
      rewindmsgNum: counts.rewindMsgNum,
    };
  }

  /** Changes only the attributes given; answers the resulting values. */
  async setAttributes(
    scope: TenantScope,
    name: string,
    given: Partial<QueueAttributes>,
  ): Promise<QueueAttributes & { queueId: string }> {
    const current = await this.registry.load(scope, name);
    const next = { ...current } as QueueAttributes;
    for (const a of QUEUE_ATTRIBUTE_NAMES) if (given[a] !== undefined) next[a] = given[a]!;
    rewindWithinRetention(next);
    const { rows } = await this.pool.query<QueueRow>(
      `UPDATE queues SET ${QUEUE_ATTRIBUTE_NAMES.map((a, i) => `${COLUMN[a]} = $${i + 2}`).join(', ')},
              last_modify_time = now()
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING ${QUEUE_COLUMNS}`,
      [current.id, ...QUEUE_ATTRIBUTE_NAMES.map((a) => next[a])],
    );
    if (!rows[0]) throw CmqErrors.queueNotExist();
    await this.registry.changed(scope, name);
    const q = toQueueInfo(rows[0]);
    const out = { queueId: q.queueId } as QueueAttributes & { queueId: string };
    for (const a of QUEUE_ATTRIBUTE_NAMES) out[a] = q[a];
    return out;
  }

  /** Marks the queue deleted; its messages are purged in the background by the worker. */
  async delete(scope: TenantScope, name: string): Promise<void> {
    const { rowCount } = await this.pool.query(
      `UPDATE queues SET deleted_at = now()
        WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL`,
      [scope.accountId, scope.region, name],
    );
    if (!rowCount) throw CmqErrors.queueNotExist();
    await this.registry.changed(scope, name);
  }
}
