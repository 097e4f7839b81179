import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Job, Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { APPLY_USAGE_JOB, JobQueue } from '@app/common';
import { PgPool } from '@app/db';
import { enqueueUsage, UsageApplier } from '@app/billing';
import { WorkerMetrics } from '../metrics/worker-metrics';

/**
 * Applies relayed usage outbox rows (each row once, however often its job arrives). Jobs take
 * milliseconds, so a short lock lets another worker take over the job of a worker that died
 * within seconds; a job stalled many times is not given up (its rows would wait for a resend).
 */
@Processor(JobQueue.Usage, { lockDuration: 5000, stalledInterval: 5000, maxStalledCount: 100 })
export class UsageProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly applier: UsageApplier,
    private readonly metrics: WorkerMetrics,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.usage.workerConcurrency;
  }

  async process(job: Job<{ ids: string[] }>): Promise<{ rows: number }> {
    if (job.name !== APPLY_USAGE_JOB) throw new Error(`no handler for job ${job.name} on ${JobQueue.Usage}`);
    const { rows, lagSeconds } = await this.applier.applyOutbox(job.data.ids);
    this.metrics.usageApplied(lagSeconds);
    return { rows };
  }
}

/**
 * Sends outbox rows that are still unapplied a while after their commit to the usage queue
 * again: the relay's job may have been lost (Redis flushed or failed over, a queue-api process
 * gone before it relayed). Rows applied meanwhile are skipped by the applier.
 */
@Injectable()
export class UsageResender {
  private readonly logger = new Logger(UsageResender.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    @InjectQueue(JobQueue.Usage) private readonly queue: Queue,
  ) {}

  async resend(limit = 5000): Promise<{ resent: number }> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM usage_outbox WHERE created_at < clock_timestamp() - $1 * interval '1 millisecond' ORDER BY id LIMIT $2`,
      [this.config.usage.resendAfterMs, limit],
    );
    if (rows.length > 0) {
      await enqueueUsage(
        this.queue,
        rows.map((r) => r.id),
      );
      this.logger.warn(`sent ${rows.length} usage outbox rows again (unapplied after ${this.config.usage.resendAfterMs} ms)`);
    }
    return { resent: rows.length };
  }
}
