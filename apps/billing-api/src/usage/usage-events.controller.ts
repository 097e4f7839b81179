import { BadRequestException, Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { In, Repository } from 'typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import { AccountEntity } from '@app/accounts';
import { NoPlanError, Outcome, UsageApplier } from '@app/billing';
import { AdminTokenGuard } from '../admin-token.guard';

const OUTCOMES: Outcome[] = ['ok', 'no_message', 'client_error', 'throttled', 'overdue', 'server_error'];

export class UsageEventDto {
  @ApiProperty({ description: "the producer's id of the event; seen again within 35 days, it is not counted twice", maxLength: 128 })
  @IsString()
  @Matches(/^[\x21-\x7e]{1,128}$/, { message: 'id must be 1-128 printable ASCII characters' })
  id: string;

  @ApiProperty() @IsUUID() accountId: string;

  @ApiProperty({ example: 'gz' })
  @IsString()
  @Matches(/^[a-z][a-z0-9-]{1,15}$/, { message: 'region must be a region code such as gz' })
  region: string;

  @ApiPropertyOptional({ description: 'queue or topic name', maxLength: 128 })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  resource?: string;

  @ApiProperty({ example: 'PushDelivery', maxLength: 64 })
  @IsString()
  @Matches(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, { message: 'action must be a name of letters, digits, _ . -' })
  action: string;

  @ApiPropertyOptional({ enum: OUTCOMES, default: 'ok' }) @IsOptional() @IsIn(OUTCOMES) outcome?: Outcome;

  @ApiProperty({ description: 'billable calls this event adds' }) @IsInt() @Min(0) billableCalls: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) messages?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) bytesIn?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) bytesOut?: number;

  @ApiPropertyOptional({ description: 'ISO 8601 with offset; default now' })
  @IsOptional()
  @IsISO8601({ strict: true })
  time?: string;
}

export class UsageEventsDto {
  @ApiProperty({ type: [UsageEventDto], maxItems: 1000 })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => UsageEventDto)
  events: UsageEventDto[];
}

/** Usage produced outside the queue core (billing.md §7), rated and charged like CMQ usage. */
@ApiTags('billing')
@ApiBearerAuth()
@UseGuards(AdminTokenGuard)
@Controller('v1/usage-events')
export class UsageEventsController {
  constructor(
    private readonly applier: UsageApplier,
    @InjectRepository(AccountEntity) private readonly accounts: Repository<AccountEntity>,
  ) {}

  @Post()
  @HttpCode(200)
  async ingest(@Body() dto: UsageEventsDto): Promise<{ accepted: number; duplicates: number }> {
    const ids = [...new Set(dto.events.map((e) => e.accountId))];
    const known = new Set((await this.accounts.findBy({ id: In(ids) })).map((a) => a.id));
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length) throw new BadRequestException(`unknown accountId: ${unknown.slice(0, 10).join(', ')}`);
    const now = Date.now();
    const applying = this.applier.applyEvents(
      dto.events.map((e) => ({
        clientId: e.id,
        accountId: e.accountId,
        region: e.region,
        resource: e.resource ?? '',
        action: e.action,
        outcome: e.outcome ?? 'ok',
        messages: e.messages ?? 0,
        bytesIn: e.bytesIn ?? 0,
        bytesOut: e.bytesOut ?? 0,
        calls: 1,
        billable: { size_bands: e.billableCalls, per_64k: e.billableCalls },
        at: e.time ? Date.parse(e.time) : now,
      })),
    );
    try {
      return await applying;
    } catch (err) {
      // the batch's transaction rolled back: nothing of it is stored
      if (err instanceof NoPlanError) throw new BadRequestException(err.message);
      throw err;
    }
  }
}
