import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  Headers,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import {
  ATTRIBUTED_CAUSES,
  AttributedCause,
  AttributionRecord,
  MaintenanceRecord,
  REASON_MAX_LENGTH,
  SlaOperations,
  SlaOperationsError,
  SlaOperationsErrorCode,
} from '@app/sla';
import { AuditTrail } from '@app/audit';
import { AuditPage, auditPage } from '../audit/audit.views';
import { CursorPageQuery } from '../pagination';
import { operator } from '../params';
import { Roles } from '../auth/roles';
import { ApiOperatorHeader } from '../auth/principal.decorator';

/** An instant with its offset: a date alone or a local time would be read in some unknown zone. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const instantMessage = (field: string) => `${field} must be an ISO 8601 instant with an offset, e.g. 2026-11-01T02:00:00Z`;
const REGION = /^[a-z][a-z0-9-]{1,15}$/;
const REASON = /\S/;

const STATUS: Record<SlaOperationsErrorCode, (message: string) => Error> = {
  [SlaOperationsErrorCode.INVALID]: (m) => new BadRequestException(m),
  [SlaOperationsErrorCode.NOT_FOUND]: (m) => new NotFoundException(m),
  [SlaOperationsErrorCode.CONFLICT]: (m) => new ConflictException(m),
};

async function answer<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof SlaOperationsError) throw STATUS[err.code](err.message);
    throw err;
  }
}

export class AnnounceMaintenanceDto {
  @ApiPropertyOptional({ type: 'string', nullable: true, example: 'gz', description: "one of the deployment's REGIONS; null or absent: every region" })
  @IsOptional()
  @IsString()
  @Matches(REGION, { message: 'region must be a region code such as gz, or null for every region' })
  region?: string | null;

  @ApiProperty({ example: '2026-11-20T18:00:00Z', description: 'not before now' })
  @IsString()
  @Matches(INSTANT, { message: instantMessage('startsAt') })
  @IsISO8601({ strict: true }, { message: instantMessage('startsAt') })
  startsAt: string;

  @ApiProperty({ example: '2026-11-20T20:00:00Z', description: 'after startsAt' })
  @IsString()
  @Matches(INSTANT, { message: instantMessage('endsAt') })
  @IsISO8601({ strict: true }, { message: instantMessage('endsAt') })
  endsAt: string;

  @ApiProperty({ example: 'storage cluster upgrade', maxLength: REASON_MAX_LENGTH })
  @IsString()
  @Matches(REASON, { message: 'reason is required' })
  @MaxLength(REASON_MAX_LENGTH)
  reason: string;
}

export class AttributeDto {
  @ApiPropertyOptional({ type: 'string', nullable: true, example: 'gz', description: "one of the deployment's REGIONS; null or absent: every region" })
  @IsOptional()
  @IsString()
  @Matches(REGION, { message: 'region must be a region code such as gz, or null for every region' })
  region?: string | null;

  @ApiPropertyOptional({ type: 'string', nullable: true, format: 'uuid', description: 'an existing account; null or absent: every account' })
  @IsOptional()
  @IsUUID('all', { message: 'accountId must be an account id (UUID), or null for every account' })
  accountId?: string | null;

  @ApiProperty({ example: '2026-11-03T06:10:00Z' })
  @IsString()
  @Matches(INSTANT, { message: instantMessage('startsAt') })
  @IsISO8601({ strict: true }, { message: instantMessage('startsAt') })
  startsAt: string;

  @ApiProperty({ example: '2026-11-03T06:40:00Z', description: 'after startsAt' })
  @IsString()
  @Matches(INSTANT, { message: instantMessage('endsAt') })
  @IsISO8601({ strict: true }, { message: instantMessage('endsAt') })
  endsAt: string;

  @ApiProperty({ enum: ATTRIBUTED_CAUSES })
  @IsIn(ATTRIBUTED_CAUSES, { message: `cause must be one of ${ATTRIBUTED_CAUSES.join(', ')}` })
  cause: AttributedCause;

  @ApiProperty({ example: 'carrier fibre cut between gz and sh, ticket INC-4411', maxLength: REASON_MAX_LENGTH })
  @IsString()
  @Matches(REASON, { message: 'reason is required' })
  @MaxLength(REASON_MAX_LENGTH)
  reason: string;
}

export class ReasonDto {
  @ApiProperty({ example: 'upgrade postponed', maxLength: REASON_MAX_LENGTH })
  @IsString()
  @Matches(REASON, { message: 'reason is required' })
  @MaxLength(REASON_MAX_LENGTH)
  reason: string;
}

export class RangeQuery {
  @ApiPropertyOptional({ description: 'an ISO 8601 instant with an offset: only those ending after it', example: '2026-11-01T00:00:00Z' })
  @IsOptional()
  @Matches(INSTANT, { message: instantMessage('from') })
  @IsISO8601({ strict: true }, { message: instantMessage('from') })
  from?: string;

  @ApiPropertyOptional({ description: 'an ISO 8601 instant with an offset: only those starting before it', example: '2026-12-01T00:00:00Z' })
  @IsOptional()
  @Matches(INSTANT, { message: instantMessage('to') })
  @IsISO8601({ strict: true }, { message: instantMessage('to') })
  to?: string;
}

export class ListMaintenanceQuery extends RangeQuery {
  @ApiPropertyOptional({ enum: ['true', 'false'], default: 'false', description: 'true: cancelled windows too', example: 'true' })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'includeCancelled must be true or false' })
  includeCancelled?: 'true' | 'false';
}

export class ListAttributionsQuery extends RangeQuery {
  @ApiPropertyOptional({ enum: ['true', 'false'], default: 'false', description: 'true: withdrawn attributions too', example: 'true' })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'includeWithdrawn must be true or false' })
  includeWithdrawn?: 'true' | 'false';
}

export class MaintenanceView {
  @ApiProperty() id: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'null: every region' }) region: string | null;
  @ApiProperty() startsAt: string;
  @ApiProperty() endsAt: string;
  @ApiProperty() announcedAt: string;
  @ApiProperty() reason: string;
  @ApiProperty({ description: 'the X-Operator of the announcement' }) createdBy: string;
  @ApiProperty({ type: 'string', nullable: true }) cancelledAt: string | null;
  @ApiProperty({ type: 'string', nullable: true }) cancelledBy: string | null;
  @ApiProperty({ type: 'integer', nullable: true, description: 'the policy version judging the window: the one in force in the month it starts' })
  policyVersion: number | null;
  @ApiProperty({ type: 'integer', nullable: true, description: "that version's notice period" }) noticePeriodSeconds: number | null;
  @ApiProperty({
    description: 'the window excludes its minutes: not cancelled, and announced at least the notice period before it starts',
  })
  excludesUnderPolicy: boolean;

  static of(m: MaintenanceRecord): MaintenanceView {
    return {
      id: m.id,
      region: m.region,
      startsAt: m.startsAt.toISOString(),
      endsAt: m.endsAt.toISOString(),
      announcedAt: m.announcedAt.toISOString(),
      reason: m.reason,
      createdBy: m.createdBy,
      cancelledAt: m.cancelledAt?.toISOString() ?? null,
      cancelledBy: m.cancelledBy,
      policyVersion: m.policyVersion,
      noticePeriodSeconds: m.noticePeriodSeconds,
      excludesUnderPolicy: m.excludesUnderPolicy,
    };
  }
}

export class AttributionView {
  @ApiProperty() id: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'null: every region' }) region: string | null;
  @ApiProperty({ type: 'string', nullable: true, description: 'null: every account' }) accountId: string | null;
  @ApiProperty() startsAt: string;
  @ApiProperty() endsAt: string;
  @ApiProperty({ enum: ATTRIBUTED_CAUSES }) cause: string;
  @ApiProperty() reason: string;
  @ApiProperty({ description: 'the X-Operator of the attribution' }) createdBy: string;
  @ApiProperty() createdAt: string;
  @ApiProperty({ type: 'string', nullable: true }) withdrawnAt: string | null;
  @ApiProperty({ type: 'string', nullable: true }) withdrawnBy: string | null;

  static of(a: AttributionRecord): AttributionView {
    return {
      id: a.id,
      region: a.region,
      accountId: a.accountId,
      startsAt: a.startsAt.toISOString(),
      endsAt: a.endsAt.toISOString(),
      cause: a.cause,
      reason: a.reason,
      createdBy: a.createdBy,
      createdAt: a.createdAt.toISOString(),
      withdrawnAt: a.withdrawnAt?.toISOString() ?? null,
      withdrawnBy: a.withdrawnBy,
    };
  }
}

const ApiMaintenanceIdParam = () =>
  ApiParam({ name: 'id', description: 'the maintenance window’s id (a positive integer); anything else is not found', example: '42' });
const ApiAttributionIdParam = () =>
  ApiParam({ name: 'id', description: 'the attribution’s id (a positive integer); anything else is not found', example: '17' });

const range = (q: RangeQuery) => ({
  from: q.from === undefined ? undefined : new Date(q.from),
  to: q.to === undefined ? undefined : new Date(q.to),
});

/**
 * The operators' SLA inputs (sla.md §3): announced maintenance windows and attributions of
 * outage time to the user, a third party or force majeure. Every write names its operator in
 * X-Operator and is audited with its reason.
 */
@ApiTags('sla')
@ApiBearerAuth()
@Controller('v1/sla')
export class SlaOpsController {
  constructor(
    private readonly ops: SlaOperations,
    private readonly trail: AuditTrail,
  ) {}

  /** A window from now on; `excludesUnderPolicy` says whether it is announced early enough to exclude anything. */
  @Roles('ops')
  @Post('maintenance')
  @HttpCode(201)
  @ApiOperatorHeader({ required: true, description: 'who announces it' })
  @ApiCreatedResponse({ type: MaintenanceView, description: 'The window as stored; excludesUnderPolicy false when announced too late to exclude anything.' })
  async announce(@Headers('x-operator') header: string | undefined, @Body() dto: AnnounceMaintenanceDto): Promise<MaintenanceView> {
    const actor = operator(header);
    const m = await answer(
      this.ops.announceMaintenance({
        region: dto.region ?? null,
        startsAt: new Date(dto.startsAt),
        endsAt: new Date(dto.endsAt),
        reason: dto.reason,
        actor,
      }),
    );
    return MaintenanceView.of(m);
  }

  /** Windows overlapping [from, to), by start. */
  @Get('maintenance')
  @ApiOkResponse({ type: [MaintenanceView], description: 'The windows overlapping [from, to), by start.' })
  async listMaintenance(@Query() q: ListMaintenanceQuery): Promise<MaintenanceView[]> {
    const list = await answer(this.ops.listMaintenance({ ...range(q), includeCancelled: q.includeCancelled === 'true' }));
    return list.map((m) => MaintenanceView.of(m));
  }

  @Get('maintenance/:id')
  @ApiMaintenanceIdParam()
  @ApiOkResponse({ type: MaintenanceView, description: 'The window.' })
  @ApiNotFoundResponse({ description: 'No such maintenance window.' })
  async getMaintenance(@Param('id') id: string): Promise<MaintenanceView> {
    return MaintenanceView.of(await answer(this.ops.getMaintenance(id)));
  }

  /** Until the window ends; a window already cancelled answers as it stands (409 once it has ended). */
  @Roles('ops')
  @Post('maintenance/:id/cancel')
  @HttpCode(200)
  @ApiOperatorHeader({ required: true, description: 'who cancels it' })
  @ApiMaintenanceIdParam()
  @ApiOkResponse({ type: MaintenanceView, description: 'The window, cancelled (as it stands when it was cancelled before).' })
  @ApiNotFoundResponse({ description: 'No such maintenance window.' })
  @ApiConflictResponse({ description: 'The window has ended: it can no longer be cancelled.' })
  async cancel(@Param('id') id: string, @Headers('x-operator') header: string | undefined, @Body() dto: ReasonDto): Promise<MaintenanceView> {
    const actor = operator(header);
    return MaintenanceView.of(await answer(this.ops.cancelMaintenance(id, actor, dto.reason)));
  }

  @Roles('ops')
  @Post('attributions')
  @HttpCode(201)
  @ApiOperatorHeader({ required: true, description: 'who attributes it' })
  @ApiCreatedResponse({ type: AttributionView, description: 'The attribution as stored.' })
  async attribute(@Headers('x-operator') header: string | undefined, @Body() dto: AttributeDto): Promise<AttributionView> {
    const actor = operator(header);
    const a = await answer(
      this.ops.attribute({
        region: dto.region ?? null,
        accountId: dto.accountId ?? null,
        startsAt: new Date(dto.startsAt),
        endsAt: new Date(dto.endsAt),
        cause: dto.cause,
        reason: dto.reason,
        actor,
      }),
    );
    return AttributionView.of(a);
  }

  /** Attributions overlapping [from, to), by start. */
  @Get('attributions')
  @ApiOkResponse({ type: [AttributionView], description: 'The attributions overlapping [from, to), by start.' })
  async listAttributions(@Query() q: ListAttributionsQuery): Promise<AttributionView[]> {
    const list = await answer(this.ops.listAttributions({ ...range(q), includeWithdrawn: q.includeWithdrawn === 'true' }));
    return list.map((a) => AttributionView.of(a));
  }

  /** An attribution already withdrawn answers as it stands. */
  @Roles('ops')
  @Post('attributions/:id/withdraw')
  @HttpCode(200)
  @ApiOperatorHeader({ required: true, description: 'who withdraws it' })
  @ApiAttributionIdParam()
  @ApiOkResponse({ type: AttributionView, description: 'The attribution, withdrawn (as it stands when it was withdrawn before).' })
  @ApiNotFoundResponse({ description: 'No such attribution.' })
  async withdraw(@Param('id') id: string, @Headers('x-operator') header: string | undefined, @Body() dto: ReasonDto): Promise<AttributionView> {
    const actor = operator(header);
    return AttributionView.of(await answer(this.ops.withdrawAttribution(id, actor, dto.reason)));
  }

  /** Every SLA write (the trail's `sla` domain), newest first. */
  @Get('audit')
  @ApiOkResponse({ type: AuditPage, description: 'A page of the SLA entries of the audit trail, newest first.' })
  audit(@Query() q: CursorPageQuery): Promise<AuditPage> {
    return auditPage(this.trail, { ...q, domain: 'sla' });
  }
}
