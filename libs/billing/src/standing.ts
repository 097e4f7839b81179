import type { AccountStatus } from '@app/accounts';
import type { Nano } from './money';

/**
 * The arrears ladder's rules (billing.md §5), pure. The standing of an account is judged on
 * its cash: vouchers are a separate balance, spent before cash and only on usage, so cash
 * goes below zero only once the vouchers are spent (or by an operator's adjustment), and
 * vouchers cannot pay a debt. The alerts look at what is left to spend, cash plus vouchers:
 * that is what runs out before the account becomes overdue.
 */

export type NotificationKind =
  | 'low_balance'
  | 'runout_predicted'
  | 'overdue'
  | 'suspended'
  | 'restored'
  | 'release_notice'
  | 'released'
  /** an SLA credit granted at month close, or revised */
  | 'sla_credit'
  /** the month's availability is being lost faster than the SLA allows */
  | 'sla_burn_rate';

export const NOTIFICATION_KINDS: readonly NotificationKind[] = [
  'low_balance',
  'runout_predicted',
  'overdue',
  'suspended',
  'restored',
  'release_notice',
  'released',
  'sla_credit',
  'sla_burn_rate',
];

/** What a posting reads from the balance row it has locked. */
export interface StandingBefore {
  status: AccountStatus;
  /** null: no low-balance alerts */
  alertThreshold: Nano | null;
  lowAlertArmed: boolean;
}

/** What a posting changes besides the amounts; null from {@link afterPosting} when nothing. */
export interface StandingChange {
  /** the new status, when it changes */
  status?: AccountStatus;
  /** the new low-balance arming, when it changes */
  lowAlertArmed?: boolean;
  /** in order */
  notify: NotificationKind[];
}

/** Funds above which a fired low-balance alert arms again: the threshold plus `percent` of it. */
export function rearmLevel(threshold: Nano, hysteresisPercent: number): Nano {
  return threshold + (threshold * BigInt(hysteresisPercent)) / 100n;
}

/**
 * The standing after a posting left `cash` and `vouchers`. A few comparisons; null, the usual
 * answer, when nothing changes.
 *
 * - active, cash below zero: overdue.
 * - overdue, suspended or released, cash at zero or above: active again ("restored"). A
 *   released account has lost its queues but may use the service again.
 * - armed and funds (cash + vouchers) below the threshold: one low-balance alert, disarmed
 *   until the funds are back at the threshold plus the hysteresis.
 */
export function afterPosting(before: StandingBefore, cash: Nano, vouchers: Nano, hysteresisPercent: number): StandingChange | null {
  let change: StandingChange | null = null;
  if (before.status === 'active') {
    if (cash < 0n) change = { status: 'overdue', notify: ['overdue'] };
  } else if (cash >= 0n) {
    change = { status: 'active', notify: ['restored'] };
  }
  const t = before.alertThreshold;
  if (t !== null) {
    const funds = cash + vouchers;
    if (before.lowAlertArmed) {
      if (funds < t) {
        change ??= { notify: [] };
        change.lowAlertArmed = false;
        change.notify.unshift('low_balance');
      }
    } else if (funds >= rearmLevel(t, hysteresisPercent)) {
      change ??= { notify: [] };
      change.lowAlertArmed = true;
    }
  }
  return change;
}
