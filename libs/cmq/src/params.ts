import { CmqErrors } from './errors';
import type { CmqParams } from './form';

const INT_RE = /^-?\d+$/;

export interface IntOptions {
  min: number;
  max: number;
  /** values above max are clamped instead of refused */
  clampAbove?: boolean;
}

/**
 * Typed access to an action's parameters with the protocol's errors: a missing required one is
 * 10390, a non-integer 10360, an integer outside its range 10350, a scalar given as `name.n` 10330.
 */
export class ParamReader {
  constructor(readonly params: CmqParams) {}

  has(name: string): boolean {
    return this.params.has(name);
  }

  optionalString(name: string): string | undefined {
    const v = this.params.get(name);
    if (v === undefined && (this.params.has(name + '.0') || this.params.has(name + '.1'))) {
      throw CmqErrors.notRepeatable(name);
    }
    return v;
  }

  string(name: string): string {
    const v = this.optionalString(name);
    if (v === undefined) throw CmqErrors.missing(name);
    return v;
  }

  optionalInt(name: string, opts: IntOptions): number | undefined {
    const raw = this.optionalString(name);
    if (raw === undefined) return undefined;
    return parseIntParam(name, raw, opts);
  }

  int(name: string, opts: IntOptions): number {
    const v = this.optionalInt(name, opts);
    if (v === undefined) throw CmqErrors.missing(name);
    return v;
  }

  /**
   * An array parameter `name.n`: indices start at 0 or 1, are consecutive, and are ordered
   * numerically (`name.10` after `name.9`). At most `max` items (10370 beyond).
   */
  array(name: string, max: number, required = true): string[] {
    const prefix = name + '.';
    const entries: Array<[number, string]> = [];
    for (const [k, v] of this.params) {
      if (!k.startsWith(prefix)) continue;
      const idx = k.slice(prefix.length);
      if (!/^\d{1,6}$/.test(idx)) throw CmqErrors.keyFormat(k);
      entries.push([Number(idx), v]);
      if (entries.length > max) throw CmqErrors.batchSize(name);
    }
    if (entries.length === 0) {
      if (this.params.has(name)) return [this.params.get(name)!];
      if (required) throw CmqErrors.missing(name);
      return [];
    }
    if (this.params.has(name)) throw CmqErrors.invalidParameters();
    entries.sort((a, b) => a[0] - b[0]);
    const base = entries[0][0];
    if (base > 1) throw CmqErrors.notConsecutive(name);
    for (let i = 0; i < entries.length; i++) {
      if (entries[i][0] !== base + i) throw CmqErrors.notConsecutive(name);
    }
    return entries.map((e) => e[1]);
  }
}

export function parseIntParam(name: string, raw: string, opts: IntOptions): number {
  if (!INT_RE.test(raw)) throw CmqErrors.errorType(name);
  const digits = raw.replace(/^-?0+(?=\d)/, (m) => (m.startsWith('-') ? '-' : ''));
  if (digits.length > 16) {
    if (opts.clampAbove && !digits.startsWith('-')) return opts.max;
    throw CmqErrors.outOfRange(name);
  }
  const n = Number(digits);
  if (n > opts.max) {
    if (opts.clampAbove) return opts.max;
    throw CmqErrors.outOfRange(name);
  }
  if (n < opts.min) throw CmqErrors.outOfRange(name);
  return n;
}
