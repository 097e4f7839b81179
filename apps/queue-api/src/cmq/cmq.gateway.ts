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
import { MessageStore, TenantScope } from '@app/queues';
import type { Credential } from '@app/accounts';
import { CLOCK, Clock } from '@app/common';
import { AccountStanding, outcomeOf, RequestMeter } from '@app/billing';
import type { ActionHandler } from './action-context';
import { Authenticator } from './authenticator';
import { ActionMetrics, CmqMetrics } from './cmq-metrics';
import { QueueActions } from './queue.actions';
import { TopicActions } from './topic.actions';

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
  /** handlers by lower-cased action name (Java sends `ClearSUbscriptionFIlterTags`), with the canonical name */
  private readonly handlers = new Map<string, { action: string; handle: ActionHandler; metrics: ActionMetrics }>();
  private readonly metering: boolean;
  private readonly requestIds = new RequestIds();
  /** set once shutdown begins: replies then close their connection, so the server can stop */
  draining = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: Authenticator,
    private readonly store: MessageStore,
    queueActions: QueueActions,
    topicActions: TopicActions,
    private readonly standing: AccountStanding,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly requestMetrics: CmqMetrics,
  ) {
    this.metering = config.usage.metering;
    for (const [action, handle] of Object.entries({ ...queueActions.handlers(), ...topicActions.handlers() })) {
      this.handlers.set(action.toLowerCase(), { action, handle, metrics: requestMetrics.forAction(action) });
    }
  }

  /**
   * Every request that passes authentication is metered, except a system account's (the SLA
   * prober's, which is not billed): its usage commits in the outbox of a group commit before
   * the reply goes out, with the request's own write when it has one (send, delete), else on
   * its own.
   */
  async handle(req: CmqHttpRequest): Promise<string> {
    const started = performance.now();
    const requestId = this.requestIds.next();
    let clientRequestId = '0';
    let meter: RequestMeter | null = null;
    let metrics = this.requestMetrics.unknown;
    let code = 0;
    let reply: string;
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
      metrics = handler.metrics;
      const credential = await this.auth.authenticate({ method, host: req.host, path, params });
      if (this.metering && !credential.system) meter = new RequestMeter(credential.accountId, credential.accountRegion, handler.action, this.clock.now());
      const scope = this.scope(req.host, params, credential);
      if (meter) meter.region = scope.region;
      // arrears (billing.md §5): a suspended account keeps management reads and DeleteQueue only
      this.standing.assertCanUse(credential.accountId, handler.action);
      const fields = await handler.handle({ params: new ParamReader(params), credential, scope, requestId, meter });
      reply = serializeReply(0, '', requestId, clientRequestId, fields || undefined);
    } catch (err) {
      if (err instanceof CmqError) {
        code = err.code;
        reply = serializeError(err, requestId, clientRequestId);
      } else {
        this.logger.error({ err, requestId }, 'CMQ request failed');
        const internal = CmqErrors.internal();
        code = internal.code;
        reply = serializeError(internal, requestId, clientRequestId);
      }
    }
    if (meter && !meter.committed) {
      try {
        await this.store.commitEntry(meter.settle(outcomeOf(code)));
      } catch (err) {
        // no success goes out unmetered: the caller retries (a receive's messages become
        // visible again after their visibility timeout)
        this.logger.error({ err, requestId }, 'usage of a CMQ request could not be recorded');
        if (code === 0) {
          const internal = CmqErrors.internal();
          code = internal.code;
          reply = serializeError(internal, requestId, clientRequestId);
        }
      }
    }
    metrics.record(code, (performance.now() - started) / 1000);
    return reply;
  }

  beforeApplicationShutdown(): void {
    this.draining = true;
  }

  /** An error reply for failures before the request could be read (e.g. an oversized body). */
  transportError(err: CmqError): string {
    this.requestMetrics.unknown.record(err.code);
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
