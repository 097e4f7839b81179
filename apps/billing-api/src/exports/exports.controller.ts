import { InjectQueue } from '@nestjs/bullmq';
import {
  applyDecorators,
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
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiProduces,
  ApiProperty,
  ApiPropertyOptional,
  ApiQuery,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
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
  MAX_DOWNLOAD_DAYS,
  MAX_DOWNLOAD_MONTHS,
  MAX_JOB_DAYS,
  MAX_JOB_MONTHS,
  MONTH_KINDS,
  parseExportFilter,
  parseMonthExportFilter,
  RUN_EXPORT_JOB,
} from '@app/billing/exports';
import { AccountAccess, Roles } from '../auth/roles';
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

/** An export job as the API shows it (GET /v1/exports/{id}). */
export class ExportJob implements ExportJobView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: EXPORT_KINDS }) kind: ExportKind;
  @ApiProperty({ example: '2026-11-01T00:00:00.000Z', description: `inclusive: ISO 8601 (UTC); for ${MONTH_KINDS.join(', ')} a billing month, YYYY-MM` }) from: string;
  @ApiProperty({ example: '2026-12-01T00:00:00.000Z', description: `exclusive: ISO 8601 (UTC); for ${MONTH_KINDS.join(', ')} a billing month, YYYY-MM` }) to: string;
  @ApiProperty({ nullable: true, type: 'string', format: 'uuid', description: 'only this account; null: every account' }) accountId: string | null;
  @ApiProperty({ description: 'the file starts with a UTF-8 byte-order mark' }) bom: boolean;
  @ApiProperty({ enum: ['pending', 'running', 'done', 'failed'], description: 'done: GET /v1/exports/{id}/file has the file' }) status: ExportJobView['status'];
  @ApiProperty({ type: 'integer', description: 'rows written so far (all of them once done)' }) rows: number;
  @ApiProperty({ type: 'integer', description: 'bytes written so far' }) bytes: number;
  @ApiProperty({ nullable: true, type: 'string', description: 'why the last run failed' }) error: string | null;
  @ApiProperty() createdAt: string;
  @ApiProperty({ nullable: true, type: 'string' }) startedAt: string | null;
  @ApiProperty({ nullable: true, type: 'string' }) finishedAt: string | null;
}

/** An export job just requested: the worker runs it. */
export class ExportJobAccepted implements Pick<ExportJobView, 'id' | 'status'> {
  @ApiProperty({ format: 'uuid', description: 'GET /v1/exports/{id} for its progress' }) id: string;
  @ApiProperty({ enum: ['pending', 'running', 'done', 'failed'], example: 'pending' }) status: ExportJobView['status'];
}

const CSV_HEADERS = (kind: ExportKind) => ({
  'Content-Disposition': {
    description: `attachment; filename="${downloadName(kind, isMonthKind(kind) ? { from: '2026-11', to: '2026-12' } : { from: '2026-11-01', to: '2026-12-01' })}"` + ' (the range’s bounds)',
    schema: { type: 'string' },
  },
  'X-Csv-Columns': { description: 'the columns, comma-separated', schema: { type: 'string', example: EXPORT_COLUMNS[kind].join(',') } },
});

/** The OpenAPI answer of a CSV of `kind`: RFC 4180, UTF-8, one header row. */
const ApiCsvResponse = (kind: ExportKind, what: string) =>
  ApiOkResponse({
    description: `${what}: RFC 4180 CSV, UTF-8 (a byte-order mark first when asked), one header row; columns ${EXPORT_COLUMNS[kind].join(', ')}.`,
    schema: { type: 'string', example: `${EXPORT_COLUMNS[kind].join(',')}\r\n` },
    headers: CSV_HEADERS(kind),
  });

/** The query of a CSV download of `kind` (what {@link filterOf} and {@link bomOf} read), its answer and its refusals. */
const ApiCsvDownload = (kind: ExportKind, what: string) =>
  applyDecorators(
    ApiProduces('text/csv'),
    ...(isMonthKind(kind)
      ? [
          ApiQuery({ name: 'from', required: true, type: 'string', description: `first billing month, YYYY-MM (inclusive); at most ${MAX_DOWNLOAD_MONTHS} months before to`, example: '2026-11' }),
          ApiQuery({ name: 'to', required: true, type: 'string', description: 'billing month after the last, YYYY-MM (exclusive)', example: '2026-12' }),
        ]
      : [
          ApiQuery({
            name: 'from',
            required: true,
            type: 'string',
            description: `inclusive: ISO 8601 with an offset, or a date (midnight UTC); at most ${MAX_DOWNLOAD_DAYS} days before to`,
            example: '2026-11-01T00:00:00+08:00',
          }),
          ApiQuery({ name: 'to', required: true, type: 'string', description: 'exclusive: ISO 8601 with an offset, or a date (midnight UTC)', example: '2026-12-01T00:00:00+08:00' }),
        ]),
    ApiQuery({ name: 'accountId', required: false, type: 'string', format: 'uuid', description: 'only this account', example: '0b5e3a52-8a4f-4c53-9d0e-6a1f3f2a7c10' }),
    ApiQuery({
      name: 'bom',
      required: false,
      description: 'true or 1: a UTF-8 byte-order mark first (spreadsheets); false, 0 or absent: none',
      schema: { type: 'string', enum: ['true', 'false', '1', '0'], default: 'false', example: 'true' },
    }),
    ApiCsvResponse(kind, what),
    ApiServiceUnavailableResponse({
      description: `${MAX_CONCURRENT_DOWNLOADS} downloads are streaming from this process already: try again shortly, or POST /v1/exports for a file.`,
      headers: { 'Retry-After': { description: 'seconds', schema: { type: 'string', example: '10' } } },
    }),
  );

const ApiExportIdParam = () => ApiParam({ name: 'id', description: 'the export job’s id (UUID)', format: 'uuid', example: '5d9f6c0e-2b7a-4e1f-9a43-0c8e2f1d7b36' });

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

  @AccountAccess({ query: 'accountId' })
  @Get('ledger.csv')
  @ApiCsvDownload('ledger', 'The ledger entries of [from, to)')
  async ledger(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('ledger', q, reply, by);
  }

  @AccountAccess({ query: 'accountId' })
  @Get('usage-hourly.csv')
  @ApiCsvDownload('usage_hourly', 'The hourly usage of [from, to)')
  async usageHourly(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('usage_hourly', q, reply, by);
  }

  @AccountAccess({ query: 'accountId' })
  @Get('bills.csv')
  @ApiCsvDownload('bills', 'The monthly bills of the billing months [from, to)')
  async bills(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('bills', q, reply, by);
  }

  @AccountAccess({ query: 'accountId' })
  @Get('bill-lines.csv')
  @ApiCsvDownload('bill_lines', 'The lines of the monthly bills of the billing months [from, to)')
  async billLines(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('bill_lines', q, reply, by);
  }

  @Get('sla-results.csv')
  @ApiCsvDownload('sla_results', 'The SLA results of the closed months among [from, to): each account’s latest revision')
  async slaResults(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('sla_results', q, reply, by);
  }

  @Get('audit.csv')
  @ApiCsvDownload('audit', 'The audit trail entries of [from, to) (by their time)')
  async audit(@OperatorActor() by: AuditActor, @Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('audit', q, reply, by);
  }

  @Roles('ops', 'finance')
  @Post()
  @HttpCode(202)
  @ApiOperatorHeader()
  @ApiAcceptedResponse({ type: ExportJobAccepted, description: 'The export job, queued for the worker.' })
  async create(@OperatorActor() by: AuditActor, @Body() body: CreateExportDto): Promise<Pick<ExportJobView, 'id' | 'status'>> {
    const filter = filterOf(body.kind, body, true);
    const job = await this.jobs.create(body.kind, filter, body.bom ?? false, by);
    await this.queue.add(RUN_EXPORT_JOB, { id: job.id }, { jobId: exportJobId(job.id), removeOnComplete: 1000, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } });
    return { id: job.id, status: job.status };
  }

  @Get(':id')
  @ApiExportIdParam()
  @ApiOkResponse({ type: ExportJob, description: 'The export job and its progress.' })
  @ApiNotFoundResponse({ description: 'No such export job.' })
  async get(@Param('id', ParseUUIDPipe) id: string): Promise<ExportJobView> {
    const job = await this.jobs.get(id);
    if (!job) throw new NotFoundException(`no export ${id}`);
    const { file: _file, ...view } = job;
    return view;
  }

  @Get(':id/file')
  @ApiProduces('text/csv')
  @ApiExportIdParam()
  @ApiOkResponse({
    description: 'The file of a finished export job: RFC 4180 CSV, UTF-8, one header row; the columns of its kind (X-Csv-Columns).',
    schema: { type: 'string', example: `${EXPORT_COLUMNS.ledger.join(',')}\r\n` },
    headers: {
      'Content-Disposition': { description: 'attachment; filename="<kind>-<from>-<to>.csv"', schema: { type: 'string' } },
      'X-Csv-Columns': { description: 'the columns, comma-separated', schema: { type: 'string' } },
    },
  })
  @ApiNotFoundResponse({ description: 'No such export job, it is not done, or its file is gone.' })
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
