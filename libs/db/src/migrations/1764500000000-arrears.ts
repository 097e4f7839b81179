import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The arrears ladder (billing.md §5): the account's standing on its balance row, kept in the
 * same transaction as the postings that change it; the notifications of every step (stored,
 * then delivered as signed webhooks), the webhook of each account, the spend marks the run-out
 * prediction reads, and an audit log for releases.
 */
export class Arrears1764500000000 implements MigrationInterface {
  name = 'Arrears1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE balances
        ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'overdue', 'suspended', 'released')),
        ADD COLUMN overdue_since timestamptz,
        ADD COLUMN suspended_at timestamptz,
        ADD COLUMN release_notice_at timestamptz,
        ADD COLUMN released_at timestamptz,
        ADD COLUMN alert_threshold_nano bigint CHECK (alert_threshold_nano > 0),
        ADD COLUMN low_alert_armed boolean NOT NULL DEFAULT true,
        ADD COLUMN runout_alert_armed boolean NOT NULL DEFAULT true,
        ADD COLUMN spent_nano bigint NOT NULL DEFAULT 0,
        ADD CONSTRAINT balances_overdue_since CHECK (status = 'active' OR overdue_since IS NOT NULL),
        ADD CONSTRAINT balances_suspended_at CHECK (status NOT IN ('suspended', 'released') OR suspended_at IS NOT NULL)`);
    // the ladder's work list: only accounts that are not active
    await q.query(`CREATE INDEX balances_not_active ON balances (status) WHERE status <> 'active'`);
    // cumulative usage charges so far, and the standing of balances already below zero
    await q.query(`
      UPDATE balances b SET spent_nano = s.spent
        FROM (SELECT account_id, -sum(cash_delta_nano + voucher_delta_nano) AS spent
                FROM ledger_entries WHERE kind = 'usage_charge' GROUP BY account_id) s
       WHERE s.account_id = b.account_id`);
    await q.query(`UPDATE balances SET status = 'overdue', overdue_since = now() WHERE cash_nano < 0`);
    await q.query(`UPDATE accounts a SET status = b.status FROM balances b WHERE b.account_id = a.id AND a.status <> b.status`);

    // snapshots of balances.spent_nano, at most one per account and bucket (a 24th of the run-out window)
    await q.query(`
      CREATE TABLE spend_marks (
        account_id uuid NOT NULL REFERENCES accounts (id),
        bucket bigint NOT NULL,
        at timestamptz NOT NULL,
        spent_nano bigint NOT NULL,
        PRIMARY KEY (account_id, bucket)
      )`);

    await q.query(`
      CREATE TABLE notifications (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        kind text NOT NULL CHECK (kind IN ('low_balance', 'runout_predicted', 'overdue', 'suspended', 'restored', 'release_notice', 'released')),
        payload jsonb NOT NULL,
        idempotency_key text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivery text NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'delivered', 'failed', 'no_webhook')),
        delivered_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text
      )`);
    await q.query(`CREATE INDEX notifications_account ON notifications (account_id, id)`);
    await q.query(`CREATE INDEX notifications_pending ON notifications (created_at) WHERE delivery = 'pending'`);

    // the secret is sealed like SecretKeys (AES-256-GCM under MASTER_KEY, bound to the account)
    await q.query(`
      CREATE TABLE account_webhooks (
        account_id uuid PRIMARY KEY REFERENCES accounts (id),
        url text NOT NULL,
        secret_enc bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);

    // what was done to an account's resources without a request of its own (e.g. a release)
    await q.query(`
      CREATE TABLE audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES accounts (id),
        action text NOT NULL,
        actor text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_log_account ON audit_log (account_id, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_log`);
    await q.query(`DROP TABLE account_webhooks`);
    await q.query(`DROP TABLE notifications`);
    await q.query(`DROP TABLE spend_marks`);
    await q.query(`DROP INDEX balances_not_active`);
    await q.query(`
      ALTER TABLE balances
        DROP CONSTRAINT balances_suspended_at,
        DROP CONSTRAINT balances_overdue_since,
        DROP COLUMN spent_nano,
        DROP COLUMN runout_alert_armed,
        DROP COLUMN low_alert_armed,
        DROP COLUMN alert_threshold_nano,
        DROP COLUMN released_at,
        DROP COLUMN release_notice_at,
        DROP COLUMN suspended_at,
        DROP COLUMN overdue_since,
        DROP COLUMN status`);
  }
}
