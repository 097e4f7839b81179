import { Inject, Injectable, Logger, Module, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { CmqErrors } from '@app/cmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { PgPool } from '@app/db';

/**
 * The CMQ actions a suspended (or released) account may not use (billing.md §5 step 4): the
 * data plane (publishing included) and the actions that create or change resources. Management
 * reads (ListQueue, GetQueueAttributes, ...), DeleteQueue, DeleteTopic and Unsubscribe keep
 * working, and no message is deleted.
 */
export const REFUSED_WHEN_SUSPENDED: ReadonlySet<string> = new Set(
  [
    'SendMessage',
    'BatchSendMessage',
    'ReceiveMessage',
    'BatchReceiveMessage',
    'DeleteMessage',
    'BatchDeleteMessage',
    'RewindQueue',
    'CreateQueue',
    'SetQueueAttributes',
    'UnbindDeadLetterQueue',
    'PublishMessage',
    'BatchPublishMessage',
    'CreateTopic',
    'SetTopicAttributes',
    'Subscribe',
    'SetSubscriptionAttributes',
    'ClearSubscriptionFilterTags',
  ].map((a) => a.toLowerCase()),
);

/**
 * Which accounts are suspended, as each queue-api process knows it: the set is read again every
 * STANDING_REFRESH_MS (one query on the partial index of accounts that are not active), so a
 * suspension or a restoring top-up is in force within that time in every process, and a request
 * pays one set lookup. If the database does not answer, the last known set stays in force.
 */
@Injectable()
export class AccountStanding implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(AccountStanding.name);
  private blocked: ReadonlySet<string> = new Set();
  private timer?: NodeJS.Timeout;
  private refreshing = false;
  private failing = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pool: PgPool,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.config.arrears.standingRefreshMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** 4300 "(10040)charge overdue" when the account is suspended and the action is refused then. */
  assertCanUse(accountId: string, action: string): void {
    if (this.blocked.size !== 0 && this.blocked.has(accountId) && REFUSED_WHEN_SUSPENDED.has(action.toLowerCase())) {
      throw CmqErrors.chargeOverdue();
    }
  }

  isSuspended(accountId: string): boolean {
    return this.blocked.has(accountId);
  }

  async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const { rows } = await this.pool.query<{ account_id: string }>(
        `SELECT account_id FROM balances WHERE status <> 'active' AND status IN ('suspended', 'released')`,
      );
      this.blocked = new Set(rows.map((r) => r.account_id));
      if (this.failing) this.logger.log('account standing readable again');
      this.failing = false;
    } catch (err) {
      // once per outage, not every STANDING_REFRESH_MS
      if (!this.failing) this.logger.warn(`account standing not refreshed, the last known stays in force: ${(err as Error).message}`);
      this.failing = true;
    } finally {
      this.refreshing = false;
    }
  }
}

/** For the queue-api: the standing alone, without the rest of billing. */
@Module({ providers: [AccountStanding], exports: [AccountStanding] })
export class AccountStandingModule {}
