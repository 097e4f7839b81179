import { ApiProperty } from '@nestjs/swagger';
import { AccountReport, ATTRIBUTED_CAUSES, CreditBand, ExclusionCause, FleetReport, OutageExclusion, OutageView, PersistenceView, SlaPolicy } from '@app/sla';

/**
 * The SLA reports, policies and month closes as the API answers them: the shapes of the
 * @app/sla results (each class implements the interface it documents), for the OpenAPI document.
 */

type ReportMaintenance = AccountReport['maintenance'][number];
type FleetRegion = FleetReport['regions'][number];
type FleetAccounts = NonNullable<FleetReport['accounts']>;

const EXCLUSION_CAUSES: ExclusionCause[] = ['maintenance', ...ATTRIBUTED_CAUSES];

export class SlaOutageExclusionView implements OutageExclusion {
  @ApiProperty({ enum: EXCLUSION_CAUSES, description: 'maintenance: an announced window; else the cause of an attribution' }) cause: ExclusionCause;
  @ApiProperty({ example: '42', description: 'the id of the maintenance window or attribution' }) id: string;
  @ApiProperty() reason: string;
  @ApiProperty({ type: 'integer', description: 'minutes of this outage, in this month, it excluded' }) minutes: number;
}

export class SlaOutageView implements OutageView {
  @ApiProperty({ example: '2026-11-14T06:10:00.000Z', description: 'first down minute of the whole run (UTC)' }) startUtc: string;
  @ApiProperty({ example: '2026-11-14T06:40:00.000Z', description: 'first minute after the run (UTC)' }) endUtc: string;
  @ApiProperty({ example: '2026-11-14T14:10:00+08:00', description: 'startUtc in the policy’s zone, with its offset' }) startLocal: string;
  @ApiProperty({ example: '2026-11-14T14:40:00+08:00', description: 'endUtc in the policy’s zone, with its offset' }) endLocal: string;
  @ApiProperty({ type: 'integer', description: 'length of the whole run, which may reach into the months around' }) minutes: number;
  @ApiProperty({ type: 'integer', description: 'its minutes inside this month' }) monthMinutes: number;
  @ApiProperty({ description: 'the run lasted at least the policy’s minimum outage' }) counted: boolean;
  @ApiProperty({ type: 'integer', description: 'minutes of this month that count as downtime, after exclusions' }) countedMinutes: number;
  @ApiProperty({ type: [SlaOutageExclusionView], description: 'what excluded minutes of it, and why' }) exclusions: SlaOutageExclusionView[];
}

export class SlaReportMaintenanceView implements ReportMaintenance {
  @ApiProperty({ example: '42' }) id: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'null: every region' }) region: string | null;
  @ApiProperty() startsAt: string;
  @ApiProperty() endsAt: string;
  @ApiProperty() announcedAt: string;
  @ApiProperty() reason: string;
  @ApiProperty({ description: 'announced at least the notice period ahead: its minutes are excluded' }) inTime: boolean;
  @ApiProperty({ description: 'it excluded minutes of this account’s outages' }) applied: boolean;
}

export class SlaPersistenceView implements PersistenceView {
  @ApiProperty({ type: 'integer', description: 'canary sends acknowledged in the month' }) acknowledged: number;
  @ApiProperty({ type: 'integer', description: 'of them, not received back' }) lost: number;
  @ApiProperty({ type: 'string', nullable: true, example: '100.000000', description: '1 − lost ÷ acknowledged, percent with six decimals rounded down; null with no sends' })
  persistence: string | null;
}

export class SlaAccountReportView implements AccountReport {
  @ApiProperty({ format: 'uuid' }) accountId: string;
  @ApiProperty({ example: '2026-11' }) month: string;
  @ApiProperty({ example: 'Asia/Shanghai', description: 'the zone of the natural month (the policy’s)' }) timeZone: string;
  @ApiProperty({ type: 'integer', description: 'the SLA policy version that judged the month' }) policyVersion: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'the result’s revision; null while the month is open' }) revision: number | null;
  @ApiProperty({ description: 'false: the open month so far' }) closed: boolean;
  @ApiProperty({ example: '99.9500', description: 'the promised availability, percent with four decimals' }) target: string;
  @ApiProperty({ type: 'integer', description: 'T: the minutes of the service period' }) totalMinutes: number;
  @ApiProperty({ type: 'integer' }) downtimeMinutes: number;
  @ApiProperty({ type: 'integer', description: 'minutes without a signal' }) unknownMinutes: number;
  @ApiProperty({ example: '99.9861', description: 'percent with four decimals, rounded down' }) availability: string;
  @ApiProperty({ type: 'integer', example: 999861, description: 'the availability in ppm' }) availabilityPpm: number;
  @ApiProperty() meetsTarget: boolean;
  @ApiProperty({ example: '100.0000', description: 'minutes with a signal ÷ minutes, percent with four decimals' }) coverage: string;
  @ApiProperty({ description: 'some coverage window of the month is under the policy’s alert line' }) coverageAlert: boolean;
  @ApiProperty({ description: 'the account existed the whole month and was not released before its end: only then is a credit granted' }) servicePeriod: boolean;
  @ApiProperty({ type: 'integer', description: 'the credit band’s percent (0: none)' }) creditPercent: number;
  @ApiProperty({ example: '120.00', description: 'the month’s cash fee the credit is a percent of, decimal string' }) feeBase: string;
  @ApiProperty({ example: '12.00', description: 'the credit granted as a voucher, decimal string' }) credit: string;
  @ApiProperty({ type: [SlaOutageView] }) outages: SlaOutageView[];
  @ApiProperty({ type: [SlaReportMaintenanceView], description: 'the maintenance windows that excluded minutes or came too late' }) maintenance: SlaReportMaintenanceView[];
  @ApiProperty({ type: SlaPersistenceView, description: 'from the canary sends of the month' }) persistence: SlaPersistenceView;
  @ApiProperty({ type: 'string', nullable: true, description: 'why the revision was computed (a recompute’s reason); null for the close’s own' }) reason: string | null;
  @ApiProperty({ description: 'when the result was computed (now for an open month)' }) computedAt: string;
}

export class SlaFleetRegionView implements FleetRegion {
  @ApiProperty({ example: 'gz' }) region: string;
  @ApiProperty({ example: '99.9861', description: 'percent with four decimals, rounded down, by the account rules from the probes' }) availability: string;
  @ApiProperty({ type: 'integer' }) downtimeMinutes: number;
  @ApiProperty({ type: 'integer' }) unknownMinutes: number;
  @ApiProperty({ example: '100.0000' }) coverage: string;
  @ApiProperty({ description: 'some coverage window of the month is under the policy’s alert line' }) coverageAlert: boolean;
  @ApiProperty({ type: 'integer', description: 'probe attempts' }) probes: number;
  @ApiProperty({ type: 'integer' }) failedProbes: number;
  @ApiProperty({ type: [SlaOutageView] }) outages: SlaOutageView[];
}

export class SlaFleetAccountsView implements FleetAccounts {
  @ApiProperty({ type: 'integer' }) evaluated: number;
  @ApiProperty({ type: 'integer', description: 'with downtime' }) affected: number;
  @ApiProperty({ type: 'integer' }) belowTarget: number;
  @ApiProperty({ type: 'integer' }) credited: number;
}

export class SlaFleetReportView implements FleetReport {
  @ApiProperty({ example: '2026-11' }) month: string;
  @ApiProperty({ example: 'Asia/Shanghai' }) timeZone: string;
  @ApiProperty({ type: 'integer' }) policyVersion: number;
  @ApiProperty() closed: boolean;
  @ApiProperty({ type: 'integer', nullable: true, description: 'the close’s latest revision; null while open' }) revision: number | null;
  @ApiProperty({ type: [SlaFleetRegionView] }) regions: SlaFleetRegionView[];
  @ApiProperty({ type: SlaFleetAccountsView, nullable: true, description: 'the accounts’ results; null while the month is open' }) accounts: SlaFleetAccountsView | null;
  @ApiProperty({ type: 'string', nullable: true, example: '350.00', description: 'the credits granted, decimal string; null while open' }) creditsTotal: string | null;
  @ApiProperty({ type: SlaPersistenceView }) persistence: SlaPersistenceView;
}

export class SlaCreditBandView implements CreditBand {
  @ApiProperty({ type: 'integer', example: 999500, description: 'the band applies below this availability, in ppm' }) belowPpm: number;
  @ApiProperty({ type: 'integer', example: 10, description: 'credit, percent of the month’s cash fee (capped at the fee)' }) creditPct: number;
}

export class SlaPolicyView implements SlaPolicy {
  @ApiProperty({ type: 'integer', example: 1 }) version: number;
  @ApiProperty({ example: '2027-01-01', description: 'the first month it applies to (its first day, in its zone)' }) effectiveFrom: string;
  @ApiProperty({ example: 'Asia/Shanghai', description: 'IANA zone of the natural month' }) timeZone: string;
  @ApiProperty({ type: 'integer', example: 999500, description: 'promised availability, ppm' }) targetPpm: number;
  @ApiProperty({ type: 'integer', example: 5, description: 'an outage counts only if it lasts at least this many consecutive minutes' }) minOutageMinutes: number;
  @ApiProperty({ type: 'integer', example: 86400, description: 'a maintenance window excludes only if announced at least this long before it starts' })
  noticePeriodSeconds: number;
  @ApiProperty({ type: 'integer', example: 50, description: 'a region-minute is down when failed probes × 100 ≥ attempts × this' }) probeDownPct: number;
  @ApiProperty({ type: 'integer', example: 5, description: 'an account-minute is down when server errors × 100 ≥ requests × this…' }) errorRatioPct: number;
  @ApiProperty({ type: 'integer', example: 20, description: '…and the minute had at least this many requests' }) errorMinRequests: number;
  @ApiProperty({ type: 'integer', example: 990000, description: 'coverage of a window below this raises an alert, ppm' }) coverageAlertPpm: number;
  @ApiProperty({ type: 'integer', example: 1440, description: 'the window coverage is judged over, minutes' }) coverageWindowMinutes: number;
  @ApiProperty({ type: [SlaCreditBandView] }) creditBands: SlaCreditBandView[];
}

/** POST /v1/sla/months/{month}/close. */
export class SlaMonthCloseView {
  @ApiProperty({ example: '2026-11' }) month: string;
  @ApiProperty({ description: 'false: the month was closed before (or is being closed); nothing changed' }) closed: boolean;
  @ApiProperty({ type: 'integer', description: 'the close’s revision (0 when another close holds the month)' }) revision: number;
  @ApiProperty({ type: 'integer', description: 'accounts evaluated (0 when nothing changed)' }) accounts: number;
  @ApiProperty({ type: 'integer', description: 'accounts below the target' }) belowTarget: number;
  @ApiProperty({ example: '350.00', description: 'credits granted, decimal string' }) credits: string;
  @ApiProperty({ type: 'integer', description: 'milliseconds the close took' }) ms: number;
}

/** POST /v1/sla/months/{month}/recompute. */
export class SlaRecomputeView {
  @ApiProperty({ example: '2026-11' }) month: string;
  @ApiProperty({ type: 'integer', description: 'the new revision' }) revision: number;
  @ApiProperty({ type: 'integer', description: 'accounts whose result changed (each has the new revision)' }) changed: number;
  @ApiProperty({ example: '-1.50', description: 'the credits moved, decimal string (negative: taken back from unspent vouchers)' }) creditChange: string;
}
