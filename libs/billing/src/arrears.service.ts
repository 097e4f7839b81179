import { Inject, Injectable, Logger } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { appendAudit } from '@app/audit';
import { RedisService } from '@app/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import { QUEUES_CHANNEL, ScopedCache, TOPICS_CHANNEL } from '@app/queues';
import { formatAmount } from './money';
import { insertNotifications, NewNotification, NotificationDispatcher, NotificationStore } from './notifications';

export interface ArrearsRun {
  suspended: number;
  releaseNotices: number;
  released: number;
  queuesDeleted: number;
  runoutAlerts: number;
  runoutRearmed: number;
  notificationsRequeued: number;
}

/** Accounts one step takes per run; the rest wait for the next run. */
const BATCH = 500;

interface StandingRow {
  account_id: string;
  cash_nano: string;
  voucher_nano: string;
  currency: string;
}

const money = (r: StandingRow) => ({ cash: formatAmount(BigInt(r.cash_nano)), vouchers: formatAmount(BigInt(r.voucher_nano)), currency: r.currency });

/**
 * The time-driven steps of the arrears ladder (billing.md §5), run by the worker every
 * ARREARS_INTERVAL_MS. The steps a posting causes (overdue, restored, low balance) happen in
 * the posting's own transaction (LedgerService.postWithin). Each step is a conditional update
 * of the balance rows and the notifications it causes, in one transaction, keyed by the
 * episode it ends (the overdue or suspension start): a step runs once however many workers
 * run, and a top-up that commits first wins (the row no longer matches).
 *
 * 1. Overdue longer than ARREARS_GRACE_SECONDS: suspended.
 * 2. Suspended for RELEASE_AFTER_SECONDS - RELEASE_NOTICE_SECONDS: the release notice.
 * 3. Suspended for RELEASE_AFTER_SECONDS and noticed RELEASE_NOTICE_SECONDS ago: released, its
 *    queues deleted (the sweep then removes their messages), audited.
 * 4. Run-out: at the average spend of the last RUNOUT_WINDOW_SECONDS, the funds last less than
 *    RUNOUT_HORIZON_SECONDS: one alert, armed again once no longer predicted.
 * 5. Notifications still pending after NOTIFICATION_RESEND_AFTER_MS are queued again.
 */
@Injectable()
export class ArrearsService {
  private readonly logger = new Logger(ArrearsService.name);
  /** the spend-mark bucket this process marked last (marking runs once per bucket) */
  private markedBucket = -1;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
    private readonly redis: RedisService,
    private readonly store: NotificationStore,
    private readonly notifier: NotificationDispatcher,
  ) {}

  async run(): Promise<ArrearsRun> {
    const suspended = await this.suspend();
    const releaseNotices = await this.noticeReleases();
    const { released, queuesDeleted } = await this.release();
    const { alerts: runoutAlerts, rearmed: runoutRearmed } = await this.predictRunouts();
    const pending = await this.store.pending(this.config.webhooks.resendAfterMs, BATCH);
    await this.notifier.dispatch(pending);
    return { suspended, releaseNotices, released, queuesDeleted, runoutAlerts, runoutRearmed, notificationsRequeued: pending.length };
  }

  /** Runs `fn` in a transaction, then queues the notifications it stored. */
  private async notifying<T>(fn: (c: PoolClient) => Promise<{ out: T; notifications: string[] }>): Promise<T> {
    const { out, notifications } = await inTransaction(this.pool, fn);
    await this.notifier.dispatch(notifications);
    return out;
  }

  /** 1. Overdue accounts whose grace is over are suspended. */
  suspend(): Promise<number> {
    const releaseAfter = this.config.arrears.releaseAfterSeconds;
    return this.notifying(async (c) => {
      const { rows } = await c.query<StandingRow & { overdue_since: Date; overdue_us: string; suspended_at: Date; release_at: Date | null }>(
        `UPDATE balances b SET status = 'suspended', suspended_at = now(), updated_at = now()
          WHERE b.account_id IN (
                  SELECT account_id FROM balances
                   WHERE status = 'overdue' AND overdue_since <= now() - $1 * interval '1 second'
                   ORDER BY overdue_since LIMIT $2 FOR UPDATE SKIP LOCKED)
            AND b.status = 'overdue'
          RETURNING b.account_id, b.cash_nano, b.voucher_nano, b.currency, b.overdue_since, b.suspended_at,
                    (extract(epoch FROM b.overdue_since) * 1000000)::bigint AS overdue_us,
                    CASE WHEN $3 > 0 THEN b.suspended_at + $3 * interval '1 second' END AS release_at`,
        [this.config.arrears.graceSeconds, BATCH, releaseAfter],
      );
      if (rows.length === 0) return { out: 0, notifications: [] };
      await this.mirrorStatus(c, rows, 'suspended');
      const notifications = await insertNotifications(
        c,
        rows.map(
          (r): NewNotification => ({
            accountId: r.account_id,
            kind: 'suspended',
            idempotencyKey: `suspended:${r.account_id}:overdue:${r.overdue_us}`,
            payload: {
              status: 'suspended',
              ...money(r),
              overdueSince: r.overdue_since.toISOString(),
              suspendedAt: r.suspended_at.toISOString(),
              releaseAt: r.release_at?.toISOString() ?? null,
            },
          }),
        ),
      );
      return { out: rows.length, notifications };
    });
  }

  /** 2. The release notice, RELEASE_NOTICE_SECONDS before the release at the latest. */
  noticeReleases(): Promise<number> {
    const { releaseAfterSeconds: after, releaseNoticeSeconds: notice } = this.config.arrears;
    if (after === 0) return Promise.resolve(0);
    return this.notifying(async (c) => {
      const { rows } = await c.query<StandingRow & { suspended_us: string; suspended_at: Date; release_at: Date }>(
        `UPDATE balances b SET release_notice_at = now(), updated_at = now()
          WHERE b.account_id IN (
                  SELECT account_id FROM balances
                   WHERE status = 'suspended' AND release_notice_at IS NULL
                     AND suspended_at <= now() - $1 * interval '1 second'
                   ORDER BY suspended_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            AND b.status = 'suspended' AND b.release_notice_at IS NULL
          RETURNING b.account_id, b.cash_nano, b.voucher_nano, b.currency, b.suspended_at,
                    (extract(epoch FROM b.suspended_at) * 1000000)::bigint AS suspended_us,
                    greatest(b.suspended_at + $3 * interval '1 second', now() + $4 * interval '1 second') AS release_at`,
        [Math.max(0, after - notice), BATCH, after, notice],
      );
      const notifications = await insertNotifications(
        c,
        rows.map(
          (r): NewNotification => ({
            accountId: r.account_id,
            kind: 'release_notice',
            idempotencyKey: `release_notice:${r.account_id}:suspended:${r.suspended_us}`,
            payload: { status: 'suspended', ...money(r), suspendedAt: r.suspended_at.toISOString(), releaseAt: r.release_at.toISOString() },
          }),
        ),
      );
      return { out: rows.length, notifications };
    });
  }

  /**
   * 3. Releases: per account, one transaction locks the balance row (still suspended and due,
   * or a top-up won), marks every live queue of the account deleted (under the account's queue
   * lock, as DeleteQueue does), audits the release with the queues it deleted, and records the
   * status. The sweep removes the messages of deleted queues.
   */
  async release(): Promise<{ released: number; queuesDeleted: number }> {
    const { releaseAfterSeconds: after, releaseNoticeSeconds: notice } = this.config.arrears;
    if (after === 0) return { released: 0, queuesDeleted: 0 };
    const due = `status = 'suspended' AND suspended_at <= now() - $1 * interval '1 second'
                 AND release_notice_at <= now() - $2 * interval '1 second'`;
    const { rows: candidates } = await this.pool.query<{ account_id: string }>(
      `SELECT account_id FROM balances WHERE ${due} ORDER BY suspended_at LIMIT $3`,
      [after, notice, BATCH],
    );
    let released = 0;
    let queuesDeleted = 0;
    for (const { account_id: accountId } of candidates) {
      const gone = await this.notifying(async (c) => {
        const { rows } = await c.query<StandingRow & { suspended_at: Date; suspended_us: string; release_notice_at: Date }>(
          `SELECT account_id, cash_nano, voucher_nano, currency, suspended_at, release_notice_at,
                  (extract(epoch FROM suspended_at) * 1000000)::bigint AS suspended_us
             FROM balances WHERE account_id = $3 AND ${due} FOR UPDATE SKIP LOCKED`,
          [after, notice, accountId],
        );
        const r = rows[0];
        if (!r) return { out: null, notifications: [] };
        await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('queues:' || $1, 0))`, [accountId]);
        const { rows: deleted } = await c.query<{ queue_id: string; region: string; name: string }>(
          `UPDATE queues SET deleted_at = now() WHERE account_id = $1 AND deleted_at IS NULL RETURNING queue_id, region, name`,
          [accountId],
        );
        // topics go too: their subscriptions (with the pushes still owed) first, then the topics
        await c.query(`DELETE FROM subscriptions WHERE account_id = $1`, [accountId]);
        const { rows: topics } = await c.query<{ topic_id: string; region: string; name: string }>(
          `UPDATE topics SET deleted_at = now() WHERE account_id = $1 AND deleted_at IS NULL RETURNING topic_id, region, name`,
          [accountId],
        );
        await c.query(`UPDATE balances SET status = 'released', released_at = now(), updated_at = now() WHERE account_id = $1`, [accountId]);
        await this.mirrorStatus(c, rows, 'released');
        await appendAudit(c, {
          domain: 'billing',
          action: 'release',
          actorKind: 'component',
          actor: 'arrears',
          accountId,
          subject: `account:${accountId}`,
          reason: `suspended for ${after} s (RELEASE_AFTER_SECONDS) with the charge overdue`,
          details: {
            ...money(r),
            suspendedAt: r.suspended_at.toISOString(),
            releaseNoticeAt: r.release_notice_at.toISOString(),
            queuesDeleted: deleted.map((q) => ({ queueId: q.queue_id, region: q.region, name: q.name })),
            topicsDeleted: topics.map((t) => ({ topicId: t.topic_id, region: t.region, name: t.name })),
          },
        });
        const notifications = await insertNotifications(c, [
          {
            accountId,
            kind: 'released',
            idempotencyKey: `released:${accountId}:suspended:${r.suspended_us}`,
            payload: {
              status: 'released',
              ...money(r),
              suspendedAt: r.suspended_at.toISOString(),
              queuesDeleted: deleted.length,
              topicsDeleted: topics.length,
            },
          },
        ]);
        return { out: { queues: deleted, topics }, notifications };
      });
      if (!gone) continue;
      const { queues } = gone;
      released++;
      queuesDeleted += queues.length;
      // every queue-api process drops its cached copies (sends and publishes never trusted them anyway)
      const evictions: Array<[string, { region: string; name: string }]> = [
        ...queues.map((q) => [QUEUES_CHANNEL, q] as [string, { region: string; name: string }]),
        ...gone.topics.map((t) => [TOPICS_CHANNEL, t] as [string, { region: string; name: string }]),
      ];
      for (const [channel, r] of evictions) {
        await this.redis
          .publish(channel, ScopedCache.key({ accountId, region: r.region }, r.name))
          .catch((err: Error) => this.logger.warn(`publish: ${err.message}`));
      }
      this.logger.warn(`released account ${accountId}: ${queues.length} queues and ${gone.topics.length} topics deleted after ${after} s suspended`);
    }
    return { released, queuesDeleted };
  }

  /**
   * 4. Run-out prediction. The average spend comes from marks of the cumulative usage charge
   * (balances.spent_nano, kept by the postings at no extra cost): at most one mark per account
   * and bucket (a 24th of the window), written only when the account spent since its last one;
   * the spend over the window is today's total minus the earliest mark inside the window. So a
   * run costs one index probe per spending account, whatever the number of usage entries.
   * A prediction needs at least a bucket of history; the comparison is exact (numeric).
   */
  async predictRunouts(): Promise<{ alerts: number; rearmed: number }> {
    const { runoutWindowSeconds: window, runoutHorizonSeconds: horizon } = this.config.arrears;
    if (horizon === 0) return { alerts: 0, rearmed: 0 };
    const bucketMs = Math.max(1000, Math.floor((window * 1000) / 24));
    const bucket = Math.floor(Date.now() / bucketMs);
    if (bucket !== this.markedBucket) {
      await this.pool.query(
        `INSERT INTO spend_marks (account_id, bucket, at, spent_nano)
         SELECT b.account_id, floor(extract(epoch FROM now()) * 1000 / $1)::bigint, now(), b.spent_nano
           FROM balances b
          WHERE b.spent_nano > coalesce((SELECT m.spent_nano FROM spend_marks m WHERE m.account_id = b.account_id
                                          ORDER BY m.bucket DESC LIMIT 1), 0)
         ON CONFLICT DO NOTHING`,
        [bucketMs],
      );
      // older than the window and two buckets: no longer the earliest mark inside any window
      await this.pool.query(`DELETE FROM spend_marks WHERE at < now() - $1 * interval '1 millisecond'`, [window * 1000 + 2 * bucketMs]);
      this.markedBucket = bucket;
    }
    // the accounts whose alert state is wrong: predicted and armed, or disarmed and no longer predicted
    const { rows } = await this.pool.query<StandingRow & { predicted: boolean; spent_in_window: string | null; elapsed_ms: string | null }>(
      `WITH judged AS (
         SELECT b.account_id, b.cash_nano, b.voucher_nano, b.currency, b.runout_alert_armed,
                b.spent_nano - m.spent_nano AS spent_in_window,
                extract(epoch FROM now() - m.at) * 1000 AS elapsed_ms,
                coalesce(b.status = 'active'
                         AND extract(epoch FROM now() - m.at) * 1000 >= $2
                         AND b.spent_nano > m.spent_nano
                         AND (b.cash_nano + b.voucher_nano)::numeric * (extract(epoch FROM now() - m.at) * 1000)
                             < (b.spent_nano - m.spent_nano)::numeric * $3, false) AS predicted
           FROM balances b
           LEFT JOIN LATERAL (
             SELECT at, spent_nano FROM spend_marks s
              WHERE s.account_id = b.account_id AND s.at >= now() - $1 * interval '1 second'
              ORDER BY s.bucket LIMIT 1) m ON true
          WHERE (b.status = 'active' AND b.spent_nano > 0) OR NOT b.runout_alert_armed
       )
       SELECT account_id, cash_nano, voucher_nano, currency, predicted, spent_in_window, round(elapsed_ms)::bigint AS elapsed_ms
         FROM judged WHERE predicted = runout_alert_armed
        LIMIT $4`,
      [window, bucketMs, horizon * 1000, BATCH],
    );
    const alert = rows.filter((r) => r.predicted);
    const rearm = rows.filter((r) => !r.predicted).map((r) => r.account_id);
    if (rearm.length) {
      await this.pool.query(`UPDATE balances SET runout_alert_armed = true WHERE account_id = ANY($1::uuid[]) AND NOT runout_alert_armed`, [
        rearm,
      ]);
    }
    if (alert.length === 0) return { alerts: 0, rearmed: rearm.length };
    const alerts = await this.notifying(async (c) => {
      const { rows: disarmed } = await c.query<{ account_id: string; at_us: string }>(
        `UPDATE balances SET runout_alert_armed = false
          WHERE account_id = ANY($1::uuid[]) AND runout_alert_armed AND status = 'active'
          RETURNING account_id, (extract(epoch FROM now()) * 1000000)::bigint AS at_us`,
        [alert.map((r) => r.account_id)],
      );
      const byId = new Map(alert.map((r) => [r.account_id, r]));
      const notifications = await insertNotifications(
        c,
        disarmed.map(({ account_id, at_us }): NewNotification => {
          const r = byId.get(account_id)!;
          const spent = BigInt(r.spent_in_window!);
          const elapsedMs = BigInt(r.elapsed_ms!);
          const funds = BigInt(r.cash_nano) + BigInt(r.voucher_nano);
          return {
            accountId: account_id,
            kind: 'runout_predicted',
            // the flag, switched in this transaction, makes the alert once per prediction
            idempotencyKey: `runout_predicted:${account_id}:at:${at_us}`,
            payload: {
              status: 'active',
              ...money(r),
              // spend per day at the window's average, and the seconds the funds last at it
              dailySpend: formatAmount((spent * 86_400_000n) / elapsedMs),
              secondsLeft: funds <= 0n ? '0' : ((funds * elapsedMs) / spent / 1000n).toString(),
            },
          };
        }),
      );
      return { out: disarmed.length, notifications };
    });
    return { alerts, rearmed: rearm.length };
  }

  /** accounts.status follows the standing on the balance row, in the same transaction. */
  private async mirrorStatus(c: PoolClient, rows: Array<{ account_id: string }>, status: 'suspended' | 'released'): Promise<void> {
    await c.query(`UPDATE accounts SET status = $2, updated_at = now() WHERE id = ANY($1::uuid[])`, [rows.map((r) => r.account_id), status]);
  }
}
