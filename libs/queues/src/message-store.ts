import { Inject, Injectable, OnApplicationShutdown, Optional } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool, PgRelaxedPool } from '@app/db';
import { BatchWriter, CommitObserver, CommitOutbox, EntryOf, GroupCommitter, OUTBOX_ONLY } from './group-commit';
import { LongPoll } from './long-poll';
import type { QueueInfo } from './queue.types';

/** Injection token of the outbox whose entries commit with the message writes (usage records). */
export const COMMIT_OUTBOX = Symbol('COMMIT_OUTBOX');

/** Injection token of what hears of every group commit (its size and time: metrics). */
export const COMMIT_OBSERVER = Symbol('COMMIT_OBSERVER');

export interface SendOp {
  queueId: string;
  bodies: Buffer[];
  delaySeconds: number;
}

/** msg ids in input order; null when the queue was deleted before the commit; 'full' at maxMsgHeapNum */
export type SendResult = string[] | null | 'full';

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

/**
 * Receipt handles: `<msgId>-<receipt>`, digits only, well inside the Go SDK's alphabet. A receive
 * sets a receipt of 1 or more; 0 is the receipt of a message never received (or made visible
 * again by a rewind), so a handle with receipt 0 is forged and names nothing.
 */
export function encodeReceiptHandle(msgId: string, receipt: string): string {
  return `${msgId}-${receipt}`;
}

const HANDLE_RE = /^(\d{1,19})-(\d{1,19})$/;
const MAX_BIGINT = 9223372036854775807n;

export function decodeReceiptHandle(handle: string): { msgId: string; receipt: string } | null {
  const m = HANDLE_RE.exec(handle);
  if (!m || BigInt(m[1]) > MAX_BIGINT || BigInt(m[2]) > MAX_BIGINT || BigInt(m[2]) === 0n) return null;
  return { msgId: m[1], receipt: m[2] };
}

/**
 * Adds each queue's deltas in `rows` (a CTE of queue_id, msgs, rewind_msgs) to this backend's
 * counter shard. Used inside the statement that changes the messages, so the counters commit
 * with them; one upsert per statement, as a statement may change a counter row only once.
 */
export function counterUpsert(rows: string): string {
  return `INSERT INTO queue_counters AS k (queue_id, shard, msgs, rewind_msgs)
          SELECT queue_id, pg_backend_pid(), sum(msgs), sum(rewind_msgs) FROM ${rows}
           GROUP BY queue_id HAVING sum(msgs) <> 0 OR sum(rewind_msgs) <> 0
          ON CONFLICT (queue_id, shard) DO UPDATE
            SET msgs = k.msgs + excluded.msgs, rewind_msgs = k.rewind_msgs + excluded.rewind_msgs`;
}

/**
 * Moves the rows of `dead` (a CTE of msg_id and dlq) into their dead-letter queues: same msgId
 * and body, enqueued and visible now, never received there.
 */
export function moveToDeadLetterQueue(dead: string, returning: string): string {
  return `UPDATE messages m
             SET queue_id = ${dead}.dlq, enqueue_ms = cmq_now_ms(), visible_ms = cmq_now_ms(),
                 dequeue_count = 0, first_dequeue_ms = 0, receipt = 0
            FROM ${dead}
           WHERE m.msg_id = ${dead}.msg_id
          RETURNING ${returning}`;
}

/**
 * All sends of a commit in one statement. Messages go in only for queues that are still live at
 * commit time and only while the queue holds fewer than maxMsgHeapNum messages (counted from the
 * committed counters plus the sends ahead of it in this commit); the statement reports, per op,
 * its msg ids or why it was refused, and adds what it stored to the queue counters.
 */
class SendWriter implements BatchWriter<SendOp, SendResult> {
  readonly name = 'send';

  async execute(client: PoolClient, ops: SendOp[]): Promise<SendResult[]> {
    const { rows } = await client.query<SendRow>({ name: 'cmq-send', text: sendStatement(null), values: sendValues(ops) });
    return sendResults(ops, rows);
  }

  /** The sends and the commit's usage row in one statement, which refuses unless every send is stored. */
  async executeWithOutbox(
    client: PoolClient,
    ops: SendOp[],
    outbox: { insertRow: (param: string) => string; payload: string },
  ): Promise<{ results: SendResult[]; token: unknown }> {
    const { rows } = await client.query<SendRow>({
      name: 'cmq-send-with-usage',
      text: sendStatement(outbox.insertRow('$5')),
      values: [...sendValues(ops), outbox.payload],
    });
    return { results: sendResults(ops, rows), token: rows[0]?.outbox_id };
  }

  assumedResult(): SendResult {
    return [];
  }

  woken(op: SendOp, result: SendResult): Array<[string, number]> {
    return op.delaySeconds === 0 && Array.isArray(result) ? [[op.queueId, op.bodies.length]] : [];
  }
}

/** A writer whose committed ops made messages visible at once: which queues, how many. */
interface WakingWriter extends BatchWriter<unknown, unknown> {
  woken?(op: unknown, result: unknown): Iterable<[string, number]>;
}

interface SendRow {
  ord: number;
  msg_id: string | null;
  outbox_id?: string;
}

function sendValues(ops: SendOp[]): unknown[] {
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
  return [queueIds, bodies, delays, ords];
}

function sendResults(ops: SendOp[], rows: SendRow[]): SendResult[] {
  const results: SendResult[] = ops.map(() => null);
  for (const r of rows) {
    const ids = results[r.ord];
    if (r.msg_id === null) results[r.ord] = 'full';
    else if (Array.isArray(ids)) ids.push(r.msg_id);
    else results[r.ord] = [r.msg_id];
  }
  return results;
}

/**
 * The send statement; with `usageRow` (an INSERT of the outbox row), that row goes in too, but
 * only if every op is stored (`cmq_expect` refuses the whole statement otherwise), and each
 * result row carries its id.
 */
function sendStatement(usageRow: string | null): string {
  return `WITH input AS (
         SELECT u.queue_id, u.body, u.delay_ms, u.ord, u.pos
           FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::int[]) WITH ORDINALITY AS u(queue_id, body, delay_ms, ord, pos)
       ), ops AS (
         SELECT ord, queue_id, count(*) AS n FROM input GROUP BY ord, queue_id
       ), stored AS (
         SELECT c.queue_id, sum(c.msgs) AS msgs FROM queue_counters c
          WHERE c.queue_id IN (SELECT DISTINCT queue_id FROM ops) GROUP BY c.queue_id
       ), judged AS (
         SELECT o.ord, q.id IS NOT NULL AS live,
                coalesce(s.msgs, 0) + sum(o.n) OVER (PARTITION BY o.queue_id ORDER BY o.ord) <= q.max_msg_heap_num AS fits
           FROM ops o
           LEFT JOIN queues q ON q.id = o.queue_id AND q.deleted_at IS NULL
           LEFT JOIN stored s ON s.queue_id = o.queue_id
       ), live AS (
         SELECT i.*, nextval('messages_msg_id_seq') AS msg_id
           FROM input i JOIN judged j ON j.ord = i.ord AND j.live AND j.fits
          ORDER BY i.pos
       ), ins AS (
         INSERT INTO messages (msg_id, queue_id, body, enqueue_ms, visible_ms) OVERRIDING SYSTEM VALUE
         SELECT msg_id, queue_id, body, cmq_now_ms(), cmq_now_ms() + delay_ms FROM live
       ), delta AS (
         SELECT queue_id, count(*) AS msgs, 0 AS rewind_msgs FROM live GROUP BY queue_id
       ), cnt AS (
         ${counterUpsert('delta')}
       )${
         usageRow
           ? `, usage_row AS (
         ${usageRow} WHERE cmq_expect((SELECT bool_and(live AND fits) FROM judged)) RETURNING id
       )`
           : ''
       }
       SELECT ord, msg_id${usageRow ? ', (SELECT id FROM usage_row)::text AS outbox_id' : ''} FROM (
         SELECT ord, msg_id::text, pos FROM live
         UNION ALL
         SELECT ord, NULL, 0 FROM judged WHERE live AND NOT fits
       ) r ORDER BY pos`;
}

/**
 * All deletes of a commit in one statement. A handle deletes only its message's latest receipt,
 * and only before the message's visibility timeout ran out. Messages of queues with a rewind
 * window are kept, marked deleted, until the window has passed them; the others go at once.
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
      const { rows } = await client.query<{ msg_id: string; receipt: string }>({
        name: 'cmq-delete',
        text: `WITH u AS (
           SELECT u.queue_id, u.msg_id, u.receipt, q.rewind_seconds > 0 AS keep
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(queue_id, msg_id, receipt)
             JOIN queues q ON q.id = u.queue_id
         ), hard AS (
           DELETE FROM messages m USING u
            WHERE NOT u.keep AND m.msg_id = u.msg_id AND m.queue_id = u.queue_id AND m.receipt = u.receipt
              AND m.deleted_ms IS NULL AND m.visible_ms > cmq_now_ms()
           RETURNING m.msg_id, m.queue_id, m.receipt
         ), soft AS (
           UPDATE messages m SET deleted_ms = cmq_now_ms() FROM u
            WHERE u.keep AND m.msg_id = u.msg_id AND m.queue_id = u.queue_id AND m.receipt = u.receipt
              AND m.deleted_ms IS NULL AND m.visible_ms > cmq_now_ms()
           RETURNING m.msg_id, m.queue_id, m.receipt
         ), delta AS (
           SELECT queue_id, -1 AS msgs, 0 AS rewind_msgs FROM hard
           UNION ALL SELECT queue_id, -1, 1 FROM soft
         ), cnt AS (
           ${counterUpsert('delta')}
         )
         SELECT msg_id, receipt FROM hard UNION ALL SELECT msg_id, receipt FROM soft`,
        values: [queueIds, msgIds, receipts],
      });
      for (const r of rows) deleted.add(`${r.msg_id}-${r.receipt}`);
    }
    return ops.map((op) => op.handles.map((h) => h !== null && deleted.has(`${h.msgId}-${h.receipt}`)));
  }
}

export interface ClaimOutcome {
  received: ReceivedMessage[];
  /** messages moved to dead-letter queues by the claim, by dead-letter queue */
  moved: Map<string, number>;
}

interface ClaimWaiter {
  max: number;
  resolve: (outcome: ClaimOutcome) => void;
  reject: (err: Error) => void;
}

/** Receivers of one queue in this process, waiting for a claim statement. */
interface ClaimLine {
  queue: QueueInfo;
  waiters: ClaimWaiter[];
  running: number;
}

/** Claim statements one process runs at once for one queue; later receivers share the next. */
const CLAIMS_IN_FLIGHT = 2;
/** Rows one combined claim takes at most. */
const MAX_COMBINED_CLAIM = 256;

interface ClaimedRow {
  msg_id: string;
  body: Buffer | null;
  enqueue_ms: string;
  visible_ms: string;
  first_dequeue_ms: string;
  dequeue_count: number;
  receipt: string;
  /** set when the row was moved to this dead-letter queue instead of being delivered */
  moved_to: string | null;
}

/**
 * The rows a claim may take: visible, undeleted, unexpired; oldest visible first. Each with its
 * tuple id, which the claim's update goes to directly (no primary-key lookup per row): the row
 * is locked by this statement, so its tuple cannot change before the update.
 */
const CLAIMABLE = `SELECT ctid AS tid, msg_id, dequeue_count, enqueue_ms FROM messages
          WHERE queue_id = $1 AND deleted_ms IS NULL AND visible_ms <= cmq_now_ms()
            AND enqueue_ms > cmq_now_ms() - $3::bigint
          ORDER BY visible_ms, msg_id
          LIMIT $2
          FOR UPDATE SKIP LOCKED`;

/** Marks the rows of `c` received: a new receipt, the visibility timeout ($4 ms) from now. */
const RECEIVE_ROWS = `UPDATE messages m
            SET visible_ms = cmq_now_ms() + $4::bigint,
                dequeue_count = m.dequeue_count + 1,
                first_dequeue_ms = CASE WHEN m.first_dequeue_ms = 0 THEN cmq_now_ms() ELSE m.first_dequeue_ms END,
                receipt = floor(random() * 9007199254740991)::bigint + 1
           FROM c
          WHERE m.ctid = c.tid AND m.msg_id = c.msg_id`;

const RECEIVED_COLUMNS = 'm.msg_id, m.body, m.enqueue_ms, m.visible_ms, m.first_dequeue_ms, m.dequeue_count, m.receipt';

/**
 * Claim statements ($1 queue, $2 rows, $3 retention ms, $4 visibility timeout ms), named so each
 * connection parses them once.
 */
const CLAIM = {
  name: 'cmq-claim',
  text: `WITH c AS (${CLAIMABLE})
         ${RECEIVE_ROWS}
         RETURNING ${RECEIVED_COLUMNS}, NULL::bigint AS moved_to`,
};

/**
 * The claim of a queue with a dead-letter binding: of the rows it locks, those the binding (read
 * from the queues row, never a cache) declares dead move to the dead-letter queue instead, with
 * the counters of both queues.
 */
const CLAIM_WITH_DEAD_LETTERS = {
  name: 'cmq-claim-dlq',
  text: `WITH q AS (
         SELECT s.dead_letter_policy AS policy, s.max_receive_count AS max_receives,
                s.max_time_to_live::bigint * 1000 AS ttl_ms, d.id AS dlq
           FROM queues s JOIN queues d ON d.id = s.dead_letter_queue AND d.deleted_at IS NULL
          WHERE s.id = $1
       ), c AS (${CLAIMABLE}), dead AS (
         SELECT c.msg_id, q.dlq FROM c, q
          WHERE (q.policy = 0 AND c.dequeue_count >= q.max_receives)
             OR (q.policy = 1 AND c.enqueue_ms <= cmq_now_ms() - q.ttl_ms)
       ), moved AS (
         ${moveToDeadLetterQueue('dead', 'm.msg_id, m.queue_id')}
       ), delta AS (
         SELECT $1::bigint AS queue_id, -1 AS msgs, 0 AS rewind_msgs FROM moved
         UNION ALL SELECT queue_id, 1, 0 FROM moved
       ), cnt AS (
         ${counterUpsert('delta')}
       ), claimed AS (
         ${RECEIVE_ROWS} AND NOT EXISTS (SELECT 1 FROM dead WHERE dead.msg_id = c.msg_id)
         RETURNING ${RECEIVED_COLUMNS}
       )
       SELECT *, NULL::bigint AS moved_to FROM claimed
       UNION ALL
       SELECT msg_id, NULL, 0, 0, 0, 0, 0, queue_id FROM moved`,
};

/**
 * The message store: durable sends and deletes through group commit, receives by claiming
 * visible rows with FOR UPDATE SKIP LOCKED, so concurrent receivers (in any process) never get
 * the same message within its visibility timeout.
 */
@Injectable()
export class MessageStore implements OnApplicationShutdown {
  private readonly sendWriter = new SendWriter();
  private readonly deleteWriter = new DeleteWriter();
  private readonly claimLines = new Map<string, ClaimLine>();
  readonly committer: GroupCommitter;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
    private readonly relaxed: PgRelaxedPool,
    private readonly longPoll: LongPoll,
    @Optional() @Inject(COMMIT_OUTBOX) outbox?: CommitOutbox<unknown>,
    @Optional() @Inject(COMMIT_OBSERVER) observe?: CommitObserver,
  ) {
    this.committer = new GroupCommitter({
      maxBatch: config.cmq.groupCommitMaxBatch,
      concurrency: config.cmq.groupCommitConcurrency,
      connect: () => this.pool.connect(),
      outbox,
      observe,
      afterCommit: (committed) => {
        const visibleNow = new Map<string, number>();
        for (const c of committed) {
          const writer = c.writer as WakingWriter;
          if (!writer.woken) continue;
          for (const [queueId, n] of writer.woken(c.op, c.result)) visibleNow.set(queueId, (visibleNow.get(queueId) ?? 0) + n);
        }
        for (const [queueId, count] of visibleNow) this.longPoll.notify(queueId, count);
      },
    });
  }

  /**
   * Resolves once the messages are committed, with their ids; null if the queue is gone; 'full'
   * at maxMsgHeapNum. `entry`, made from the result, commits with the messages in the outbox.
   */
  send(queue: QueueInfo, bodies: Buffer[], delaySeconds: number, entry?: EntryOf<SendResult>): Promise<SendResult> {
    return this.committer.submit(this.sendWriter, { queueId: queue.id, bodies, delaySeconds }, entry);
  }

  /** Per handle: whether it deleted its message. `entry` commits with the deletes. */
  delete(queue: QueueInfo, handles: string[], entry?: EntryOf<boolean[]>): Promise<boolean[]> {
    return this.committer.submit(this.deleteWriter, { queueId: queue.id, handles: handles.map(decodeReceiptHandle) }, entry);
  }

  /** Commits `op` of another writer (publishes) in the group commit, with `entry` in its outbox. */
  submit<Op, Result>(writer: BatchWriter<Op, Result>, op: Op, entry?: EntryOf<Result>): Promise<Result> {
    return this.committer.submit(writer, op, entry);
  }

  /** Commits an outbox entry alone (in the next group commit, with whatever else it holds). */
  async commitEntry(entry: unknown): Promise<void> {
    await this.committer.submit(OUTBOX_ONLY, null, () => entry);
  }

  /**
   * Claims up to `max` visible, unexpired messages, oldest visible first, in one statement. Of
   * the rows it locks, those its queue's dead-letter policy declares dead (received
   * maxReceiveCount times, or older than maxTimeToLive) move to the dead-letter queue instead,
   * with the counters of both queues; the binding is read from the queues table, not a cache.
   * Claims commit without waiting for the WAL flush: a claim lost in a crash only makes its
   * message visible again.
   */
  async claimNow(queue: QueueInfo, max: number): Promise<ClaimOutcome> {
    // A queue that its cached copy shows without a dead-letter binding is claimed by the lean
    // statement; a binding made in the last moments (before the cache heard of it) only lets a
    // dead message be delivered once more before it moves.
    const statement = queue.deadLetter ? CLAIM_WITH_DEAD_LETTERS : CLAIM;
    const { rows } = await this.relaxed.query<ClaimedRow>({
      ...statement,
      values: [queue.id, max, queue.msgRetentionSeconds * 1000, queue.visibilityTimeout * 1000],
    });
    const moved = new Map<string, number>();
    const claimed: ClaimedRow[] = [];
    for (const r of rows) {
      if (r.moved_to === null) claimed.push(r);
      else moved.set(r.moved_to, (moved.get(r.moved_to) ?? 0) + 1);
    }
    for (const [dlq, n] of moved) this.longPoll.notify(dlq, n);
    claimed.sort((a, b) => (BigInt(a.msg_id) < BigInt(b.msg_id) ? -1 : 1));
    return {
      moved,
      received: claimed.map((r) => ({
        msgId: r.msg_id,
        msgBody: r.body!.toString('utf8'),
        receiptHandle: encodeReceiptHandle(r.msg_id, r.receipt),
        enqueueTime: Math.floor(Number(r.enqueue_ms) / 1000),
        nextVisibleTime: Math.floor(Number(r.visible_ms) / 1000),
        firstDequeueTime: Math.floor(Number(r.first_dequeue_ms) / 1000),
        dequeueCount: r.dequeue_count,
      })),
    };
  }

  /**
   * Claims up to `max` messages for one receiver. Receivers of the same queue that arrive while
   * this process already has {@link CLAIMS_IN_FLIGHT} claim statements running for it are served
   * together by the next one (one index scan and one commit for all of them, up to
   * {@link MAX_COMBINED_CLAIM} rows), each getting its share in delivery order; a lone receiver
   * waits for nobody.
   */
  claim(queue: QueueInfo, max: number): Promise<ClaimOutcome> {
    let line = this.claimLines.get(queue.id);
    if (!line) {
      line = { queue, waiters: [], running: 0 };
      this.claimLines.set(queue.id, line);
    }
    line.queue = queue;
    const l = line;
    return new Promise<ClaimOutcome>((resolve, reject) => {
      l.waiters.push({ max, resolve, reject });
      if (l.running < CLAIMS_IN_FLIGHT) void this.runClaims(l);
    });
  }

  private async runClaims(line: ClaimLine): Promise<void> {
    line.running++;
    try {
      while (line.waiters.length > 0) {
        const batch: ClaimWaiter[] = [];
        let total = 0;
        while (line.waiters.length > 0 && (batch.length === 0 || total + line.waiters[0].max <= MAX_COMBINED_CLAIM)) {
          const w = line.waiters.shift()!;
          batch.push(w);
          total += w.max;
        }
        try {
          const { received, moved } = await this.claimNow(line.queue, total);
          let at = 0;
          for (const w of batch) {
            w.resolve({ received: received.slice(at, at + w.max), moved });
            at += w.max;
          }
        } catch (err) {
          for (const w of batch) w.reject(err as Error);
        }
      }
    } finally {
      line.running--;
      if (line.running === 0 && line.waiters.length === 0) this.claimLines.delete(line.queue.id);
    }
  }

  /** Claims, again at once while messages moved to the dead-letter queue took the places. */
  private async claimSome(queue: QueueInfo, max: number): Promise<ReceivedMessage[]> {
    for (let attempt = 0; ; attempt++) {
      const { received, moved } = await this.claim(queue, max);
      if (received.length > 0 || moved.size === 0 || attempt >= 8) return received;
    }
  }

  /**
   * Receive with long polling: claim at once; if nothing is visible, wait for a send (in this
   * process or another) or the periodic recheck, until `waitSeconds` ran out.
   */
  async receive(queue: QueueInfo, max: number, waitSeconds: number): Promise<ReceivedMessage[]> {
    const first = await this.claimSome(queue, max);
    if (first.length > 0 || waitSeconds <= 0) return first;
    const deadline = Date.now() + waitSeconds * 1000;
    while (Date.now() < deadline) {
      const stillOpen = await this.longPoll.wait(queue.id, deadline);
      const got = await this.claimSome(queue, max);
      if (got.length > 0 || !stillOpen) return got;
    }
    return [];
  }

  async onApplicationShutdown(): Promise<void> {
    await this.committer.close();
  }
}
