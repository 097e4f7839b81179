import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Repository } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
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

@Injectable()
export class AccountsService {
  private readonly box: SecretBox;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectRepository(AccountEntity) private readonly accounts: Repository<AccountEntity>,
    @InjectRepository(AccessKeyEntity) private readonly keys: Repository<AccessKeyEntity>,
    private readonly redis: RedisService,
  ) {
    this.box = new SecretBox(config.masterKey);
  }

  async createAccount(name: string, region: string | undefined): Promise<AccountEntity> {
    const home = region ?? this.config.defaultRegion;
    if (!this.config.regions.includes(home)) {
      throw new AccountsException(
        AccountsExceptionCode.UNKNOWN_REGION,
        `region "${home}" is not served here (regions: ${this.config.regions.join(', ')})`,
      );
    }
    const id = randomUUID();
    await this.accounts.insert({ id, name, region: home, status: 'active' });
    return this.getAccount(id);
  }

  async getAccount(id: string): Promise<AccountEntity> {
    const account = await this.accounts.findOneBy({ id });
    if (!account) throw new AccountsException(AccountsExceptionCode.ACCOUNT_NOT_FOUND, `account ${id} does not exist`);
    return account;
  }

  /** Issues a key pair. The SecretKey is returned here once and stored only encrypted. */
  async createKey(accountId: string): Promise<CreatedKey> {
    await this.getAccount(accountId);
    const secretId = 'AKID' + randomAlnum(32);
    const secretKey = randomAlnum(32);
    await this.keys.insert({
      secretId,
      accountId,
      secretKeyEnc: this.box.seal(secretKey, secretId),
      status: 'enabled',
    });
    const row = await this.getKey(accountId, secretId);
    return { secretId, secretKey, status: row.status, createdAt: row.createdAt };
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

  async setKeyStatus(accountId: string, secretId: string, status: AccessKeyStatus): Promise<AccessKeyEntity> {
    await this.getKey(accountId, secretId);
    await this.keys.update({ accountId, secretId }, { status });
    await this.redis.publish(CREDENTIALS_CHANNEL, secretId);
    return this.getKey(accountId, secretId);
  }

  async deleteKey(accountId: string, secretId: string): Promise<void> {
    const { affected } = await this.keys.delete({ accountId, secretId });
    if (!affected) throw new AccountsException(AccountsExceptionCode.KEY_NOT_FOUND, `key ${secretId} does not exist`);
    await this.redis.publish(CREDENTIALS_CHANNEL, secretId);
  }
}
