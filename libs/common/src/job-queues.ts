import type { ConnectionOptions } from 'bullmq';

/**
 * BullMQ queue names. These are persisted data (Redis keys): never rename one without a
 * migration of the jobs it holds.
 */
export enum JobQueue {
  Maintenance = 'maintenance',
  /** committed usage (outbox row ids) on its way to the usage applier */
  Usage = 'usage',
  /** stored notifications on their way to the account's webhook (job id `notification-<id>`) */
  Notifications = 'notifications',
  /** SLA accounting: probes (job id `sla-probe-<slot>`) and the SLA's scheduled work */
  Sla = 'sla',
  /** finance CSV export jobs (job id `export-<export id>`) */
  Exports = 'exports',
  /** topic pushes on their way to HTTP subscribers (job id `push-<delivery id>-<attempt>`) */
  Push = 'push',
}

/** Job names, one handler each. */
export enum MaintenanceJob {
  SweepMessages = 'sweep-messages',
  ReconcileLedger = 'reconcile-ledger',
  ResendUsage = 'resend-usage',
  /** topic pushes due a while that no worker attempted (a lost job) are queued again */
  ResendPushes = 'resend-pushes',
  /** the arrears ladder: suspensions, run-out alerts, release notices and releases, lost notifications */
  Arrears = 'arrears',
  /** the SLA close of the month that ended (job id `sla-close-<YYYY-MM>`: once per month) */
  SlaCloseMonth = 'sla-close-month',
  /** SLA burn-rate alerts */
  SlaBurnRate = 'sla-burn-rate',
  /** the monthly bills of the month that ended (job id `bill-close-<YYYY-MM>`: once per month) */
  BillCloseMonth = 'bill-close-month',
}

/** Job names of the SLA queue, one handler each. */
export enum SlaJob {
  /** a canary round trip through the public endpoint of every region */
  Probe = 'sla-probe',
}

/** Job name of the usage queue. */
export const APPLY_USAGE_JOB = 'apply-usage';

/** Job name of the push queue. */
export const PUSH_MESSAGE_JOB = 'push-message';

/** Job name of the notifications queue. */
export const DELIVER_NOTIFICATION_JOB = 'deliver-notification';

/** BullMQ connection options from a redis:// URL (workers need maxRetriesPerRequest: null). */
export function bullConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}
