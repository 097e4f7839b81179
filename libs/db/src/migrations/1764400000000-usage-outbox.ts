import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The usage outbox: each group commit of the CMQ hot path writes the usage of the requests it
 * answers as one row, in the same transaction. A row lives until the usage applier has applied
 * it (the apply deletes it in its own transaction), so a row's presence means "not yet applied".
 */
export class UsageOutbox1764400000000 implements MigrationInterface {
  name = 'UsageOutbox1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE usage_outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        records json NOT NULL
      )`);
    await q.query(`CREATE INDEX usage_outbox_created ON usage_outbox (created_at)`);
    // a one-statement commit of writes and their usage row refuses (SQLSTATE CM001) when a
    // write did not succeed as the row assumed
    await q.query(`
      CREATE FUNCTION cmq_expect(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        IF ok IS NOT TRUE THEN
          RAISE EXCEPTION 'a write of this commit did not succeed as its usage row assumed' USING ERRCODE = 'CM001';
        END IF;
        RETURN true;
      END $$`);
    // which outbox rows an applied batch held, and when the oldest of them was committed
    await q.query(`ALTER TABLE usage_batches_applied ADD COLUMN outbox_ids bigint[], ADD COLUMN oldest_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_batches_applied DROP COLUMN outbox_ids, DROP COLUMN oldest_at`);
    await q.query(`DROP FUNCTION cmq_expect(boolean)`);
    await q.query(`DROP TABLE usage_outbox`);
  }
}
