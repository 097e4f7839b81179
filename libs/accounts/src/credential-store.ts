import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import type { AccessKeyStatus } from './access-key.entity';
import type { AccountStatus } from './account.entity';
import { CREDENTIALS_CHANNEL } from './accounts.service';
import { SecretBox } from './secret-box';

export interface Credential {
  secretId: string;
  secretKey: string;
  keyStatus: AccessKeyStatus;
  accountId: string;
  accountRegion: string;
  accountStatus: AccountStatus;
  /** the service's own account (the SLA prober's): its requests are not metered */
  system: boolean;
}

/** What a SecretId can be: at most 128 printable ASCII characters (issued ones are `AKID` and 32 letters and digits). */
export const SECRET_ID_RE = /^[\x21-\x7e]{1,128}$/;

interface Entry {
  value: Credential | null;
  expires: number;
}

/**
 * Resolves a SecretId to its account and decrypted SecretKey for signature checks, cached in
 * memory for CREDENTIAL_CACHE_MS (unknown ids too, so a flood of bad ids costs no queries).
 * A key change published by the billing API evicts the entry at once in every process.
 */
@Injectable()
export class CredentialStore implements OnModuleInit {
  private readonly box: SecretBox;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Credential | null>>();
  private static readonly MAX_ENTRIES = 100_000;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly redis: RedisService,
  ) {
    this.box = new SecretBox(config.masterKey);
  }

  async onModuleInit(): Promise<void> {
    await this.redis.subscribe(CREDENTIALS_CHANNEL, (secretId) => this.cache.delete(secretId));
  }

  async resolve(secretId: string): Promise<Credential | null> {
    // an id no key could have (issued ones are AKID and 32 letters): no query, and no cache
    // entry, so a flood of megabyte-long ids pins no memory and NUL never reaches Postgres
    if (!SECRET_ID_RE.test(secretId)) return null;
    const hit = this.cache.get(secretId);
    if (hit && hit.expires > Date.now()) return hit.value;
    let pending = this.inflight.get(secretId);
    if (!pending) {
      pending = this.load(secretId).finally(() => this.inflight.delete(secretId));
      this.inflight.set(secretId, pending);
    }
    return pending;
  }

  private async load(secretId: string): Promise<Credential | null> {
    const rows: Array<{
      secret_key_enc: Buffer;
      status: AccessKeyStatus;
      account_id: string;
      region: string;
      account_status: AccountStatus;
      system: boolean;
    }> = await this.db.query(
      `SELECT k.secret_key_enc, k.status, k.account_id, a.region, a.status AS account_status, a.system
         FROM access_keys k JOIN accounts a ON a.id = k.account_id
        WHERE k.secret_id = $1`,
      [secretId],
    );
    const row = rows[0];
    const value: Credential | null = row
      ? {
          secretId,
          secretKey: this.box.open(row.secret_key_enc, secretId),
          keyStatus: row.status,
          accountId: row.account_id,
          accountRegion: row.region,
          accountStatus: row.account_status,
          system: row.system,
        }
      : null;
    if (this.config.cmq.credentialCacheMs > 0) {
      if (this.cache.size >= CredentialStore.MAX_ENTRIES) this.cache.clear();
      this.cache.set(secretId, { value, expires: Date.now() + this.config.cmq.credentialCacheMs });
    }
    return value;
  }
}
