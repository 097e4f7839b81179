import { InjectQueue } from '@nestjs/bullmq';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Res,
  ServiceUnavailableException,
} from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiProperty, ApiPropertyOptional, ApiQuery, ApiTags } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString } from 'class-validator';
import type { Queue } from 'bullmq';
import type { FastifyReply } from 'fastify';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { JobQueue } from '@app/common';
import {
  downloadName,
  EXPORT_COLUMNS,
  EXPORT_KINDS,
  exportAudit,
  exportCsv,
  ExportFilter,
  exportJobId,
  ExportJobStore,
  ExportJobView,
  ExportKind,
  ExportRangeError,
  isMonthKind,
  MAX_JOB_DAYS,
  MAX_JOB_MONTHS,
  parseExportFilter,
  parseMonthExportFilter,
  RUN_EXPORT_JOB,
} from '@app/billing/exports';
import { Roles } from '../auth/roles';
import { ApiOperatorHeader, OperatorActor } from '../auth/principal.decorator';
import { AuditActor, AuditTrail } from '@app/audit';

export class CreateExportDto {
  @ApiProperty({ enum: EXPORT_KINDS })
  @IsIn(EXPORT_KINDS as ExportKind[], { message: `kind must be one of ${EXPORT_KINDS.join(', ')}` })
  kind: ExportKind;

  @ApiProperty({
    example: '2026-11-01T00:00:00+08:00',
    description: 'inclusive, ISO 8601 with offset (or a date: midnight UTC); for bills and bill_lines a billing month, YYYY-MM',
  })
  @IsString()
  from: string;

  @ApiProperty({ example: '2026-12-01T00:00:00+08:00', description: 'exclusive (bills and bill_lines: a month, YYYY-MM)' })
  @IsString()
  to: string;

  @ApiPropertyOptional({ description: 'only this account' })
  @IsOptional()
  @IsString()
  accountId?: string;

  @ApiPropertyOptional({ description: 'a UTF-8 byte-order mark first (spreadsheets)' })
  @IsOptional()
  @IsBoolean()
  bom?: boolean;
}

/** The filter of an export of `kind`: a time range, or a month range for bills and bill lines (`job`: the export jobs' longer limit). */
function filterOf(kind: ExportKind, q: { from?: unknown; to?: unknown; accountId?: unknown }, job = false): ExportFilter {
  try {
    if (isMonthKind(kind)) return parseMonthExportFilter(q, job ? MAX_JOB_MONTHS : undefined);
    return parseExportFilter(q, job ? MAX_JOB_DAYS : undefined);
  } catch (err) {
    if (err instanceof ExportRangeError) throw new BadRequestException(err.message);
    throw err;
  }
}

/**
 * Downloads streaming at once per billing-api process: each holds a connection of the pool (16
 * by default) in its snapshot for as long as the client takes to read, so a few slow readers
 * must not starve the other endpoints. Beyond it: 503, and the export jobs are the way.
 */
export const MAX_CONCURRENT_DOWNLOADS = 4;

function bomOf(v: string | undefined): boolean {
  if (v === undefined || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new BadRequestException('bom must be true or false');
}

/**
 * Finance CSV exports (billing.md §6; columns in the README, "Exports"): the ledger and hourly
 * usage over [from, to), monthly bills and bill lines over [from, to) billing months, optionally
 * of one account, streamed from the database as they are read; and export jobs for large
 * ranges, run by the worker into EXPORT_DIR.
 */
@ApiTags('exports')
@ApiBearerAuth()
@Controller('v1/exports')
export class ExportsController {
  private readonly jobs: ExportJobStore;
  private downloads = 0;

  constructor(
    private readonly pool: PgPool,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(JobQueue.Exports) private readonly queue: Queue,
    private readonly trail: AuditTrail,
  ) {
    this.jobs = new ExportJobStore(pool);
  }

  /** Streams `kind` over the query's range; the download is audited (who took what) before it starts. */
  private async download(kind: ExportKind, q: Record<string, string | undefined>, reply: FastifyReply, by: AuditActor): Promise<void> {
    const filter = filterOf(kind, q);
    const bom = bomOf(q.bom);
    if (this.downloads >= MAX_CONCURRENT_DOWNLOADS) {
      void reply.header('retry-after', '10');
      throw new ServiceUnavailableException(
        `${MAX_CONCURRENT_DOWNLOADS} exports are streaming from this process already: try again shortly, or POST /v1/exports for a file`,
      );
    }
    await this.trail.append(exportAudit('export.download', kind, filter, by));
    this.downloads++;
    const stream = exportCsv(this.pool, kind, filter, { bom });
    // 'close' comes once the stream ended, failed or was destroyed (the client went away)
    stream.once('close', () => this.downloads--);
    await reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${downloadName(kind, filter)}"`)
      .header('x-csv-columns', EXPORT_COLUMNS[kind].join(','))
      .send(stream);
  }

  @Get('ledger.csv')
  @ApiProduces('text/csv')
  async ledger(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('ledger', q, reply, by);
  }

  @Get('usage-hourly.csv')
  @ApiProduces('text/csv')
  async usageHourly(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('usage_hourly', q, reply, by);
  }

  @Get('bills.csv')
  @ApiProduces('text/csv')
  @ApiQuery({ name: 'from', required: true, description: 'first billing month, YYYY-MM (inclusive)', example: '2026-11' })
  @ApiQuery({ name: 'to', required: true, description: 'billing month after the last, YYYY-MM (exclusive)', example: '2026-12' })
  @ApiQuery({ name: 'accountId', required: false })
  @ApiQuery({ name: 'bom', required: false, description: 'true: a UTF-8 byte-order mark first' })
  async bills(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('bills', q, reply, by);
  }

  @Get('bill-lines.csv')
  @ApiProduces('text/csv')
  @ApiQuery({ name: 'from', required: true, description: 'first billing month, YYYY-MM (inclusive)', example: '2026-11' })
  @ApiQuery({ name: 'to', required: true, description: 'billing month after the last, YYYY-MM (exclusive)', example: '2026-12' })
  @ApiQuery({ name: 'accountId', required: false })
  @ApiQuery({ name: 'bom', required: false, description: 'true: a UTF-8 byte-order mark first' })
  async billLines(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('bill_lines', q, reply, by);
  }

  @Get('audit.csv')
  @ApiProduces('text/csv')
  @ApiQuery({ name: 'from', required: true, description: 'entries at or after (ISO 8601 with offset, or a date)', example: '2026-11-01T00:00:00Z' })
  @ApiQuery({ name: 'to', required: true, description: 'entries before', example: '2026-12-01T00:00:00Z' })
  @ApiQuery({ name: 'accountId', required: false, description: 'only this account’s entries' })
  @ApiQuery({ name: 'bom', required: false, description: 'true: a UTF-8 byte-order mark first' })
  async audit(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('audit', q, reply, by);
  }

  @Roles('ops', 'finance')
  @Post()
  @HttpCode(202)
  @ApiOperatorHeader()
  async create(@OperatorActor() by: AuditActor, @Body() body: CreateExportDto): Promise<Pick<ExportJobView, 'id' | 'status'>> {
    const filter = filterOf(body.kind, body, true);
    const job = await this.jobs.create(body.kind, filter, body.bom ?? false, by);
    await this.queue.add(RUN_EXPORT_JOB, { id: job.id }, { jobId: exportJobId(job.id), removeOnComplete: 1000, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } });
    return { id: job.id, status: job.status };
  }

  @Get(':id')
  async get(@Param('id', ParseUUIDPipe) id: string): Promise<ExportJobView> {
    const job = await this.jobs.get(id);
    if (!job) throw new NotFoundException(`no export ${id}`);
    const { file: _file, ...view } = job;
    return view;
  }

  @Get(':id/file')
  @ApiProduces('text/csv')
  async file(@Param('id', ParseUUIDPipe) id: string, @Res() reply: FastifyReply): Promise<void> {
    const job = await this.jobs.get(id);
    if (!job) throw new NotFoundException(`no export ${id}`);
    if (job.status !== 'done' || !job.file) throw new NotFoundException(`export ${id} is ${job.status}: its file is not ready`);
    const path = join(this.config.exports.dir, job.file);
    const size = await stat(path).then((s) => s.size, () => null);
    if (size === null) throw new NotFoundException(`the file of export ${id} is gone`);
    await reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-length', String(size))
      .header('content-disposition', `attachment; filename="${downloadName(job.kind, job)}"`)
      .header('x-csv-columns', EXPORT_COLUMNS[job.kind].join(','))
      .send(createReadStream(path));
  }
}
