import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CmqParams } from './form';

export type SignatureAlgorithm = 'sha1' | 'sha256';

/** `HmacSHA256` selects SHA-256; a missing or any other value means HMAC-SHA1 (spec §3). */
export function signatureAlgorithm(signatureMethod: string | undefined): SignatureAlgorithm {
  return signatureMethod === 'HmacSHA256' ? 'sha256' : 'sha1';
}

/**
 * The string to sign: METHOD + host[:port] + path + "?" + sorted `key=value` pairs joined by `&`,
 * keys sorted as sent, then every `_` in a key written as `.`, values raw (decoded), `Signature`
 * left out. With `dropAtValues` (POST only) values starting with `@` are left out too, as the
 * Python SDK and qcloudapi-sdk do.
 */
export function sourceString(
  method: string,
  host: string,
  path: string,
  params: Iterable<[string, string]>,
  dropAtValues = false,
): string {
  const keys: string[] = [];
  const values = new Map<string, string>();
  for (const [k, v] of params) {
    if (k === 'Signature') continue;
    if (dropAtValues && v.charCodeAt(0) === 0x40) continue;
    keys.push(k);
    values.set(k, v);
  }
  keys.sort();
  let out = method.toUpperCase() + host + path + '?';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (i > 0) out += '&';
    out += (k.includes('_') ? k.replace(/_/g, '.') : k) + '=' + values.get(k);
  }
  return out;
}

export function sign(source: string, secretKey: string, algorithm: SignatureAlgorithm): string {
  return createHmac(algorithm, secretKey).update(source, 'utf8').digest('base64');
}

function hasAtValue(params: CmqParams): boolean {
  for (const [k, v] of params) if (k !== 'Signature' && v.charCodeAt(0) === 0x40) return true;
  return false;
}

/** The host variants a client may have signed: as received, and with or without an explicit :80. */
function hostVariants(host: string): string[] {
  if (host.endsWith(':80')) return [host, host.slice(0, -3)];
  const hasPort = /:\d+$/.test(host) && !host.endsWith(']');
  return hasPort ? [host] : [host, host + ':80'];
}

/**
 * Checks a request's `Signature` in constant time per candidate (spec §4.2): the Host header as
 * received and the request path; for POST a second try without `@`-values. The Signature must be
 * the digest's standard Base64 with its padding (spec §4.1 step 7), exactly: Node's decoder skips
 * characters outside the alphabet and stops at `=`, so `sig=anything` or `s*ig` would decode to
 * the same digest, and the replay guard, which remembers the Signature as sent, would take each
 * such spelling for a new request.
 */
export function verifySignature(
  method: string,
  host: string,
  path: string,
  params: CmqParams,
  secretKey: string,
): boolean {
  const raw = params.get('Signature') ?? '';
  const given = Buffer.from(raw, 'base64');
  if ((given.length !== 20 && given.length !== 32) || given.toString('base64') !== raw) return false;
  const algorithm = signatureAlgorithm(params.get('SignatureMethod'));
  const upper = method.toUpperCase();
  const dropModes = upper === 'POST' && hasAtValue(params) ? [false, true] : [false];
  for (const h of hostVariants(host)) {
    for (const drop of dropModes) {
      const expected = createHmac(algorithm, secretKey).update(sourceString(upper, h, path, params, drop), 'utf8').digest();
      if (expected.length === given.length && timingSafeEqual(expected, given)) return true;
    }
  }
  return false;
}
