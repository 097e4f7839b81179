import { CmqErrors } from './errors';
import type { ParamReader } from './params';

/** Ranges and defaults of the protocol (spec §7, §8, §14). */
export const QueueLimits = {
  maxMsgHeapNum: { min: 1_000_000, max: 1_000_000_000, default: 10_000_000 },
  pollingWaitSeconds: { min: 0, max: 30, default: 0 },
  visibilityTimeout: { min: 1, max: 43_200, default: 30 },
  maxMsgSize: { min: 1024, max: 1_048_576, default: 65_536 },
  msgRetentionSeconds: { min: 60, max: 1_296_000, default: 345_600 },
  rewindSeconds: { min: 0, max: 1_296_000, default: 0 },
} as const;

export type QueueAttributeName = keyof typeof QueueLimits;
export const QUEUE_ATTRIBUTE_NAMES = Object.keys(QueueLimits) as QueueAttributeName[];

export const MessageLimits = {
  /** messages per BatchSendMessage, handles per BatchDeleteMessage, numOfMsg per BatchReceiveMessage */
  batch: 16,
  /** the official Go SDK's client-side cap (70 days) */
  maxDelaySeconds: 6_048_000,
  /** the sum of msgBody sizes of one BatchSendMessage (4470/10300 beyond) */
  maxBatchBytes: 1_048_576,
  maxReceiptHandleLength: 256,
} as const;

export const ListLimits = { defaultLimit: 20, maxLimit: 50, maxOffset: 1_000_000 } as const;

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/**
 * The `searchWord` of a listing: at most 64 characters, no control characters (no name has one,
 * and Postgres text cannot hold a NUL); 10350 otherwise.
 */
export function searchWordParam(p: ParamReader): string | undefined {
  const searchWord = p.optionalString('searchWord');
  if (searchWord !== undefined && (searchWord.length > 64 || CONTROL_RE.test(searchWord))) throw CmqErrors.outOfRange('searchWord');
  return searchWord;
}

/** 1–64 characters, a letter first, then letters, digits, `-` and `_` (the Go SDK lets `_` through). */
export const QUEUE_NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

export function assertQueueName(name: string): string {
  if (!QUEUE_NAME_RE.test(name)) throw CmqErrors.queueNameFormat();
  return name;
}
