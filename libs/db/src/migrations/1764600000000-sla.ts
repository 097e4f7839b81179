import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SLA accounting (sla.md): versioned policies, probe results, maintenance windows, operators'
 * attributions, the audit of both, month closes and the per-account results with their revisions.
 */
export class Sla1764600000000 implements MigrationInterface {
  name = 'Sla1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE sla_policies (
        version integer PRIMARY KEY,
        effective_from date NOT NULL UNIQUE CHECK (extract(day FROM effective_from) = 1),
        time_zone text NOT NULL,
        target_ppm integer NOT NULL CHECK (target_ppm BETWEEN 0 AND 1000000),
        min_outage_minutes integer NOT NULL CHECK (min_outage_minutes >= 1),
        notice_period_seconds integer NOT NULL CHECK (notice_period_seconds >= 0),
        probe_down_pct integer NOT NULL CHECK (probe_down_pct BETWEEN 1 AND 100),
        error_ratio_pct integer NOT NULL CHECK (error_ratio_pct BETWEEN 1 AND 100),
        error_min_requests integer NOT NULL CHECK (error_min_requests >= 1),
        coverage_alert_ppm integer NOT NULL CHECK (coverage_alert_ppm BETWEEN 0 AND 1000000),
        coverage_window_minutes integer NOT NULL CHECK (coverage_window_minutes >= 1),
        credit_bands jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      INSERT INTO sla_policies (version, effective_from, time_zone, target_ppm, min_outage_minutes, notice_period_seconds,
                                probe_down_pct, error_ratio_pct, error_min_requests, coverage_alert_ppm,
                                coverage_window_minutes, credit_bands)
      VALUES (1, '2000-01-01', 'Asia/Shanghai', 999500, 5, 86400, 50, 5, 20, 990000, 1440,
              '[{"belowPpm": 999500, "creditPct": 10}, {"belowPpm": 990000, "creditPct": 25}, {"belowPpm": 950000, "creditPct": 100}]')`);

    // one canary round trip per row; `minute` is the ingest clock's minute, never the prober's
    await q.query(`
      CREATE TABLE sla_probes (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        region text NOT NULL,
        prober text NOT NULL,
        started_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL,
        minute timestamptz NOT NULL,
        ok boolean NOT NULL,
        failed_step text CHECK (failed_step IN ('send', 'receive', 'delete')),
        code integer,
        message text,
        latency_ms integer NOT NULL,
        lost boolean NOT NULL DEFAULT false
      )`);
    await q.query(`CREATE INDEX sla_probes_region_minute ON sla_probes (region, minute)`);

    await q.query(`
      CREATE TABLE sla_maintenance (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        region text,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
        announced_at timestamptz NOT NULL,
        reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
        created_by text NOT NULL,
        cancelled_at timestamptz,
        cancelled_by text
      )`);
    await q.query(`CREATE INDEX sla_maintenance_time ON sla_maintenance (starts_at)`);

    // an operator's attribution of outage time to the user, a third party or force majeure
    await q.query(`
      CREATE TABLE sla_attributions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        region text,
        account_id uuid REFERENCES accounts (id),
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
        cause text NOT NULL CHECK (cause IN ('user', 'third_party', 'force_majeure')),
        reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        withdrawn_at timestamptz,
        withdrawn_by text
      )`);
    await q.query(`CREATE INDEX sla_attributions_time ON sla_attributions (starts_at)`);

    await q.query(`
      CREATE TABLE sla_audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        actor text NOT NULL,
        action text NOT NULL,
        subject text NOT NULL,
        reason text,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);

    // a closed month is frozen: its results change only by new revisions
    await q.query(`
      CREATE TABLE sla_month_closes (
        month date PRIMARY KEY CHECK (extract(day FROM month) = 1),
        policy_version integer NOT NULL REFERENCES sla_policies (version),
        revision integer NOT NULL DEFAULT 1,
        accounts integer NOT NULL,
        closed_at timestamptz NOT NULL DEFAULT now(),
        revised_at timestamptz
      )`);
    await q.query(`
      CREATE TABLE sla_results (
        account_id uuid NOT NULL REFERENCES accounts (id),
        month date NOT NULL,
        revision integer NOT NULL,
        policy_version integer NOT NULL REFERENCES sla_policies (version),
        total_minutes integer NOT NULL,
        downtime_minutes integer NOT NULL,
        unknown_minutes integer NOT NULL,
        availability_ppm integer NOT NULL,
        availability text NOT NULL,
        meets_target boolean NOT NULL,
        coverage_ppm integer NOT NULL,
        worst_window_coverage_ppm integer NOT NULL,
        coverage_alert boolean NOT NULL,
        service_period boolean NOT NULL,
        credit_pct integer NOT NULL,
        fee_base_nano bigint NOT NULL,
        credit_nano bigint NOT NULL,
        credit_delta_nano bigint NOT NULL,
        outages jsonb NOT NULL,
        maintenance jsonb NOT NULL,
        reason text,
        computed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, month, revision)
      )`);
    await q.query(`CREATE INDEX sla_results_month ON sla_results (month, account_id)`);

    // SLA credits granted or revised, and early warnings of a month being lost
    await q.query(`
      ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check,
        ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('low_balance', 'runout_predicted', 'overdue', 'suspended',
          'restored', 'release_notice', 'released', 'sla_credit', 'sla_burn_rate'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM notifications WHERE kind IN ('sla_credit', 'sla_burn_rate')`);
    await q.query(`
      ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check,
        ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('low_balance', 'runout_predicted', 'overdue', 'suspended',
          'restored', 'release_notice', 'released'))`);
    await q.query(`DROP TABLE sla_results`);
    await q.query(`DROP TABLE sla_month_closes`);
    await q.query(`DROP TABLE sla_audit`);
    await q.query(`DROP TABLE sla_attributions`);
    await q.query(`DROP TABLE sla_maintenance`);
    await q.query(`DROP TABLE sla_probes`);
    await q.query(`DROP TABLE sla_policies`);
  }
}
