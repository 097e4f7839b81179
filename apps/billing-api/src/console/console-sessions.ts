import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '@app/config';
import { RedisService } from '@app/common';
import { CredentialStore } from '@app/accounts';

/** A web console sign-in: the account and the access key it was made with. */
export interface ConsoleSession {
  accountId: string;
  secretId: string;
  createdAt: string;
  expiresAt: string;
}

/** Console session tokens: `cs_` and 32 random bytes, base64url. */
export const SESSION_TOKEN_RE = /^cs_[A-Za-z0-9_-]{43}$/;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * Sign-ins of the web console with an access key pair (as MinIO's console takes one): the key
 * must exist and be enabled, and its SecretKey match (compared in constant time). The session
 * is a random bearer token kept in Redis (by its SHA-256, for CONSOLE_SESSION_TTL_SECONDS); every
 * use checks the key again, so disabling or deleting the key ends its sessions at once.
 */
@Injectable()
export class ConsoleSessions {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly redis: RedisService,
    private readonly credentials: CredentialStore,
  ) {}

  private key(token: string): string {
    return this.redis.key('console-session', digest(token));
  }

  /** A new session's token, or null when the key pair does not sign in. */
  async open(secretId: string, secretKey: string): Promise<{ token: string; session: ConsoleSession } | null> {
    const credential = await this.credentials.resolve(secretId);
    const given = Buffer.from(digest(secretKey));
    const expected = Buffer.from(digest(credential?.secretKey ?? randomBytes(16).toString('hex')));
    const same = timingSafeEqual(given, expected);
    if (!credential || !same || credential.keyStatus !== 'enabled' || credential.system) return null;
    const token = `cs_${randomBytes(32).toString('base64url')}`;
    const now = Date.now();
    const ttl = this.config.console.sessionTtlSeconds;
    const session: ConsoleSession = {
      accountId: credential.accountId,
      secretId,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttl * 1000).toISOString(),
    };
    await this.redis.client.set(this.key(token), JSON.stringify(session), 'EX', ttl);
    return { token, session };
  }

  /** The live session of a token whose key is still enabled, else null. */
  async find(token: string): Promise<ConsoleSession | null> {
    if (!SESSION_TOKEN_RE.test(token)) return null;
    const raw = await this.redis.client.get(this.key(token));
    if (!raw) return null;
    const session = JSON.parse(raw) as ConsoleSession;
    const credential = await this.credentials.resolve(session.secretId);
    if (!credential || credential.keyStatus !== 'enabled' || credential.accountId !== session.accountId) return null;
    return session;
  }

  async close(token: string): Promise<void> {
    await this.redis.client.del(this.key(token));
  }
}
