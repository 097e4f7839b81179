import { Inject, Injectable } from '@nestjs/common';
import {
  assertEndpoint,
  assertSubscriptionName,
  assertTopicName,
  CmqErrors,
  FilterType,
  MessageLimits,
  ParamReader,
  readBindingKeys,
  readContentFormat,
  readFilterTags,
  readMsgTags,
  readNotifyStrategy,
  readProtocol,
  readRoutingKey,
  searchWordParam,
  SubscriptionListLimits,
  TopicLimits,
} from '@app/cmq';
import { APP_CONFIG, AppConfig } from '@app/config';
import {
  EntryOf,
  MessageStore,
  PublishResult,
  PublishWriter,
  QpsThrottle,
  SubscriptionSettings,
  TenantScope,
  TopicInfo,
  TopicRegistry,
  TopicService,
} from '@app/queues';
import type { ActionContext, ActionHandler, ActionResult } from './action-context';
import { PushRelay } from './push-relay';
import { listPage, user } from './queue.actions';

/** The topic the request names (in `topicName`); metered as its resource. */
function topicName(ctx: ActionContext): string {
  const name = assertTopicName(ctx.params.string('topicName'));
  if (ctx.meter) ctx.meter.resource = name;
  return name;
}

function subscriptionName(p: ParamReader): string {
  return assertSubscriptionName(p.string('subscriptionName'));
}

function maxMsgSize(p: ParamReader): number | undefined {
  return p.optionalInt('maxMsgSize', TopicLimits.maxMsgSize);
}

function filterType(p: ParamReader): FilterType {
  const v = p.optionalInt('filterType', { min: 1, max: 2 });
  return v === 2 ? 2 : 1;
}

function messageBody(raw: string, topic: TopicInfo): Buffer {
  if (raw.length === 0) throw CmqErrors.emptyBody();
  const buf = Buffer.from(raw, 'utf8');
  if (buf.length > topic.maxMsgSize) throw CmqErrors.messageTooBig();
  return buf;
}

/** The usage entry of a publish, committed with it: ok only if it was stored. */
function publishEntry(ctx: ActionContext, bodies: Buffer[]): EntryOf<PublishResult> | undefined {
  const meter = ctx.meter;
  if (!meter) return undefined;
  meter.messageBytes = bodies.map((b) => b.length);
  return (r) => meter.settle(r.status === 'ok' ? 'ok' : 'client_error');
}

const PUBLISH_REFUSED = {
  no_topic: CmqErrors.topicNotExist,
  no_subscription: CmqErrors.topicNoSubscription,
  no_match: CmqErrors.topicNoMatch,
} as const;

/** Subscription settings given in the request (SetSubscriptionAttributes changes only those). */
function readSettings(p: ParamReader): SubscriptionSettings {
  return {
    notifyStrategy: readNotifyStrategy(p),
    notifyContentFormat: readContentFormat(p),
    filterTags: readFilterTags(p),
    bindingKeys: readBindingKeys(p),
  };
}

/** The topic and subscription actions of the CMQ API (spec §10). */
@Injectable()
export class TopicActions {
  private readonly publishWriter = new PublishWriter();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly topics: TopicService,
    private readonly registry: TopicRegistry,
    private readonly messages: MessageStore,
    private readonly throttle: QpsThrottle,
    private readonly pushes: PushRelay,
  ) {}

  /** Action name → handler. Names are matched case-insensitively (Java's `ClearSUbscriptionFIlterTags` too). */
  handlers(): Record<string, ActionHandler> {
    return {
      CreateTopic: (c) => this.createTopic(c),
      SetTopicAttributes: (c) => this.setTopicAttributes(c),
      GetTopicAttributes: (c) => this.topics.attributes(c.scope, topicName(c)),
      DeleteTopic: (c) => this.topics.delete(c.scope, topicName(c), user(c)),
      ListTopic: (c) => this.listTopic(c),
      PublishMessage: (c) => this.publish(c, false),
      BatchPublishMessage: (c) => this.publish(c, true),
      Subscribe: (c) => this.subscribe(c),
      Unsubscribe: (c) => this.unsubscribe(c),
      SetSubscriptionAttributes: (c) => this.setSubscriptionAttributes(c),
      GetSubscriptionAttributes: (c) => this.getSubscriptionAttributes(c),
      ListSubscriptionByTopic: (c) => this.listSubscriptions(c),
      ClearSubscriptionFilterTags: (c) => this.clearFilterTags(c),
      QueryTopicRoute: (c) => this.queryTopicRoute(c),
    };
  }

  async createTopic(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = topicName(ctx);
    const size = maxMsgSize(params) ?? TopicLimits.maxMsgSize.default;
    const topicId = await this.topics.create(scope, name, size, filterType(params), user(ctx));
    return { topicId };
  }

  async setTopicAttributes(ctx: ActionContext): Promise<ActionResult> {
    const name = topicName(ctx);
    await this.topics.setAttributes(ctx.scope, name, maxMsgSize(ctx.params), user(ctx));
  }

  async listTopic(ctx: ActionContext): Promise<ActionResult> {
    const { searchWord, offset, limit } = listPage(ctx.params);
    return this.topics.list(ctx.scope, searchWord, offset, limit);
  }

  /** The live topic a publish goes to, once its requests/s cap admits the request. */
  private async target(scope: TenantScope, name: string): Promise<TopicInfo> {
    const topic = await this.registry.get(scope, name);
    const qpsLimit = topic.qpsLimit ?? this.config.cmq.topicQpsLimit;
    if (!(await this.throttle.admit({ id: `topic:${topic.id}`, qpsLimit }))) throw CmqErrors.qpsThrottling();
    return topic;
  }

  /**
   * PublishMessage / BatchPublishMessage: checked, then stored in one group commit with its
   * usage: copies in every matching queue and a push row for every matching HTTP subscription.
   * Answered once that commit is durable; its pushes then go to the workers.
   */
  async publish(ctx: ActionContext, batch: boolean): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = topicName(ctx);
    const raws = batch ? params.array('msgBody', TopicLimits.batch) : [params.string('msgBody')];
    const tags = readMsgTags(params);
    const topic = await this.target(scope, name);
    const routingKey = readRoutingKey(params, topic.filterType);
    const bodies = raws.map((r) => messageBody(r, topic));
    if (batch && bodies.reduce((n, b) => n + b.length, 0) > MessageLimits.maxBatchBytes) throw CmqErrors.batchTooBig();
    const result = await this.messages.submit(
      this.publishWriter,
      { topicId: topic.id, bodies, tags, routingKey, acceptUnmatched: this.config.cmq.publishUnmatched === 'accept' },
      publishEntry(ctx, bodies),
    );
    if (result.status !== 'ok') throw PUBLISH_REFUSED[result.status]();
    this.pushes.committed(result.pushes);
    return batch ? { msgList: result.msgIds.map((msgId) => ({ msgId })) } : { msgId: result.msgIds[0] };
  }

  async subscribe(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const topic = topicName(ctx);
    const name = subscriptionName(params);
    const protocol = readProtocol(params);
    const endpoint = assertEndpoint(protocol, params.string('endpoint'));
    const settings = readSettings(params);
    const subscriptionId = await this.topics.subscribe(scope, topic, { name, protocol, endpoint, ...settings }, user(ctx));
    return { subscriptionId };
  }

  async unsubscribe(ctx: ActionContext): Promise<ActionResult> {
    const topic = topicName(ctx);
    await this.topics.unsubscribe(ctx.scope, topic, subscriptionName(ctx.params), user(ctx));
  }

  async setSubscriptionAttributes(ctx: ActionContext): Promise<ActionResult> {
    const topic = topicName(ctx);
    const name = subscriptionName(ctx.params);
    await this.topics.setSubscriptionAttributes(ctx.scope, topic, name, readSettings(ctx.params), user(ctx));
  }

  async getSubscriptionAttributes(ctx: ActionContext): Promise<ActionResult> {
    const topic = topicName(ctx);
    return this.topics.subscriptionAttributes(ctx.scope, topic, subscriptionName(ctx.params));
  }

  async listSubscriptions(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const topic = topicName(ctx);
    const searchWord = searchWordParam(params);
    const offset = params.optionalInt('offset', { min: 0, max: SubscriptionListLimits.maxOffset }) ?? 0;
    const limit = params.optionalInt('limit', { min: 0, max: SubscriptionListLimits.maxLimit }) ?? SubscriptionListLimits.defaultLimit;
    return this.topics.listSubscriptions(scope, topic, searchWord, offset, limit);
  }

  async clearFilterTags(ctx: ActionContext): Promise<ActionResult> {
    const topic = topicName(ctx);
    const name = subscriptionName(ctx.params);
    await this.topics.setSubscriptionAttributes(ctx.scope, topic, name, { filterTags: [] }, user(ctx), 'subscription.clear-filter-tags');
  }

  /** The TCP gateways of a topic, for the TDMQ-era TCP SDKs: none (HTTP only); the topic must exist. */
  async queryTopicRoute(ctx: ActionContext): Promise<ActionResult> {
    await this.registry.load(ctx.scope, topicName(ctx));
    return { addr: [] };
  }
}
