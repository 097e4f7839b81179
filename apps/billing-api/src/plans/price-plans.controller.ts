import { BadRequestException, Body, Controller, Get, Headers, NotFoundException, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import {
  formatAmount,
  MAX_PLAN_REGIONS,
  MAX_PLAN_TIERS,
  METERING_RULES,
  MeteringRule,
  PLAN_CODE_RE,
  PlanError,
  PlanKey,
  PlanVersion,
  PricePlans,
} from '@app/billing';
import { decodeCursor, pageOf } from '../cursor';
import { operator } from '../params';
import { ApiOperatorHeader } from '../auth/principal.decorator';

const COUNT = /^\d{1,18}$/;
const PRICE = /^\d{1,18}(\.\d{1,9})?$/;
const CODE_MESSAGE = 'code must be a plan code (lower-case letters, digits, _ and -)';

export class PlanTierDto {
  @ApiProperty({
    type: String,
    nullable: true,
    example: '100000000',
    description: 'upper bound of the band in calls beyond the free quota (cumulative in the month), integer string; null for the last, open band',
  })
  @ValidateIf((t: PlanTierDto) => t.upTo !== null)
  @IsString({ message: 'upTo must be an integer string, or null for the last tier' })
  @Matches(COUNT, { message: 'upTo must be an integer string, or null for the last tier' })
  upTo: string | null;

  @ApiProperty({ example: '2.00', description: 'price per million calls in the band, decimal string (at most 9 decimals)' })
  @IsString({ message: 'perMillion must be a decimal string such as "2.00"' })
  @Matches(PRICE, { message: 'perMillion must be a non-negative decimal string such as "2.00" (at most 9 decimals)' })
  perMillion: string;
}

export class PlanLineDto {
  @ApiProperty({ enum: ['calls'], description: 'the meter priced: billable calls' })
  @IsIn(['calls'], { message: 'meter must be calls' })
  meter: 'calls';

  @ApiPropertyOptional({ example: '1000000', default: '0', description: 'calls free each month before any tier, integer string' })
  @IsOptional()
  @IsString({ message: 'freeQuota must be an integer string' })
  @Matches(COUNT, { message: 'freeQuota must be a non-negative integer string' })
  freeQuota?: string;

  @ApiProperty({ type: [PlanTierDto], description: 'graduated bands, bounds rising, the last open (upTo null)' })
  @IsArray({ message: 'tiers must be a list' })
  @ArrayMinSize(1, { message: 'tiers must list at least one tier' })
  @ArrayMaxSize(MAX_PLAN_TIERS, { message: `tiers must list at most ${MAX_PLAN_TIERS} tiers` })
  @ValidateNested({ each: true })
  @Type(() => PlanTierDto)
  tiers: PlanTierDto[];
}

export class CreatePlanDto {
  @ApiProperty({ example: 'pro', description: 'the plan code; its next version is made (1 for a new code)' })
  @IsString({ message: CODE_MESSAGE })
  @Matches(PLAN_CODE_RE, { message: CODE_MESSAGE })
  code: string;

  @ApiPropertyOptional({ example: 'mainland', default: 'custom', description: 'a label of the region group' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: 'regionGroup must be a name of lower-case letters, digits, _ and -' })
  regionGroup?: string;

  @ApiProperty({ example: 'CNY', description: 'ISO 4217; every version of a code has the same' })
  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be an ISO 4217 code such as CNY' })
  currency: string;

  @ApiProperty({ enum: METERING_RULES, description: 'how billable calls are counted' })
  @IsIn(METERING_RULES as MeteringRule[], { message: `meteringRule must be one of ${METERING_RULES.join(', ')}` })
  meteringRule: MeteringRule;

  @ApiProperty({ example: ['gz', 'sh'], description: 'the regions this version prices' })
  @IsArray({ message: 'regions must be a list' })
  @ArrayMinSize(1, { message: 'regions must list at least one region' })
  @ArrayMaxSize(MAX_PLAN_REGIONS, { message: `regions must list at most ${MAX_PLAN_REGIONS} regions` })
  @IsString({ each: true, message: 'each region must be a region code such as gz' })
  @Matches(/^[a-z][a-z0-9-]{1,15}$/, { each: true, message: 'each region must be a region code such as gz' })
  regions: string[];

  @ApiProperty({ example: '2027-01-01T00:00:00+08:00', description: 'a whole hour in the future, ISO 8601 with an offset' })
  @IsString({ message: 'effectiveFrom must be ISO 8601 with an offset' })
  effectiveFrom: string;

  @ApiProperty({ type: [PlanLineDto] })
  @IsArray({ message: 'lines must be a list' })
  @ArrayMinSize(1, { message: 'lines must price at least one meter' })
  @ArrayMaxSize(1, { message: 'lines may price each meter once (calls)' })
  @ValidateNested({ each: true })
  @Type(() => PlanLineDto)
  lines: PlanLineDto[];

  @ApiProperty({ example: 'contract 2027: volume discount above 100M calls', description: 'why (recorded with the version)' })
  @IsString({ message: 'reason is required (why this version)' })
  @MinLength(1, { message: 'reason is required (why this version)' })
  @MaxLength(1000, { message: 'reason must be at most 1000 characters' })
  reason: string;
}

export class PlanTierView {
  @ApiProperty({ type: String, nullable: true, example: '100000000' }) upTo: string | null;
  @ApiProperty({ example: '2.00' }) perMillion: string;
}

export class PlanLineView {
  @ApiProperty({ example: 'calls' }) meter: string;
  @ApiProperty({ example: '0' }) freeQuota: string;
  @ApiProperty({ type: [PlanTierView] }) tiers: PlanTierView[];
}

export class PlanVersionView {
  @ApiProperty() id: string;
  @ApiProperty({ example: 'default' }) code: string;
  @ApiProperty({ example: 1 }) version: number;
  @ApiProperty({ example: 'mainland' }) regionGroup: string;
  @ApiProperty({ example: 'CNY' }) currency: string;
  @ApiProperty({ enum: METERING_RULES }) meteringRule: string;
  @ApiProperty({ example: ['bj', 'cd', 'gz', 'nj', 'sh'] }) regions: string[];
  @ApiProperty({ example: '2026-01-01T00:00:00.000Z', description: 'from this hour on it rates its regions (unless a newer version of the code covers one)' })
  effectiveFrom: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'versions stay open; a newer version of the code takes over its regions from its own start' })
  effectiveTo: string | null;
  @ApiProperty({ type: [PlanLineView] }) lines: PlanLineView[];
  @ApiProperty() createdAt: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'the X-Operator who made it (null: seeded)' }) createdBy: string | null;
  @ApiProperty({ type: 'string', nullable: true }) reason: string | null;

  static of(p: PlanVersion): PlanVersionView {
    return {
      id: p.id,
      code: p.code,
      version: p.version,
      regionGroup: p.regionGroup,
      currency: p.currency,
      meteringRule: p.rule,
      regions: p.regions,
      effectiveFrom: p.effectiveFrom.toISOString(),
      effectiveTo: p.effectiveTo?.toISOString() ?? null,
      lines: p.lines.map((l) => ({
        meter: l.meter,
        freeQuota: l.freeQuota.toString(),
        tiers: l.tiers.map((t) => ({ upTo: t.upTo?.toString() ?? null, perMillion: formatAmount(t.perMillion) })),
      })),
      createdAt: p.createdAt.toISOString(),
      createdBy: p.createdBy,
      reason: p.reason,
    };
  }
}

export class PlanPage {
  @ApiProperty({ type: [PlanVersionView] }) plans: PlanVersionView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as `cursor` for the next page; null at the end' }) nextCursor: string | null;
}

export class PlanVersions {
  @ApiProperty() code: string;
  @ApiProperty({ type: [PlanVersionView] }) versions: PlanVersionView[];
}

export class PlanListQuery {
  @ApiPropertyOptional({ description: 'the nextCursor of the previous page', example: 'WyJwbGFucyIsImRlZmF1bHQiLDEsIm1haW5sYW5kIl0' })
  @IsOptional()
  @IsString({ message: 'cursor must be given once' })
  cursor?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 100, default: 50, example: 50, description: 'plan versions per page, 1-100' })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be an integer from 1 to 100' })
  @Min(1, { message: 'limit must be an integer from 1 to 100' })
  @Max(100, { message: 'limit must be an integer from 1 to 100' })
  limit?: number;
}

/**
 * Price plan versions (billing.md §2) for operators: every version, one code's versions, and a
 * new version (admin only: reads are open to every role, writes are admin-only by default).
 */
@ApiTags('billing')
@ApiBearerAuth()
@Controller('v1/plans')
export class PricePlansController {
  constructor(private readonly plans: PricePlans) {}

  @Get()
  @ApiOkResponse({ type: PlanPage, description: 'A page of every plan version, by code, version and region group.' })
  async list(@Query() q: PlanListQuery): Promise<PlanPage> {
    const limit = q.limit ?? 50;
    const after = decodeCursor('plans', q.cursor, 3, (k) => typeof k[0] === 'string' && Number.isSafeInteger(k[1]) && typeof k[2] === 'string');
    const rows = await this.plans.list(limit + 1, after as PlanKey | undefined);
    const page = pageOf(rows, limit, 'plans', (p) => [p.code, p.version, p.regionGroup]);
    return { plans: page.items.map(PlanVersionView.of), nextCursor: page.nextCursor };
  }

  @Get(':code')
  @ApiParam({ name: 'code', description: 'the plan code (lower-case letters, digits, _ and -)', example: 'default' })
  @ApiOkResponse({ type: PlanVersions, description: 'The versions of the plan, oldest first.' })
  @ApiNotFoundResponse({ description: 'No plan of that code.' })
  async versions(@Param('code') code: string): Promise<PlanVersions> {
    if (!PLAN_CODE_RE.test(code)) throw new BadRequestException(CODE_MESSAGE);
    const versions = await this.plans.versions(code);
    if (versions.length === 0) throw new NotFoundException(`no plan ${code}`);
    return { code, versions: versions.map(PlanVersionView.of) };
  }

  @Post()
  @ApiCreatedResponse({ type: PlanVersionView, description: 'The new version of the code (1 for a new code).' })
  @ApiOperatorHeader({ required: true, description: 'who makes the version (recorded with it as createdBy)' })
  async create(@Headers('x-operator') who: string | undefined, @Body() body: CreatePlanDto): Promise<PlanVersionView> {
    const by = operator(who);
    const { reason, ...plan } = body;
    try {
      return PlanVersionView.of(await this.plans.create(plan, by, reason));
    } catch (err) {
      if (err instanceof PlanError) throw new BadRequestException(err.message);
      throw err;
    }
  }
}
