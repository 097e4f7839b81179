import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, SlaJob } from '@app/common';
import { SlaProber } from '@app/sla';
import type { ProbeJobData } from './sla.scheduler';
import { WorkerMetrics } from '../metrics/worker-metrics';

export interface ProbeRun {
  ok: number;
  failed: number;
  lost: number;
  /** the job was due too long ago and was not run */
  skipped: boolean;
}

/** Thin adapter: picks the handler by job name; the work lives in libs/sla. */
@Processor(JobQueue.Sla, { concurrency: 4 })
export class SlaProcessor extends WorkerHost {
  private readonly logger = new Logger(SlaProcessor.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly prober: SlaProber,
    private readonly metrics: WorkerMetrics,
  ) {
    super();
  }

  async process(job: Job): Promise<ProbeRun> {
    switch (job.name as SlaJob) {
      case SlaJob.Probe:
        return this.probe(job as Job<ProbeJobData>);
      default:
        throw new Error(`no handler for job ${job.name} on ${JobQueue.Sla}`);
    }
  }

  /**
   * A probe whose slot ended two intervals ago or more is skipped: later slots' probes are due
   * by now, and a backlog run at once would crowd one minute with probes.
   */
  private async probe(job: Job<ProbeJobData>): Promise<ProbeRun> {
    const interval = this.config.sla.probeIntervalMs;
    const slot = Number(job.data.slot);
    if (Number.isSafeInteger(slot) && Date.now() >= (slot + 3) * interval) {
      this.logger.warn(`${job.id} skipped: due ${Math.round(Date.now() - slot * interval)} ms ago`);
      return { ok: 0, failed: 0, lost: 0, skipped: true };
    }
    const results = await this.prober.probeAll();
    this.metrics.probed(results);
    const ok = results.filter((r) => r.ok).length;
    return { ok, failed: results.length - ok, lost: results.filter((r) => r.lost).length, skipped: false };
  }
}
