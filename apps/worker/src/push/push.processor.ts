import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import type { Job } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, PUSH_MESSAGE_JOB } from '@app/common';
import type { PushJob } from '@app/queues';
import { PushDeliverer, PushOutcome } from './push-deliverer';
import { WorkerMetrics } from '../metrics/worker-metrics';

/**
 * Thin adapter: one attempt of one topic push per job (PUSH_CONCURRENCY at once). The lock
 * outlasts a push's timeout, so a slow receiver does not make the job look stalled.
 */
@Processor(JobQueue.Push, { lockDuration: 60_000 })
export class PushProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly deliverer: PushDeliverer,
    private readonly metrics: WorkerMetrics,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.push.concurrency;
  }

  async process(job: Job<PushJob>): Promise<PushOutcome> {
    if (job.name !== PUSH_MESSAGE_JOB) throw new Error(`no handler for job ${job.name} on ${JobQueue.Push}`);
    const id = String(job.data.id);
    if (!/^\d{1,19}$/.test(id)) throw new Error(`job ${job.id}: not a push delivery id: ${id.slice(0, 40)}`);
    const outcome = await this.deliverer.attempt(id);
    this.metrics.pushAttempted(outcome);
    return outcome;
  }
}
