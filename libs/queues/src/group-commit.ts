import { Logger } from '@nestjs/common';
import { Query } from 'pg';
import type { PoolClient, QueryResult } from 'pg';

/**
 * One kind of write that can be merged with others of its kind into a single statement.
 * `execute` runs inside the shared transaction and returns one result per op, in order.
 */
export interface BatchWriter<Op, Result> {
  readonly name: string;
  execute(client: PoolClient, ops: Op[]): Promise<Result[]>;
  /**
   * Optional: the ops and the commit's outbox row in ONE statement (one round trip, no
   * BEGIN/COMMIT), written for the case that every op succeeds: the entries were made from
   * {@link assumedResult}, and the statement must refuse with SQLSTATE {@link ASSUMPTION_FAILED}
   * (storing nothing) when an op does not succeed. `insertRow(param)` is the outbox's INSERT of
   * the row whose payload is the statement parameter `param`, for the writer to add its WHERE
   * and `RETURNING id`.
   */
  executeWithOutbox?(
    client: PoolClient,
    ops: Op[],
    outbox: { insertRow: (param: string) => string; payload: string },
  ): Promise<{ results: Result[]; token: unknown }>;
  /** The result of an op that succeeded, to make entries from ahead of the statement. */
  assumedResult?(op: Op): Result;
}

/** SQLSTATE of a one-statement commit whose assumption (every op succeeds) did not hold. */
export const ASSUMPTION_FAILED = 'CM001';

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
  /**
   * Optional: {@link write} and the COMMIT of the open transaction in one round trip (one
   * simple query of two statements: an error in the first leaves the second unrun). Used for
   * commits of more than one statement, so such a commit costs BEGIN, its writes and this.
   */
  writeAndCommit?(client: PoolClient, entries: Entry[]): Promise<unknown>;
  /**
   * Optional, for writers with `executeWithOutbox`: the row's payload for `entries`, and the
   * INSERT of a row whose payload is the statement parameter `param` (without WHERE/RETURNING).
   */
  encode?(entries: Entry[]): string;
  insertRow?(param: string): string;
  committed(token: unknown, entries: Entry[]): void;
}

/** The name of BEGIN as a statement prepared once per connection, to be sent ahead of a query. */
const BEGIN_STATEMENT = 'group-commit-begin';

/** What node-postgres's Query does that its typings leave out. */
interface PgQueryInternals {
  requiresPreparation(): boolean;
  prepare(connection: PgConnection): void;
  handleCommandComplete(msg: unknown, connection: PgConnection): void;
}
interface PgConnection {
  parsedStatements?: Record<string, string>;
  bind(config: { statement: string; portal: string; values: unknown[] }): void;
  execute(config: { portal: string; rows: number }): void;
}
const PgQuery = Query as unknown as new (config: unknown, values: unknown, callback: (err: Error | null, res: QueryResult) => void) => PgQueryInternals;

/**
 * A prepared query with BEGIN in front: the BEGIN statement (parsed on this connection before)
 * is bound and executed in the same write as the query's own messages, ahead of the one Sync,
 * so opening the transaction costs no round trip of its own. Its CommandComplete is not the
 * query's and is passed over.
 */
class BeginThenQuery extends PgQuery {
  private begun = false;
  private beginAnswered = false;

  override prepare(connection: PgConnection): void {
    if (!this.begun) {
      this.begun = true;
      connection.bind({ statement: BEGIN_STATEMENT, portal: '', values: [] });
      connection.execute({ portal: '', rows: 0 });
    }
    super.prepare(connection);
  }

  override handleCommandComplete(msg: unknown, connection: PgConnection): void {
    if (this.begun && !this.beginAnswered) {
      this.beginAnswered = true;
      return;
    }
    super.handleCommandComplete(msg, connection);
  }
}

/**
 * Runs `config` on `client` after BEGIN: in the same round trip when the query is a prepared
 * one (a name or parameters) and this connection has BEGIN prepared; else BEGIN first (which
 * prepares it for the next time), then the query.
 */
async function queryAfterBegin(client: PoolClient, config: unknown, values: unknown): Promise<QueryResult> {
  const connection = (client as unknown as { connection?: PgConnection }).connection;
  if (connection?.parsedStatements?.[BEGIN_STATEMENT] === 'BEGIN') {
    let q!: BeginThenQuery;
    const done = new Promise<QueryResult>((resolve, reject) => {
      q = new BeginThenQuery(config, values, (err, res) => (err ? reject(err) : resolve(res)));
    });
    if (q.requiresPreparation()) {
      void client.query(q as never);
      return done;
    }
  }
  await client.query({ name: BEGIN_STATEMENT, text: 'BEGIN' });
  return client.query(config as never, values as never) as unknown as Promise<QueryResult>;
}

/**
 * `client` whose first query opens the transaction (see {@link queryAfterBegin}); `state.begun`
 * tells whether it has.
 */
function beginningWithFirstQuery(client: PoolClient, state: { begun: boolean }): PoolClient {
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'query' && !state.begun) {
        return (config: unknown, values?: unknown) => {
          state.begun = true;
          return queryAfterBegin(target, config, values);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
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
  /** hears of every commit attempt (metrics): the ops it held, its time in seconds, whether it committed */
  observe?: CommitObserver;
}

/** Hears of every commit attempt of a {@link GroupCommitter}; must be cheap and must not throw. */
export interface CommitObserver {
  commit(ops: number, seconds: number, committed: boolean): void;
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
      const results = await this.timedCommit(batch);
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
          this.settle([p], await this.timedCommit([p]));
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }

  /** {@link commit}, told to the observer (if any) with its size, time and outcome. */
  private async timedCommit(batch: Pending[]): Promise<unknown[]> {
    const observe = this.options.observe;
    if (!observe) return this.commit(batch);
    const start = performance.now();
    let committed = false;
    try {
      const results = await this.commit(batch);
      committed = true;
      return results;
    } finally {
      observe.commit(batch.length, (performance.now() - start) / 1000, committed);
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
   * One transaction: each writer's ops in one statement (BEGIN sent with the first), then the
   * outbox entries in one more (with the COMMIT, when the outbox can); a single statement alone
   * needs no BEGIN.
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
    if (outbox && statements === 2) {
      try {
        const fast = await this.commitInOneStatement(client, batch, byWriter, outbox);
        if (fast) {
          client.release();
          return fast;
        }
      } catch (err) {
        client.release();
        throw err;
      }
    }
    const explicit = statements > 1;
    let broken = false;
    // BEGIN goes out with the first statement of the writers, not on its own
    const tx = { begun: !explicit };
    const writerClient = explicit ? beginningWithFirstQuery(client, tx) : client;
    try {
      for (const [writer, indices] of byWriter) {
        const out = await writer.execute(
          writerClient,
          indices.map((i) => batch[i].op),
        );
        indices.forEach((i, k) => (results[i] = out[k]));
      }
      if (!tx.begun) {
        tx.begun = true;
        await client.query('BEGIN');
      }
      let entries: unknown[] = [];
      let token: unknown;
      let committed = false;
      if (outbox) {
        entries = [];
        batch.forEach((p, i) => {
          const e = p.entry?.(results[i]);
          if (e !== undefined) entries.push(e);
        });
        if (entries.length > 0 && explicit && outbox.writeAndCommit) {
          token = await outbox.writeAndCommit(client, entries);
          committed = true;
        } else if (entries.length > 0) {
          token = await outbox.write(client, entries);
        }
      }
      if (explicit && !committed) await client.query('COMMIT');
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

  /**
   * A commit of one writer's ops (and entries without writes) in one statement, when the writer
   * can: the outbox row is made assuming every op succeeds, and the statement refuses if one
   * does not; then null, and the caller commits the usual way (writes, then the row made from
   * the real results). Null also when the writer or outbox cannot.
   */
  private async commitInOneStatement(
    client: PoolClient,
    batch: Pending[],
    byWriter: Map<BatchWriter<unknown, unknown>, number[]>,
    outbox: CommitOutbox<unknown>,
  ): Promise<unknown[] | null> {
    const writers = [...byWriter.keys()].filter((w) => w !== (OUTBOX_ONLY as BatchWriter<unknown, unknown>));
    const writer = writers[0];
    if (writers.length !== 1 || !writer.executeWithOutbox || !writer.assumedResult || !outbox.encode || !outbox.insertRow) return null;
    const entries: unknown[] = [];
    for (const p of batch) {
      const e = p.entry?.(p.writer === writer ? writer.assumedResult(p.op) : undefined);
      if (e !== undefined) entries.push(e);
    }
    const indices = byWriter.get(writer)!;
    let out: { results: unknown[]; token: unknown };
    try {
      out = await writer.executeWithOutbox(
        client,
        indices.map((i) => batch[i].op),
        { insertRow: (param) => outbox.insertRow!(param), payload: outbox.encode(entries) },
      );
    } catch (err) {
      if ((err as { code?: unknown }).code === ASSUMPTION_FAILED) return null;
      throw err;
    }
    const results = new Array<unknown>(batch.length);
    indices.forEach((i, k) => (results[i] = out.results[k]));
    try {
      outbox.committed(out.token, entries);
    } catch (err) {
      this.logger.error(`outbox notification failed: ${(err as Error).message}`);
    }
    return results;
  }
}
