import { getQueueToken } from '@nestjs/bullmq';
import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Queue } from 'bullmq';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { APP_CONFIG, AppConfig } from '@app/config';
import { JobQueue, Metrics } from '@app/common';
import { PgPool } from '@app/db';
import { LedgerService } from '@app/billing';
import type { ProbeResult } from '@app/sla';
import type { PushOutcome } from '../push/push-deliverer';

/** Seconds from a usage row's commit to the commit of its application to the balance. */
const USAGE_LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600];

/** Rows counted at most in `cmq_usage_outbox_pending_rows`: a scrape's cost stays bounded in a backlog. */
export const OUTBOX_COUNT_CAP = 100_000;

/** BullMQ states reported per queue, as `state` (BullMQ calls waiting `wait`). */
const JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** A scrape-time read that takes longer than this reports NaN rather than holding the scrape. */
const COLLECT_TIMEOUT_MS = 5000;

/**
 * What the worker's processors report as they work: the usage-to-balance lag of every applied
 * outbox row, push attempts by outcome, SLA probes by region and outcome.
 */
@Injectable()
export class WorkerMetrics {
  private readonly usageLag: Histogram.Internal<never>;
  private readonly usageRows: Counter.Internal;
  private readonly pushes: Counter<'outcome'>;
  private readonly probes: Counter<'region' | 'outcome'>;

  constructor(metrics: Metrics, @Inject(APP_CONFIG) config: AppConfig) {
    this.usageLag = metrics
      .histogram({
        name: 'cmq_usage_apply_lag_seconds',
        help: "Seconds from a usage outbox row's commit to its application to the balance",
        buckets: USAGE_LAG_BUCKETS,
      })
      .labels();
    this.usageRows = metrics.counter({ name: 'cmq_usage_rows_applied_total', help: 'Usage outbox rows applied to balances by this worker' }).labels();
    this.pushes = metrics.counter({ name: 'cmq_push_attempts_total', help: 'Topic push attempts by outcome', labelNames: ['outcome'] });
    this.probes = metrics.counter({ name: 'cmq_sla_probes_total', help: 'SLA canary round trips by region and outcome (ok, failed, lost)', labelNames: ['region', 'outcome'] });
    for (const outcome of ['delivered', 'retry', 'dropped', 'gone', 'busy', 'early'] satisfies PushOutcome[]) this.pushes.labels(outcome).inc(0);
    for (const region of config.regions) for (const outcome of ['ok', 'failed', 'lost']) this.probes.labels(region, outcome).inc(0);
  }

  usageApplied(lagSeconds: readonly number[]): void {
    for (const s of lagSeconds) this.usageLag.observe(Math.max(0, s));
    this.usageRows.inc(lagSeconds.length);
  }

  pushAttempted(outcome: PushOutcome): void {
    this.pushes.labels(outcome).inc();
  }

  probed(results: readonly Pick<ProbeResult, 'region' | 'ok' | 'lost'>[]): void {
    for (const r of results) this.probes.labels(r.region, r.ok ? 'ok' : r.lost ? 'lost' : 'failed').inc();
  }
}

/** A promise that settles with `p`, or rejects after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * State read at scrape time, shared by every worker replica (each reports the same values; the
 * alerts take max or min over them):
 * - the usage outbox: rows committed but not yet applied, and the age of the oldest (one count
 *   capped at {@link OUTBOX_COUNT_CAP} and one index lookup);
 * - BullMQ: jobs per queue of {@link JobQueue} and state;
 * - the latest ledger reconciliation: when, how many balances differed, 0/1 ok.
 * A read that fails or hangs reports NaN and counts in `cmq_metrics_collect_errors_total`.
 */
@Injectable()
export class WorkerStateMetrics implements OnApplicationBootstrap {
  private readonly errors: Counter<'collector'>;
  private queues: Array<{ name: JobQueue; queue: Queue }> = [];
  /** reads in flight: the gauges of one read, collected together in a scrape, share it */
  private readonly reads = new Map<string, Promise<unknown>>();
  /** the query or call behind each read, until it ends: a scrape after a timed-out one waits for it rather than piling another on */
  private readonly loads = new Map<string, Promise<unknown>>();

  constructor(
    metrics: Metrics,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
    private readonly ledger: LedgerService,
    private readonly moduleRef: ModuleRef,
  ) {
    this.errors = metrics.counter({ name: 'cmq_metrics_collect_errors_total', help: 'Scrape-time reads that failed or timed out', labelNames: ['collector'] });
    for (const c of ['usage_outbox', 'bullmq', 'reconciliation']) this.errors.labels(c).inc(0);
    const self = this;

    const outbox = () => this.read('usage_outbox', () => this.outbox());
    metrics.gauge({
      name: 'cmq_usage_outbox_pending_rows',
      help: `Usage outbox rows committed and not yet applied (counted up to ${OUTBOX_COUNT_CAP})`,
      async collect(this: Gauge) {
        this.set((await outbox())?.pending ?? NaN);
      },
    });
    metrics.gauge({
      name: 'cmq_usage_outbox_oldest_age_seconds',
      help: 'Age of the oldest unapplied usage outbox row (0 when none)',
      async collect(this: Gauge) {
        this.set((await outbox())?.oldestSeconds ?? NaN);
      },
    });

    metrics.gauge({
      name: 'cmq_bullmq_jobs',
      help: 'BullMQ jobs per queue and state',
      labelNames: ['queue', 'state'],
      async collect(this: Gauge<'queue' | 'state'>) {
        const counts = await self.read('bullmq', () => self.jobCounts());
        for (const { name } of self.queues) {
          for (const state of JOB_STATES) this.labels(name, state).set(counts?.get(name)?.[state] ?? NaN);
        }
      },
    });

    const reconciliation = () => this.read('reconciliation', () => this.ledger.latestReconciliation());
    metrics.gauge({
      name: 'cmq_ledger_reconciliation_last_run_timestamp_seconds',
      help: 'When the latest ledger reconciliation ran (Unix seconds; 0 before the first)',
      async collect(this: Gauge) {
        const last = await reconciliation();
        this.set(last === undefined ? NaN : last ? last.runAt.getTime() / 1000 : 0);
      },
    });
    metrics.gauge({
      name: 'cmq_ledger_reconciliation_mismatches',
      help: 'Balances that differed from the sum of their ledger entries in the latest reconciliation',
      async collect(this: Gauge) {
        const last = await reconciliation();
        this.set(last === undefined ? NaN : (last?.mismatched ?? 0));
      },
    });
    metrics.gauge({
      name: 'cmq_ledger_reconciliation_accounts_checked',
      help: 'Balances the latest ledger reconciliation checked',
      async collect(this: Gauge) {
        const last = await reconciliation();
        this.set(last === undefined ? NaN : (last?.accountsChecked ?? 0));
      },
    });
    metrics.gauge({
      name: 'cmq_ledger_reconciliation_ok',
      help: '1 when the latest ledger reconciliation found every balance equal to its entries (or none ran yet), 0 when it found a difference',
      async collect(this: Gauge) {
        const last = await reconciliation();
        this.set(last === undefined ? NaN : last && last.mismatched > 0 ? 0 : 1);
      },
    });
    metrics
      .gauge({ name: 'cmq_ledger_reconciliation_interval_seconds', help: 'RECONCILE_INTERVAL_MS, in seconds: how often the reconciliation is scheduled' })
      .set(config.billing.reconcileIntervalMs / 1000);
  }

  /** Every queue of {@link JobQueue} as the worker registered it; fails start-up if one is not. */
  onApplicationBootstrap(): void {
    this.queues = Object.values(JobQueue).map((name) => ({ name, queue: this.moduleRef.get<Queue>(getQueueToken(name), { strict: false }) }));
  }

  /**
   * `load`, or the same load already in flight (a scrape collects every gauge at once, so the
   * gauges of one read share it); undefined when it fails or takes longer than
   * {@link COLLECT_TIMEOUT_MS}. A load that outlives its scrape is waited for by the next one,
   * never started twice, so a hung database holds one pool connection here, not one per scrape.
   */
  private read<T>(collector: string, load: () => Promise<T>): Promise<T | undefined> {
    const inFlight = this.reads.get(collector);
    if (inFlight) return inFlight as Promise<T | undefined>;
    let loading = this.loads.get(collector) as Promise<T> | undefined;
    if (!loading) {
      loading = load();
      this.loads.set(collector, loading);
      const done = () => this.loads.delete(collector);
      loading.then(done, done);
    }
    const value = within(loading, COLLECT_TIMEOUT_MS)
      .catch(() => {
        this.errors.labels(collector).inc();
        return undefined;
      })
      .finally(() => this.reads.delete(collector));
    this.reads.set(collector, value);
    return value;
  }

  private async outbox(): Promise<{ pending: number; oldestSeconds: number }> {
    const { rows } = await this.pool.query<{ pending: number; oldest: number | null }>(
      `SELECT (SELECT count(*) FROM (SELECT 1 FROM usage_outbox LIMIT ${OUTBOX_COUNT_CAP}) t)::int AS pending,
              extract(epoch FROM clock_timestamp() - (SELECT min(created_at) FROM usage_outbox))::float8 AS oldest`,
    );
    return { pending: rows[0].pending, oldestSeconds: Math.max(0, rows[0].oldest ?? 0) };
  }

  private async jobCounts(): Promise<Map<JobQueue, Record<(typeof JOB_STATES)[number], number>>> {
    const out = new Map<JobQueue, Record<(typeof JOB_STATES)[number], number>>();
    await Promise.all(
      this.queues.map(async ({ name, queue }) => {
        const counts = await queue.getJobCounts(...JOB_STATES);
        // BullMQ answers `waiting` under its own name, `wait`
        out.set(name, { waiting: counts.wait ?? counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0, failed: counts.failed ?? 0 });
      }),
    );
    return out;
  }
}
