import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Queue } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, MaintenanceJob } from '@app/common';
import { MonthClose } from '@app/sla';
import { BillClose } from '@app/billing';

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
    private readonly months: MonthClose,
    private readonly bills: BillClose,
  ) {}

  onApplicationBootstrap(): void {
    this.every(MaintenanceJob.SweepMessages, this.config.sweep.intervalMs);
    this.every(MaintenanceJob.ReconcileLedger, this.config.billing.reconcileIntervalMs);
    this.every(MaintenanceJob.ResendUsage, Math.max(100, Math.floor(this.config.usage.resendAfterMs / 2)));
    this.every(MaintenanceJob.ResendPushes, Math.max(100, Math.floor(this.config.push.resendAfterMs / 2)));
    this.every(MaintenanceJob.Arrears, this.config.arrears.intervalMs);
    this.every(MaintenanceJob.SlaBurnRate, this.config.sla.burnRateIntervalMs);
    const close = setInterval(() => void this.enqueueClose(), this.config.sla.closeCheckMs);
    this.scheduler.addInterval(MaintenanceJob.SlaCloseMonth, close);
    const billClose = setInterval(() => void this.enqueueBillClose(), this.config.sla.closeCheckMs);
    this.scheduler.addInterval(MaintenanceJob.BillCloseMonth, billClose);
  }

  /**
   * Queues the bills of the month that ended BILL_CLOSE_DELAY_SECONDS ago in the billing zone,
   * unless it is closed: the job id names the month, so it is queued once however many replicas tick.
   */
  async enqueueBillClose(): Promise<string | null> {
    try {
      const month = this.bills.monthToClose();
      if (await this.bills.isClosed(month)) return null;
      const jobId = `bill-close-${month}`;
      await this.queue.add(MaintenanceJob.BillCloseMonth, { month }, { jobId, removeOnComplete: 100, removeOnFail: 100, attempts: 3, backoff: { type: 'exponential', delay: 1000 } });
      return jobId;
    } catch (err) {
      this.logger.warn(`could not enqueue the bill close: ${(err as Error).message}`);
      return null;
    }
  }

  /**
   * Queues the close of the month that ended SLA_CLOSE_DELAY_SECONDS ago, unless it is closed:
   * the job id names the month, so it is queued once however many replicas tick.
   */
  async enqueueClose(): Promise<string | null> {
    try {
      const month = await this.months.monthToClose();
      if (await this.months.isClosed(month)) return null;
      const jobId = `sla-close-${month}`;
      await this.queue.add(MaintenanceJob.SlaCloseMonth, { month }, { jobId, removeOnComplete: 100, removeOnFail: 100, attempts: 3, backoff: { type: 'exponential', delay: 1000 } });
      return jobId;
    } catch (err) {
      this.logger.warn(`could not enqueue the SLA month close: ${(err as Error).message}`);
      return null;
    }
  }

  private every(job: MaintenanceJob, intervalMs: number): void {
    const timer = setInterval(() => void this.enqueue(job, intervalMs), intervalMs);
    this.scheduler.addInterval(job, timer);
  }

  async enqueue(job: MaintenanceJob, intervalMs: number, now = Date.now()): Promise<void> {
    const slot = Math.floor(now / intervalMs);
    try {
      await this.queue.add(job, {}, { jobId: `${job}-${slot}`, removeOnComplete: 100, removeOnFail: 100, attempts: 1 });
    } catch (err) {
      this.logger.warn(`could not enqueue ${job}: ${(err as Error).message}`);
    }
  }
}
