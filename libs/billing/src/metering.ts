/**
 * What a CMQ request counts for (billing.md §1): its action class, its outcome, and its billable
 * calls under the price plan's counting rule.
 */

export type ActionClass = 'send' | 'consume' | 'ack' | 'management';

export type Outcome = 'ok' | 'no_message' | 'client_error' | 'throttled' | 'overdue' | 'server_error';

/** Counting rules a price plan can choose. */
export type MeteringRule =
  /** TDMQ-CMQ: per message, weighted by size bands; an empty receive and each delete handle count 1 */
  | 'size_bands'
  /** SQS / MNS: every started 64 KiB of a request's payload is one call; a batch is one request */
  | 'per_64k';

export const METERING_RULES: readonly MeteringRule[] = ['size_bands', 'per_64k'];

const ACTION_CLASS: Record<string, ActionClass> = {
  sendmessage: 'send',
  batchsendmessage: 'send',
  publishmessage: 'send',
  batchpublishmessage: 'send',
  receivemessage: 'consume',
  batchreceivemessage: 'consume',
  deletemessage: 'ack',
  batchdeletemessage: 'ack',
  /** a topic's push of one message to an HTTP subscriber (metered by the worker that made it) */
  pushmessage: 'consume',
};

/** The class of a CMQ action (matched case-insensitively); anything else is management. */
export function actionClass(action: string): ActionClass {
  return ACTION_CLASS[action.toLowerCase()] ?? 'management';
}

/**
 * Codes of the 6000 family that answer a caller's mistake, not a failure of the service: a
 * partly failed batch delete (some handles invalid; the deleted ones are billed), every handle
 * invalid, a publish to a topic without a matching subscription, a name still cooling down, a rewind of a queue without a rewind window.
 */
const CALLER_CAUSED: Record<number, Outcome> = {
  6010: 'ok',
  6020: 'client_error',
  6030: 'client_error',
  6040: 'client_error',
  6050: 'client_error',
};

/** The outcome of a reply code (billing.md §1). */
export function outcomeOf(code: number): Outcome {
  if (code === 0) return 'ok';
  if (CALLER_CAUSED[code]) return CALLER_CAUSED[code];
  if (code === 7000) return 'no_message';
  if (code === 4420) return 'throttled';
  if (code === 4300) return 'overdue';
  if (code >= 6000 && code < 7000) return 'server_error';
  return 'client_error';
}

const KIB = 1024;

/** Size bands of the default rule: upper bound in bytes (inclusive) → weight. */
export const SIZE_BANDS: ReadonlyArray<readonly [number, number]> = [
  [2 * KIB, 1],
  [4 * KIB, 2],
  [16 * KIB, 4],
  [100 * KIB, 16],
  [1024 * KIB, 64],
];

/** The weight of one message of `bytes` under the size-band rule (1 MiB is the largest message). */
export function sizeWeight(bytes: number): number {
  for (let i = 0; i < SIZE_BANDS.length; i++) if (bytes <= SIZE_BANDS[i][0]) return SIZE_BANDS[i][1];
  return SIZE_BANDS[SIZE_BANDS.length - 1][1];
}

export interface MeteredRequest {
  action: string;
  outcome: Outcome;
  /** payload sizes of the messages sent or received, in bytes */
  messageBytes: number[];
  /** receipt handles a delete carried */
  handles?: number;
}

/**
 * Billable calls of one request. Only `ok` and `no_message` are billed; management actions
 * never are. Under size bands a batch counts per message; an empty receive counts 1; a delete
 * counts 1 per handle. Under per-64 KiB every started 64 KiB of the request's payload counts 1
 * (at least 1 per request).
 */
export function billableCalls(rule: MeteringRule, r: MeteredRequest): number {
  return billableCallsOf(rule, actionClass(r.action), r.outcome, r.messageBytes, r.handles);
}

/** {@link billableCalls} for a request whose action class is known, and its payload's total when known. */
export function billableCallsOf(
  rule: MeteringRule,
  cls: ActionClass,
  outcome: Outcome,
  messageBytes: readonly number[],
  handles: number | undefined,
  totalBytes?: number,
): number {
  if (outcome !== 'ok' && outcome !== 'no_message') return 0;
  if (cls === 'management') return 0;
  if (rule === 'per_64k') {
    const total = totalBytes ?? messageBytes.reduce((a, b) => a + b, 0);
    return Math.max(1, Math.ceil(total / (64 * KIB)));
  }
  if (cls === 'ack') return Math.max(1, handles ?? 1);
  if (messageBytes.length === 0) return 1;
  let n = 0;
  for (const b of messageBytes) n += sizeWeight(b);
  return n;
}
