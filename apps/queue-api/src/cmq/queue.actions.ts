import { Injectable } from '@nestjs/common';
import {
  assertQueueName,
  CmqErrors,
  DeadLetterPolicyParam,
  ListLimits,
  MessageLimits,
  parseDeadLetterPolicy,
  ParamReader,
  QUEUE_ATTRIBUTE_NAMES,
  QueueLimits,
  searchWordParam,
} from '@app/cmq';
import {
  EntryOf,
  MessageStore,
  QpsThrottle,
  ReceivedMessage,
  SendResult,
  QueueAttributes,
  QueueInfo,
  QueueRegistry,
  QueueService,
  TenantScope,
} from '@app/queues';
import type { AuditActor } from '@app/audit';
import type { ActionContext, ActionHandler, ActionResult } from './action-context';

function readAttributes(p: ParamReader): Partial<QueueAttributes> {
  const out: Partial<QueueAttributes> = {};
  for (const a of QUEUE_ATTRIBUTE_NAMES) {
    const v = p.optionalInt(a, QueueLimits[a]);
    if (v !== undefined) out[a] = v;
  }
  return out;
}

function readDeadLetterPolicy(p: ParamReader): DeadLetterPolicyParam | undefined {
  const raw = p.optionalString('deadLetterPolicy');
  return raw === undefined ? undefined : parseDeadLetterPolicy(raw);
}

export function listPage(p: ParamReader): { searchWord: string | undefined; offset: number; limit: number } {
  const searchWord = searchWordParam(p);
  const offset = p.optionalInt('offset', { min: 0, max: ListLimits.maxOffset }) ?? 0;
  const limit = p.optionalInt('limit', { min: 1, max: ListLimits.maxLimit, clampAbove: true }) ?? ListLimits.defaultLimit;
  return { searchWord, offset, limit };
}

/** The caller of a CMQ request, as the audit trail records a queue change it makes. */
export function user(ctx: ActionContext): AuditActor {
  return { kind: 'user', name: ctx.credential.secretId, via: 'cmq' };
}

/** The queue the request names (in `param`); metered as its resource. */
function queueName(ctx: ActionContext, param = 'queueName'): string {
  const name = assertQueueName(ctx.params.string(param));
  if (ctx.meter) ctx.meter.resource = name;
  return name;
}

/** The usage entry of a send, committed with its messages: ok only if they were stored. */
function sendEntry(ctx: ActionContext, bodies: Buffer[]): EntryOf<SendResult> | undefined {
  const meter = ctx.meter;
  if (!meter) return undefined;
  meter.messageBytes = bodies.map((b) => b.length);
  return (r) => meter.settle(Array.isArray(r) ? 'ok' : 'client_error');
}

/** The usage entry of a delete, committed with it: billed per handle that deleted a message. */
function deleteEntry(ctx: ActionContext): EntryOf<boolean[]> | undefined {
  const meter = ctx.meter;
  if (!meter) return undefined;
  return (r) => {
    meter.handlesDeleted = r.filter(Boolean).length;
    return meter.settle(meter.handlesDeleted > 0 ? 'ok' : 'client_error');
  };
}

/** What a receive returned, for its usage (which commits after the claim). */
function received(ctx: ActionContext, msgs: ReceivedMessage[]): void {
  if (ctx.meter) ctx.meter.messageBytes = msgs.map((m) => Buffer.byteLength(m.msgBody, 'utf8'));
}

function pollingWait(p: ParamReader, queueDefault: number): number {
  const v = p.optionalInt('pollingWaitSeconds', { ...QueueLimits.pollingWaitSeconds, clampAbove: true });
  return v ?? queueDefault;
}

function delaySeconds(p: ParamReader): number {
  const raw = p.optionalString('delaySeconds');
  if (raw === undefined) return 0;
  if (!/^-?\d+$/.test(raw)) throw CmqErrors.errorType('delaySeconds');
  if (raw.startsWith('-') || raw.length > 10 || Number(raw) > MessageLimits.maxDelaySeconds) {
    throw CmqErrors.delayOutOfRange();
  }
  return Number(raw);
}

function messageBody(raw: string, maxMsgSize: number): Buffer {
  if (raw.length === 0) throw CmqErrors.emptyBody();
  const buf = Buffer.from(raw, 'utf8');
  if (buf.length > maxMsgSize) throw CmqErrors.messageTooBig();
  return buf;
}

/** The ids of a committed send, or the reason it stored nothing. */
function sent(result: SendResult): string[] {
  if (result === null) throw CmqErrors.queueNotExist();
  if (result === 'full') throw CmqErrors.heapFull();
  return result;
}

/** The queue and message actions of the CMQ API (spec §7, §8). */
@Injectable()
export class QueueActions {
  constructor(
    private readonly queues: QueueService,
    private readonly registry: QueueRegistry,
    private readonly messages: MessageStore,
    private readonly throttle: QpsThrottle,
  ) {}

  /** The live queue a message action works on, once its requests/s cap admits the request. */
  private async target(scope: TenantScope, name: string): Promise<QueueInfo> {
    const queue = await this.registry.get(scope, name);
    if (!(await this.throttle.admit(queue))) throw CmqErrors.qpsThrottling();
    return queue;
  }

  /** Action name → handler. Names are matched case-insensitively by the gateway. */
  handlers(): Record<string, ActionHandler> {
    return {
      CreateQueue: (c) => this.createQueue(c),
      ListQueue: (c) => this.listQueue(c),
      GetQueueAttributes: (c) => this.getQueueAttributes(c),
      SetQueueAttributes: (c) => this.setQueueAttributes(c),
      DeleteQueue: (c) => this.deleteQueue(c),
      SendMessage: (c) => this.sendMessage(c),
      BatchSendMessage: (c) => this.batchSendMessage(c),
      ReceiveMessage: (c) => this.receiveMessage(c),
      BatchReceiveMessage: (c) => this.batchReceiveMessage(c),
      DeleteMessage: (c) => this.deleteMessage(c),
      BatchDeleteMessage: (c) => this.batchDeleteMessage(c),
      RewindQueue: (c) => this.rewindQueue(c),
      UnbindDeadLetterQueue: (c) => this.unbindDeadLetterQueue(c),
      ListDeadLetterSourceQueues: (c) => this.listDeadLetterSourceQueues(c),
      QueryQueueRoute: (c) => this.queryQueueRoute(c),
    };
  }

  async createQueue(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const queueId = await this.queues.create(scope, name, readAttributes(params), readDeadLetterPolicy(params), user(ctx));
    return { queueId };
  }

  async listQueue(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const { searchWord, offset, limit } = listPage(params);
    return this.queues.list(scope, searchWord, offset, limit);
  }

  async getQueueAttributes(ctx: ActionContext): Promise<ActionResult> {
    const { scope } = ctx;
    return this.queues.attributes(scope, queueName(ctx));
  }

  async setQueueAttributes(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    return this.queues.setAttributes(scope, name, readAttributes(params), readDeadLetterPolicy(params), user(ctx));
  }

  async rewindQueue(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const start = params.int('startConsumeTime', { min: 0, max: Number.MAX_SAFE_INTEGER });
    await this.queues.rewind(scope, name, start, user(ctx));
  }

  async unbindDeadLetterQueue(ctx: ActionContext): Promise<ActionResult> {
    const { scope } = ctx;
    return this.queues.unbindDeadLetter(scope, queueName(ctx), user(ctx));
  }

  async listDeadLetterSourceQueues(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const dlqName = queueName(ctx, 'deadLetterQueueName');
    const { searchWord, offset, limit } = listPage(params);
    return this.queues.listDeadLetterSources(scope, dlqName, searchWord, offset, limit);
  }

  /**
   * The TCP gateways of a queue, for the TDMQ-era TCP SDKs. This service speaks HTTP only, so
   * the list is empty; the queue must exist.
   */
  async queryQueueRoute(ctx: ActionContext): Promise<ActionResult> {
    const { scope } = ctx;
    await this.registry.get(scope, queueName(ctx));
    return { addr: [] };
  }

  async deleteQueue(ctx: ActionContext): Promise<ActionResult> {
    const { scope } = ctx;
    await this.queues.delete(scope, queueName(ctx), user(ctx));
  }

  async sendMessage(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const raw = params.string('msgBody');
    const delay = delaySeconds(params);
    const queue = await this.target(scope, name);
    const bodies = [messageBody(raw, queue.maxMsgSize)];
    const ids = sent(await this.messages.send(queue, bodies, delay, sendEntry(ctx, bodies)));
    return { msgId: ids[0] };
  }

  async batchSendMessage(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const raws = params.array('msgBody', MessageLimits.batch);
    const delay = delaySeconds(params);
    const queue = await this.target(scope, name);
    const bodies = raws.map((r) => messageBody(r, queue.maxMsgSize));
    if (bodies.reduce((n, b) => n + b.length, 0) > MessageLimits.maxBatchBytes) throw CmqErrors.batchTooBig();
    const ids = sent(await this.messages.send(queue, bodies, delay, sendEntry(ctx, bodies)));
    return { msgList: ids.map((msgId) => ({ msgId })) };
  }

  async receiveMessage(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const queue = await this.target(scope, name);
    const wait = pollingWait(params, queue.pollingWaitSeconds);
    const msgs = await this.messages.receive(queue, 1, wait);
    received(ctx, msgs);
    const [msg] = msgs;
    if (!msg) throw CmqErrors.noMessage();
    return { ...msg };
  }

  async batchReceiveMessage(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const n = params.int('numOfMsg', { min: 1, max: MessageLimits.batch });
    const queue = await this.target(scope, name);
    const wait = pollingWait(params, queue.pollingWaitSeconds);
    const msgs = await this.messages.receive(queue, n, wait);
    received(ctx, msgs);
    if (msgs.length === 0) throw CmqErrors.noMessage();
    return { msgInfoList: msgs };
  }

  async deleteMessage(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const handle = params.string('receiptHandle');
    const queue = await this.target(scope, name);
    const [ok] = await this.messages.delete(queue, [handle], deleteEntry(ctx));
    if (!ok) throw CmqErrors.receiptHandleInvalid();
  }

  async batchDeleteMessage(ctx: ActionContext): Promise<ActionResult> {
    const { params, scope } = ctx;
    const name = queueName(ctx);
    const handles = params.array('receiptHandle', MessageLimits.batch);
    const queue = await this.target(scope, name);
    const results = await this.messages.delete(queue, handles, deleteEntry(ctx));
    const errorList = handles
      .filter((_, i) => !results[i])
      .map((receiptHandle) => ({ code: 4430, message: 'invalid receiptHandle', receiptHandle }));
    if (errorList.length === handles.length) throw CmqErrors.batchDeleteFailed(errorList);
    if (errorList.length > 0) throw CmqErrors.deletePartlyFailed(errorList);
  }
}
