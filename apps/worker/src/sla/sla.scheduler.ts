import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, SlaJob } from '@app/common';

/** What a probe job carries: its time slot (Unix ms ÷ PROBE_INTERVAL_MS). */
export interface ProbeJobData {
  slot: number;
}

/**
 * Ticks only enqueue, every PROBE_INTERVAL_MS. The job id names the tick's time slot
 * (`sla-probe-<slot>`), so however many worker replicas tick, each slot's probe is queued once
 * and runs on one of them.
 */
@Injectable()
export class SlaScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(SlaScheduler.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(JobQueue.Sla) private readonly queue: Queue<ProbeJobData>,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    const timer = setInterval(() => void this.tick(), this.config.sla.probeIntervalMs);
    this.scheduler.addInterval(SlaJob.Probe, timer);
  }

  /** Queues the probe of the slot `now` falls in (once per slot across replicas); answers its job id, or null if Redis refused. */
  async tick(now = Date.now()): Promise<string | null> {
    const slot = Math.floor(now / this.config.sla.probeIntervalMs);
    const jobId = `${SlaJob.Probe}-${slot}`;
    try {
      await this.queue.add(SlaJob.Probe, { slot }, { jobId, removeOnComplete: 100, removeOnFail: 100, attempts: 1 });
      return jobId;
    } catch (err) {
      this.logger.warn(`could not enqueue ${jobId}: ${(err as Error).message}`);
      return null;
    }
  }
}
