import type { Queue } from 'bullmq';
import { PUSH_MESSAGE_JOB } from '@app/common';

/** A push job: one attempt of one push_deliveries row. */
export interface PushJob {
  id: string;
}

/** The job id of an attempt: queuing the same attempt twice queues it once. */
export function pushJobId(deliveryId: string, attempt: number): string {
  return `push-${deliveryId}-${attempt}`;
}

/** Queues attempts of push deliveries (`delayMs` from now). */
export async function enqueuePushes(
  queue: Queue,
  /** `suffix` tells apart a job queued again while the attempt's own job is still running */
  items: Array<{ id: string; attempt: number; delayMs?: number; suffix?: string }>,
): Promise<void> {
  if (items.length === 0) return;
  await queue.addBulk(
    items.map((it) => ({
      name: PUSH_MESSAGE_JOB,
      data: { id: it.id } satisfies PushJob,
      opts: {
        jobId: pushJobId(it.id, it.attempt) + (it.suffix ? `-${it.suffix}` : ''),
        delay: it.delayMs && it.delayMs > 0 ? it.delayMs : undefined,
        removeOnComplete: true,
        removeOnFail: true,
        // these retries are for the worker's own failures (database unreachable); a receiver's
        // failures are judged by the subscription's retry strategy, in the row
        attempts: 5,
        backoff: { type: 'exponential', delay: 500 },
      },
    })),
  );
}
