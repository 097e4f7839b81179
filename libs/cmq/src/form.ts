import { CmqErrors } from './errors';

/** Decoded request parameters, in arrival order, values exactly as sent (never coerced to numbers). */
export type CmqParams = Map<string, string>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decodes one form component: `+` is a space, `%XX` a byte, every other byte itself; the bytes
 * must then be valid UTF-8. Anything else is not a CMQ request (4000/10420).
 */
function decodeComponent(buf: Buffer, start: number, end: number): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c === 0x25 || c === 0x2b || c >= 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) return buf.toString('latin1', start, end);
  const out = Buffer.allocUnsafe(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c === 0x2b) {
      out[n++] = 0x20;
    } else if (c === 0x25) {
      const hi = i + 2 < end ? hexValue(buf[i + 1]) : -1;
      const lo = hi >= 0 ? hexValue(buf[i + 2]) : -1;
      if (lo < 0) throw CmqErrors.cannotParse('request');
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  try {
    return utf8.decode(out.subarray(0, n));
  } catch {
    throw CmqErrors.cannotParse('request');
  }
}

/**
 * Parses an application/x-www-form-urlencoded body or query string, whatever the request's
 * Content-Type said. Empty values are kept (`Region=` is signed); a key given twice is refused,
 * since the signature could not say which one was meant.
 */
export function decodeForm(input: Buffer | string): CmqParams {
  const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const params: CmqParams = new Map();
  const len = buf.length;
  let start = 0;
  while (start <= len) {
    let end = buf.indexOf(0x26, start); // '&'
    if (end === -1) end = len;
    if (end > start) {
      let eq = buf.indexOf(0x3d, start); // '='
      if (eq === -1 || eq > end) eq = end;
      const key = decodeComponent(buf, start, eq);
      const value = eq < end ? decodeComponent(buf, eq + 1, end) : '';
      if (key.length === 0 || key.length > 128) throw CmqErrors.keyFormat(key.slice(0, 128));
      if (params.has(key)) throw CmqErrors.notRepeatable(key);
      params.set(key, value);
    }
    start = end + 1;
  }
  return params;
}
