import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { Repository } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import { actorFields, appendAudit, AuditActor } from '@app/audit';
import { inTransaction, PgPool } from '@app/db';
import { AccessKeyEntity, AccessKeyStatus } from './access-key.entity';
import { AccountEntity } from './account.entity';
import { AccountsException, AccountsExceptionCode } from './accounts.exception';
import { randomAlnum } from './random-id';
import { SecretBox } from './secret-box';

/** Channel on which key changes are announced, so every queue-api drops its cached copy. */
export const CREDENTIALS_CHANNEL = 'credentials';

export interface CreatedKey {
  secretId: string;
  secretKey: string;
  status: AccessKeyStatus;
  createdAt: Date;
}

/**
 * Accounts and their access keys. Every change is recorded in the audit trail with who made it,
 * in the change's own transaction.
 */
@Injectable()
export class AccountsService {
  private readonly box: SecretBox;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectRepository(AccountEntity) private readonly accounts: Repository<AccountEntity>,
    @InjectRepository(AccessKeyEntity) private readonly keys: Repository<AccessKeyEntity>,
    private readonly redis: RedisService,
    private readonly pool: PgPool,
  ) {
    this.box = new SecretBox(config.masterKey);
  }

  async createAccount(name: string, region: string | undefined, by: AuditActor): Promise<AccountEntity> {
    const home = region ?? this.config.defaultRegion;
    if (!this.config.regions.includes(home)) {
      throw new AccountsException(
        AccountsExceptionCode.UNKNOWN_REGION,
        `region "${home}" is not served here (regions: ${this.config.regions.join(', ')})`,
      );
    }
    const id = randomUUID();
    await inTransaction(this.pool, async (c) => {
      await c.query(`INSERT INTO accounts (id, name, region, status) VALUES ($1, $2, $3, 'active')`, [id, name, home]);
      await appendAudit(c, { domain: 'accounts', action: 'account.create', ...actorFields(by), accountId: id, subject: `account:${id}`, details: { name, region: home } });
    });
    return this.getAccount(id);
  }

  /**
   * Accounts whose name contains `search` (ignoring case), or whose id or appId is `search`, in
   * creation order after the account `after` (keyset); system accounts are left out.
   */
  async searchAccounts(search: string | undefined, after: string | undefined, limit: number): Promise<AccountEntity[]> {
    const like = search ? '%' + search.replace(/[\\%_]/g, (c) => '\\' + c) + '%' : '%';
    const { rows } = await this.pool.query<{ id: string; app_id: string; name: string; region: string; status: AccountEntity['status']; created_at: Date; updated_at: Date }>(
      `SELECT id, app_id::text, name, region, status, created_at, updated_at FROM accounts a
        WHERE NOT a.system
          AND ($1::text IS NULL OR a.name ILIKE $2 OR a.id::text = $1 OR a.app_id::text = $1)
          AND ($3::uuid IS NULL OR (a.created_at, a.id) > (SELECT b.created_at, b.id FROM accounts b WHERE b.id = $3))
        ORDER BY a.created_at, a.id LIMIT $4`,
      [search || null, like, after ?? null, limit],
    );
    return rows.map((r) => Object.assign(new AccountEntity(), { id: r.id, appId: r.app_id, name: r.name, region: r.region, status: r.status, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  async getAccount(id: string): Promise<AccountEntity> {
    const account = await this.accounts.findOneBy({ id });
    if (!account) throw new AccountsException(AccountsExceptionCode.ACCOUNT_NOT_FOUND, `account ${id} does not exist`);
    return account;
  }

  /** Issues a key pair. The SecretKey is returned here once and stored only encrypted. */
  async createKey(accountId: string, by: AuditActor): Promise<CreatedKey> {
    await this.getAccount(accountId);
    const secretId = 'AKID' + randomAlnum(32);
    const secretKey = randomAlnum(32);
    const createdAt = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ status: AccessKeyStatus; created_at: Date }>(
        `INSERT INTO access_keys (secret_id, account_id, secret_key_enc, status) VALUES ($1, $2, $3, 'enabled') RETURNING status, created_at`,
        [secretId, accountId, this.box.seal(secretKey, secretId)],
      );
      await this.auditKey(c, by, accountId, secretId, 'key.create');
      return rows[0].created_at;
    });
    return { secretId, secretKey, status: 'enabled', createdAt };
  }

  async listKeys(accountId: string): Promise<AccessKeyEntity[]> {
    await this.getAccount(accountId);
    return this.keys.find({ where: { accountId }, order: { createdAt: 'ASC' } });
  }

  async getKey(accountId: string, secretId: string): Promise<AccessKeyEntity> {
    const key = await this.keys.findOneBy({ accountId, secretId });
    if (!key) throw new AccountsException(AccountsExceptionCode.KEY_NOT_FOUND, `key ${secretId} does not exist`);
    return key;
  }

  /** A key enabled or disabled; audited when its status changes (setting it again changes nothing). */
  async setKeyStatus(accountId: string, secretId: string, status: AccessKeyStatus, by: AuditActor): Promise<AccessKeyEntity> {
    await this.getKey(accountId, secretId);
    const changed = await inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query(
        `UPDATE access_keys SET status = $3, updated_at = now() WHERE account_id = $1 AND secret_id = $2 AND status <> $3`,
        [accountId, secretId, status],
      );
      if (rowCount) await this.auditKey(c, by, accountId, secretId, status === 'disabled' ? 'key.disable' : 'key.enable');
      return (rowCount ?? 0) > 0;
    });
    if (changed) await this.redis.publish(CREDENTIALS_CHANNEL, secretId);
    return this.getKey(accountId, secretId);
  }

  async deleteKey(accountId: string, secretId: string, by: AuditActor): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query(`DELETE FROM access_keys WHERE account_id = $1 AND secret_id = $2`, [accountId, secretId]);
      if (!rowCount) throw new AccountsException(AccountsExceptionCode.KEY_NOT_FOUND, `key ${secretId} does not exist`);
      await this.auditKey(c, by, accountId, secretId, 'key.delete');
    });
    await this.redis.publish(CREDENTIALS_CHANNEL, secretId);
  }

  private async auditKey(c: PoolClient, by: AuditActor, accountId: string, secretId: string, action: string): Promise<void> {
    await appendAudit(c, { domain: 'accounts', action, ...actorFields(by), accountId, subject: `key:${secretId}`, details: { secretId } });
  }
}
