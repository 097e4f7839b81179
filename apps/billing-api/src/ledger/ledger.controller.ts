import {
  applyDecorators,
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { AccountsService } from '@app/accounts';
import { Balance, ENTRY_KINDS, EntryKind, formatAmount, IdempotencyConflictError, LedgerEntry, LedgerService, Nano, parseAmount } from '@app/billing';
import { decodeCursor, pageOf } from '../cursor';
import { timeRange, TimeRangePageQuery } from '../pagination';
import { AccountAccess, Roles } from '../auth/roles';
import { ApiOperatorHeader, OperatorActor } from '../auth/principal.decorator';
import type { AuditActor } from '@app/audit';
import { ApiAccountIdParam } from '../openapi';

export const AMOUNT = /^-?\d{1,18}(\.\d{1,9})?$/;
export const AMOUNT_MESSAGE = 'amount must be a decimal string such as "100.00" (at most 9 decimals)';

export class TopupDto {
  @ApiProperty({ example: '100.00', description: 'decimal string, more than 0' })
  @IsString()
  @Matches(AMOUNT, { message: AMOUNT_MESSAGE })
  amount: string;
}

export class AdjustmentDto {
  @ApiProperty({ example: '-5.00', description: 'decimal string, not 0; negative takes money away' })
  @IsString()
  @Matches(AMOUNT, { message: AMOUNT_MESSAGE })
  amount: string;

  @ApiProperty({ example: 'goodwill credit for ticket 1234', maxLength: 500 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  reason: string;
}

export class EntryView {
  @ApiProperty() entryId: string;
  @ApiProperty() kind: string;
  @ApiProperty({ description: 'cash moved by this entry, decimal string' }) amount: string;
  @ApiProperty({ description: 'vouchers moved by this entry, decimal string' }) voucherAmount: string;
  @ApiProperty({ description: 'cash balance after it' }) cash: string;
  @ApiProperty({ description: 'voucher balance after it' }) vouchers: string;
  @ApiProperty({ type: 'string', nullable: true }) reason: string | null;
  @ApiProperty() createdAt: string;

  static of(e: LedgerEntry): EntryView {
    return {
      entryId: e.id,
      kind: e.kind,
      amount: formatAmount(e.cashDelta),
      voucherAmount: formatAmount(e.voucherDelta),
      cash: formatAmount(e.cashAfter),
      vouchers: formatAmount(e.voucherAfter),
      reason: e.reason,
      createdAt: e.createdAt.toISOString(),
    };
  }
}

export class LedgerQuery extends TimeRangePageQuery {
  @ApiPropertyOptional({ description: `only these kinds, comma-separated (${ENTRY_KINDS.join(', ')})`, example: 'topup,adjustment' })
  @IsOptional()
  @Matches(new RegExp(`^(${ENTRY_KINDS.join('|')})(,(${ENTRY_KINDS.join('|')}))*$`), { message: `kind must be entry kinds, comma-separated: ${ENTRY_KINDS.join(', ')}` })
  kind?: string;
}

export class LedgerPage {
  @ApiProperty({ type: [EntryView], description: 'newest first' }) entries: EntryView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as cursor= for the next page; null on the last' }) nextCursor: string | null;
}

export class BalanceView {
  @ApiProperty() accountId: string;
  @ApiProperty() currency: string;
  @ApiProperty({ example: '100.00' }) cash: string;
  @ApiProperty({ example: '0.00' }) vouchers: string;
  @ApiProperty({ enum: ['active', 'overdue', 'suspended', 'released'], description: 'arrears standing, judged on cash' }) status: string;
  @ApiProperty({ type: 'string', nullable: true, description: 'when the cash went below zero (overdue, suspended, released)' }) overdueSince: string | null;
  @ApiProperty({ type: 'string', nullable: true, description: 'when the account was suspended (suspended, released)' }) suspendedAt: string | null;
  @ApiProperty({ type: 'string', nullable: true, description: "when the release notice went out; the account's queues are deleted after it" })
  releaseNoticeAt: string | null;
  @ApiProperty({ type: 'string', nullable: true, example: '50.00', description: 'low-balance alert threshold on cash plus vouchers; null: none' })
  alertThreshold: string | null;
  @ApiProperty({ type: 'string', nullable: true, description: 'when usage was last applied to this balance' }) lastUsageAppliedAt: string | null;

  static of(b: Balance): BalanceView {
    return {
      accountId: b.accountId,
      currency: b.currency,
      cash: formatAmount(b.cash),
      vouchers: formatAmount(b.vouchers),
      status: b.status,
      overdueSince: b.overdueSince?.toISOString() ?? null,
      suspendedAt: b.suspendedAt?.toISOString() ?? null,
      releaseNoticeAt: b.releaseNoticeAt?.toISOString() ?? null,
      alertThreshold: b.alertThreshold === null ? null : formatAmount(b.alertThreshold),
      lastUsageAppliedAt: b.lastUsageAt?.toISOString() ?? null,
    };
  }
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The Idempotency-Key header, the answer of a posting (201, replayed or not) and its refusals. */
const ApiPosting = (what: string) =>
  applyDecorators(
    ApiHeader({
      name: 'Idempotency-Key',
      required: true,
      description: 'the client’s key of this posting, 1-200 printable ASCII characters: the same key and body answer the same, another body 409',
      example: '9f1c2e7a-4b3d-4f8e-a6c1-2d5e7f9a0b13',
    }),
    ApiCreatedResponse({
      type: EntryView,
      description: `The ${what} ledger entry (the same one again when the key was used before with the same body).`,
      headers: { 'Idempotent-Replayed': { description: 'true when the answer is of an earlier request with this key', schema: { type: 'string', enum: ['true'] } } },
    }),
    ApiNotFoundResponse({ description: 'No such account.' }),
    ApiConflictResponse({ description: 'The Idempotency-Key was used before with another body.' }),
  );

function idempotencyKey(header: string | undefined): string {
  if (header === undefined || header === '') throw new BadRequestException('the Idempotency-Key header is required');
  if (!IDEMPOTENCY_KEY.test(header)) throw new BadRequestException('Idempotency-Key must be 1-200 printable ASCII characters');
  return header;
}

/**
 * Money in and out of an account: top-ups and operator adjustments, each idempotent by its
 * Idempotency-Key (the same key and body answer the same; the same key with another body is
 * 409), and the balance.
 */
@ApiTags('billing')
@ApiBearerAuth()
@ApiAccountIdParam()
@Controller('v1/accounts/:id')
export class LedgerController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly ledger: LedgerService,
  ) {}

  private async post(
    res: FastifyReply,
    accountId: string,
    key: string | undefined,
    kind: EntryKind,
    amount: Nano,
    request: unknown,
    by: AuditActor,
    reason?: string,
  ): Promise<EntryView> {
    const k = idempotencyKey(key);
    await this.accounts.getAccount(accountId);
    try {
      const { entry, replayed } = await this.ledger.post({
        accountId,
        kind,
        cashDelta: amount,
        idempotencyKey: `${kind}:${accountId}:${k}`,
        request,
        reason,
        audit: { actorKind: by.kind, actor: by.name, action: `ledger.${kind}`, reason: reason ?? null },
      });
      if (replayed) void res.header('idempotent-replayed', 'true');
      return EntryView.of(entry);
    } catch (err) {
      if (err instanceof IdempotencyConflictError) throw new ConflictException(err.message);
      throw err;
    }
  }

  @Roles('ops')
  @Post('topups')
  @HttpCode(201)
  @ApiPosting('topup')
  @ApiOperatorHeader()
  async topup(
    @OperatorActor() by: AuditActor,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers('idempotency-key') key: string | undefined,
    @Body() dto: TopupDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<EntryView> {
    const amount = parseAmount(dto.amount);
    if (amount <= 0n) throw new BadRequestException('amount must be more than 0');
    return this.post(res, id, key, 'topup', amount, { amount: amount.toString() }, by);
  }

  @Roles('ops')
  @Post('adjustments')
  @HttpCode(201)
  @ApiPosting('adjustment')
  @ApiOperatorHeader()
  async adjust(
    @OperatorActor() by: AuditActor,
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers('idempotency-key') key: string | undefined,
    @Body() dto: AdjustmentDto,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<EntryView> {
    const amount = parseAmount(dto.amount);
    if (amount === 0n) throw new BadRequestException('amount must not be 0');
    return this.post(res, id, key, 'adjustment', amount, { amount: amount.toString(), reason: dto.reason }, by, dto.reason);
  }

  /** The account's ledger entries, newest first, filtered by time and kind. */
  @AccountAccess()
  @Get('ledger')
  @ApiOkResponse({ type: LedgerPage, description: 'A page of the account’s ledger entries, newest first.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async entries(@Param('id', new ParseUUIDPipe()) id: string, @Query() q: LedgerQuery): Promise<LedgerPage> {
    await this.accounts.getAccount(id);
    const limit = q.limit ?? 20;
    const key = decodeCursor('ledger', q.cursor, 1, ([e]) => typeof e === 'string' && /^[1-9]\d{0,18}$/.test(e));
    const { from, to } = timeRange(q);
    const rows = await this.ledger.entries(id, {
      from,
      to,
      kinds: q.kind ? (q.kind.split(',') as EntryKind[]) : null,
      beforeId: key ? String(key[0]) : null,
      limit: limit + 1,
    });
    const { items, nextCursor } = pageOf(rows, limit, 'ledger', (e) => [e.id]);
    return { entries: items.map((e) => EntryView.of(e)), nextCursor };
  }

  @AccountAccess()
  @Get('balance')
  @ApiOkResponse({ type: BalanceView, description: 'The balance and the arrears standing.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async balance(@Param('id', new ParseUUIDPipe()) id: string): Promise<BalanceView> {
    await this.accounts.getAccount(id);
    return BalanceView.of(await this.ledger.balance(id));
  }
}
