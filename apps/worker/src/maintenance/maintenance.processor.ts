import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, MaintenanceJob } from '@app/common';
import { MessageSweeper, SweepResult } from '@app/queues';

/** Thin adapter: picks the handler by job name; the work lives in the libs. */
@Processor(JobQueue.Maintenance)
export class MaintenanceProcessor extends WorkerHost {
  private readonly logger = new Logger(MaintenanceProcessor.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sweeper: MessageSweeper,
  ) {
    super();
  }

  async process(job: Job): Promise<SweepResult> {
    switch (job.name as MaintenanceJob) {
      case MaintenanceJob.SweepMessages: {
        const result = await this.sweeper.sweep(this.config.sweep.batch);
        if (result.expired || result.purged || result.queuesReleased) {
          this.logger.log(`sweep expired=${result.expired} purged=${result.purged} queuesReleased=${result.queuesReleased}`);
        }
        return result;
      }
      default:
        throw new Error(`no handler for job ${job.name} on ${JobQueue.Maintenance}`);
    }
  }
}
