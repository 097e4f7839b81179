import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { JobQueue, Relay } from '@app/common';
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
  private readonly relay: Relay<string>;

  constructor(@InjectQueue(JobQueue.Push) queue: Queue) {
    this.relay = new Relay(
      (ids) =>
        enqueuePushes(
          queue,
          ids.map((id) => ({ id, attempt: 0 })),
        ),
      (err, ids) => this.logger.warn(`push relay failed (${err.message}); the workers find ${ids.length} pushes later`),
      GATHER_MS,
    );
  }

  committed(ids: readonly string[]): void {
    this.relay.add(ids);
  }

  onApplicationShutdown(): Promise<void> {
    return this.relay.close();
  }
}
