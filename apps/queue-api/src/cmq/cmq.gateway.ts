import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@app/config';
import {
  clientRequestIdDigits,
  CmqError,
  CmqErrors,
  CmqParams,
  decodeForm,
  ParamReader,
  RequestIds,
  serializeError,
  serializeReply,
} from '@app/cmq';
import type { TenantScope } from '@app/queues';
import type { Credential } from '@app/accounts';
import { AccountStanding } from '@app/billing';
import type { ActionHandler } from './action-context';
import { Authenticator } from './authenticator';
import { QueueActions } from './queue.actions';

export interface CmqHttpRequest {
  method: string;
  /** the Host header exactly as received */
  host: string;
  /** the URL as received: path and query */
  url: string;
  body?: Buffer;
}

const HOST_REGION_RE = /^cmq-(?:queue|topic)-([a-z0-9-]+)\./;

/**
 * One CMQ request, transport aside: decode, authenticate, pick the region, dispatch, and
 * always a flat JSON reply (HTTP 200 for every API-level outcome).
 */
@Injectable()
export class CmqGateway implements BeforeApplicationShutdown {
  private readonly logger = new Logger('CmqGateway');
  /** handlers by lower-cased action name (Java sends `ClearSUbscriptionFIlterTags`) */
  private readonly handlers = new Map<string, ActionHandler>();
  private readonly requestIds = new RequestIds();
  /** set once shutdown begins: replies then close their connection, so the server can stop */
  draining = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: Authenticator,
    queueActions: QueueActions,
    private readonly standing: AccountStanding,
  ) {
    for (const [name, handle] of Object.entries(queueActions.handlers())) this.handlers.set(name.toLowerCase(), handle);
  }

  async handle(req: CmqHttpRequest): Promise<string> {
    const requestId = this.requestIds.next();
    let clientRequestId = '0';
    try {
      const method = req.method.toUpperCase();
      if (method !== 'GET' && method !== 'POST') throw CmqErrors.method(method);
      const q = req.url.indexOf('?');
      const path = q === -1 ? req.url : req.url.slice(0, q);
      const params = method === 'GET' ? decodeForm(q === -1 ? '' : req.url.slice(q + 1)) : decodeForm(req.body ?? Buffer.alloc(0));
      clientRequestId = clientRequestIdDigits(params.get('clientRequestId'));
      const action = params.get('Action');
      if (action === undefined || action === '') throw CmqErrors.missing('Action');
      const handler = this.handlers.get(action.toLowerCase());
      if (!handler) throw CmqErrors.unknownAction(action.slice(0, 64));
      const credential = await this.auth.authenticate({ method, host: req.host, path, params });
      const scope = this.scope(req.host, params, credential);
      // arrears (billing.md §5): a suspended account keeps management reads and DeleteQueue only
      this.standing.assertCanUse(credential.accountId, action);
      const fields = await handler({ params: new ParamReader(params), credential, scope, requestId });
      return serializeReply(0, '', requestId, clientRequestId, fields || undefined);
    } catch (err) {
      if (err instanceof CmqError) return serializeError(err, requestId, clientRequestId);
      this.logger.error({ err, requestId }, 'CMQ request failed');
      return serializeError(CmqErrors.internal(), requestId, clientRequestId);
    }
  }

  beforeApplicationShutdown(): void {
    this.draining = true;
  }

  /** An error reply for failures before the request could be read (e.g. an oversized body). */
  transportError(err: CmqError): string {
    return serializeError(err, this.requestIds.next(), '0');
  }

  /** The region: from a `cmq-queue-<region>.` host, else the Region parameter, else the account's home. */
  private scope(host: string, params: CmqParams, credential: Credential): TenantScope {
    const fromHost = HOST_REGION_RE.exec(host)?.[1];
    if (fromHost && this.config.regions.includes(fromHost)) return { accountId: credential.accountId, region: fromHost };
    const given = params.get('Region');
    if (given) {
      if (!this.config.regions.includes(given)) throw CmqErrors.outOfRange('Region');
      return { accountId: credential.accountId, region: given };
    }
    return { accountId: credential.accountId, region: credential.accountRegion };
  }
}
