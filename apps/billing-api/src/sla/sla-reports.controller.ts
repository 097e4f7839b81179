import {
  Body,
  ConflictException,
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProduces,
  ApiProperty,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import { IsString, MaxLength, MinLength } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { AccountReport, FleetReport, MonthClose, MonthNotClosedError, MonthNotFoundError, SLA_CSV_COLUMNS, SlaReports } from '@app/sla';
import { formatAmount } from '@app/billing';
import { monthParam, operator } from '../params';
import { AccountAccess, Roles } from '../auth/roles';
import { ApiOperatorHeader } from '../auth/principal.decorator';
import { ApiAccountIdParam, ApiMonthParam } from '../openapi';
import { SlaAccountReportView, SlaFleetReportView, SlaMonthCloseView, SlaRecomputeView } from './sla.views';

export class RecomputeDto {
  @ApiProperty({ example: 'incident 2026-11-14 attributed to a third party after review', description: 'why the closed month is computed again (audited)' })
  @IsString()
  @MinLength(1, { message: 'reason must not be empty' })
  @MaxLength(1000)
  reason: string;
}


/**
 * SLA results (sla.md §6): per account and month as JSON and as a printable page, the fleet
 * view, and the finance CSV; and the month close itself for operators (it also runs on its own
 * in the worker shortly after a month ends).
 */
@ApiTags('sla')
@ApiBearerAuth()
@Controller('v1/sla')
export class SlaReportsController {
  constructor(
    private readonly reports: SlaReports,
    private readonly close: MonthClose,
  ) {}

  @AccountAccess()
  @Get('accounts/:id/months/:month')
  @ApiAccountIdParam()
  @ApiMonthParam('the month, YYYY-MM (in the zone of the policy in force)')
  @ApiOkResponse({ type: SlaAccountReportView, description: 'The account’s month: closed (the latest revision) or open (so far).' })
  @ApiNotFoundResponse({ description: 'No such account, or it did not exist in the month.' })
  async account(@Param('id', ParseUUIDPipe) id: string, @Param('month') m: string): Promise<AccountReport> {
    const r = await this.reports.account(id, monthParam(m));
    if (!r) throw new NotFoundException(`no SLA result for account ${id} in ${m}`);
    return r;
  }

  @AccountAccess()
  @Get('accounts/:id/months/:month/report.html')
  @ApiProduces('text/html')
  @ApiAccountIdParam()
  @ApiMonthParam('the month, YYYY-MM (in the zone of the policy in force)')
  @ApiOkResponse({ description: 'The account’s month as a printable page.', schema: { type: 'string', example: '<!doctype html>…' } })
  @ApiNotFoundResponse({ description: 'No such account, or it did not exist in the month.' })
  @Header('content-type', 'text/html; charset=utf-8')
  async accountHtml(@Param('id', ParseUUIDPipe) id: string, @Param('month') m: string): Promise<string> {
    const r = await this.reports.account(id, monthParam(m));
    if (!r) throw new NotFoundException(`no SLA result for account ${id} in ${m}`);
    return this.reports.html(r);
  }

  @Get('months/:month')
  @ApiMonthParam('the month, YYYY-MM (in the zone of the policy in force)')
  @ApiOkResponse({ type: SlaFleetReportView, description: 'The fleet: per region availability, probes and outages; the accounts’ results once closed.' })
  async fleet(@Param('month') m: string): Promise<FleetReport> {
    return this.reports.fleet(monthParam(m));
  }

  @Get('months/:month/results.csv')
  @ApiProduces('text/csv')
  @ApiMonthParam('a closed month, YYYY-MM')
  @ApiQuery({ name: 'bom', required: false, type: 'string', description: 'true or 1: a UTF-8 byte-order mark first (spreadsheets); anything else: none', example: 'true' })
  @ApiOkResponse({
    description: `The month’s latest result per account: RFC 4180 CSV, UTF-8, one header row; columns ${SLA_CSV_COLUMNS.join(', ')}.`,
    schema: { type: 'string', example: `${SLA_CSV_COLUMNS.join(',')}\r\n` },
    headers: {
      'Content-Disposition': { description: 'attachment; filename="sla-results-<month>.csv"', schema: { type: 'string' } },
      'X-Csv-Columns': { description: 'the columns, comma-separated', schema: { type: 'string', example: SLA_CSV_COLUMNS.join(',') } },
    },
  })
  @ApiConflictResponse({ description: 'The month is not closed.' })
  async csv(@Param('month') m: string, @Query('bom') bom: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    try {
      const stream = await this.reports.csv(monthParam(m), { bom: bom === 'true' || bom === '1' });
      await reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="sla-results-${m}.csv"`)
        .header('x-csv-columns', SLA_CSV_COLUMNS.join(','))
        .send(stream);
    } catch (err) {
      if (err instanceof MonthNotFoundError) throw new ConflictException(err.message);
      throw err;
    }
  }

  @Roles('ops')
  @Post('months/:month/close')
  @HttpCode(200)
  @ApiOperatorHeader({ required: true, description: 'who closes the month (audited)' })
  @ApiMonthParam('an ended month, YYYY-MM')
  @ApiOkResponse({ type: SlaMonthCloseView, description: 'The close: closed false when the month was closed before (nothing changed).' })
  @ApiConflictResponse({ description: 'The month has not ended.' })
  async closeMonth(@Param('month') m: string, @Headers('x-operator') who: string | undefined): Promise<SlaMonthCloseView> {
    const by = operator(who);
    const target = monthParam(m);
    if (!(await this.close.ended(target))) throw new ConflictException(`month ${m} has not ended yet`);
    const r = await this.close.close(target, by);
    return { month: r.month, closed: r.closed, revision: r.revision, accounts: r.accounts, belowTarget: r.breaches, credits: formatAmount(r.creditsNano), ms: r.ms };
  }

  @Roles('ops')
  @Post('months/:month/recompute')
  @HttpCode(200)
  @ApiOperatorHeader({ required: true, description: 'who recomputes the month (audited)' })
  @ApiMonthParam('a closed month, YYYY-MM')
  @ApiOkResponse({ type: SlaRecomputeView, description: 'The new revision and what changed.' })
  @ApiConflictResponse({ description: 'The month is not closed.' })
  async recompute(@Param('month') m: string, @Headers('x-operator') who: string | undefined, @Body() body: RecomputeDto): Promise<SlaRecomputeView> {
    const actor = operator(who);
    try {
      const r = await this.close.recompute(monthParam(m), actor, body.reason);
      return { month: m, revision: r.revision, changed: r.changed, creditChange: formatAmount(r.creditDeltaNano) };
    } catch (err) {
      if (err instanceof MonthNotClosedError) throw new ConflictException(err.message);
      throw err;
    }
  }
}
