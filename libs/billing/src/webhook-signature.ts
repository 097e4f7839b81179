import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Cmq-Signature';
export const TIMESTAMP_HEADER = 'X-Cmq-Timestamp';

/**
 * The signature of a notification webhook: `sha256=` and the hex HMAC-SHA256, under the
 * account's webhook secret, of the timestamp (Unix seconds, as sent in X-Cmq-Timestamp), a dot,
 * and the exact body bytes. Binding the timestamp lets a receiver refuse old replays.
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** What a receiver does: recompute and compare in constant time. */
export function verifyWebhook(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
