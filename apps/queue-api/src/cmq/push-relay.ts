import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { JobQueue } from '@app/common';
import { enqueuePushes } from '@app/queues';

/** How long committed pushes are gathered into one call to Redis. */
const GATHER_MS = 5;

/**
 * Hands the push deliveries a publish committed to the workers through BullMQ, gathered for a
 * few milliseconds. The rows are the truth: a relay lost on the way (Redis down, the process
 * gone) only delays a push until the workers' resend tick finds the row due and unattempted.
 */
@Injectable()
export class PushRelay implements OnApplicationShutdown {
  private readonly logger = new Logger(PushRelay.name);
  private pending: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(@InjectQueue(JobQueue.Push) private readonly queue: Queue) {}

  committed(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.pending.push(...ids);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), GATHER_MS);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ids = this.pending;
    this.pending = [];
    if (ids.length === 0) return;
    this.flushing = this.flushing.then(() =>
      enqueuePushes(
        this.queue,
        ids.map((id) => ({ id, attempt: 0 })),
      ).catch((err: Error) => this.logger.warn(`push relay failed (${err.message}); the workers find ${ids.length} pushes later`)),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    this.flush();
    await this.flushing;
  }
}
