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
import { ApiBearerAuth, ApiProduces, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
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
  EXPORT_COLUMNS,
  EXPORT_KINDS,
  exportCsv,
  ExportFilter,
  exportJobId,
  ExportJobStore,
  ExportJobView,
  ExportKind,
  ExportRangeError,
  MAX_JOB_DAYS,
  parseExportFilter,
  RUN_EXPORT_JOB,
} from '@app/billing/exports';
import { Roles } from '../auth/roles';

export class CreateExportDto {
  @ApiProperty({ enum: EXPORT_KINDS })
  @IsIn(EXPORT_KINDS as ExportKind[], { message: `kind must be one of ${EXPORT_KINDS.join(', ')}` })
  kind: ExportKind;

  @ApiProperty({ example: '2026-11-01T00:00:00+08:00', description: 'inclusive, ISO 8601 with offset (or a date: midnight UTC)' })
  @IsString()
  from: string;

  @ApiProperty({ example: '2026-12-01T00:00:00+08:00', description: 'exclusive' })
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

function filterOf(q: { from?: unknown; to?: unknown; accountId?: unknown }, maxDays?: number): ExportFilter {
  try {
    return parseExportFilter(q, maxDays);
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
 * usage over [from, to), optionally of one account, streamed from the database as they are
 * read; and export jobs for large ranges, run by the worker into EXPORT_DIR.
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
  ) {
    this.jobs = new ExportJobStore(pool);
  }

  private async download(kind: ExportKind, q: Record<string, string | undefined>, reply: FastifyReply, name: string): Promise<void> {
    const filter = filterOf(q);
    const bom = bomOf(q.bom);
    if (this.downloads >= MAX_CONCURRENT_DOWNLOADS) {
      void reply.header('retry-after', '10');
      throw new ServiceUnavailableException(
        `${MAX_CONCURRENT_DOWNLOADS} exports are streaming from this process already: try again shortly, or POST /v1/exports for a file`,
      );
    }
    this.downloads++;
    const stream = exportCsv(this.pool, kind, filter, { bom });
    // 'close' comes once the stream ended, failed or was destroyed (the client went away)
    stream.once('close', () => this.downloads--);
    await reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}-${filter.from.slice(0, 10)}-${filter.to.slice(0, 10)}.csv"`)
      .header('x-csv-columns', EXPORT_COLUMNS[kind].join(','))
      .send(stream);
  }

  @Get('ledger.csv')
  @ApiProduces('text/csv')
  async ledger(@Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('ledger', q, reply, 'ledger');
  }

  @Get('usage-hourly.csv')
  @ApiProduces('text/csv')
  async usageHourly(@Query() q: Record<string, string | undefined>, @Res() reply: FastifyReply): Promise<void> {
    await this.download('usage_hourly', q, reply, 'usage-hourly');
  }

  @Roles('ops', 'finance')
  @Post()
  @HttpCode(202)
  async create(@Body() body: CreateExportDto): Promise<Pick<ExportJobView, 'id' | 'status'>> {
    const filter = filterOf(body, MAX_JOB_DAYS);
    const job = await this.jobs.create(body.kind, filter, body.bom ?? false);
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
    const name = job.kind === 'ledger' ? 'ledger' : 'usage-hourly';
    await reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-length', String(size))
      .header('content-disposition', `attachment; filename="${name}-${job.from.slice(0, 10)}-${job.to.slice(0, 10)}.csv"`)
      .header('x-csv-columns', EXPORT_COLUMNS[job.kind].join(','))
      .send(createReadStream(path));
  }
}
