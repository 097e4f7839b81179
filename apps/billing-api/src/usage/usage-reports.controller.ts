import { BadRequestException, Controller, Get, Param, ParseUUIDPipe, Query } from '@nestjs/common';
import { AccountAccess } from '../auth/roles';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { AccountsService } from '@app/accounts';
import {
  ACTION_CLASSES,
  ActionClass,
  formatAmount,
  parseUsageQuery,
  parseUsageRange,
  StatementKey,
  StatementLine,
  USAGE_GRANULARITIES,
  UsageGranularity,
  UsageKey,
  UsageQuery,
  UsageQueryError,
  UsageReports,
  UsageRow,
} from '@app/billing';
import { decodeCursor, pageOf } from '../cursor';
import { ApiAccountIdParam } from '../openapi';

const LIMIT_MESSAGE = 'limit must be an integer from 1 to 1000';
const FROM_MESSAGE = 'from is required: ISO 8601 with an offset, e.g. 2026-11-01T00:00:00+08:00 (inclusive)';
const TO_MESSAGE = 'to is required: ISO 8601 with an offset, e.g. 2026-12-01T00:00:00+08:00 (exclusive)';

/** `?cursor=&limit=` of these listings (limit 1-1000, default 100). */
class UsagePageQuery {
  @ApiPropertyOptional({ description: 'the nextCursor of the previous page (of the same granularity and groupBy)', example: 'WyJzdGF0ZW1lbnRzIiwxNzkzNTQ4ODAwMDAwLCJneiIsIm9yZGVycyIsInNlbmQiXQ' })
  @IsOptional()
  @IsString({ message: 'cursor must be given once' })
  cursor?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 1000, default: 100, example: 100, description: 'rows per page, 1-1000' })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: LIMIT_MESSAGE })
  @Min(1, { message: LIMIT_MESSAGE })
  @Max(1000, { message: LIMIT_MESSAGE })
  limit?: number;
}

export class StatementsQuery extends UsagePageQuery {
  @ApiProperty({ example: '2026-11-01T00:00:00+08:00', description: 'inclusive; ISO 8601 with an offset, on a whole hour' })
  @IsString({ message: FROM_MESSAGE })
  from: string;

  @ApiProperty({ example: '2026-12-01T00:00:00+08:00', description: 'exclusive; on a whole hour; at most 400 days after from' })
  @IsString({ message: TO_MESSAGE })
  to: string;
}

export class UsageQueryDto extends StatementsQuery {
  @ApiPropertyOptional({ enum: USAGE_GRANULARITIES, default: 'hour', example: 'day', description: 'hour: UTC hours; day: days of BILLING_TIME_ZONE (from and to at its midnights)' })
  @IsOptional()
  @IsIn(USAGE_GRANULARITIES as UsageGranularity[], { message: 'granularity must be hour or day' })
  granularity?: UsageGranularity;

  @ApiPropertyOptional({ example: 'gz', description: 'only this region' })
  @IsOptional()
  @IsString({ message: 'region must be given once' })
  @Matches(/^[a-z][a-z0-9-]{1,15}$/, { message: 'region must be a region code such as gz' })
  region?: string;

  @ApiPropertyOptional({ example: 'orders', description: 'only this queue (resource)' })
  @IsOptional()
  @IsString({ message: 'resource must be given once' })
  @MaxLength(128, { message: 'resource must be a queue name of at most 128 characters' })
  resource?: string;

  @ApiPropertyOptional({ example: 'SendMessage', description: 'only this CMQ action' })
  @IsOptional()
  @IsString({ message: 'action must be given once' })
  @Matches(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, { message: 'action must be a CMQ action such as SendMessage' })
  action?: string;

  @ApiPropertyOptional({ enum: ACTION_CLASSES, description: 'only this action class', example: 'send' })
  @IsOptional()
  @IsIn(ACTION_CLASSES as ActionClass[], { message: `actionClass must be one of ${ACTION_CLASSES.join(', ')}` })
  actionClass?: ActionClass;

  @ApiPropertyOptional({
    example: 'action',
    description: 'the dimensions kept, a comma list of region, resource, action (default: all three); the others are summed over; none: one row per period',
  })
  @IsOptional()
  @IsString({ message: 'groupBy must be given once, as a comma list' })
  groupBy?: string;
}

export class UsageRowView {
  @ApiProperty({ example: '2026-11-01T00:00:00+08:00', description: 'start of the period: the UTC hour (…Z), or the day at midnight in the billing zone with its offset' })
  period: string;
  @ApiProperty({ type: 'string', nullable: true, example: 'gz', description: 'null when summed over (not in groupBy)' }) region: string | null;
  @ApiProperty({ type: 'string', nullable: true, example: 'orders', description: "queue name; '' for account-level actions; null when summed over" })
  resource: string | null;
  @ApiProperty({ type: 'string', nullable: true, example: 'SendMessage', description: "CMQ action; '' for usage metered before actions were kept; null when summed over" })
  action: string | null;
  @ApiProperty({ example: '120000', description: 'integer as a string' }) calls: string;
  @ApiProperty({ example: '118000', description: 'integer as a string' }) billableCalls: string;
  @ApiProperty({ example: '120000', description: 'integer as a string' }) messages: string;
  @ApiProperty({ example: '4096000', description: 'integer as a string' }) bytesIn: string;
  @ApiProperty({ example: '0', description: 'integer as a string' }) bytesOut: string;
  @ApiProperty({ example: '0.236', description: 'what this usage was charged, exact decimal string' }) amount: string;
}

export class UsagePage {
  @ApiProperty({ type: [UsageRowView] }) usage: UsageRowView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as `cursor` for the next page; null at the end' }) nextCursor: string | null;
}

export class StatementLineView {
  @ApiProperty({ example: '2026-11-01T16:00:00Z', description: 'the UTC hour' }) hour: string;
  @ApiProperty({ example: 'gz' }) region: string;
  @ApiProperty({ example: 'orders', description: "queue name; '' for account-level actions" }) resource: string;
  @ApiProperty({ enum: ACTION_CLASSES }) actionClass: string;
  @ApiProperty({ example: '120000', description: 'integer as a string' }) calls: string;
  @ApiProperty({ example: '118000', description: 'integer as a string' }) billableCalls: string;
  @ApiProperty({ example: '0.236', description: 'exact decimal string' }) amount: string;

  static of(l: StatementLine): StatementLineView {
    return {
      hour: new Date(l.hour).toISOString().replace('.000Z', 'Z'),
      region: l.region,
      resource: l.resource,
      actionClass: l.actionClass,
      calls: l.calls.toString(),
      billableCalls: l.billableCalls.toString(),
      amount: formatAmount(l.amount),
    };
  }
}

export class StatementPage {
  @ApiProperty({ type: [StatementLineView] }) lines: StatementLineView[];
  @ApiProperty({ example: '12.345678901', description: 'the amount of every line of [from, to), not only of this page; exact' }) total: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as `cursor` for the next page; null at the end' }) nextCursor: string | null;
}

/** A cursor's period: Unix ms of a time Date can hold. */
const isMs = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && Math.abs(v) <= 8.64e15;

/**
 * Usage and hourly statements of an account (billing.md §6), from the hourly rows with their
 * exact amounts: usage per period and chosen dimensions for charts, statement lines per hour,
 * region, resource and action class with the total of the range.
 */
@ApiTags('usage')
@ApiBearerAuth()
@ApiAccountIdParam()
@Controller('v1/accounts/:id')
export class UsageReportsController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly reports: UsageReports,
  ) {}

  @AccountAccess()
  @Get('usage')
  @ApiOkResponse({ type: UsagePage, description: 'A page of the account’s usage per period and kept dimensions.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async usage(@Param('id', ParseUUIDPipe) id: string, @Query() dto: UsageQueryDto): Promise<UsagePage> {
    let q: UsageQuery;
    try {
      q = parseUsageQuery(dto, this.reports.timeZone);
    } catch (err) {
      if (err instanceof UsageQueryError) throw new BadRequestException(err.message);
      throw err;
    }
    // a cursor belongs to one shape of query: its granularity and kept dimensions
    const listing = `usage:${q.granularity}:${q.groupBy.join(',') || 'none'}`;
    const after = decodeCursor(listing, dto.cursor, 1 + q.groupBy.length, (k) => isMs(k[0]) && k.slice(1).every((v) => typeof v === 'string'));
    const limit = dto.limit ?? 100;
    await this.accounts.getAccount(id);
    const rows = await this.reports.usage(id, q, limit + 1, after as UsageKey | undefined);
    const page = pageOf(rows, limit, listing, (r) => this.reports.usageKey(r, q));
    return { usage: page.items.map((r) => this.view(r, q)), nextCursor: page.nextCursor };
  }

  private view(r: UsageRow, q: UsageQuery): UsageRowView {
    return {
      period: this.reports.periodText(r.period, q.granularity),
      region: r.region,
      resource: r.resource,
      action: r.action,
      calls: r.calls.toString(),
      billableCalls: r.billableCalls.toString(),
      messages: r.messages.toString(),
      bytesIn: r.bytesIn.toString(),
      bytesOut: r.bytesOut.toString(),
      amount: formatAmount(r.amount),
    };
  }

  @AccountAccess()
  @Get('statements')
  @ApiOkResponse({ type: StatementPage, description: 'A page of the hourly statement lines, with the total of the whole range.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async statements(@Param('id', ParseUUIDPipe) id: string, @Query() dto: StatementsQuery): Promise<StatementPage> {
    let range: { from: number; to: number };
    try {
      range = parseUsageRange(dto, 'hour', this.reports.timeZone);
    } catch (err) {
      if (err instanceof UsageQueryError) throw new BadRequestException(err.message);
      throw err;
    }
    const after = decodeCursor('statements', dto.cursor, 4, (k) => isMs(k[0]) && k.slice(1).every((v) => typeof v === 'string'));
    const limit = dto.limit ?? 100;
    await this.accounts.getAccount(id);
    const { lines, total } = await this.reports.statements(id, range, limit + 1, after as StatementKey | undefined);
    const page = pageOf(lines, limit, 'statements', (l) => [l.hour, l.region, l.resource, l.actionClass]);
    return { lines: page.items.map(StatementLineView.of), total: formatAmount(total), nextCursor: page.nextCursor };
  }
}
