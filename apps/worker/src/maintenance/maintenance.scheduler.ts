import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, MaintenanceJob } from '@app/common';

/**
 * Ticks only enqueue. The job id names the tick's time slot, so however many worker replicas
 * tick, each slot's sweep is queued once.
 */
@Injectable()
export class MaintenanceScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(MaintenanceScheduler.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(JobQueue.Maintenance) private readonly queue: Queue,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    const every = this.config.sweep.intervalMs;
    const timer = setInterval(() => void this.enqueueSweep(), every);
    this.scheduler.addInterval(MaintenanceJob.SweepMessages, timer);
  }

  async enqueueSweep(now = Date.now()): Promise<void> {
    const slot = Math.floor(now / this.config.sweep.intervalMs);
    try {
      await this.queue.add(
        MaintenanceJob.SweepMessages,
        {},
        { jobId: `${MaintenanceJob.SweepMessages}-${slot}`, removeOnComplete: 100, removeOnFail: 100, attempts: 1 },
      );
    } catch (err) {
      this.logger.warn(`could not enqueue sweep: ${(err as Error).message}`);
    }
  }
}
