import {
  BadRequestException,
  ConflictException,
  Controller,
  Get,
  Headers,
  HttpCode,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProperty,
  ApiPropertyOptional,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import { Bill, BillClose, BillLine, formatAmount, MonthNotEndedError, MonthOrderError } from '@app/billing';
import { isMonth } from '@app/common';
import { monthParam, operator } from '../params';
import { decodeCursor, pageOf } from '../cursor';
import { AccountAccess, Roles } from '../auth/roles';
import { ApiOperatorHeader } from '../auth/principal.decorator';
import { ApiAccountIdParam, ApiMonthParam } from '../openapi';


export class BillLineView {
  @ApiProperty({ example: '2026-11', description: 'the month the usage was in (a late line: an earlier, closed month)' }) usageMonth: string;
  @ApiProperty({ example: 'gz', description: "'' for a late line or usage without hourly statements" }) region: string;
  @ApiProperty({ example: 'send', description: "action class; 'late' for late usage" }) actionClass: string;
  @ApiProperty({ example: '120000', description: 'integer as a string' }) calls: string;
  @ApiProperty({ example: '118000', description: 'integer as a string' }) billableCalls: string;
  @ApiProperty({ example: '0.236', description: 'exact decimal string' }) amount: string;
  @ApiProperty() late: boolean;

  static of(l: BillLine): BillLineView {
    return {
      usageMonth: l.usageMonth,
      region: l.region,
      actionClass: l.actionClass,
      calls: l.calls.toString(),
      billableCalls: l.billableCalls.toString(),
      amount: formatAmount(l.amount),
      late: l.late,
    };
  }
}

export class BillView {
  @ApiProperty() accountId: string;
  @ApiProperty({ example: '2026-11' }) month: string;
  @ApiProperty({ example: 'CNY' }) currency: string;
  @ApiProperty({ description: 'cash + vouchers at the start (the previous bill’s closing balance)' }) openingBalance: string;
  @ApiProperty() topups: string;
  @ApiProperty({ description: 'usage charged in the month (late usage included), exact' }) usageTotal: string;
  @ApiProperty({ description: 'the part of the usage paid from vouchers' }) vouchersUsed: string;
  @ApiProperty({ description: 'the part of the usage paid in cash' }) cashCharged: string;
  @ApiProperty({ description: 'SLA credits granted as vouchers' }) slaCredits: string;
  @ApiProperty({ description: 'other voucher grants and uses' }) otherVouchers: string;
  @ApiProperty({ description: 'operator adjustments (and rounding entries not of a bill)' }) adjustments: string;
  @ApiProperty() refunds: string;
  @ApiProperty({ description: 'amount due − total, posted as a `rounding` ledger entry' }) rounding: string;
  @ApiProperty() closingBalance: string;
  @ApiProperty({ description: 'the exact total (= usageTotal)' }) total: string;
  @ApiProperty({ example: '12.35', description: 'the total rounded half-up to 0.01' }) amountDue: string;
  @ApiProperty() lateUsage: string;
  @ApiProperty({ example: '2026-12-01T00:05:00.000Z' }) createdAt: string;
  @ApiPropertyOptional({ type: [BillLineView] }) lines?: BillLineView[];

  static of(b: Bill): BillView {
    return {
      accountId: b.accountId,
      month: b.month,
      currency: b.currency,
      openingBalance: formatAmount(b.openingBalance),
      topups: formatAmount(b.topups),
      usageTotal: formatAmount(b.usageTotal),
      vouchersUsed: formatAmount(b.vouchersUsed),
      cashCharged: formatAmount(b.cashCharged),
      slaCredits: formatAmount(b.slaCredits),
      otherVouchers: formatAmount(b.otherVouchers),
      adjustments: formatAmount(b.adjustments),
      refunds: formatAmount(b.refunds),
      rounding: formatAmount(b.rounding),
      closingBalance: formatAmount(b.closingBalance),
      total: formatAmount(b.total),
      amountDue: b.amountDue,
      lateUsage: formatAmount(b.lateUsage),
      createdAt: b.createdAt.toISOString(),
      ...(b.lines ? { lines: b.lines.map(BillLineView.of) } : {}),
    };
  }
}

export class BillPage {
  @ApiProperty({ type: [BillView] }) bills: BillView[];
  @ApiProperty({ type: 'string', nullable: true, description: 'pass as `cursor` for the next page; null at the end' }) nextCursor: string | null;
}

export class BillCloseView {
  @ApiProperty() month: string;
  @ApiProperty({ description: 'false: closed before; nothing changed' }) closed: boolean;
  @ApiProperty() accounts: number;
  @ApiProperty({ description: 'sum of the bills’ exact totals' }) total: string;
}

/** Monthly bills (billing.md §6): per account, newest first, and the month close for operators. */
@ApiTags('bills')
@ApiBearerAuth()
@Controller('v1')
export class BillsController {
  constructor(private readonly bills: BillClose) {}

  @AccountAccess()
  @Get('accounts/:id/bills')
  @ApiAccountIdParam()
  @ApiQuery({ name: 'cursor', required: false, type: 'string', description: 'nextCursor of the page before', example: 'WyJiaWxscyIsIjIwMjYtMTAiXQ' })
  @ApiQuery({ name: 'limit', required: false, type: 'integer', minimum: 1, maximum: 100, default: 12, description: 'bills per page, 1-100', example: 12 })
  @ApiOkResponse({ type: BillPage, description: 'A page of the account’s bills, newest first, without their lines.' })
  @ApiNotFoundResponse({ description: 'No such account.' })
  async list(@Param('id', ParseUUIDPipe) id: string, @Query('cursor') cursor?: string, @Query('limit') limitText?: string): Promise<BillPage> {
    const key = decodeCursor('bills', cursor, 1, ([m]) => typeof m === 'string' && isMonth(m));
    const limit = limitText === undefined || limitText === '' ? 12 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new BadRequestException('limit must be an integer from 1 to 100');
    const rows = await this.bills.list(id, limit + 1, key ? String(key[0]) : undefined);
    if (rows.length === 0 && !(await this.bills.hasAccount(id))) throw new NotFoundException(`account ${id} does not exist`);
    const { items, nextCursor } = pageOf(rows, limit, 'bills', (b) => [b.month]);
    return { bills: items.map(BillView.of), nextCursor };
  }

  @AccountAccess()
  @Get('accounts/:id/bills/:month')
  @ApiAccountIdParam()
  @ApiMonthParam('the billing month, YYYY-MM (in BILLING_TIME_ZONE)')
  @ApiOkResponse({ type: BillView, description: 'The bill, with its lines.' })
  @ApiNotFoundResponse({ description: 'No bill of the account for the month.' })
  async get(@Param('id', ParseUUIDPipe) id: string, @Param('month') m: string): Promise<BillView> {
    const bill = await this.bills.get(id, monthParam(m));
    if (!bill) throw new NotFoundException(`no bill for account ${id} in ${m}`);
    return BillView.of(bill);
  }

  @Roles('ops')
  @Post('bills/:month/close')
  @HttpCode(200)
  @ApiOperatorHeader({ required: true, description: 'who closes the month (recorded)' })
  @ApiMonthParam('the billing month to close, YYYY-MM (in BILLING_TIME_ZONE)')
  @ApiOkResponse({ type: BillCloseView, description: 'The close: closed false when the month was closed before (nothing changed).' })
  @ApiConflictResponse({ description: 'The month has not ended, or the month before it is not closed (months close in order).' })
  async close(@Param('month') m: string, @Headers('x-operator') who: string | undefined): Promise<BillCloseView> {
    const by = operator(who);
    try {
      const r = await this.bills.close(monthParam(m), { operator: by });
      return { month: r.month, closed: r.closed, accounts: r.accounts, total: formatAmount(r.totalNano) };
    } catch (err) {
      if (err instanceof MonthNotEndedError || err instanceof MonthOrderError) throw new ConflictException(err.message);
      throw err;
    }
  }
}
