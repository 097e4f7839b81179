import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AccountsService, CredentialStore } from '@app/accounts';
import { CmqError, CmqErrors } from '@app/cmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import { QueueService } from '@app/queues';

/** The prober's system account: unique by name among system accounts. */
export const PROBE_ACCOUNT_NAME = 'sla-prober';

/** The queue of every region the prober's round trips go through. */
export const CANARY_QUEUE = 'sla-canary';

/** What the prober signs its requests with. */
export interface ProbeIdentity {
  accountId: string;
  secretId: string;
  secretKey: string;
}

/**
 * The system account the prober speaks as (accounts.system: its requests are not metered), with
 * an enabled access key and a canary queue in every region. Made on first use, idempotently:
 * the steps run under a Postgres advisory lock, so concurrently starting workers make one
 * account, one key and one queue per region between them, and a worker that finds them made
 * reuses them.
 */
@Injectable()
export class ProbeAccount {
  private readonly logger = new Logger(ProbeAccount.name);
  private ready: Promise<ProbeIdentity> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly accounts: AccountsService,
    private readonly credentials: CredentialStore,
    private readonly queues: QueueService,
  ) {}

  /** The identity, ensured once per process; a failure is retried at the next call. */
  identity(): Promise<ProbeIdentity> {
    if (!this.ready) {
      this.ready = this.ensure().catch((err: unknown) => {
        this.ready = null;
        throw err;
      });
    }
    return this.ready;
  }

  /** Forgets the ensured identity, so the next call checks the account, key and queues again. */
  forget(): void {
    this.ready = null;
  }

  /** Makes whatever of the account, its key and its canary queues is missing; safe to repeat. */
  async ensure(): Promise<ProbeIdentity> {
    // the lock is held by this transaction's connection while the steps run on others
    const lock = this.db.createQueryRunner();
    await lock.connect();
    try {
      await lock.startTransaction();
      await lock.query(`SELECT pg_advisory_xact_lock(hashtextextended('sla:probe-account', 0))`);
      const accountId = await this.ensureAccount();
      const key = await this.ensureKey(accountId);
      for (const region of this.config.regions) await this.ensureCanary(accountId, region);
      await lock.commitTransaction();
      return { accountId, ...key };
    } catch (err) {
      if (lock.isTransactionActive) await lock.rollbackTransaction().catch(() => undefined);
      throw err;
    } finally {
      await lock.release();
    }
  }

  private async ensureAccount(): Promise<string> {
    const inserted: Array<{ id: string }> = await this.db.query(
      `INSERT INTO accounts (id, name, region, status, system) VALUES ($1, $2, $3, 'active', true)
       ON CONFLICT (name) WHERE system DO NOTHING
       RETURNING id`,
      [randomUUID(), PROBE_ACCOUNT_NAME, this.config.defaultRegion],
    );
    if (inserted.length) {
      this.logger.log(`system account ${PROBE_ACCOUNT_NAME} made: ${inserted[0].id}`);
      return inserted[0].id;
    }
    const rows: Array<{ id: string }> = await this.db.query(`SELECT id FROM accounts WHERE system AND name = $1`, [
      PROBE_ACCOUNT_NAME,
    ]);
    return rows[0].id;
  }

  /** The account's oldest enabled key, or a new one if it has none. */
  private async ensureKey(accountId: string): Promise<{ secretId: string; secretKey: string }> {
    const enabled = (await this.accounts.listKeys(accountId)).find((k) => k.status === 'enabled');
    if (enabled) {
      const credential = await this.credentials.resolve(enabled.secretId);
      if (credential) return { secretId: credential.secretId, secretKey: credential.secretKey };
    }
    const created = await this.accounts.createKey(accountId, { kind: 'component', name: 'sla-prober', via: 'worker' });
    return { secretId: created.secretId, secretKey: created.secretKey };
  }

  private async ensureCanary(accountId: string, region: string): Promise<void> {
    try {
      await this.queues.create({ accountId, region }, CANARY_QUEUE, {}, undefined, { kind: 'component', name: 'sla-prober', via: 'worker' });
      this.logger.log(`canary queue ${CANARY_QUEUE} made in ${region}`);
    } catch (err) {
      if (err instanceof CmqError && err.code === CmqErrors.queueExists().code) return;
      throw err;
    }
  }
}
