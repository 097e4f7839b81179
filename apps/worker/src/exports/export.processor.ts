import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';
import { JobQueue } from '@app/common';
import { ExportJobStore, RUN_EXPORT_JOB } from '@app/billing/exports';

/**
 * Thin adapter: runs one export job (export_jobs row) into EXPORT_DIR. One at a time per
 * worker: an export is a long sequential read, and two would only share the same disk and CPU.
 */
@Processor(JobQueue.Exports, { concurrency: 1 })
export class ExportProcessor extends WorkerHost {
  private readonly logger = new Logger(ExportProcessor.name);
  private readonly store: ExportJobStore;

  constructor(
    pool: PgPool,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super();
    this.store = new ExportJobStore(pool);
  }

  async process(job: Job<{ id: string }>): Promise<{ rows: number; bytes: number }> {
    if (job.name !== RUN_EXPORT_JOB) throw new Error(`no handler for job ${job.name} on ${JobQueue.Exports}`);
    const id = String(job.data.id);
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`job ${job.id}: not an export id: ${id.slice(0, 40)}`);
    const t0 = performance.now();
    try {
      const done = await this.store.run(id, this.config.exports.dir);
      this.logger.log(`export ${id}: ${done.rows} rows, ${done.bytes} bytes in ${Math.round(performance.now() - t0)} ms`);
      return { rows: done.rows, bytes: done.bytes };
    } catch (err) {
      this.logger.warn(`export ${id} failed (attempt ${job.attemptsMade + 1}): ${(err as Error).message}`);
      throw err;
    }
  }
}
