import { randomInt } from 'node:crypto';
import { CmqError } from './errors';

const MAX_UINT64 = 18446744073709551615n;

/**
 * `clientRequestId` is echoed as a JSON number (the Go SDK decodes a uint64), 0 when absent or
 * not a uint64. Returned as the digits to write verbatim, since a JS number cannot hold 2^64−1.
 */
export function clientRequestIdDigits(raw: string | undefined): string {
  if (raw === undefined || !/^\d{1,20}$/.test(raw)) return '0';
  const digits = raw.replace(/^0+(?=\d)/, '');
  if (digits.length === 20 && BigInt(digits) > MAX_UINT64) return '0';
  return digits;
}

/**
 * Serializes one flat CMQ reply: `code`, `message`, `requestId`, `clientRequestId`, then the
 * action's fields at the top level.
 */
export function serializeReply(
  code: number,
  message: string,
  requestId: string,
  clientRequestId: string,
  fields?: Record<string, unknown>,
): string {
  let out = `{"code":${code},"message":${JSON.stringify(message)},"requestId":"${requestId}","clientRequestId":${clientRequestId}`;
  if (fields) {
    const body = JSON.stringify(fields);
    if (body.length > 2) out += ',' + body.slice(1, -1);
  }
  return out + '}';
}

export function serializeError(err: CmqError, requestId: string, clientRequestId: string): string {
  return serializeReply(err.code, err.message, requestId, clientRequestId, err.fields);
}

/** Request ids are digit strings, unique per process by a random prefix and a counter. */
export class RequestIds {
  private readonly prefix = String(randomInt(100_000, 1_000_000));
  private seq = 0;

  next(): string {
    this.seq = (this.seq + 1) % 100_000;
    return this.prefix + Date.now() + String(this.seq).padStart(5, '0');
  }
}
