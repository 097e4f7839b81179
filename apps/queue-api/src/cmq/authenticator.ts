import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import { Credential, CredentialStore } from '@app/accounts';
import { RedisService } from '@app/common';
import { CmqErrors, CmqParams, verifySignature } from '@app/cmq';
import { ReplayGuard } from './replay-guard';

const TIMESTAMP_RE = /^\d{1,12}$/;

export interface SignedRequest {
  method: string;
  host: string;
  path: string;
  params: CmqParams;
}

/**
 * Who is calling: the SecretId's key, checked against the signature (spec §4.2), the timestamp
 * window, and replays. Every failure is 4100 with the protocol's message and has no effect.
 */
@Injectable()
export class Authenticator {
  private readonly windowSeconds: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly credentials: CredentialStore,
    private readonly redis: RedisService,
    private readonly replays: ReplayGuard,
  ) {
    this.windowSeconds = config.cmq.signatureWindowSeconds;
  }

  /** Checks that the common parameters are there and well formed, before any lookup. */
  static requireCommon(params: CmqParams): void {
    for (const name of ['SecretId', 'Timestamp', 'Nonce', 'Signature']) {
      if (!params.has(name)) throw CmqErrors.missing(name);
    }
    if (!TIMESTAMP_RE.test(params.get('Timestamp')!)) throw CmqErrors.errorType('Timestamp');
  }

  async authenticate(req: SignedRequest): Promise<Credential> {
    const { params } = req;
    Authenticator.requireCommon(params);
    const credential = await this.credentials.resolve(params.get('SecretId')!);
    if (!credential) throw CmqErrors.secretIdUnknown();
    if (credential.keyStatus !== 'enabled') throw CmqErrors.secretIdDisabled();
    const skew = Math.abs(Math.floor(Date.now() / 1000) - Number(params.get('Timestamp')));
    if (skew > this.windowSeconds) throw CmqErrors.authFailed();
    if (!verifySignature(req.method, req.host, req.path, params, credential.secretKey)) throw CmqErrors.authFailed();
    // a signature is accepted once
    if (!(await this.replays.firstUse(this.redis.key('sig', credential.secretId, params.get('Signature')!)))) {
      throw CmqErrors.authFailed();
    }
    return credential;
  }
}
