import { Inject, Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { appendAudit } from '@app/audit';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import { SLA_CLOCK, SlaClock } from './clock';
import type { AttributedCause, Attribution, MaintenanceWindow } from './evaluate';
import { monthOf } from './month';

/**
 * The operators' side of SLA accounting (sla.md §3): announced maintenance windows and
 * attributions of outage time to the user, a third party or force majeure. Every write commits
 * with its row of `sla_audit` in one transaction. Times come from the SLA clock.
 */

export const ATTRIBUTED_CAUSES: readonly AttributedCause[] = ['user', 'third_party', 'force_majeure'];

export enum SlaOperationsErrorCode {
  /** the request itself is wrong: times, region, account, cause, reason, actor */
  INVALID = 'INVALID',
  NOT_FOUND = 'NOT_FOUND',
  /** the request is well formed but the row's state refuses it (a window that has ended) */
  CONFLICT = 'CONFLICT',
}

export class SlaOperationsError extends Error {
  constructor(
    readonly code: SlaOperationsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SlaOperationsError';
  }
}

const invalid = (message: string) => new SlaOperationsError(SlaOperationsErrorCode.INVALID, message);

export const REASON_MAX_LENGTH = 1000;
export const ACTOR_MAX_LENGTH = 128;

/** A maintenance window as stored, with what the notice rule makes of it. */
export interface MaintenanceRecord {
  id: string;
  /** null: every region */
  region: string | null;
  startsAt: Date;
  endsAt: Date;
  announcedAt: Date;
  reason: string;
  createdBy: string;
  cancelledAt: Date | null;
  cancelledBy: string | null;
  /** the policy version whose notice period judged the window (null: no version applies) */
  policyVersion: number | null;
  noticePeriodSeconds: number | null;
  /**
   * the window would exclude its minutes: not cancelled, and announced at least the notice
   * period before it starts (the evaluation applies the same rule, sla.md §3)
   */
  excludesUnderPolicy: boolean;
}

export interface AttributionRecord {
  id: string;
  /** null: every region */
  region: string | null;
  /** null: every account */
  accountId: string | null;
  startsAt: Date;
  endsAt: Date;
  cause: AttributedCause;
  reason: string;
  createdBy: string;
  createdAt: Date;
  withdrawnAt: Date | null;
  withdrawnBy: string | null;
}

/** A window the month close applies: a MaintenanceWindow and the region it covers (null: all). */
export interface ActiveMaintenance extends MaintenanceWindow {
  region: string | null;
}

/** An attribution the month close applies, with its scope (null: every region, every account). */
export interface ActiveAttribution extends Attribution {
  region: string | null;
  accountId: string | null;
}

export interface AnnounceMaintenanceInput {
  region: string | null;
  startsAt: Date;
  endsAt: Date;
  reason: string;
  actor: string;
}

export interface AttributeInput {
  region: string | null;
  accountId: string | null;
  startsAt: Date;
  endsAt: Date;
  cause: AttributedCause;
  reason: string;
  actor: string;
}

/** Bounds of a listing: rows overlapping [from, to); an absent bound is open. */
export interface Range {
  from?: Date;
  to?: Date;
}

interface PolicyNotice {
  version: number;
  effectiveFrom: string;
  timeZone: string;
  noticePeriodSeconds: number;
}

interface MaintenanceRow {
  id: string;
  region: string | null;
  starts_at: Date;
  ends_at: Date;
  announced_at: Date;
  reason: string;
  created_by: string;
  cancelled_at: Date | null;
  cancelled_by: string | null;
}

interface AttributionRow {
  id: string;
  region: string | null;
  account_id: string | null;
  starts_at: Date;
  ends_at: Date;
  cause: AttributedCause;
  reason: string;
  created_by: string;
  created_at: Date;
  withdrawn_at: Date | null;
  withdrawn_by: string | null;
}

const MAINTENANCE_COLUMNS = 'id::text, region, starts_at, ends_at, announced_at, reason, created_by, cancelled_at, cancelled_by';
const ATTRIBUTION_COLUMNS =
  'id::text, region, account_id::text, starts_at, ends_at, cause, reason, created_by, created_at, withdrawn_at, withdrawn_by';

const ID = /^[1-9]\d{0,17}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** The audit's copy of a window: what was stored, instants as ISO 8601. */
function maintenanceDetails(m: MaintenanceRecord): Record<string, unknown> {
  return {
    id: m.id,
    region: m.region,
    startsAt: iso(m.startsAt),
    endsAt: iso(m.endsAt),
    announcedAt: iso(m.announcedAt),
    reason: m.reason,
    createdBy: m.createdBy,
    cancelledAt: iso(m.cancelledAt),
    cancelledBy: m.cancelledBy,
    policyVersion: m.policyVersion,
    noticePeriodSeconds: m.noticePeriodSeconds,
    excludesUnderPolicy: m.excludesUnderPolicy,
  };
}

function attributionDetails(a: AttributionRecord): Record<string, unknown> {
  return {
    id: a.id,
    region: a.region,
    accountId: a.accountId,
    startsAt: iso(a.startsAt),
    endsAt: iso(a.endsAt),
    cause: a.cause,
    reason: a.reason,
    createdBy: a.createdBy,
    createdAt: iso(a.createdAt),
    withdrawnAt: iso(a.withdrawnAt),
    withdrawnBy: a.withdrawnBy,
  };
}

function attributionRecord(r: AttributionRow): AttributionRecord {
  return {
    id: r.id,
    region: r.region,
    accountId: r.account_id,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    cause: r.cause,
    reason: r.reason,
    createdBy: r.created_by,
    createdAt: r.created_at,
    withdrawnAt: r.withdrawn_at,
    withdrawnBy: r.withdrawn_by,
  };
}

@Injectable()
export class SlaOperations {
  constructor(
    private readonly db: PgPool,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(SLA_CLOCK) private readonly clock: SlaClock,
  ) {}

  /**
   * Announces a window from now on. A window may not start before now: announcing ahead is the
   * point. One that starts sooner than the policy's notice period is stored, but
   * `excludesUnderPolicy` says it will exclude nothing.
   */
  async announceMaintenance(input: AnnounceMaintenanceInput): Promise<MaintenanceRecord> {
    const actor = this.actor(input.actor);
    const reason = this.reason(input.reason);
    this.period(input.startsAt, input.endsAt);
    const region = this.region(input.region);
    const now = this.clock.now();
    if (input.startsAt.getTime() < now) {
      throw invalid(
        `startsAt ${input.startsAt.toISOString()} is before now (${new Date(now).toISOString()}): a maintenance window is announced ahead of its start`,
      );
    }
    return inTransaction(this.db, async (c) => {
      const { rows } = await c.query<MaintenanceRow>(
        `INSERT INTO sla_maintenance (region, starts_at, ends_at, announced_at, reason, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${MAINTENANCE_COLUMNS}`,
        [region, input.startsAt, input.endsAt, new Date(now), reason, actor],
      );
      const m = this.maintenanceRecord(rows[0], await this.policies(c));
      await this.audit(c, actor, 'maintenance.announce', `maintenance:${m.id}`, reason, maintenanceDetails(m), now);
      return m;
    });
  }

  /** Windows overlapping the range, by start; cancelled ones only when asked. */
  async listMaintenance(range: Range & { includeCancelled?: boolean }): Promise<MaintenanceRecord[]> {
    this.range(range);
    const { rows } = await this.db.query<MaintenanceRow>(
      `SELECT ${MAINTENANCE_COLUMNS} FROM sla_maintenance
       WHERE ($1::timestamptz IS NULL OR ends_at > $1) AND ($2::timestamptz IS NULL OR starts_at < $2)
         AND ($3 OR cancelled_at IS NULL)
       ORDER BY starts_at, id`,
      [range.from ?? null, range.to ?? null, range.includeCancelled === true],
    );
    const policies = await this.policies(this.db);
    return rows.map((r) => this.maintenanceRecord(r, policies));
  }

  async getMaintenance(id: string): Promise<MaintenanceRecord> {
    const row = await this.maintenanceRow(this.db, id, false);
    return this.maintenanceRecord(row, await this.policies(this.db));
  }

  /**
   * Cancels a window that has not ended (one in progress stops excluding anything at all). A
   * window already cancelled answers as it stands, and nothing is written again.
   */
  async cancelMaintenance(id: string, actor: string, reason: string): Promise<MaintenanceRecord> {
    const who = this.actor(actor);
    const why = this.reason(reason);
    return inTransaction(this.db, async (c) => {
      const row = await this.maintenanceRow(c, id, true);
      const policies = await this.policies(c);
      if (row.cancelled_at !== null) return this.maintenanceRecord(row, policies);
      const now = this.clock.now();
      if (row.ends_at.getTime() <= now) {
        throw new SlaOperationsError(
          SlaOperationsErrorCode.CONFLICT,
          `maintenance window ${id} ended at ${row.ends_at.toISOString()}: only a window that has not ended can be cancelled`,
        );
      }
      const { rows } = await c.query<MaintenanceRow>(
        `UPDATE sla_maintenance SET cancelled_at = $2, cancelled_by = $3 WHERE id = $1 RETURNING ${MAINTENANCE_COLUMNS}`,
        [id, new Date(now), who],
      );
      const m = this.maintenanceRecord(rows[0], policies);
      await this.audit(c, who, 'maintenance.cancel', `maintenance:${id}`, why, maintenanceDetails(m), now);
      return m;
    });
  }

  /** Attributes a period (usually of a past outage) to a cause that is not the service's fault. */
  async attribute(input: AttributeInput): Promise<AttributionRecord> {
    const actor = this.actor(input.actor);
    const reason = this.reason(input.reason);
    this.period(input.startsAt, input.endsAt);
    const region = this.region(input.region);
    if (!ATTRIBUTED_CAUSES.includes(input.cause)) {
      throw invalid(`cause must be one of ${ATTRIBUTED_CAUSES.join(', ')}`);
    }
    if (input.accountId !== null && !UUID.test(input.accountId)) throw invalid('accountId must be a UUID');
    return inTransaction(this.db, async (c) => {
      if (input.accountId !== null) {
        // a share lock: the account cannot go away before the attribution commits
        const acc = await c.query('SELECT 1 FROM accounts WHERE id = $1 FOR KEY SHARE', [input.accountId]);
        if (acc.rowCount === 0) throw invalid(`account ${input.accountId} does not exist`);
      }
      const now = this.clock.now();
      const { rows } = await c.query<AttributionRow>(
        `INSERT INTO sla_attributions (region, account_id, starts_at, ends_at, cause, reason, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${ATTRIBUTION_COLUMNS}`,
        [region, input.accountId, input.startsAt, input.endsAt, input.cause, reason, actor, new Date(now)],
      );
      const a = attributionRecord(rows[0]);
      await this.audit(c, actor, 'attribution.create', `attribution:${a.id}`, reason, attributionDetails(a), now);
      return a;
    });
  }

  /** Attributions overlapping the range, by start; withdrawn ones only when asked. */
  async listAttributions(range: Range & { includeWithdrawn?: boolean }): Promise<AttributionRecord[]> {
    this.range(range);
    const { rows } = await this.db.query<AttributionRow>(
      `SELECT ${ATTRIBUTION_COLUMNS} FROM sla_attributions
       WHERE ($1::timestamptz IS NULL OR ends_at > $1) AND ($2::timestamptz IS NULL OR starts_at < $2)
         AND ($3 OR withdrawn_at IS NULL)
       ORDER BY starts_at, id`,
      [range.from ?? null, range.to ?? null, range.includeWithdrawn === true],
    );
    return rows.map(attributionRecord);
  }

  /**
   * Withdraws an attribution: from now on it excludes nothing (a closed month it changed is
   * revised by the month close). An attribution already withdrawn answers as it stands.
   */
  async withdrawAttribution(id: string, actor: string, reason: string): Promise<AttributionRecord> {
    const who = this.actor(actor);
    const why = this.reason(reason);
    if (!ID.test(id)) throw new SlaOperationsError(SlaOperationsErrorCode.NOT_FOUND, `attribution ${id.slice(0, 64)} does not exist`);
    return inTransaction(this.db, async (c) => {
      const found = await c.query<AttributionRow>(`SELECT ${ATTRIBUTION_COLUMNS} FROM sla_attributions WHERE id = $1 FOR UPDATE`, [id]);
      if (found.rowCount === 0) throw new SlaOperationsError(SlaOperationsErrorCode.NOT_FOUND, `attribution ${id} does not exist`);
      if (found.rows[0].withdrawn_at !== null) return attributionRecord(found.rows[0]);
      const now = this.clock.now();
      const { rows } = await c.query<AttributionRow>(
        `UPDATE sla_attributions SET withdrawn_at = $2, withdrawn_by = $3 WHERE id = $1 RETURNING ${ATTRIBUTION_COLUMNS}`,
        [id, new Date(now), who],
      );
      const a = attributionRecord(rows[0]);
      await this.audit(c, who, 'attribution.withdraw', `attribution:${id}`, why, attributionDetails(a), now);
      return a;
    });
  }

  /**
   * The windows the month close applies to [from, to) (Unix ms): those overlapping it and not
   * cancelled, whether or not announced in time (the evaluation judges the notice).
   */
  async activeMaintenance(from: number, to: number): Promise<ActiveMaintenance[]> {
    const { rows } = await this.db.query<MaintenanceRow>(
      `SELECT ${MAINTENANCE_COLUMNS} FROM sla_maintenance
       WHERE cancelled_at IS NULL AND ends_at > $1 AND starts_at < $2 ORDER BY starts_at, id`,
      [new Date(from), new Date(to)],
    );
    return rows.map((r) => ({
      id: r.id,
      region: r.region,
      startsAt: r.starts_at.getTime(),
      endsAt: r.ends_at.getTime(),
      announcedAt: r.announced_at.getTime(),
      reason: r.reason,
    }));
  }

  /** The attributions the month close applies to [from, to) (Unix ms): overlapping it, not withdrawn. */
  async activeAttributions(from: number, to: number): Promise<ActiveAttribution[]> {
    const { rows } = await this.db.query<AttributionRow>(
      `SELECT ${ATTRIBUTION_COLUMNS} FROM sla_attributions
       WHERE withdrawn_at IS NULL AND ends_at > $1 AND starts_at < $2 ORDER BY starts_at, id`,
      [new Date(from), new Date(to)],
    );
    return rows.map((r) => ({
      id: r.id,
      region: r.region,
      accountId: r.account_id,
      cause: r.cause,
      startsAt: r.starts_at.getTime(),
      endsAt: r.ends_at.getTime(),
      reason: r.reason,
    }));
  }

  private async maintenanceRow(c: PgPool | PoolClient, id: string, lock: boolean): Promise<MaintenanceRow> {
    const notFound = () => new SlaOperationsError(SlaOperationsErrorCode.NOT_FOUND, `maintenance window ${id.slice(0, 64)} does not exist`);
    if (!ID.test(id)) throw notFound();
    const { rows } = await c.query<MaintenanceRow>(
      `SELECT ${MAINTENANCE_COLUMNS} FROM sla_maintenance WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    if (rows.length === 0) throw notFound();
    return rows[0];
  }

  /** Every policy version's notice rule, newest first (a handful of rows). */
  private async policies(c: PgPool | PoolClient): Promise<PolicyNotice[]> {
    const { rows } = await c.query<{ version: number; effective_from: string; time_zone: string; notice_period_seconds: number }>(
      `SELECT version, effective_from::text, time_zone, notice_period_seconds FROM sla_policies ORDER BY effective_from DESC`,
    );
    return rows.map((r) => ({
      version: r.version,
      effectiveFrom: r.effective_from,
      timeZone: r.time_zone,
      noticePeriodSeconds: r.notice_period_seconds,
    }));
  }

  /**
   * A window is judged by the policy of the month it starts in: the latest version whose
   * effective_from is on or before the first of that month, the month read in that version's
   * time zone (the month close picks a month's policy the same way). A window reaching into the
   * next month is judged by its first month's policy.
   */
  private maintenanceRecord(r: MaintenanceRow, policies: readonly PolicyNotice[]): MaintenanceRecord {
    const startsAt = r.starts_at.getTime();
    const policy = policies.find((p) => `${monthOf(startsAt, p.timeZone)}-01` >= p.effectiveFrom) ?? null;
    const inTime = policy !== null && r.announced_at.getTime() <= startsAt - policy.noticePeriodSeconds * 1000;
    return {
      id: r.id,
      region: r.region,
      startsAt: r.starts_at,
      endsAt: r.ends_at,
      announcedAt: r.announced_at,
      reason: r.reason,
      createdBy: r.created_by,
      cancelledAt: r.cancelled_at,
      cancelledBy: r.cancelled_by,
      policyVersion: policy?.version ?? null,
      noticePeriodSeconds: policy?.noticePeriodSeconds ?? null,
      excludesUnderPolicy: r.cancelled_at === null && inTime,
    };
  }

  private async audit(
    c: PoolClient,
    actor: string,
    action: string,
    subject: string,
    reason: string,
    details: Record<string, unknown>,
    now: number,
  ): Promise<void> {
    await appendAudit(c, { domain: 'sla', action, actorKind: 'operator', actor, subject, reason, details, at: new Date(now) });
  }

  private actor(actor: string): string {
    if (typeof actor !== 'string' || actor.trim() === '' || actor.length > ACTOR_MAX_LENGTH) {
      throw invalid(`the operator must be 1-${ACTOR_MAX_LENGTH} characters`);
    }
    return actor;
  }

  private reason(reason: string): string {
    if (typeof reason !== 'string' || reason.trim() === '') throw invalid('reason is required');
    if (reason.length > REASON_MAX_LENGTH) throw invalid(`reason must be at most ${REASON_MAX_LENGTH} characters`);
    return reason;
  }

  private period(startsAt: Date, endsAt: Date): void {
    if (!(startsAt instanceof Date) || Number.isNaN(startsAt.getTime())) throw invalid('startsAt must be an instant');
    if (!(endsAt instanceof Date) || Number.isNaN(endsAt.getTime())) throw invalid('endsAt must be an instant');
    if (endsAt.getTime() <= startsAt.getTime()) {
      throw invalid(`endsAt ${endsAt.toISOString()} must be after startsAt ${startsAt.toISOString()}`);
    }
  }

  private region(region: string | null): string | null {
    if (region !== null && !this.config.regions.includes(region)) {
      throw invalid(`region "${region}" is not served here (regions: ${this.config.regions.join(', ')}; null: all of them)`);
    }
    return region;
  }

  private range(range: Range): void {
    for (const [k, v] of [['from', range.from], ['to', range.to]] as const) {
      if (v !== undefined && Number.isNaN(v.getTime())) throw invalid(`${k} must be an instant`);
    }
    if (range.from && range.to && range.to.getTime() <= range.from.getTime()) throw invalid('to must be after from');
  }
}
