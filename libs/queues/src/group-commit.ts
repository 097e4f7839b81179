import { Logger } from '@nestjs/common';
import type { PoolClient } from 'pg';

/**
 * One kind of write that can be merged with others of its kind into a single statement.
 * `execute` runs inside the shared transaction and returns one result per op, in order.
 */
export interface BatchWriter<Op, Result> {
  readonly name: string;
  execute(client: PoolClient, ops: Op[]): Promise<Result[]>;
}

/** A Postgres error with a SQLSTATE (not a connection failure): the transaction did not commit. */
function isRefusedStatement(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && !code.startsWith('57');
}

/**
 * Rides along with the writes of each commit: `write` runs inside the commit's transaction,
 * after the writers, with the entries of the ops that asked for one (each made from its op's
 * result, so it can tell what the write did); `committed` hears of them once the commit is
 * durable. An op's entry commits exactly when its write does.
 */
export interface CommitOutbox<Entry> {
  write(client: PoolClient, entries: Entry[]): Promise<unknown>;
  committed(token: unknown, entries: Entry[]): void;
}

/** An entry made from an op's result; undefined for none. */
export type EntryOf<Result> = (result: Result) => unknown;

/** A writer with no statement of its own: its ops commit only their outbox entries. */
export const OUTBOX_ONLY: BatchWriter<null, void> = {
  name: 'outbox-only',
  execute: async (_client, ops) => ops.map(() => undefined),
};

interface Pending {
  writer: BatchWriter<unknown, unknown>;
  op: unknown;
  entry?: EntryOf<unknown>;
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  maxBatch: number;
  concurrency: number;
  connect: () => Promise<PoolClient>;
  /** entries written in the same transaction as the ops that carry them */
  outbox?: CommitOutbox<unknown>;
  /** runs after each successful commit with the ops it committed (e.g. to wake long polls) */
  afterCommit?: (committed: Array<{ writer: BatchWriter<unknown, unknown>; op: unknown; result: unknown }>) => void;
}

/**
 * Group commit: the writes of concurrent requests are collected and committed together, and each
 * request is answered only after the commit that holds its write. Batches form naturally: ops
 * that arrive while `concurrency` commits are in flight wait for the next one, so a lone request
 * pays no delay and a busy server commits hundreds of writes per fsync.
 *
 * If a shared commit fails, its ops are retried one commit each, so one bad write cannot fail
 * its neighbours; an op that fails alone is rejected, and nothing of it was committed.
 */
export class GroupCommitter {
  private readonly logger = new Logger(GroupCommitter.name);
  private queue: Pending[] = [];
  private running = 0;
  private scheduled = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** commits and ops so far, for metrics and benchmarks */
  readonly stats = { commits: 0, ops: 0 };

  constructor(private readonly options: GroupCommitOptions) {}

  /** `entry` (made from the op's result) goes into the outbox of the commit that holds the op. */
  submit<Op, Result>(writer: BatchWriter<Op, Result>, op: Op, entry?: EntryOf<Result>): Promise<Result> {
    if (this.closed) return Promise.reject(new Error('group commit is closed'));
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({
        writer: writer as BatchWriter<unknown, unknown>,
        op,
        entry: entry as EntryOf<unknown> | undefined,
        resolve: resolve as (r: unknown) => void,
        reject,
      });
      this.schedule();
    });
  }

  /** Stops taking ops and waits until every accepted one is committed or failed. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.queue.length === 0 && this.running === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.options.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    // let every request parsed in this turn of the event loop join the batch
    setImmediate(() => {
      this.scheduled = false;
      while (this.running < this.options.concurrency && this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch);
        this.running++;
        void this.flush(batch).finally(() => {
          this.running--;
          if (this.queue.length > 0) this.schedule();
          else if (this.running === 0) this.idleWaiters.splice(0).forEach((w) => w());
        });
      }
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    try {
      const results = await this.commit(batch);
      this.settle(batch, results);
    } catch (err) {
      // Only a statement the server refused is known to be rolled back; after a lost connection
      // the commit may have happened, and retrying could write twice.
      if (batch.length === 1 || !isRefusedStatement(err)) {
        batch.forEach((p) => p.reject(err));
        return;
      }
      this.logger.warn(`shared commit of ${batch.length} writes failed (${(err as Error).message}); retrying one by one`);
      for (const p of batch) {
        try {
          this.settle([p], await this.commit([p]));
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }

  private settle(batch: Pending[], results: unknown[]): void {
    this.stats.commits++;
    this.stats.ops += batch.length;
    if (this.options.afterCommit) {
      try {
        this.options.afterCommit(batch.map((p, i) => ({ writer: p.writer, op: p.op, result: results[i] })));
      } catch (err) {
        this.logger.error(`afterCommit failed: ${(err as Error).message}`);
      }
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  /**
   * One transaction: each writer's ops in one statement, then the outbox entries in one more;
   * a single statement alone needs no BEGIN.
   */
  private async commit(batch: Pending[]): Promise<unknown[]> {
    const byWriter = new Map<BatchWriter<unknown, unknown>, number[]>();
    let withEntry = 0;
    batch.forEach((p, i) => {
      if (p.entry) withEntry++;
      const list = byWriter.get(p.writer);
      if (list) list.push(i);
      else byWriter.set(p.writer, [i]);
    });
    const outbox = withEntry > 0 ? this.options.outbox : undefined;
    const statements = byWriter.size - (byWriter.has(OUTBOX_ONLY as BatchWriter<unknown, unknown>) ? 1 : 0) + (outbox ? 1 : 0);
    const results = new Array<unknown>(batch.length);
    const client = await this.options.connect();
    const explicit = statements > 1;
    let broken = false;
    try {
      if (explicit) await client.query('BEGIN');
      for (const [writer, indices] of byWriter) {
        const out = await writer.execute(
          client,
          indices.map((i) => batch[i].op),
        );
        indices.forEach((i, k) => (results[i] = out[k]));
      }
      let entries: unknown[] = [];
      let token: unknown;
      if (outbox) {
        entries = [];
        batch.forEach((p, i) => {
          const e = p.entry?.(results[i]);
          if (e !== undefined) entries.push(e);
        });
        if (entries.length > 0) token = await outbox.write(client, entries);
      }
      if (explicit) await client.query('COMMIT');
      if (outbox && entries.length > 0) {
        try {
          outbox.committed(token, entries);
        } catch (err) {
          this.logger.error(`outbox notification failed: ${(err as Error).message}`);
        }
      }
      return results;
    } catch (err) {
      if (explicit) await client.query('ROLLBACK').catch(() => (broken = true));
      throw err;
    } finally {
      client.release(broken);
    }
  }
}
