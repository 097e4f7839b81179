import { Inject, Injectable, Optional } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import { actorFields, appendAudit, AuditActor, AuditEvent } from '@app/audit';
import type { AccountStatus } from '@app/accounts';
import { APP_CONFIG, AppConfig } from '@app/config';
import { inTransaction, PgPool } from '@app/db';
import { formatAmount, Nano } from './money';
import { insertNotifications, NewNotification, NotificationDispatcher } from './notifications';
import { afterPosting, StandingChange } from './standing';

export const ENTRY_KINDS = ['topup', 'usage_charge', 'voucher_grant', 'voucher_use', 'adjustment', 'refund', 'rounding'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

export interface LedgerEntry {
  id: string;
  accountId: string;
  kind: EntryKind;
  cashDelta: Nano;
  voucherDelta: Nano;
  cashAfter: Nano;
  voucherAfter: Nano;
  reason: string | null;
  createdAt: Date;
}

export interface Balance {
  accountId: string;
  currency: string;
  cash: Nano;
  vouchers: Nano;
  lastUsageAt: Date | null;
  /** the arrears standing (billing.md §5), judged on cash */
  status: AccountStatus;
  overdueSince: Date | null;
  suspendedAt: Date | null;
  /** when the release notice went out (the account's queues are deleted after it) */
  releaseNoticeAt: Date | null;
  /** null: no low-balance alerts */
  alertThreshold: Nano | null;
}

export interface PostResult {
  entry: LedgerEntry;
  replayed: boolean;
  /** ids of the notifications this posting stored (absent when none): queue them once committed */
  notifications?: string[];
}

export interface Posting {
  accountId: string;
  kind: EntryKind;
  cashDelta?: Nano;
  voucherDelta?: Nano;
  /**
   * A charge (≥ 0) paid from vouchers first and the rest from cash, split against the balances
   * at posting time; instead of cashDelta and voucherDelta.
   */
  charge?: Nano;
  /** unique among all entries: a second posting with it changes nothing */
  idempotencyKey: string;
  /** what the request asked for; a second posting with the same key must ask the same */
  request: unknown;
  reason?: string;
  meta?: Record<string, unknown>;
  /**
   * The audit-trail entry of an operator's posting (a top-up, an adjustment), recorded in the
   * posting's transaction with the entry it made; a replayed posting records nothing again.
   */
  audit?: Pick<AuditEvent, 'actorKind' | 'actor' | 'action' | 'reason'>;
}

/** What {@link LedgerService.postVoucherGrantsWithin} did, per posting in the order given. */
export interface VoucherGrantsPosted {
  /** vouchers moved (0 for a replay, or a take-back that found none) */
  moved: Nano[];
  /** the key was there already with the same request: nothing moved */
  replayed: boolean[];
  /** ids of the notifications stored (standing changes): queue them once committed */
  notifications: string[];
}

export class IdempotencyConflictError extends Error {}

interface EntryRow {
  id: string;
  account_id: string;
  kind: EntryKind;
  cash_delta_nano: string;
  voucher_delta_nano: string;
  cash_after_nano: string;
  voucher_after_nano: string;
  request_hash: string | null;
  reason: string | null;
  created_at: Date;
}

/** A charge (≥ 0) split into its voucher and cash parts: vouchers first, the rest from cash. */
function splitCharge(charge: Nano, vouchers: Nano): { cashDelta: Nano; voucherDelta: Nano } {
  if (charge < 0n) throw new RangeError('a charge cannot be negative');
  const fromVouchers = vouchers < charge ? (vouchers > 0n ? vouchers : 0n) : charge;
  return { cashDelta: -(charge - fromVouchers), voucherDelta: -fromVouchers };
}

/** What a posting reads of the balance row it locks. */
interface LockedBalance {
  cash_nano: string;
  voucher_nano: string;
  currency: string;
  status: AccountStatus;
  alert_threshold_nano: string | null;
  low_alert_armed: boolean;
}

const ENTRY_COLUMNS = `id, account_id, kind, cash_delta_nano, voucher_delta_nano, cash_after_nano, voucher_after_nano,
  request_hash, reason, created_at`;

function toEntry(r: EntryRow): LedgerEntry {
  return {
    id: r.id,
    accountId: r.account_id,
    kind: r.kind,
    cashDelta: BigInt(r.cash_delta_nano),
    voucherDelta: BigInt(r.voucher_delta_nano),
    cashAfter: BigInt(r.cash_after_nano),
    voucherAfter: BigInt(r.voucher_after_nano),
    reason: r.reason,
    createdAt: r.created_at,
  };
}

/** A stable digest of a request: keys sorted, bigints as strings. */
export function requestHash(request: unknown): string {
  const canonical = (v: unknown): unknown =>
    typeof v === 'bigint'
      ? v.toString()
      : Array.isArray(v)
        ? v.map(canonical)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.keys(v as object)
                .sort()
                .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
            )
          : v;
  return createHash('sha256').update(JSON.stringify(canonical(request))).digest('hex');
}

/**
 * The append-only ledger and the balances it keeps. Every posting is one transaction: the
 * account's balance row is locked, the entry is written with the balances it leaves behind,
 * the balance row follows. A posting whose idempotency key exists already changes nothing and
 * answers the entry written the first time, or refuses if it asks for something else.
 */
/** Appends one entry's columns to the column arrays of a batch insert ({@link insertEntries}). */
function pushEntry(
  entries: unknown[][],
  p: Posting,
  cashDelta: Nano,
  voucherDelta: Nano,
  cashAfter: Nano,
  voucherAfter: Nano,
  hash: string,
): void {
  entryValues(p, cashDelta, voucherDelta, cashAfter, voucherAfter, hash).forEach((v, k) => entries[k].push(v));
}

/** The values of one entry's INSERT, in the column order of {@link insertEntries}. */
function entryValues(p: Posting, cashDelta: Nano, voucherDelta: Nano, cashAfter: Nano, voucherAfter: Nano, hash: string): unknown[] {
  return [
    p.accountId,
    p.kind,
    cashDelta.toString(),
    voucherDelta.toString(),
    cashAfter.toString(),
    voucherAfter.toString(),
    p.idempotencyKey,
    hash,
    p.reason ?? null,
    p.meta ? JSON.stringify(p.meta) : null,
  ];
}

/** Inserts a batch of entries in one statement; null when a key was taken meanwhile (nothing may count then). */
async function insertEntries(c: PoolClient, entries: unknown[][]): Promise<EntryRow[] | null> {
  const { rows } = await c.query<EntryRow>(
    `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, voucher_delta_nano, cash_after_nano, voucher_after_nano,
                                 idempotency_key, request_hash, reason, meta)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[],
                          $9::text[], $10::jsonb[])
     ON CONFLICT (idempotency_key) DO NOTHING
     RETURNING ${ENTRY_COLUMNS}`,
    entries,
  );
  return rows.length === entries[0].length ? rows : null;
}

@Injectable()
export class LedgerService {
  private readonly hysteresisPercent: number;

  constructor(
    private readonly pool: PgPool,
    @Optional() @Inject(APP_CONFIG) config?: AppConfig,
    /** without one (tools, tests) stored notifications are queued by the worker's arrears run */
    @Optional() private readonly notifier?: NotificationDispatcher,
  ) {
    this.hysteresisPercent = config?.arrears.lowBalanceHysteresisPercent ?? 10;
  }

  async post(p: Posting): Promise<PostResult> {
    const c = await this.pool.connect();
    try {
      for (;;) {
        await c.query('BEGIN');
        const out = await this.postWithin(c, p);
        if (out) {
          await c.query('COMMIT');
          await this.notifier?.dispatch(out.notifications);
          return out;
        }
        // the same key committed meanwhile (we waited for its balance lock): answer that entry
        await c.query('ROLLBACK');
      }
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * The posting inside the caller's transaction. Null when another transaction committed the
   * same key while this one waited: roll back and call again (it then answers that entry).
   *
   * The account's standing follows in the same statement as its balance (billing.md §5, rules
   * in standing.ts): judged on the row already locked, it costs a few comparisons, and only a
   * change of standing writes more (the account's status and the notifications, keyed by this
   * entry, so a replay of the posting notifies no one again). The caller queues the returned
   * notifications once its transaction committed ({@link NotificationDispatcher}).
   */
  async postWithin(c: PoolClient, p: Posting): Promise<PostResult | null> {
    const hash = requestHash(p.request);
    const first = await this.existing(c, p.idempotencyKey, hash);
    if (first) return { entry: first, replayed: true };
    await c.query(`INSERT INTO balances (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING`, [p.accountId]);
    const { rows: bal } = await c.query<LockedBalance>(
      `SELECT cash_nano, voucher_nano, currency, status, alert_threshold_nano, low_alert_armed
         FROM balances WHERE account_id = $1 FOR UPDATE`,
      [p.accountId],
    );
    let cashDelta = p.cashDelta ?? 0n;
    let voucherDelta = p.voucherDelta ?? 0n;
    if (p.charge !== undefined) ({ cashDelta, voucherDelta } = splitCharge(p.charge, BigInt(bal[0].voucher_nano)));
    const cashAfter = BigInt(bal[0].cash_nano) + cashDelta;
    const voucherAfter = BigInt(bal[0].voucher_nano) + voucherDelta;
    const { rows } = await c.query<EntryRow>(
      `INSERT INTO ledger_entries (account_id, kind, cash_delta_nano, voucher_delta_nano, cash_after_nano, voucher_after_nano,
                                   idempotency_key, request_hash, reason, meta)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING ${ENTRY_COLUMNS}`,
      entryValues(p, cashDelta, voucherDelta, cashAfter, voucherAfter, hash),
    );
    if (!rows[0]) return null;
    const entry = toEntry(rows[0]);
    // cumulative usage charged, for the run-out prediction
    const spent = p.kind === 'usage_charge' ? -(cashDelta + voucherDelta) : 0n;
    const threshold = bal[0].alert_threshold_nano === null ? null : BigInt(bal[0].alert_threshold_nano);
    const change = afterPosting(
      { status: bal[0].status, alertThreshold: threshold, lowAlertArmed: bal[0].low_alert_armed },
      cashAfter,
      voucherAfter,
      this.hysteresisPercent,
    );
    if (!change) {
      await c.query(
        `UPDATE balances SET cash_nano = $2, voucher_nano = $3, spent_nano = spent_nano + $4, updated_at = now() WHERE account_id = $1`,
        [p.accountId, cashAfter.toString(), voucherAfter.toString(), spent.toString()],
      );
      await this.auditPosting(c, p, entry);
      return { entry, replayed: false };
    }
    const status = change.status ?? bal[0].status;
    await c.query(
      `UPDATE balances SET cash_nano = $2, voucher_nano = $3, spent_nano = spent_nano + $4, updated_at = now() WHERE account_id = $1`,
      [p.accountId, cashAfter.toString(), voucherAfter.toString(), spent.toString()],
    );
    await this.moveStanding(c, p.accountId, status, change.lowAlertArmed ?? bal[0].low_alert_armed, change.status !== undefined);
    // the posting is recorded before the standing change it caused
    await this.auditPosting(c, p, entry);
    const notifications = await insertNotifications(c, this.notificationsOf(change, entry, status, bal[0].currency, threshold));
    return notifications.length ? { entry, replayed: false, notifications } : { entry, replayed: false };
  }

  private async auditPosting(c: PoolClient, p: Posting, entry: LedgerEntry): Promise<void> {
    if (!p.audit) return;
    await appendAudit(c, {
      domain: 'billing',
      ...p.audit,
      accountId: p.accountId,
      subject: `ledger:${entry.id}`,
      details: {
        entryId: entry.id,
        kind: entry.kind,
        cashDelta: formatAmount(entry.cashDelta),
        voucherDelta: formatAmount(entry.voucherDelta),
        cashAfter: formatAmount(entry.cashAfter),
        voucherAfter: formatAmount(entry.voucherAfter),
        idempotencyKey: p.idempotencyKey,
      },
    });
  }

  /** The status and low-balance arming a posting moved, on the balance row (and the account). */
  /**
   * The arrears standing of an account a batch posting moved (its balance row locked, cash and
   * vouchers as they are now): statements only where the standing moves; answers the ids of the
   * notifications stored.
   */
  private async standingAfterBatch(
    c: PoolClient,
    accountId: string,
    row: LockedBalance,
    cash: Nano,
    vouchers: Nano,
    entry: LedgerEntry,
  ): Promise<string[]> {
    const threshold = row.alert_threshold_nano === null ? null : BigInt(row.alert_threshold_nano);
    const change = afterPosting(
      { status: row.status, alertThreshold: threshold, lowAlertArmed: row.low_alert_armed },
      cash,
      vouchers,
      this.hysteresisPercent,
    );
    if (!change) return [];
    const status = change.status ?? row.status;
    await this.moveStanding(c, accountId, status, change.lowAlertArmed ?? row.low_alert_armed, change.status !== undefined);
    return insertNotifications(c, this.notificationsOf(change, entry, status, row.currency, threshold));
  }

  private async moveStanding(c: PoolClient, accountId: string, status: AccountStatus, lowAlertArmed: boolean, statusChanged: boolean): Promise<void> {
    await c.query(
      `UPDATE balances
          SET status = $2, low_alert_armed = $3,
              overdue_since = CASE WHEN $2 = 'active' THEN NULL WHEN status = 'active' THEN now() ELSE overdue_since END,
              suspended_at = CASE WHEN $2 = 'active' THEN NULL ELSE suspended_at END,
              release_notice_at = CASE WHEN $2 = 'active' THEN NULL ELSE release_notice_at END,
              released_at = CASE WHEN $2 = 'active' THEN NULL ELSE released_at END
        WHERE account_id = $1`,
      [accountId, status, lowAlertArmed],
    );
    if (statusChanged) await c.query(`UPDATE accounts SET status = $2, updated_at = now() WHERE id = $1`, [accountId, status]);
  }

  private notificationsOf(change: StandingChange, e: LedgerEntry, status: AccountStatus, currency: string, threshold: Nano | null): NewNotification[] {
    return change.notify.map((kind) => ({
      accountId: e.accountId,
      kind,
      idempotencyKey: `${kind}:${e.accountId}:entry:${e.id}`,
      payload: {
        status,
        cash: formatAmount(e.cashAfter),
        vouchers: formatAmount(e.voucherAfter),
        currency,
        ...(kind === 'low_balance' && threshold !== null ? { threshold: formatAmount(threshold) } : {}),
        entry: { id: e.id, kind: e.kind, amount: formatAmount(e.cashDelta), voucherAmount: formatAmount(e.voucherDelta) },
      },
    }));
  }

  /**
   * Sets (or with null, clears) the low-balance alert threshold; a new threshold is armed, so the
   * next posting that leaves the funds below it alerts.
   */
  async setAlertThreshold(accountId: string, threshold: Nano | null, by: AuditActor): Promise<Balance> {
    if (threshold !== null && threshold <= 0n) throw new RangeError('an alert threshold must be more than 0');
    await inTransaction(this.pool, async (c) => {
      await c.query(
        `INSERT INTO balances (account_id, alert_threshold_nano) VALUES ($1, $2)
         ON CONFLICT (account_id) DO UPDATE SET alert_threshold_nano = excluded.alert_threshold_nano, low_alert_armed = true, updated_at = now()`,
        [accountId, threshold?.toString() ?? null],
      );
      await appendAudit(c, {
        domain: 'billing',
        action: 'alert-threshold.set',
        ...actorFields(by),
        accountId,
        subject: `account:${accountId}`,
        details: { alertThreshold: threshold === null ? null : formatAmount(threshold) },
      });
    });
    return this.balance(accountId);
  }

  /**
   * Usage charges of many accounts inside the caller's transaction, in a few statements: every
   * account in `accounts` gets its balance row (made if missing) locked, in account order, and
   * `last_usage_at = now()`; each posting (a `charge`, at most one per account, all of them in
   * `accounts`) is posted as {@link postWithin} would post it: vouchers first, the cumulative
   * spend for the run-out prediction, and the arrears standing it moves (overdue, a low-balance
   * alert) with its notifications, in this transaction. An entry already there with the same key
   * and request answers as it is. Null when another transaction committed one of the keys while
   * this one waited: roll back and apply again.
   */
  async postChargesWithin(
    c: PoolClient,
    accounts: readonly string[],
    postings: readonly Posting[],
  ): Promise<{ notifications: string[] } | null> {
    const ids = [...new Set(accounts)].sort();
    if (ids.length === 0) return { notifications: [] };
    const hashes = postings.map((p) => requestHash(p.request));
    const replayed = new Set<string>();
    if (postings.length > 0) {
      const { rows } = await c.query<{ idempotency_key: string; request_hash: string | null }>(
        `SELECT idempotency_key, request_hash FROM ledger_entries WHERE idempotency_key = ANY($1::text[])`,
        [postings.map((p) => p.idempotencyKey)],
      );
      const seen = new Map(rows.map((r) => [r.idempotency_key, r.request_hash]));
      postings.forEach((p, i) => {
        if (!seen.has(p.idempotencyKey)) return;
        if (seen.get(p.idempotencyKey) !== hashes[i]) throw new IdempotencyConflictError('this Idempotency-Key was used for a different request');
        replayed.add(p.idempotencyKey);
      });
    }
    await c.query(`INSERT INTO balances (account_id) SELECT unnest($1::uuid[]) ON CONFLICT (account_id) DO NOTHING`, [ids]);
    const { rows: bal } = await c.query<LockedBalance & { account_id: string }>(
      `SELECT account_id, cash_nano, voucher_nano, currency, status, alert_threshold_nano, low_alert_armed
         FROM balances WHERE account_id = ANY($1::uuid[]) ORDER BY account_id FOR UPDATE`,
      [ids],
    );
    const balances = new Map(
      bal.map((b) => [
        b.account_id,
        { row: b, cash: BigInt(b.cash_nano), vouchers: BigInt(b.voucher_nano), spent: 0n, posted: false },
      ]),
    );
    const entries: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
    postings.forEach((p, i) => {
      if (replayed.has(p.idempotencyKey)) return;
      const charge = p.charge;
      if (charge === undefined) throw new RangeError('postChargesWithin posts charges only');
      const b = balances.get(p.accountId.toLowerCase());
      if (!b) throw new Error(`account ${p.accountId} is not among the accounts to lock`);
      const { cashDelta, voucherDelta } = splitCharge(charge, b.vouchers);
      b.cash += cashDelta;
      b.vouchers += voucherDelta;
      b.spent += charge;
      b.posted = true;
      pushEntry(entries, p, cashDelta, voucherDelta, b.cash, b.vouchers, hashes[i]);
    });
    const written = new Map<string, LedgerEntry>();
    if (entries[0].length > 0) {
      const rows = await insertEntries(c, entries);
      if (!rows) return null;
      for (const r of rows) written.set(r.account_id, toEntry(r));
    }
    const rows = [...balances.entries()];
    await c.query(
      `UPDATE balances b SET cash_nano = t.cash, voucher_nano = t.vouchers, spent_nano = b.spent_nano + t.spent, last_usage_at = now(),
              updated_at = CASE WHEN t.posted THEN now() ELSE b.updated_at END
         FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[]) AS t(a, cash, vouchers, spent, posted)
        WHERE b.account_id = t.a`,
      [
        rows.map(([a]) => a),
        rows.map(([, b]) => b.cash.toString()),
        rows.map(([, b]) => b.vouchers.toString()),
        rows.map(([, b]) => b.spent.toString()),
        rows.map(([, b]) => b.posted),
      ],
    );
    // the arrears standing: a few comparisons per account; statements only where it moves
    const notifications: string[] = [];
    for (const [accountId, b] of rows) {
      const entry = written.get(accountId);
      if (entry) notifications.push(...(await this.standingAfterBatch(c, accountId, b.row, b.cash, b.vouchers, entry)));
    }
    return { notifications };
  }

  /**
   * Voucher movements of many accounts inside the caller's transaction, in a few statements
   * whatever their number (the SLA month close's credits): each posting moves vouchers only
   * (`voucherDelta`, no cash, no charge), at most one posting per account. A grant (> 0) adds to
   * the account's vouchers; a take-back (< 0) takes at most the vouchers it has unspent
   * (vouchers never go below zero): its entry records what was taken, and one that finds nothing
   * to take writes no entry. Otherwise each is posted as {@link postWithin} would post it: the
   * balance row made if missing and locked (all of them in account order), the entry with the
   * balances it leaves, the arrears standing it moves with its notifications. A posting whose
   * key is there already with the same request answers as it is (replayed, nothing moved); with
   * another request, IdempotencyConflictError. Answers per posting, in order, the vouchers it
   * moved and whether it was a replay, and the ids of the notifications stored (queue them once
   * committed). Null when another transaction committed one of the keys while this one waited:
   * roll back and apply again.
   */
  async postVoucherGrantsWithin(c: PoolClient, postings: readonly Posting[]): Promise<VoucherGrantsPosted | null> {
    const moved: Nano[] = postings.map(() => 0n);
    const replayed: boolean[] = postings.map(() => false);
    if (postings.length === 0) return { moved, replayed, notifications: [] };
    const accounts = new Set<string>();
    for (const p of postings) {
      if (p.charge !== undefined || (p.cashDelta ?? 0n) !== 0n || !p.voucherDelta) {
        throw new RangeError('postVoucherGrantsWithin posts voucher movements only (a voucherDelta other than 0, no cash)');
      }
      const a = p.accountId.toLowerCase();
      if (accounts.has(a)) throw new RangeError(`account ${p.accountId} has more than one posting`);
      accounts.add(a);
    }
    const hashes = postings.map((p) => requestHash(p.request));
    const { rows: seenRows } = await c.query<{ idempotency_key: string; request_hash: string | null }>(
      `SELECT idempotency_key, request_hash FROM ledger_entries WHERE idempotency_key = ANY($1::text[])`,
      [postings.map((p) => p.idempotencyKey)],
    );
    const seen = new Map(seenRows.map((r) => [r.idempotency_key, r.request_hash]));
    postings.forEach((p, i) => {
      if (!seen.has(p.idempotencyKey)) return;
      if (seen.get(p.idempotencyKey) !== hashes[i]) throw new IdempotencyConflictError('this Idempotency-Key was used for a different request');
      replayed[i] = true;
    });
    const ids = [...new Set(postings.filter((_, i) => !replayed[i]).map((p) => p.accountId.toLowerCase()))].sort();
    if (ids.length === 0) return { moved, replayed, notifications: [] };
    await c.query(`INSERT INTO balances (account_id) SELECT unnest($1::uuid[]) ON CONFLICT (account_id) DO NOTHING`, [ids]);
    const { rows: bal } = await c.query<LockedBalance & { account_id: string }>(
      `SELECT account_id, cash_nano, voucher_nano, currency, status, alert_threshold_nano, low_alert_armed
         FROM balances WHERE account_id = ANY($1::uuid[]) ORDER BY account_id FOR UPDATE`,
      [ids],
    );
    const balances = new Map(bal.map((b) => [b.account_id, { row: b, cash: BigInt(b.cash_nano), vouchers: BigInt(b.voucher_nano) }]));
    const entries: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
    postings.forEach((p, i) => {
      if (replayed[i]) return;
      const b = balances.get(p.accountId.toLowerCase())!;
      let delta = p.voucherDelta!;
      if (delta < 0n && -delta > b.vouchers) delta = -b.vouchers;
      if (delta === 0n) return;
      b.vouchers += delta;
      moved[i] = delta;
      pushEntry(entries, p, 0n, delta, b.cash, b.vouchers, hashes[i]);
    });
    if (entries[0].length === 0) return { moved, replayed, notifications: [] };
    const rows = await insertEntries(c, entries);
    if (!rows) return null;
    const written = rows.map(toEntry);
    await c.query(
      `UPDATE balances b SET voucher_nano = t.vouchers, updated_at = now()
         FROM unnest($1::uuid[], $2::bigint[]) AS t(a, vouchers) WHERE b.account_id = t.a`,
      [written.map((e) => e.accountId), written.map((e) => e.voucherAfter.toString())],
    );
    // the arrears standing: a few comparisons per account; statements only where it moves
    const notifications: string[] = [];
    for (const entry of written) {
      const b = balances.get(entry.accountId.toLowerCase())!;
      notifications.push(...(await this.standingAfterBatch(c, entry.accountId, b.row, b.cash, b.vouchers, entry)));
    }
    return { moved, replayed, notifications };
  }

  private async existing(c: PoolClient, key: string, hash: string): Promise<LedgerEntry | null> {
    const { rows } = await c.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ledger_entries WHERE idempotency_key = $1`, [key]);
    if (!rows[0]) return null;
    if (rows[0].request_hash !== hash) throw new IdempotencyConflictError('this Idempotency-Key was used for a different request');
    return toEntry(rows[0]);
  }

  /**
   * The account's entries newest first: created in [from, to) when given, of the kinds given,
   * with an id below `beforeId` (the cursor); `limit` rows.
   */
  async entries(
    accountId: string,
    q: { from?: Date | null; to?: Date | null; kinds?: readonly EntryKind[] | null; beforeId?: string | null; limit: number },
  ): Promise<LedgerEntry[]> {
    const { rows } = await this.pool.query<EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM ledger_entries
        WHERE account_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at < $3)
          AND ($4::text[] IS NULL OR kind = ANY($4::text[])) AND ($5::bigint IS NULL OR id < $5::bigint)
        ORDER BY ledger_entries.id DESC LIMIT $6`,
      [accountId, q.from ?? null, q.to ?? null, q.kinds?.length ? q.kinds : null, q.beforeId ?? null, q.limit],
    );
    return rows.map(toEntry);
  }

  async balance(accountId: string): Promise<Balance> {
    const { rows } = await this.pool.query<{
      currency: string;
      cash_nano: string;
      voucher_nano: string;
      last_usage_at: Date | null;
      status: AccountStatus;
      overdue_since: Date | null;
      suspended_at: Date | null;
      release_notice_at: Date | null;
      alert_threshold_nano: string | null;
    }>(
      `SELECT currency, cash_nano, voucher_nano, last_usage_at, status, overdue_since, suspended_at, release_notice_at, alert_threshold_nano
         FROM balances WHERE account_id = $1`,
      [accountId],
    );
    const r = rows[0];
    return {
      accountId,
      currency: r?.currency ?? 'CNY',
      cash: BigInt(r?.cash_nano ?? 0),
      vouchers: BigInt(r?.voucher_nano ?? 0),
      lastUsageAt: r?.last_usage_at ?? null,
      status: r?.status ?? 'active',
      overdueSince: r?.overdue_since ?? null,
      suspendedAt: r?.suspended_at ?? null,
      releaseNoticeAt: r?.release_notice_at ?? null,
      alertThreshold: r?.alert_threshold_nano == null ? null : BigInt(r.alert_threshold_nano),
    };
  }

  /** Accounts whose balance row differs from the sum of their entries (should be none). */
  async reconcile(): Promise<Array<{ accountId: string; cash: Nano; entriesCash: Nano; vouchers: Nano; entriesVouchers: Nano }>> {
    const { rows } = await this.pool.query<{ account_id: string; cash: string; ecash: string; vouchers: string; evouchers: string }>(
      `SELECT b.account_id, b.cash_nano AS cash, coalesce(e.cash, 0) AS ecash, b.voucher_nano AS vouchers, coalesce(e.vouchers, 0) AS evouchers
         FROM balances b
         LEFT JOIN (SELECT account_id, sum(cash_delta_nano) AS cash, sum(voucher_delta_nano) AS vouchers
                      FROM ledger_entries GROUP BY account_id) e ON e.account_id = b.account_id
        WHERE b.cash_nano <> coalesce(e.cash, 0) OR b.voucher_nano <> coalesce(e.vouchers, 0)`,
    );
    return rows.map((r) => ({
      accountId: r.account_id,
      cash: BigInt(r.cash),
      entriesCash: BigInt(r.ecash),
      vouchers: BigInt(r.vouchers),
      entriesVouchers: BigInt(r.evouchers),
    }));
  }

  /** Runs {@link reconcile} and records the result (the worker does it on a schedule). */
  async recordReconciliation(): Promise<Reconciliation> {
    const mismatches = await this.reconcile();
    const details = mismatches.slice(0, 100).map((m) => ({
      accountId: m.accountId,
      cash: m.cash.toString(),
      entriesCash: m.entriesCash.toString(),
      vouchers: m.vouchers.toString(),
      entriesVouchers: m.entriesVouchers.toString(),
    }));
    const { rows } = await this.pool.query<{ id: string; run_at: Date; accounts_checked: number }>(
      `INSERT INTO ledger_reconciliations (accounts_checked, mismatched, details)
       VALUES ((SELECT count(*) FROM balances), $1, $2) RETURNING id, run_at, accounts_checked`,
      [mismatches.length, JSON.stringify(details)],
    );
    return { runAt: rows[0].run_at, accountsChecked: rows[0].accounts_checked, mismatched: mismatches.length, details };
  }

  /** The latest recorded reconciliation, or null before the first. */
  async latestReconciliation(): Promise<Reconciliation | null> {
    const { rows } = await this.pool.query<{ run_at: Date; accounts_checked: number; mismatched: number; details: Reconciliation['details'] }>(
      `SELECT run_at, accounts_checked, mismatched, details FROM ledger_reconciliations ORDER BY id DESC LIMIT 1`,
    );
    const r = rows[0];
    return r ? { runAt: r.run_at, accountsChecked: r.accounts_checked, mismatched: r.mismatched, details: r.details } : null;
  }
}

export interface Reconciliation {
  runAt: Date;
  accountsChecked: number;
  mismatched: number;
  details: Array<{ accountId: string; cash: string; entriesCash: string; vouchers: string; entriesVouchers: string }>;
}
