import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import { DELIVER_NOTIFICATION_JOB, JobQueue } from '@app/common';
import { WebhookDeliverer } from '@app/billing';

/**
 * Thin adapter: delivers one stored notification to the account's webhook. A failed attempt is
 * recorded on the notification and rethrown, so BullMQ retries it with exponential backoff
 * (WEBHOOK_ATTEMPTS, WEBHOOK_BACKOFF_MS); the last one marks it failed.
 */
@Processor(JobQueue.Notifications, { concurrency: 8 })
export class NotificationProcessor extends WorkerHost {
  private readonly logger = new Logger(NotificationProcessor.name);

  constructor(private readonly deliverer: WebhookDeliverer) {
    super();
  }

  async process(job: Job<{ id: string }>): Promise<string> {
    if (job.name !== DELIVER_NOTIFICATION_JOB) throw new Error(`no handler for job ${job.name} on ${JobQueue.Notifications}`);
    const id = String(job.data.id);
    if (!/^\d{1,19}$/.test(id)) throw new Error(`job ${job.id}: not a notification id: ${id.slice(0, 40)}`);
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      return await this.deliverer.deliver(id, final);
    } catch (err) {
      this.logger.warn(`notification ${id}: attempt ${job.attemptsMade + 1} failed${final ? ', giving up' : ''}: ${(err as Error).message}`);
      throw err;
    }
  }
}
