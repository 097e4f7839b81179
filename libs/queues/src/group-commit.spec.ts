import { randomBytes } from 'node:crypto';
import { Pool, PoolClient } from 'pg';
import { loadConfig } from '@app/config';
import { BatchWriter, GroupCommitter } from './group-commit';

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
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE ${table}`);
    await pool.end();
  });
  beforeEach(() => pool.query(`TRUNCATE ${table}`));

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

  it('close() waits for accepted writes and refuses new ones', async () => {
    const writer = new InsertWriter();
    const gc = new GroupCommitter({ maxBatch: 512, concurrency: 1, connect: () => pool.connect() });
    const pending = Promise.all([1, 2, 3].map((v) => gc.submit(writer, v)));
    await gc.close();
    await expect(pending).resolves.toEqual([10, 20, 30]);
    await expect(gc.submit(writer, 4)).rejects.toThrow('group commit is closed');
    expect(await stored()).toEqual([1, 2, 3]);
  });
});
