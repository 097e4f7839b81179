import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { BatchWriter, GroupCommitter } from './group-commit';
import { LongPoll } from './long-poll';
import type { QueueInfo } from './queue.types';

export interface SendOp {
  queueId: string;
  bodies: Buffer[];
  delaySeconds: number;
}

/** msg ids in input order, or null when the queue was deleted before the commit */
export type SendResult = string[] | null;

export interface DeleteOp {
  queueId: string;
  handles: Array<{ msgId: string; receipt: string } | null>;
}

export interface ReceivedMessage {
  msgId: string;
  msgBody: string;
  receiptHandle: string;
  enqueueTime: number;
  nextVisibleTime: number;
  firstDequeueTime: number;
  dequeueCount: number;
}

/** Receipt handles: `<msgId>-<receipt>`, digits only, well inside the Go SDK's alphabet. */
export function encodeReceiptHandle(msgId: string, receipt: string): string {
  return `${msgId}-${receipt}`;
}

const HANDLE_RE = /^(\d{1,19})-(\d{1,19})$/;
const MAX_BIGINT = 9223372036854775807n;

export function decodeReceiptHandle(handle: string): { msgId: string; receipt: string } | null {
  const m = HANDLE_RE.exec(handle);
  if (!m || BigInt(m[1]) > MAX_BIGINT || BigInt(m[2]) > MAX_BIGINT) return null;
  return { msgId: m[1], receipt: m[2] };
}

/**
 * All sends of a commit in one INSERT. Messages go in only for queues that are still live at
 * commit time; the statement reports which ops found their queue.
 */
class SendWriter implements BatchWriter<SendOp, SendResult> {
  readonly name = 'send';

  async execute(client: PoolClient, ops: SendOp[]): Promise<SendResult[]> {
    const queueIds: string[] = [];
    const bodies: Buffer[] = [];
    const delays: number[] = [];
    const ords: number[] = [];
    ops.forEach((op, i) => {
      for (const body of op.bodies) {
        queueIds.push(op.queueId);
        bodies.push(body);
        delays.push(op.delaySeconds * 1000);
        ords.push(i);
      }
    });
    const { rows } = await client.query<{ ord: number; msg_id: string }>(
      `WITH input AS (
         SELECT u.queue_id, u.body, u.delay_ms, u.ord, u.pos
           FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::int[]) WITH ORDINALITY AS u(queue_id, body, delay_ms, ord, pos)
       ), live AS (
         SELECT i.*, nextval('messages_msg_id_seq') AS msg_id
           FROM input i JOIN queues q ON q.id = i.queue_id AND q.deleted_at IS NULL
          ORDER BY i.pos
       ), ins AS (
         INSERT INTO messages (msg_id, queue_id, body, enqueue_ms, visible_ms) OVERRIDING SYSTEM VALUE
         SELECT msg_id, queue_id, body, cmq_now_ms(), cmq_now_ms() + delay_ms FROM live
       )
       SELECT ord, msg_id FROM live ORDER BY pos`,
      [queueIds, bodies, delays, ords],
    );
    const results: SendResult[] = ops.map(() => null);
    for (const r of rows) (results[r.ord] ??= []).push(r.msg_id);
    return results;
  }
}

/**
 * All deletes of a commit in one DELETE. A handle deletes only its message's latest receipt,
 * and only before the message's visibility timeout ran out.
 */
class DeleteWriter implements BatchWriter<DeleteOp, boolean[]> {
  readonly name = 'delete';

  async execute(client: PoolClient, ops: DeleteOp[]): Promise<boolean[][]> {
    const queueIds: string[] = [];
    const msgIds: string[] = [];
    const receipts: string[] = [];
    for (const op of ops) {
      for (const h of op.handles) {
        if (!h) continue;
        queueIds.push(op.queueId);
        msgIds.push(h.msgId);
        receipts.push(h.receipt);
      }
    }
    const deleted = new Set<string>();
    if (msgIds.length > 0) {
      const { rows } = await client.query<{ msg_id: string; receipt: string }>(
        `DELETE FROM messages m
          USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(queue_id, msg_id, receipt)
          WHERE m.msg_id = u.msg_id AND m.queue_id = u.queue_id AND m.receipt = u.receipt
            AND m.visible_ms > cmq_now_ms()
          RETURNING m.msg_id, m.receipt`,
        [queueIds, msgIds, receipts],
      );
      for (const r of rows) deleted.add(`${r.msg_id}-${r.receipt}`);
    }
    return ops.map((op) => op.handles.map((h) => h !== null && deleted.has(`${h.msgId}-${h.receipt}`)));
  }
}

interface ClaimedRow {
  msg_id: string;
  body: Buffer;
  enqueue_ms: string;
  visible_ms: string;
  first_dequeue_ms: string;
  dequeue_count: number;
  receipt: string;
}

/**
 * The message store: durable sends and deletes through group commit, receives by claiming
 * visible rows with FOR UPDATE SKIP LOCKED, so concurrent receivers (in any process) never get
 * the same message within its visibility timeout.
 */
@Injectable()
export class MessageStore implements OnApplicationShutdown {
  private readonly sendWriter = new SendWriter();
  private readonly deleteWriter = new DeleteWriter();
  readonly committer: GroupCommitter;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
    private readonly longPoll: LongPoll,
  ) {
    this.committer = new GroupCommitter({
      maxBatch: config.cmq.groupCommitMaxBatch,
      concurrency: config.cmq.groupCommitConcurrency,
      connect: () => this.pool.connect(),
      afterCommit: (committed) => {
        const visibleNow = new Map<string, number>();
        for (const c of committed) {
          if (c.writer !== this.sendWriter) continue;
          const op = c.op as SendOp;
          if (op.delaySeconds === 0 && c.result) {
            visibleNow.set(op.queueId, (visibleNow.get(op.queueId) ?? 0) + op.bodies.length);
          }
        }
        for (const [queueId, count] of visibleNow) this.longPoll.notify(queueId, count);
      },
    });
  }

  /** Resolves once the messages are committed, with their ids; null if the queue is gone. */
  send(queue: QueueInfo, bodies: Buffer[], delaySeconds: number): Promise<SendResult> {
    return this.committer.submit(this.sendWriter, { queueId: queue.id, bodies, delaySeconds });
  }

  /** Per handle: whether it deleted its message. */
  delete(queue: QueueInfo, handles: string[]): Promise<boolean[]> {
    return this.committer.submit(this.deleteWriter, { queueId: queue.id, handles: handles.map(decodeReceiptHandle) });
  }

  /** Claims up to `max` visible, unexpired messages, oldest visible first. */
  async claim(queue: QueueInfo, max: number): Promise<ReceivedMessage[]> {
    const { rows } = await this.pool.query<ClaimedRow>(
      `WITH c AS (
         SELECT msg_id FROM messages
          WHERE queue_id = $1 AND visible_ms <= cmq_now_ms() AND enqueue_ms > cmq_now_ms() - $3::bigint
          ORDER BY visible_ms, msg_id
          LIMIT $2
          FOR UPDATE SKIP LOCKED
       )
       UPDATE messages m
          SET visible_ms = cmq_now_ms() + $4::bigint,
              dequeue_count = m.dequeue_count + 1,
              first_dequeue_ms = CASE WHEN m.first_dequeue_ms = 0 THEN cmq_now_ms() ELSE m.first_dequeue_ms END,
              receipt = floor(random() * 9007199254740991)::bigint + 1
         FROM c
        WHERE m.msg_id = c.msg_id
       RETURNING m.msg_id, m.body, m.enqueue_ms, m.visible_ms, m.first_dequeue_ms, m.dequeue_count, m.receipt`,
      [queue.id, max, queue.msgRetentionSeconds * 1000, queue.visibilityTimeout * 1000],
    );
    rows.sort((a, b) => (BigInt(a.msg_id) < BigInt(b.msg_id) ? -1 : 1));
    return rows.map((r) => ({
      msgId: r.msg_id,
      msgBody: r.body.toString('utf8'),
      receiptHandle: encodeReceiptHandle(r.msg_id, r.receipt),
      enqueueTime: Math.floor(Number(r.enqueue_ms) / 1000),
      nextVisibleTime: Math.floor(Number(r.visible_ms) / 1000),
      firstDequeueTime: Math.floor(Number(r.first_dequeue_ms) / 1000),
      dequeueCount: r.dequeue_count,
    }));
  }

  /**
   * Receive with long polling: claim at once; if nothing is visible, wait for a send (in this
   * process or another) or the periodic recheck, until `waitSeconds` ran out.
   */
  async receive(queue: QueueInfo, max: number, waitSeconds: number): Promise<ReceivedMessage[]> {
    const first = await this.claim(queue, max);
    if (first.length > 0 || waitSeconds <= 0) return first;
    const deadline = Date.now() + waitSeconds * 1000;
    while (Date.now() < deadline) {
      const stillOpen = await this.longPoll.wait(queue.id, deadline);
      const got = await this.claim(queue, max);
      if (got.length > 0 || !stillOpen) return got;
    }
    return [];
  }

  async onApplicationShutdown(): Promise<void> {
    await this.committer.close();
  }
}
