import {
  BadRequestException,
  Controller,
  createParamDecorator,
  ExecutionContext,
  HttpCode,
  Injectable,
  PipeTransform,
  Post,
  ValidationPipe,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
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
  isInt,
  isIn,
  isISO8601,
  isString,
  isUUID,
  Matches,
  matches,
  MaxLength,
  maxLength,
  Min,
  min,
  ValidateNested,
} from 'class-validator';
import { In, Repository } from 'typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import { AccountEntity } from '@app/accounts';
import { EventsResult, NoPlanError, Outcome, UsageApplier } from '@app/billing';
import { VALIDATION_PIPE_OPTIONS } from '../validation';

const OUTCOMES: Outcome[] = ['ok', 'no_message', 'client_error', 'throttled', 'overdue', 'server_error'];
const ID_RE = /^[\x21-\x7e]{1,128}$/;
const REGION_RE = /^[a-z][a-z0-9-]{1,15}$/;
const ACTION_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_RESOURCE = 128;
const MAX_EVENTS = 1000;

export class UsageEventDto {
  @ApiProperty({ description: "the producer's id of the event; seen again within 35 days, it is not counted twice", maxLength: 128 })
  @IsString()
  @Matches(ID_RE, { message: 'id must be 1-128 printable ASCII characters' })
  id: string;

  @ApiProperty() @IsUUID() accountId: string;

  @ApiProperty({ example: 'gz' })
  @IsString()
  @Matches(REGION_RE, { message: 'region must be a region code such as gz' })
  region: string;

  @ApiPropertyOptional({ description: 'queue or topic name', maxLength: 128 })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_RESOURCE)
  resource?: string;

  @ApiProperty({ example: 'PushDelivery', maxLength: 64 })
  @IsString()
  @Matches(ACTION_RE, { message: 'action must be a name of letters, digits, _ . -' })
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
  @ArrayMaxSize(MAX_EVENTS)
  @ValidateNested({ each: true })
  @Type(() => UsageEventDto)
  events: UsageEventDto[];
}

export class UsageEventsResultView implements EventsResult {
  @ApiProperty({ type: 'integer', description: 'events counted now' }) accepted: number;
  @ApiProperty({ type: 'integer', description: 'events whose id was seen before (within 35 days): not counted again' }) duplicates: number;
}

const EVENT_FIELDS = new Set<string>([
  'id',
  'accountId',
  'region',
  'resource',
  'action',
  'outcome',
  'billableCalls',
  'messages',
  'bytesIn',
  'bytesOut',
  'time',
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** what @IsOptional lets through without checking */
const absent = (v: unknown) => v === undefined || v === null;
const count = (v: unknown) => isInt(v) && min(v, 0);

/**
 * True when `body` is a {@link UsageEventsDto} that the app's ValidationPipe accepts as it is:
 * the decorators' own predicates (class-validator's functions, with the same constraints), no
 * field the DTOs do not declare. It never accepts what the pipe would refuse; what it does not
 * accept goes to the pipe, which refuses it with its usual reasons (or accepts it).
 */
export function plainlyValidUsageEvents(body: unknown): body is UsageEventsDto {
  if (!isRecord(body)) return false;
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'events') return false;
  const events = body.events;
  if (!Array.isArray(events) || events.length < 1 || events.length > MAX_EVENTS) return false;
  for (const e of events) {
    if (!isRecord(e)) return false;
    for (const k of Object.keys(e)) if (!EVENT_FIELDS.has(k)) return false;
    if (!isString(e.id) || !matches(e.id, ID_RE)) return false;
    if (!isUUID(e.accountId)) return false;
    if (!isString(e.region) || !matches(e.region, REGION_RE)) return false;
    if (!absent(e.resource) && !(isString(e.resource) && maxLength(e.resource, MAX_RESOURCE))) return false;
    if (!isString(e.action) || !matches(e.action, ACTION_RE)) return false;
    if (!absent(e.outcome) && !isIn(e.outcome, OUTCOMES)) return false;
    if (!count(e.billableCalls)) return false;
    if (!absent(e.messages) && !count(e.messages)) return false;
    if (!absent(e.bytesIn) && !count(e.bytesIn)) return false;
    if (!absent(e.bytesOut) && !count(e.bytesOut)) return false;
    if (!absent(e.time) && !isISO8601(e.time, { strict: true })) return false;
  }
  return true;
}

/**
 * The body of POST /v1/usage-events as a {@link UsageEventsDto}: a batch the decorators' predicates
 * accept as it is goes straight through (class-transformer and class-validator over a thousand
 * nested objects cost more than the rest of the request); anything else gets the app's
 * ValidationPipe, and so its answer.
 */
@Injectable()
export class UsageEventsPipe implements PipeTransform<unknown, Promise<UsageEventsDto> | UsageEventsDto> {
  private readonly pipe = new ValidationPipe(VALIDATION_PIPE_OPTIONS);

  transform(value: unknown): Promise<UsageEventsDto> | UsageEventsDto {
    if (plainlyValidUsageEvents(value)) return value;
    return this.pipe.transform(value, { type: 'body', metatype: UsageEventsDto }) as Promise<UsageEventsDto>;
  }
}

/** The request body untouched by the global ValidationPipe (it leaves custom parameters alone). */
const RawBody = createParamDecorator((_: unknown, ctx: ExecutionContext) => ctx.switchToHttp().getRequest<{ body: unknown }>().body);

/** Usage produced outside the queue core (billing.md §7), rated and charged like CMQ usage. */
@ApiTags('billing')
@ApiBearerAuth()
@Controller('v1/usage-events')
export class UsageEventsController {
  constructor(
    private readonly applier: UsageApplier,
    @InjectRepository(AccountEntity) private readonly accounts: Repository<AccountEntity>,
  ) {}

  @Post()
  @HttpCode(200)
  @ApiBody({ type: UsageEventsDto })
  @ApiOkResponse({ type: UsageEventsResultView, description: 'What was counted: the batch is stored whole or not at all.' })
  async ingest(@RawBody(UsageEventsPipe) dto: UsageEventsDto): Promise<UsageEventsResultView> {
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
