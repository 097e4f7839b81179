import { randomBytes } from 'node:crypto';
import { Pool, PoolClient } from 'pg';
import { loadConfig } from '@app/config';
import { ASSUMPTION_FAILED, BatchWriter, CommitOutbox, GroupCommitter, OUTBOX_ONLY } from './group-commit';

/** Group commit against the run's real Postgres, on a table of its own. */
describe('GroupCommitter', () => {
  const table = `gc_${randomBytes(4).toString('hex')}`;
  let pool: Pool;

  class InsertWriter implements BatchWriter<number, number> {
    readonly name = 'insert';
    statements = 0;
    async execute(client: PoolClient, ops: number[]): Promise<number[]> {
      this.statements++;
      const { rows } = await client.query<{ v: number }>(`INSERT INTO ${table} (v) SELECT unnest($1::int[]) RETURNING v`, [ops]);
      return rows.map((r) => r.v * 10);
    }
  }

  beforeAll(async () => {
    pool = new Pool({ connectionString: loadConfig().database.url, max: 4 });
    await pool.query(`CREATE TABLE ${table} (v int NOT NULL CHECK (v >= 0))`);
    await pool.query(`CREATE TABLE ${table}_outbox (id serial PRIMARY KEY, entries text[] NOT NULL)`);
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE ${table}, ${table}_outbox`);
    await pool.end();
  });
  beforeEach(() => pool.query(`TRUNCATE ${table}, ${table}_outbox`));

  const stored = async () => (await pool.query(`SELECT v FROM ${table} ORDER BY v`)).rows.map((r) => r.v);

  it('commits concurrent writes together and answers each after the commit', async () => {
    const writer = new InsertWriter();
    const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect() });
    const values = Array.from({ length: 200 }, (_, i) => i);
    const results = await Promise.all(values.map((v) => gc.submit(writer, v)));
    expect(results).toEqual(values.map((v) => v * 10));
    expect(await stored()).toEqual(values);
    // 200 writes arrived in one turn of the event loop: one commit, one statement
    expect(gc.stats).toEqual({ commits: 1, ops: 200 });
    expect(writer.statements).toBe(1);
  });

  it('keeps batches within maxBatch and concurrency', async () => {
    const writer = new InsertWriter();
    const gc = new GroupCommitter({ maxBatch: 50, concurrency: 2, connect: () => pool.connect() });
    await Promise.all(Array.from({ length: 200 }, (_, i) => gc.submit(writer, i)));
    expect(gc.stats.ops).toBe(200);
    expect(gc.stats.commits).toBe(4);
    expect(await stored()).toHaveLength(200);
  });

  it('a write the server refuses fails alone; its neighbours still commit', async () => {
    const writer = new InsertWriter();
    const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect() });
    const outcomes = await Promise.allSettled([1, 2, -1, 3].map((v) => gc.submit(writer, v)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason.code).toBe('23514');
    expect(await stored()).toEqual([1, 2, 3]);
  });

  it('tells its observer of every commit attempt: its size, time and whether it committed', async () => {
    const writer = new InsertWriter();
    const heard: Array<{ ops: number; seconds: number; committed: boolean }> = [];
    const gc = new GroupCommitter({
      maxBatch: 512,
      concurrency: 1,
      connect: () => pool.connect(),
      observe: { commit: (ops, seconds, committed) => heard.push({ ops, seconds, committed }) },
    });
    await Promise.all([1, 2, 3].map((v) => gc.submit(writer, v)));
    await Promise.allSettled([4, -1].map((v) => gc.submit(writer, v)));
    // one shared commit of 3; a shared commit of 2 refused, then each alone: 4 commits, -1 refused
    expect(heard.map(({ ops, committed }) => ({ ops, committed }))).toEqual([
      { ops: 3, committed: true },
      { ops: 2, committed: false },
      { ops: 1, committed: true },
      { ops: 1, committed: false },
    ]);
    for (const h of heard) expect(h.seconds).toBeGreaterThan(0);
    expect(gc.stats).toEqual({ commits: 2, ops: 4 });
  });

  it('runs different kinds of writes in one transaction, all or nothing', async () => {
    const insert = new InsertWriter();
    const failing: BatchWriter<string, never> = {
      name: 'failing',
      execute: async (client) => {
        await client.query('SELECT 1/0');
        return [];
      },
    };
    const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect() });
    const [a, b] = await Promise.allSettled([gc.submit(insert, 7), gc.submit(failing, 'x')]);
    // the shared transaction rolled back; the retry one by one committed the good write alone
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('rejected');
    expect(await stored()).toEqual([7]);
  });

  it('on a connection that has run one before, BEGIN rides with the first statement: still all or nothing, commit after commit', async () => {
    const one = new Pool({ connectionString: loadConfig().database.url, max: 1 });
    try {
      const insert = new InsertWriter();
      const other = new InsertWriter();
      const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => one.connect() });
      for (let round = 0; round < 5; round++) {
        // two writers: an explicit transaction; the first round prepares BEGIN on the connection
        await Promise.all([gc.submit(insert, round * 10 + 1), gc.submit(other, round * 10 + 2)]);
        const failed = await Promise.allSettled([gc.submit(insert, round * 10 + 3), gc.submit(other, -1)]);
        expect(failed.map((f) => f.status)).toEqual(['fulfilled', 'rejected']);
      }
      expect(await stored()).toEqual([1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43]);
      const { rows } = await one.query(`SELECT 1 AS ok`);
      expect(rows).toEqual([{ ok: 1 }]);
    } finally {
      await one.end();
    }
  });

  it('close() waits for accepted writes and refuses new ones', async () => {
    const writer = new InsertWriter();
    const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect() });
    const pending = Promise.all([1, 2, 3].map((v) => gc.submit(writer, v)));
    await gc.close();
    await expect(pending).resolves.toEqual([10, 20, 30]);
    await expect(gc.submit(writer, 4)).rejects.toThrow('group commit is closed');
    expect(await stored()).toEqual([1, 2, 3]);
  });

  describe('outbox', () => {
    /** Writes each commit's entries as one row; remembers what it heard was committed. */
    class TextOutbox implements CommitOutbox<string> {
      heard: Array<{ id: number; entries: string[] }> = [];
      async write(client: PoolClient, entries: string[]): Promise<number> {
        const { rows } = await client.query<{ id: number }>(`INSERT INTO ${table}_outbox (entries) VALUES ($1) RETURNING id`, [entries]);
        return rows[0].id;
      }
      committed(token: unknown, entries: string[]): void {
        this.heard.push({ id: token as number, entries });
      }
    }
    const outboxRows = async () =>
      (await pool.query(`SELECT id, entries FROM ${table}_outbox ORDER BY id`)).rows as Array<{ id: number; entries: string[] }>;

    it('entries made from each result commit in the same transaction as their writes, one row per commit', async () => {
      const writer = new InsertWriter();
      const outbox = new TextOutbox();
      const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect(), outbox });
      await Promise.all([
        gc.submit(writer, 1, (r) => `wrote ${r}`),
        gc.submit(writer, 2),
        gc.submit(OUTBOX_ONLY, null, () => 'alone'),
      ]);
      expect(await outboxRows()).toEqual([{ id: expect.any(Number), entries: ['wrote 10', 'alone'] }]);
      expect(outbox.heard).toEqual(await outboxRows());
    });

    it('a write that fails takes its entry with it; its neighbours and their entries commit', async () => {
      const writer = new InsertWriter();
      const outbox = new TextOutbox();
      const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect(), outbox });
      const out = await Promise.allSettled([5, -5, 6].map((v) => gc.submit(writer, v, (r) => `wrote ${r}`)));
      expect(out.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(await stored()).toEqual([5, 6]);
      expect((await outboxRows()).flatMap((r) => r.entries).sort()).toEqual(['wrote 50', 'wrote 60']);
      expect(outbox.heard.flatMap((h) => h.entries).sort()).toEqual(['wrote 50', 'wrote 60']);
    });

    it('an outbox that fails rolls the writes back with it', async () => {
      const writer = new InsertWriter();
      const outbox = new TextOutbox();
      outbox.write = async (client) => {
        await client.query('SELECT 1/0');
        return 0;
      };
      const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect(), outbox });
      await expect(gc.submit(writer, 9, () => 'x')).rejects.toMatchObject({ code: '22012' });
      expect(await stored()).toEqual([]);
      expect(outbox.heard).toEqual([]);
    });

    /** Inserts values below 100; a value of 100 or more "does not succeed" (stores nothing, result null). */
    class OneStatementWriter extends InsertWriter {
      fast = 0;
      override async execute(client: PoolClient, ops: number[]): Promise<number[]> {
        this.statements++;
        const { rows } = await client.query<{ v: number }>(`INSERT INTO ${table} (v) SELECT x FROM unnest($1::int[]) x WHERE x < 100 RETURNING v`, [ops]);
        return ops.map((o) => (rows.some((r) => r.v === o) ? o * 10 : (null as unknown as number)));
      }
      async executeWithOutbox(client: PoolClient, ops: number[], outbox: { insertRow: (param: string) => string; payload: string }) {
        this.fast++;
        const { rows } = await client.query<{ v: number; outbox_id: number }>(
          `WITH ins AS (INSERT INTO ${table} (v) SELECT x FROM unnest($1::int[]) x WHERE x < 100 RETURNING v),
                usage_row AS (${outbox.insertRow('$2')} WHERE cmq_expect((SELECT count(*) FROM ins) = cardinality($1::int[])) RETURNING id)
           SELECT v, (SELECT id FROM usage_row) AS outbox_id FROM ins`,
          [ops, outbox.payload],
        );
        return { results: ops.map((o) => o * 10), token: rows[0].outbox_id };
      }
      assumedResult(op: number): number {
        return op * 10;
      }
    }
    class EncodingOutbox extends TextOutbox {
      encode(entries: string[]): string {
        return JSON.stringify(entries);
      }
      insertRow(param: string): string {
        return `INSERT INTO ${table}_outbox (entries) SELECT ARRAY(SELECT json_array_elements_text(${param}::json))`;
      }
    }

    it('one writer and its entries in one statement when every op succeeds; else the usual two, with entries from the real results', async () => {
      const writer = new OneStatementWriter();
      const outbox = new EncodingOutbox();
      const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect(), outbox });
      const entry = (r: number | null) => (r === null ? 'failed' : `wrote ${r}`);
      await Promise.all([gc.submit(writer, 1, entry), gc.submit(writer, 2, entry), gc.submit(OUTBOX_ONLY, null, () => 'alone')]);
      expect(writer.fast).toBe(1);
      expect(writer.statements).toBe(0);
      expect((await outboxRows()).map((r) => r.entries)).toEqual([['wrote 10', 'wrote 20', 'alone']]);
      // 150 does not succeed: the one statement refuses (nothing stored), the usual commit follows
      const out = await Promise.all([gc.submit(writer, 3, entry), gc.submit(writer, 150, entry)]);
      expect(out).toEqual([30, null]);
      expect(writer.fast).toBe(2);
      expect(writer.statements).toBe(1);
      expect(await stored()).toEqual([1, 2, 3]);
      expect((await outboxRows()).map((r) => r.entries)).toEqual([['wrote 10', 'wrote 20', 'alone'], ['wrote 30', 'failed']]);
      expect(outbox.heard.map((h) => h.entries)).toEqual([['wrote 10', 'wrote 20', 'alone'], ['wrote 30', 'failed']]);
      expect(ASSUMPTION_FAILED).toBe('CM001');
    });
  });
});
