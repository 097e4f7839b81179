import { Pool } from 'pg';
import { loadConfigWith } from '@app/config';
import { PgPool, runMigrations } from '@app/db';
import { SlaSignals } from '@app/sla';
import { scratchDatabase } from '@app/testing';

/**
 * A region-minute's state from its probes (sla.md §2): down when at least half of them failed;
 * a probe refused with a 4xxx is the prober's own fault (sla.md §1: client errors are not failures
 * of the service), no result, so a minute of only such probes is unknown, not down.
 */
describe('SLA signals: region minutes from probes', () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;

  beforeAll(async () => {
    db = await scratchDatabase();
    await runMigrations(loadConfigWith({ DATABASE_URL: db.url }));
    pool = new Pool({ connectionString: db.url, max: 2 });
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('counts service failures, not the prober’s own 4xxx refusals', async () => {
    const base = 29_000_000; // a minute number (2025-02)
    // minute: [ok probes, failed with no reply, failed with a 6000, refused with a 4xxx]
    const minutes: Array<[number, number, number, number]> = [
      [4, 0, 0, 0], // up
      [2, 1, 1, 0], // half failed: down
      [0, 0, 0, 4], // only the prober's own refusals: unknown
      [3, 0, 0, 3], // three ok, the refusals no result: up
      [1, 1, 0, 2], // one of two results failed: down
    ];
    for (const [i, [ok, none, server, refused]] of minutes.entries()) {
      const rows: Array<[boolean, number | null]> = [
        ...Array.from({ length: ok }, () => [true, 0] as [boolean, number]),
        ...Array.from({ length: none }, () => [false, null] as [boolean, null]),
        ...Array.from({ length: server }, () => [false, 6000] as [boolean, number]),
        ...Array.from({ length: refused }, () => [false, 4100] as [boolean, number]),
      ];
      for (const [k, [isOk, code]] of rows.entries()) {
        const at = new Date((base + i) * 60_000 + k * 1000);
        await pool.query(
          `INSERT INTO sla_probes (region, prober, started_at, received_at, minute, ok, failed_step, code, latency_ms)
           VALUES ('gz', 'spec', $1, $1, $2, $3, $4, $5, 10)`,
          [at, new Date((base + i) * 60_000), isOk, isOk ? null : 'send', code],
        );
      }
    }
    const signals = new SlaSignals(pool as PgPool);
    const policy = await signals.policyVersion(1);
    const states = (await signals.regionStates(['gz'], base, base + minutes.length, policy)).get('gz')!;
    expect(states.down).toEqual([
      { start: base + 1, end: base + 2 },
      { start: base + 4, end: base + 5 },
    ]);
    expect(states.unknown).toEqual([{ start: base + 2, end: base + 3 }]);
  });
});
