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
import { ApiBearerAuth, ApiHeader, ApiProduces, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsString, MaxLength, MinLength } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { AccountReport, FleetReport, MonthClose, MonthNotClosedError, MonthNotFoundError, SLA_CSV_COLUMNS, SlaReports } from '@app/sla';
import { formatAmount } from '@app/billing';
import { monthParam, operator } from '../params';
import { Roles } from '../auth/roles';

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

  @Get('accounts/:id/months/:month')
  async account(@Param('id', ParseUUIDPipe) id: string, @Param('month') m: string): Promise<AccountReport> {
    const r = await this.reports.account(id, monthParam(m));
    if (!r) throw new NotFoundException(`no SLA result for account ${id} in ${m}`);
    return r;
  }

  @Get('accounts/:id/months/:month/report.html')
  @ApiProduces('text/html')
  @Header('content-type', 'text/html; charset=utf-8')
  async accountHtml(@Param('id', ParseUUIDPipe) id: string, @Param('month') m: string): Promise<string> {
    const r = await this.reports.account(id, monthParam(m));
    if (!r) throw new NotFoundException(`no SLA result for account ${id} in ${m}`);
    return this.reports.html(r);
  }

  @Get('months/:month')
  async fleet(@Param('month') m: string): Promise<FleetReport> {
    return this.reports.fleet(monthParam(m));
  }

  @Get('months/:month/results.csv')
  @ApiProduces('text/csv')
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
  @ApiHeader({ name: 'X-Operator', required: true })
  async closeMonth(@Param('month') m: string, @Headers('x-operator') who: string | undefined) {
    const by = operator(who);
    const target = monthParam(m);
    if (!(await this.close.ended(target))) throw new ConflictException(`month ${m} has not ended yet`);
    const r = await this.close.close(target, by);
    return { month: r.month, closed: r.closed, revision: r.revision, accounts: r.accounts, belowTarget: r.breaches, credits: formatAmount(r.creditsNano), ms: r.ms };
  }

  @Roles('ops')
  @Post('months/:month/recompute')
  @HttpCode(200)
  @ApiHeader({ name: 'X-Operator', required: true })
  async recompute(@Param('month') m: string, @Headers('x-operator') who: string | undefined, @Body() body: RecomputeDto) {
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
