import { Injectable } from '@nestjs/common';
import { HotCounter, HotCounterChild, HotHistogram, HotHistogramChild, Metrics } from '@app/common';
import { outcomeOf } from '@app/billing';
import type { CommitObserver } from '@app/queues';

/** The `action` label of requests whose Action is missing or not one of ours (or that could not be read). */
export const UNKNOWN_ACTION = 'unknown';

/** Request latency buckets (seconds): a durable send is a few ms; a long poll waits up to 30 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The series of one CMQ action, made once: recording a request allocates nothing after its first code. */
export interface ActionMetrics {
  /** one request answered with `code`; `seconds` from its decoding to its reply (undefined: not timed) */
  record(code: number, seconds?: number): void;
}

/**
 * `cmq_requests_total{action,code,outcome}` and `cmq_request_duration_seconds{action}`. The
 * action label is the canonical CMQ action name or {@link UNKNOWN_ACTION}, never anything a
 * caller chooses freely (account, queue, SecretId); the code is the protocol's reply code (a
 * fixed set), its outcome the billing outcome of that code (ok, no_message, client_error,
 * throttled, overdue, server_error), so server errors are one selector away.
 */
@Injectable()
export class CmqMetrics {
  private readonly requests: HotCounter;
  private readonly duration: HotHistogram;
  readonly unknown: ActionMetrics;

  constructor(metrics: Metrics) {
    this.requests = metrics.hotCounter({
      name: 'cmq_requests_total',
      help: 'CMQ requests answered, by action, reply code and its outcome',
      labelNames: ['action', 'code', 'outcome'],
    });
    this.duration = metrics.hotHistogram({
      name: 'cmq_request_duration_seconds',
      help: 'CMQ request time from decoding to the reply (metering commit included; long polls include their wait)',
      labelNames: ['action'],
      buckets: LATENCY_BUCKETS,
    });
    this.unknown = this.forAction(UNKNOWN_ACTION);
  }

  /** The series of `action` (a canonical action name); its `ok` count starts at 0, so rates are whole from the start. */
  forAction(action: string): ActionMetrics {
    const requests = this.requests;
    const duration = this.duration.labels(action);
    const byCode = new Map<number, HotCounterChild>();
    const counterOf = (code: number) => {
      let c = byCode.get(code);
      if (c === undefined) {
        c = requests.labels(action, String(code), outcomeOf(code));
        byCode.set(code, c);
      }
      return c;
    };
    if (action !== UNKNOWN_ACTION) counterOf(0);
    return {
      record(code: number, seconds?: number): void {
        counterOf(code).inc();
        if (seconds !== undefined) duration.observe(seconds);
      },
    };
  }
}

/** Ops per commit: 1 to GROUP_COMMIT_MAX_BATCH (512 by default), in powers of two. */
const COMMIT_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const COMMIT_TIME_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The group commit's `cmq_group_commit_ops` (writes and usage entries per commit: how well
 * requests share an fsync), `cmq_group_commit_duration_seconds` and
 * `cmq_group_commit_failures_total` (commits the server refused or that lost their connection).
 */
@Injectable()
export class GroupCommitMetrics implements CommitObserver {
  private readonly size: HotHistogramChild;
  private readonly time: HotHistogramChild;
  private readonly failures: HotCounterChild;

  constructor(metrics: Metrics) {
    this.size = metrics
      .hotHistogram({ name: 'cmq_group_commit_ops', help: 'Requests (writes and usage entries) per group commit', buckets: COMMIT_SIZE_BUCKETS })
      .labels();
    this.time = metrics
      .hotHistogram({ name: 'cmq_group_commit_duration_seconds', help: 'Time of one group commit, connection to COMMIT', buckets: COMMIT_TIME_BUCKETS })
      .labels();
    this.failures = metrics.hotCounter({ name: 'cmq_group_commit_failures_total', help: 'Group commits that did not commit (their requests retried alone or failed)' }).labels();
  }

  commit(ops: number, seconds: number, committed: boolean): void {
    this.size.observe(ops);
    this.time.observe(seconds);
    if (!committed) this.failures.inc();
  }
}
