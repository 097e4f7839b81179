import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, MaintenanceJob } from '@app/common';
import { ArrearsRun, ArrearsService, BillClose, BillCloseResult, LedgerService, Reconciliation, UsageApplier } from '@app/billing';
import { MessageSweeper, SweepResult } from '@app/queues';
import { UsageResender } from '../usage/usage.processor';
import { PushDeliverer } from '../push/push-deliverer';
import { BurnRateAlerts, CloseResult, MonthClose } from '@app/sla';

/** Thin adapter: picks the handler by job name; the work lives in the libs. */
@Processor(JobQueue.Maintenance)
export class MaintenanceProcessor extends WorkerHost {
  private readonly logger = new Logger(MaintenanceProcessor.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sweeper: MessageSweeper,
    private readonly ledger: LedgerService,
    private readonly usage: UsageResender,
    private readonly applier: UsageApplier,
    private readonly arrears: ArrearsService,
    private readonly months: MonthClose,
    private readonly burnRate: BurnRateAlerts,
    private readonly bills: BillClose,
    private readonly pushes: PushDeliverer,
  ) {
    super();
  }

  async process(
    job: Job,
  ): Promise<(SweepResult & { usageEventIds: number }) | Reconciliation | ArrearsRun | { resent: number } | (Omit<CloseResult, 'creditsNano'> & { creditsNano: string }) | { alerts: number; blindRegions: string[] } | (Omit<BillCloseResult, 'totalNano'> & { totalNano: string })> {
    switch (job.name as MaintenanceJob) {
      case MaintenanceJob.SweepMessages: {
        const result = { ...(await this.sweeper.sweep(this.config.sweep.batch)), usageEventIds: await this.applier.pruneEventIds(this.config.sweep.batch) };
        if (Object.values(result).some((n) => n > 0)) {
          this.logger.log(`sweep ${Object.entries(result).map(([k, v]) => `${k}=${v}`).join(' ')}`);
        }
        return result;
      }
      case MaintenanceJob.ReconcileLedger: {
        const result = await this.ledger.recordReconciliation();
        if (result.mismatched > 0) {
          this.logger.error({ details: result.details }, `ledger reconciliation: ${result.mismatched} account balances differ from their entries`);
        }
        return result;
      }
      case MaintenanceJob.ResendUsage:
        return this.usage.resend();
      case MaintenanceJob.ResendPushes:
        return this.pushes.resend();
      case MaintenanceJob.Arrears: {
        const result = await this.arrears.run();
        if (Object.values(result).some((n) => n > 0)) {
          this.logger.log(`arrears ${Object.entries(result).map(([k, v]) => `${k}=${v}`).join(' ')}`);
        }
        return result;
      }
      case MaintenanceJob.SlaCloseMonth: {
        // a job's result is stored as JSON: the credits as a decimal string of nano
        const r = await this.months.close(String((job.data as { month?: unknown }).month));
        return { ...r, creditsNano: r.creditsNano.toString() };
      }
      case MaintenanceJob.BillCloseMonth: {
        // a job's result is stored as JSON: the total as a decimal string of nano
        const r = await this.bills.close(String((job.data as { month?: unknown }).month));
        return { ...r, totalNano: r.totalNano.toString() };
      }
      case MaintenanceJob.SlaBurnRate:
        return {
          alerts: (await this.burnRate.run()).length,
          blindRegions: (await this.burnRate.coverage()).filter((r) => r.alert).map((r) => r.region),
        };
      default:
        throw new Error(`no handler for job ${job.name} on ${JobQueue.Maintenance}`);
    }
  }
}
