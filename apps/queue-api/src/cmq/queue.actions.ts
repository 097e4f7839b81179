import { Injectable } from '@nestjs/common';
import {
  assertQueueName,
  CmqError,
  CmqErrors,
  ListLimits,
  MessageLimits,
  ParamReader,
  QUEUE_ATTRIBUTE_NAMES,
  QueueLimits,
} from '@app/cmq';
import { MessageStore, QueueAttributes, QueueRegistry, QueueService } from '@app/queues';
import type { ActionContext, ActionHandler, ActionResult } from './action-context';

function readAttributes(p: ParamReader): Partial<QueueAttributes> {
  const out: Partial<QueueAttributes> = {};
  for (const a of QUEUE_ATTRIBUTE_NAMES) {
    const v = p.optionalInt(a, QueueLimits[a]);
    if (v !== undefined) out[a] = v;
  }
  if (p.has('deadLetterPolicy')) {
    // dead-letter queues are not offered yet: refuse rather than drop the setting silently
    throw new CmqError(4000, 10720, 'deadLetterPolicy params error,please check it');
  }
  return out;
}

function queueName(p: ParamReader): string {
  return assertQueueName(p.string('queueName'));
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

/** The queue and message actions of the CMQ API (spec §7, §8). */
@Injectable()
export class QueueActions {
  constructor(
    private readonly queues: QueueService,
    private readonly registry: QueueRegistry,
    private readonly messages: MessageStore,
  ) {}

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
    };
  }

  async createQueue({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const queueId = await this.queues.create(scope, name, readAttributes(params));
    return { queueId };
  }

  async listQueue({ params, scope }: ActionContext): Promise<ActionResult> {
    const searchWord = params.optionalString('searchWord');
    if (searchWord !== undefined && searchWord.length > 64) throw CmqErrors.outOfRange('searchWord');
    const offset = params.optionalInt('offset', { min: 0, max: ListLimits.maxOffset }) ?? 0;
    const limit =
      params.optionalInt('limit', { min: 1, max: ListLimits.maxLimit, clampAbove: true }) ?? ListLimits.defaultLimit;
    return this.queues.list(scope, searchWord, offset, limit);
  }

  async getQueueAttributes({ params, scope }: ActionContext): Promise<ActionResult> {
    return this.queues.attributes(scope, queueName(params));
  }

  async setQueueAttributes({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    return this.queues.setAttributes(scope, name, readAttributes(params));
  }

  async deleteQueue({ params, scope }: ActionContext): Promise<ActionResult> {
    await this.queues.delete(scope, queueName(params));
  }

  async sendMessage({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const raw = params.string('msgBody');
    const delay = delaySeconds(params);
    const queue = await this.registry.get(scope, name);
    const ids = await this.messages.send(queue, [messageBody(raw, queue.maxMsgSize)], delay);
    if (!ids) throw CmqErrors.queueNotExist();
    return { msgId: ids[0] };
  }

  async batchSendMessage({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const raws = params.array('msgBody', MessageLimits.batch);
    const delay = delaySeconds(params);
    const queue = await this.registry.get(scope, name);
    const bodies = raws.map((r) => messageBody(r, queue.maxMsgSize));
    if (bodies.reduce((n, b) => n + b.length, 0) > MessageLimits.maxBatchBytes) throw CmqErrors.batchTooBig();
    const ids = await this.messages.send(queue, bodies, delay);
    if (!ids) throw CmqErrors.queueNotExist();
    return { msgList: ids.map((msgId) => ({ msgId })) };
  }

  async receiveMessage({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const queue = await this.registry.get(scope, name);
    const wait = pollingWait(params, queue.pollingWaitSeconds);
    const [msg] = await this.messages.receive(queue, 1, wait);
    if (!msg) throw CmqErrors.noMessage();
    return { ...msg };
  }

  async batchReceiveMessage({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const n = params.int('numOfMsg', { min: 1, max: MessageLimits.batch });
    const queue = await this.registry.get(scope, name);
    const wait = pollingWait(params, queue.pollingWaitSeconds);
    const msgs = await this.messages.receive(queue, n, wait);
    if (msgs.length === 0) throw CmqErrors.noMessage();
    return { msgInfoList: msgs };
  }

  async deleteMessage({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const handle = params.string('receiptHandle');
    const queue = await this.registry.get(scope, name);
    const [ok] = await this.messages.delete(queue, [handle]);
    if (!ok) throw CmqErrors.receiptHandleInvalid();
  }

  async batchDeleteMessage({ params, scope }: ActionContext): Promise<ActionResult> {
    const name = queueName(params);
    const handles = params.array('receiptHandle', MessageLimits.batch);
    const queue = await this.registry.get(scope, name);
    const results = await this.messages.delete(queue, handles);
    const errorList = handles
      .filter((_, i) => !results[i])
      .map((receiptHandle) => ({ code: 4430, message: 'invalid receiptHandle', receiptHandle }));
    if (errorList.length === handles.length) throw CmqErrors.batchDeleteFailed(errorList);
    if (errorList.length > 0) throw CmqErrors.deletePartlyFailed(errorList);
  }
}
