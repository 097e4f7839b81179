import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import {
  CmqErrors,
  DeadLetterLimits,
  DeadLetterPolicyParam,
  QUEUE_ATTRIBUTE_NAMES,
  QueueLimits,
} from '@app/cmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { actorFields, appendAudit, AuditActor } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { LongPoll } from './long-poll';
import { counterUpsert } from './message-store';
import { QueueRegistry } from './queue-registry';
import {
  deadLetterPolicyJson,
  QUEUE_COLUMNS,
  QueueAttributes,
  QueueInfo,
  QueueRow,
  TenantScope,
  toQueueInfo,
} from './queue.types';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A resource's public id: `<prefix>-` and 12 random lowercase letters and digits. */
export function newResourceId(prefix: string): string {
  let s = prefix + '-';
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
  if (a.rewindSeconds > a.msgRetentionSeconds) throw CmqErrors.rewindOverRetention();
}

/** A dead-letter binding as stored: null clears it, undefined leaves it as it is. */
type DeadLetterChange = DeadLetterPolicyParam | null | undefined;

interface StoredBinding {
  dead_letter_queue: string | null;
  dead_letter_policy: number | null;
  max_receive_count: number | null;
  max_time_to_live: number | null;
}

export interface QueueCounts {
  activeMsgNum: number;
  inactiveMsgNum: number;
  delayMsgNum: number;
  minMsgTime: number;
  rewindMsgNum: number;
}

export type QueuePage = {
  totalCount: number;
  queueList: Array<{ queueId: string; queueName: string }>;
};

/** ILIKE pattern for a substring search, with the pattern characters taken literally. */
export function containing(searchWord: string | undefined): string {
  return searchWord ? '%' + searchWord.replace(/[\\%_]/g, (c) => '\\' + c) + '%' : '%';
}

/**
 * Queue management: the CMQ actions that create, list, describe, change, rewind and delete
 * queues, and bind dead-letter queues. Changes that depend on other queues (dead-letter
 * bindings, the queue limit) run in one transaction under a per-account advisory lock, so two
 * concurrent requests cannot both pass a check that only one of them may pass.
 */
@Injectable()
export class QueueService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly registry: QueueRegistry,
    private readonly longPoll: LongPoll,
  ) {}

  private tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  /** The audit entry of a queue change, in its transaction (last: the chain's head is locked until commit). */
  private audit(c: PoolClient, by: AuditActor, scope: TenantScope, name: string, action: string, details: Record<string, unknown>): Promise<unknown> {
    return appendAudit(c, {
      domain: 'queues',
      action,
      ...actorFields(by),
      accountId: scope.accountId,
      subject: `queue:${scope.region}/${name}`,
      details,
    });
  }

  /** Serialises this account's queue-set changes (creation under a limit, dead-letter bindings). */
  private async lockAccount(c: PoolClient, accountId: string): Promise<void> {
    await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('queues:' || $1, 0))`, [accountId]);
  }

  /**
   * Checks a dead-letter binding for the queue `selfId` (null while it is being created) with
   * retention `retentionSeconds`; answers the columns to store.
   */
  private async resolveBinding(
    c: PoolClient,
    scope: TenantScope,
    selfName: string,
    selfId: string | null,
    retentionSeconds: number,
    p: DeadLetterPolicyParam,
  ): Promise<StoredBinding> {
    if (p.policy === 1 && p.maxTimeToLive! >= retentionSeconds) throw CmqErrors.deadLetterParams();
    if (p.deadLetterQueue.toLowerCase() === selfName.toLowerCase()) throw CmqErrors.deadLetterNested();
    const { rows } = await c.query<{ id: string; dead_letter_queue: string | null; sources: string }>(
      `SELECT d.id, d.dead_letter_queue,
              (SELECT count(*) FROM queues s
                WHERE s.dead_letter_queue = d.id AND s.deleted_at IS NULL AND s.id IS DISTINCT FROM $4::bigint) AS sources
         FROM queues d
        WHERE d.account_id = $1 AND d.region = $2 AND lower(d.name) = lower($3) AND d.deleted_at IS NULL`,
      [scope.accountId, scope.region, p.deadLetterQueue, selfId],
    );
    const dlq = rows[0];
    if (!dlq) throw CmqErrors.deadLetterQueueMissing();
    // no nesting: the target has no dead-letter queue of its own, and the source serves none
    if (dlq.dead_letter_queue !== null) throw CmqErrors.deadLetterNested();
    if (selfId !== null) {
      const served = await c.query(`SELECT 1 FROM queues WHERE dead_letter_queue = $1 AND deleted_at IS NULL LIMIT 1`, [selfId]);
      if (served.rowCount) throw CmqErrors.deadLetterNested();
    }
    if (Number(dlq.sources) >= DeadLetterLimits.maxSources) throw CmqErrors.deadLetterBoundTooOften();
    return {
      dead_letter_queue: dlq.id,
      dead_letter_policy: p.policy,
      max_receive_count: p.policy === 0 ? p.maxReceiveCount! : null,
      max_time_to_live: p.policy === 1 ? p.maxTimeToLive! : null,
    };
  }

  async create(
    scope: TenantScope,
    name: string,
    given: Partial<QueueAttributes>,
    deadLetter: DeadLetterPolicyParam | undefined,
    by: AuditActor,
  ): Promise<string> {
    const attrs = {} as QueueAttributes;
    for (const a of QUEUE_ATTRIBUTE_NAMES) attrs[a] = given[a] ?? QueueLimits[a].default;
    rewindWithinRetention(attrs);
    const queueId = newResourceId('queue');
    const { maxQueuesPerAccount, queueNameCooldownSeconds } = this.config.cmq;
    try {
      await this.tx(async (c) => {
        if (maxQueuesPerAccount > 0 || deadLetter) await this.lockAccount(c, scope.accountId);
        if (maxQueuesPerAccount > 0) {
          const { rows } = await c.query<{ n: string }>(
            `SELECT count(*) AS n FROM queues WHERE account_id = $1 AND deleted_at IS NULL`,
            [scope.accountId],
          );
          if (Number(rows[0].n) >= maxQueuesPerAccount) throw CmqErrors.queueLimit();
        }
        if (queueNameCooldownSeconds > 0) {
          const recent = await c.query(
            `SELECT 1 FROM queues
              WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3)
                AND deleted_at IS NOT NULL AND deleted_at > now() - make_interval(secs => $4)
              LIMIT 1`,
            [scope.accountId, scope.region, name, queueNameCooldownSeconds],
          );
          if (recent.rowCount) {
            // an existing live queue of the name is the more useful answer
            const live = await c.query(
              `SELECT 1 FROM queues WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL`,
              [scope.accountId, scope.region, name],
            );
            throw live.rowCount ? CmqErrors.queueExists() : CmqErrors.queueNameCooldown();
          }
        }
        const binding: StoredBinding = deadLetter
          ? await this.resolveBinding(c, scope, name, null, attrs.msgRetentionSeconds, deadLetter)
          : { dead_letter_queue: null, dead_letter_policy: null, max_receive_count: null, max_time_to_live: null };
        await c.query(
          `INSERT INTO queues (queue_id, account_id, region, name, ${QUEUE_ATTRIBUTE_NAMES.map((a) => COLUMN[a]).join(', ')},
                               dead_letter_queue, dead_letter_policy, max_receive_count, max_time_to_live)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
          [
            queueId,
            scope.accountId,
            scope.region,
            name,
            ...QUEUE_ATTRIBUTE_NAMES.map((a) => attrs[a]),
            binding.dead_letter_queue,
            binding.dead_letter_policy,
            binding.max_receive_count,
            binding.max_time_to_live,
          ],
        );
        await this.audit(c, by, scope, name, 'queue.create', { queueId, attributes: attrs, deadLetter: deadLetter ?? null });
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw CmqErrors.queueExists();
      throw err;
    }
    // evicts a stale copy of a deleted queue of this name that a missed announcement left behind
    await this.registry.changed(scope, name);
    return queueId;
  }

  async list(scope: TenantScope, searchWord: string | undefined, offset: number, limit: number): Promise<QueuePage> {
    const where = `account_id = $1 AND region = $2 AND deleted_at IS NULL AND name ILIKE $3`;
    return this.page(where, [scope.accountId, scope.region, containing(searchWord)], offset, limit);
  }

  /** ListDeadLetterSourceQueues: the live queues that send their dead messages to `dlqName`. */
  async listDeadLetterSources(
    scope: TenantScope,
    dlqName: string,
    searchWord: string | undefined,
    offset: number,
    limit: number,
  ): Promise<QueuePage> {
    const dlq = await this.registry.load(scope, dlqName);
    const where = `dead_letter_queue = $1 AND deleted_at IS NULL AND name ILIKE $2`;
    return this.page(where, [dlq.id, containing(searchWord)], offset, limit);
  }

  private async page(where: string, args: unknown[], offset: number, limit: number): Promise<QueuePage> {
    const n = args.length;
    const [count, page] = await Promise.all([
      this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM queues WHERE ${where}`, args),
      this.pool.query<{ queue_id: string; name: string }>(
        `SELECT queue_id, name FROM queues WHERE ${where} ORDER BY id LIMIT $${n + 1} OFFSET $${n + 2}`,
        [...args, limit, offset],
      ),
    ]);
    return {
      totalCount: Number(count.rows[0].n),
      queueList: page.rows.map((r) => ({ queueId: r.queue_id, queueName: r.name })),
    };
  }

  /**
   * The queue's counters. Stored and rewindable totals come from the sharded counters (exact for
   * what is committed); in-flight and delayed messages are counted in the index range of
   * messages not yet visible, so the cost follows those, never the backlog. Expired messages the
   * sweep has not removed yet are counted in the range whose visible time is past the retention
   * cutoff (which holds only expired rows) and left out; active is the rest. One call of the
   * function `cmq_queue_counts` (migration 1764900000000).
   */
  async counts(q: Pick<QueueInfo, 'id' | 'msgRetentionSeconds'>): Promise<QueueCounts> {
    const { rows } = await this.pool.query<{
      msgs: string;
      rewind_msgs: string;
      inactive: string;
      delayed: string;
      hidden_expired: string;
      hidden_min_ms: string | null;
      expired: string;
      next_ms: string | null;
    }>({
      // the function (see its migration) keeps one plan: index scans, never a bitmap scan
      name: 'cmq-queue-counts',
      text: 'SELECT * FROM cmq_queue_counts($1, $2)',
      values: [q.id, q.msgRetentionSeconds * 1000],
    });
    const r = rows[0];
    const inactive = Number(r.inactive);
    const delayed = Number(r.delayed);
    const mins = [r.hidden_min_ms, r.next_ms].filter((v): v is string => v !== null).map(Number);
    return {
      activeMsgNum: Math.max(0, Number(r.msgs) - inactive - delayed - Number(r.hidden_expired) - Number(r.expired)),
      inactiveMsgNum: inactive,
      delayMsgNum: delayed,
      minMsgTime: mins.length ? Math.floor(Math.min(...mins) / 1000) : 0,
      rewindMsgNum: Number(r.rewind_msgs),
    };
  }

  /** GetQueueAttributes: every field as an integer, `rewindmsgNum` spelled both ways. */
  async attributes(scope: TenantScope, name: string): Promise<Record<string, unknown>> {
    const q = await this.registry.load(scope, name);
    const counts = await this.counts(q);
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
      qps: q.qpsLimit ?? this.config.cmq.queueQpsLimit,
      ...(q.deadLetter ? { deadLetterPolicy: deadLetterPolicyJson(q.deadLetter) } : {}),
    };
  }

  /** Changes only the attributes given (and the dead-letter binding if given); answers the result. */
  async setAttributes(
    scope: TenantScope,
    name: string,
    given: Partial<QueueAttributes>,
    deadLetter: DeadLetterChange | undefined,
    by: AuditActor,
  ): Promise<QueueAttributes & { queueId: string }> {
    const row = await this.tx(async (c) => {
      if (deadLetter !== undefined) await this.lockAccount(c, scope.accountId);
      const { rows: found } = await c.query<QueueRow>(
        `SELECT ${QUEUE_COLUMNS} FROM queues
          WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL
          FOR UPDATE`,
        [scope.accountId, scope.region, name],
      );
      if (!found[0]) throw CmqErrors.queueNotExist();
      const current = toQueueInfo(found[0]);
      const next = { ...current } as QueueAttributes;
      for (const a of QUEUE_ATTRIBUTE_NAMES) if (given[a] !== undefined) next[a] = given[a]!;
      rewindWithinRetention(next);
      let binding: StoredBinding = {
        dead_letter_queue: current.deadLetter?.queueId ?? null,
        dead_letter_policy: current.deadLetter?.policy ?? null,
        max_receive_count: current.deadLetter?.maxReceiveCount ?? null,
        max_time_to_live: current.deadLetter?.maxTimeToLive ?? null,
      };
      if (deadLetter === null) {
        binding = { dead_letter_queue: null, dead_letter_policy: null, max_receive_count: null, max_time_to_live: null };
      } else if (deadLetter) {
        binding = await this.resolveBinding(c, scope, current.name, current.id, next.msgRetentionSeconds, deadLetter);
      } else if (binding.max_time_to_live !== null && binding.max_time_to_live >= next.msgRetentionSeconds) {
        // a shorter retention must still outlive the bound time-to-live
        throw CmqErrors.deadLetterParams();
      }
      const { rows } = await c.query<QueueRow>(
        `UPDATE queues SET ${QUEUE_ATTRIBUTE_NAMES.map((a, i) => `${COLUMN[a]} = $${i + 2}`).join(', ')},
                dead_letter_queue = $8, dead_letter_policy = $9, max_receive_count = $10, max_time_to_live = $11,
                last_modify_time = now()
          WHERE id = $1
          RETURNING ${QUEUE_COLUMNS}`,
        [
          current.id,
          ...QUEUE_ATTRIBUTE_NAMES.map((a) => next[a]),
          binding.dead_letter_queue,
          binding.dead_letter_policy,
          binding.max_receive_count,
          binding.max_time_to_live,
        ],
      );
      // null: the binding removed (UnbindDeadLetterQueue); SetQueueAttributes gives a policy or none
      await this.audit(c, by, scope, current.name, deadLetter === null ? 'queue.unbind-dead-letter' : 'queue.set', {
        queueId: current.queueId,
        changed: given,
        deadLetter: deadLetter === undefined ? 'unchanged' : deadLetter,
      });
      return rows[0];
    });
    await this.registry.changed(scope, name);
    const q = toQueueInfo(row);
    const out = { queueId: q.queueId } as QueueAttributes & { queueId: string };
    for (const a of QUEUE_ATTRIBUTE_NAMES) out[a] = q[a];
    return out;
  }

  /** UnbindDeadLetterQueue: the queue keeps its dead messages from now on. */
  async unbindDeadLetter(scope: TenantScope, name: string, by: AuditActor): Promise<{ queueId: string }> {
    const r = await this.setAttributes(scope, name, {}, null, by);
    return { queueId: r.queueId };
  }

  /** Per-queue QPS limit (internal API); null restores the deployment's default. */
  async setQpsLimit(scope: TenantScope, name: string, qpsLimit: number | null, by: AuditActor): Promise<QueueInfo> {
    const rows = await this.tx(async (c) => {
      const { rows } = await c.query<QueueRow>(
        `UPDATE queues SET qps_limit = $4, last_modify_time = now()
          WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL
          RETURNING ${QUEUE_COLUMNS}`,
        [scope.accountId, scope.region, name, qpsLimit],
      );
      if (!rows[0]) throw CmqErrors.queueNotExist();
      await this.audit(c, by, scope, rows[0].name, 'queue.qps-limit', { queueId: rows[0].queue_id, qpsLimit });
      return rows;
    });
    await this.registry.changed(scope, name);
    return toQueueInfo(rows[0]);
  }

  /**
   * RewindQueue: messages produced at or after `startSeconds` are delivered again, in production
   * order, deleted ones still inside the rewind window included. Their receipt handles die.
   */
  async rewind(scope: TenantScope, name: string, startSeconds: number, by: AuditActor): Promise<void> {
    const q = await this.registry.load(scope, name);
    if (q.rewindSeconds === 0) throw CmqErrors.rewindDisabled();
    const rows = await this.tx(async (c) => {
      const { rows } = await c.query<{ restored: string; requeued: string; in_window: boolean }>(
        `WITH w AS (
           SELECT $2::bigint * 1000 AS start_ms,
                  $2::bigint BETWEEN extract(epoch FROM now())::bigint - $3::bigint AND extract(epoch FROM now())::bigint AS in_window
         ), restored AS (
           UPDATE messages m
              SET deleted_ms = NULL, visible_ms = m.enqueue_ms, receipt = 0, dequeue_count = 0, first_dequeue_ms = 0
             FROM w
            WHERE w.in_window AND m.queue_id = $1 AND m.deleted_ms IS NOT NULL AND m.enqueue_ms >= w.start_ms
           RETURNING m.msg_id
         ), requeued AS (
           UPDATE messages m
              SET visible_ms = m.enqueue_ms, receipt = 0, dequeue_count = 0, first_dequeue_ms = 0
             FROM w
            WHERE w.in_window AND m.queue_id = $1 AND m.deleted_ms IS NULL AND m.enqueue_ms >= w.start_ms
              AND m.dequeue_count > 0
           RETURNING m.msg_id
         ), delta AS (
           SELECT $1::bigint AS queue_id, 1 AS msgs, -1 AS rewind_msgs FROM restored
         ), cnt AS (${counterUpsert('delta')})
         SELECT (SELECT count(*) FROM restored) AS restored, (SELECT count(*) FROM requeued) AS requeued,
                (SELECT in_window FROM w) AS in_window`,
        [q.id, startSeconds, q.rewindSeconds],
      );
      if (!rows[0].in_window) throw CmqErrors.rewindTime();
      await this.audit(c, by, scope, q.name, 'queue.rewind', {
        queueId: q.queueId,
        startConsumeTime: startSeconds,
        restored: Number(rows[0].restored),
        requeued: Number(rows[0].requeued),
      });
      return rows;
    });
    const woken = Number(rows[0].restored) + Number(rows[0].requeued);
    if (woken > 0) this.longPoll.notify(q.id, woken);
  }

  /** Marks the queue deleted; its messages are purged in the background by the worker. */
  async delete(scope: TenantScope, name: string, by: AuditActor): Promise<void> {
    await this.tx(async (c) => {
      await this.lockAccount(c, scope.accountId);
      const { rows } = await c.query<{ id: string; queue_id: string; name: string; in_use: boolean }>(
        `SELECT id, queue_id, name, EXISTS (SELECT 1 FROM queues s WHERE s.dead_letter_queue = q.id AND s.deleted_at IS NULL) AS in_use
           FROM queues q
          WHERE account_id = $1 AND region = $2 AND lower(name) = lower($3) AND deleted_at IS NULL
          FOR UPDATE`,
        [scope.accountId, scope.region, name],
      );
      if (!rows[0]) throw CmqErrors.queueNotExist();
      if (rows[0].in_use) throw CmqErrors.deadLetterInUse();
      await c.query(`UPDATE queues SET deleted_at = now() WHERE id = $1`, [rows[0].id]);
      await this.audit(c, by, scope, rows[0].name, 'queue.delete', { queueId: rows[0].queue_id });
    });
    await this.registry.changed(scope, name);
  }
}
