import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { PoolClient } from 'pg';
import { actorFields, appendAudit, AuditActor } from '@app/audit';
import { SecretBox } from '@app/accounts';
import { DELIVER_NOTIFICATION_JOB, JobQueue } from '@app/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import type { NotificationKind } from './standing';
import { signWebhook, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './webhook-signature';

export type Delivery = 'pending' | 'delivered' | 'failed' | 'no_webhook';

export interface NewNotification {
  accountId: string;
  kind: NotificationKind;
  payload: Record<string, unknown>;
  /** unique among all notifications: the same key a second time creates nothing */
  idempotencyKey: string;
}

export interface Notification {
  id: string;
  accountId: string;
  kind: NotificationKind;
  payload: Record<string, unknown>;
  createdAt: Date;
  delivery: Delivery;
  deliveredAt: Date | null;
  attempts: number;
  lastError: string | null;
}

export interface Webhook {
  url: string;
  updatedAt: Date;
}

interface NotificationRow {
  id: string;
  account_id: string;
  kind: NotificationKind;
  payload: Record<string, unknown>;
  created_at: Date;
  delivery: Delivery;
  delivered_at: Date | null;
  attempts: number;
  last_error: string | null;
}

const COLUMNS = `id, account_id, kind, payload, created_at, delivery, delivered_at, attempts, last_error`;

function toNotification(r: NotificationRow): Notification {
  return {
    id: r.id,
    accountId: r.account_id,
    kind: r.kind,
    payload: r.payload,
    createdAt: r.created_at,
    delivery: r.delivery,
    deliveredAt: r.delivered_at,
    attempts: r.attempts,
    lastError: r.last_error,
  };
}

/** Standing changes a notification reports, and the audit action each is recorded as. */
const STANDING_AUDIT: Partial<Record<NotificationKind, string>> = {
  overdue: 'account.overdue',
  suspended: 'account.suspend',
  restored: 'account.restore',
};

/**
 * Stores notifications inside the caller's transaction, so a notification exists exactly when
 * the change it reports committed. Answers the ids of the rows created: a key stored before
 * creates nothing (a replayed posting or a repeated run notifies no one again). The standing
 * changes among them (overdue, suspended, restored) are component events of the audit trail,
 * recorded in the same transaction, once each for the same reason.
 */
export async function insertNotifications(c: Pick<PoolClient, 'query'>, list: readonly NewNotification[]): Promise<string[]> {
  if (list.length === 0) return [];
  const { rows } = await c.query<{ id: string; account_id: string; kind: NotificationKind; payload: Record<string, unknown> }>(
    `INSERT INTO notifications (account_id, kind, payload, idempotency_key)
     SELECT a, k, p::jsonb, i FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(a, k, p, i, n)
      ORDER BY n
     ON CONFLICT (idempotency_key) DO NOTHING
     RETURNING id, account_id, kind, payload`,
    [list.map((n) => n.accountId), list.map((n) => n.kind), list.map((n) => JSON.stringify(n.payload)), list.map((n) => n.idempotencyKey)],
  );
  const sorted = rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  const standing = sorted.filter((r) => STANDING_AUDIT[r.kind]);
  if (standing.length > 0) {
    await appendAudit(
      c,
      standing.map((r) => ({
        domain: 'billing' as const,
        action: STANDING_AUDIT[r.kind]!,
        actorKind: 'component' as const,
        actor: 'arrears',
        accountId: r.account_id,
        subject: `account:${r.account_id}`,
        details: { notification: r.id, ...r.payload },
      })),
    );
  }
  return sorted.map((r) => r.id);
}

/** The account's notifications, newest first, and the webhook they go to. */
@Injectable()
export class NotificationStore {
  private readonly box: SecretBox;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly pool: PgPool,
  ) {
    this.box = new SecretBox(config.masterKey);
  }

  /** Newest first; `before` is a notification id (the previous page's last). */
  async list(accountId: string, limit: number, before?: string): Promise<Notification[]> {
    const { rows } = await this.pool.query<NotificationRow>(
      `SELECT ${COLUMNS} FROM notifications
        WHERE account_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
        ORDER BY id DESC LIMIT $3`,
      [accountId, before ?? null, limit],
    );
    return rows.map(toNotification);
  }

  /** Where the account's notifications go (audited: the URL, never the secret). */
  async setWebhook(accountId: string, url: string, secret: string, by: AuditActor): Promise<Webhook> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ url: string; updated_at: Date }>(
        `INSERT INTO account_webhooks (account_id, url, secret_enc) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO UPDATE SET url = excluded.url, secret_enc = excluded.secret_enc, updated_at = now()
         RETURNING url, updated_at`,
        [accountId, url, this.box.seal(secret, webhookSecretBinding(accountId))],
      );
      await appendAudit(c, { domain: 'billing', action: 'webhook.set', ...actorFields(by), accountId, subject: `webhook:${accountId}`, details: { url } });
      return { url: rows[0].url, updatedAt: rows[0].updated_at };
    });
  }

  async removeWebhook(accountId: string, by: AuditActor): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ url: string }>(`DELETE FROM account_webhooks WHERE account_id = $1 RETURNING url`, [accountId]);
      if (!rows[0]) return false;
      await appendAudit(c, { domain: 'billing', action: 'webhook.remove', ...actorFields(by), accountId, subject: `webhook:${accountId}`, details: { url: rows[0].url } });
      return true;
    });
  }

  async webhook(accountId: string): Promise<Webhook | null> {
    const { rows } = await this.pool.query<{ url: string; updated_at: Date }>(
      `SELECT url, updated_at FROM account_webhooks WHERE account_id = $1`,
      [accountId],
    );
    return rows[0] ? { url: rows[0].url, updatedAt: rows[0].updated_at } : null;
  }

  /** Notifications still waiting for delivery `olderThanMs` after they were stored, oldest first. */
  async pending(olderThanMs: number, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM notifications
        WHERE delivery = 'pending' AND created_at < clock_timestamp() - $1 * interval '1 millisecond'
        ORDER BY created_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => r.id);
  }
}

/** The associated data a webhook secret is sealed with: a secret moved to another account does not open. */
function webhookSecretBinding(accountId: string): string {
  return `webhook:${accountId}`;
}

/** The deterministic job id of a notification's delivery: queuing it twice queues it once. */
export function notificationJobId(id: string): string {
  return `notification-${id}`;
}

const ENQUEUE_TIMEOUT_MS = 2000;

/**
 * Queues the delivery of stored notifications, right after the transaction that stored them
 * committed. A failure here loses nothing: the notification is stored, and the worker's arrears
 * run queues every one still pending a few seconds later (NOTIFICATION_RESEND_AFTER_MS), so
 * the caller's answer never depends on Redis.
 */
@Injectable()
export class NotificationDispatcher {
  private readonly logger = new Logger(NotificationDispatcher.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(JobQueue.Notifications) private readonly queue: Queue,
  ) {}

  async dispatch(ids: readonly string[] | undefined): Promise<void> {
    if (!ids?.length) return;
    const { attempts, backoffMs } = this.config.webhooks;
    // deduplicated by job id, so each through add(), not addBulk()
    const adding = Promise.all(
      ids.map((id) =>
        this.queue.add(
          DELIVER_NOTIFICATION_JOB,
          { id },
          {
            jobId: notificationJobId(id),
            attempts,
            backoff: { type: 'exponential', delay: backoffMs },
            removeOnComplete: { count: 1000 },
            removeOnFail: { count: 1000 },
          },
        ),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis in ${ENQUEUE_TIMEOUT_MS} ms`)), ENQUEUE_TIMEOUT_MS);
    });
    try {
      await Promise.race([adding, timeout]);
    } catch (err) {
      adding.catch(() => undefined);
      this.logger.warn(`notifications ${ids.join(', ')} stored, not queued yet (the arrears run will): ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

export class WebhookDeliveryError extends Error {}

/**
 * Delivers one stored notification: an HTTP POST of JSON to the account's webhook, signed
 * (X-Cmq-Timestamp, X-Cmq-Signature), any 2xx answer being a delivery. Safe to repeat: a
 * notification no longer pending is left alone. Delivery is at least once (a job that stalls
 * can run twice), so receivers deduplicate by the notification id (also in X-Cmq-Notification-Id).
 */
@Injectable()
export class WebhookDeliverer {
  private readonly box: SecretBox;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
  ) {
    this.box = new SecretBox(config.masterKey);
  }

  /** Throws when the attempt failed (recorded; the caller retries), after marking it failed if `final`. */
  async deliver(id: string, final: boolean): Promise<'delivered' | 'no_webhook' | 'skipped'> {
    const { rows } = await this.pool.query<NotificationRow & { url: string | null; secret_enc: Buffer | null }>(
      `SELECT n.id, n.account_id, n.kind, n.payload, n.created_at, n.delivery, n.delivered_at, n.attempts, n.last_error,
              w.url, w.secret_enc
         FROM notifications n LEFT JOIN account_webhooks w ON w.account_id = n.account_id
        WHERE n.id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row || row.delivery !== 'pending') return 'skipped';
    if (!row.url || !row.secret_enc) {
      await this.pool.query(
        `UPDATE notifications SET delivery = 'no_webhook', last_error = 'no webhook configured' WHERE id = $1 AND delivery = 'pending'`,
        [id],
      );
      return 'no_webhook';
    }
    try {
      await this.post(row.url, this.box.open(row.secret_enc, webhookSecretBinding(row.account_id)), row);
    } catch (err) {
      await this.pool.query(
        `UPDATE notifications SET attempts = attempts + 1, last_error = $2, delivery = CASE WHEN $3 THEN 'failed' ELSE delivery END
          WHERE id = $1 AND delivery = 'pending'`,
        [id, (err as Error).message.slice(0, 500), final],
      );
      throw err;
    }
    await this.pool.query(
      `UPDATE notifications SET attempts = attempts + 1, delivery = 'delivered', delivered_at = now(), last_error = NULL
        WHERE id = $1 AND delivery = 'pending'`,
      [id],
    );
    return 'delivered';
  }

  private async post(url: string, secret: string, n: NotificationRow): Promise<void> {
    const body = JSON.stringify({ id: n.id, kind: n.kind, accountId: n.account_id, createdAt: n.created_at.toISOString(), data: n.payload });
    const timestamp = String(Math.floor(Date.now() / 1000));
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'cmq-cloud-webhooks/1',
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
          'X-Cmq-Notification-Id': n.id,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.webhooks.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new WebhookDeliveryError(cause?.code ?? cause?.message ?? (err as Error).message);
    }
    await res.body?.cancel().catch(() => undefined);
    if (res.status < 200 || res.status > 299) throw new WebhookDeliveryError(`HTTP ${res.status}`);
  }
}
