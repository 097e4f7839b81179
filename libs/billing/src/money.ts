/**
 * Exact money: integers of a fixed minor unit, 1e-9 of the currency unit ("nano"), in bigint.
 * Never a JavaScript number. Shown and accepted as decimal strings.
 */
export type Nano = bigint;

export const NANO_DIGITS = 9;
export const NANO_PER_UNIT = 1_000_000_000n;

const DECIMAL_RE = /^(-)?(\d{1,18})(?:\.(\d{1,9}))?$/;

export class MoneyFormatError extends Error {}

/** "100.00" → 100_000_000_000n. At most 9 decimals and 18 integer digits; no exponent, no spaces. */
export function parseAmount(text: string): Nano {
  const m = DECIMAL_RE.exec(text);
  if (!m) throw new MoneyFormatError(`"${text.slice(0, 40)}" is not a decimal amount with at most ${NANO_DIGITS} decimals`);
  const units = BigInt(m[2]) * NANO_PER_UNIT + BigInt((m[3] ?? '').padEnd(NANO_DIGITS, '0'));
  return m[1] ? -units : units;
}

/** The exact decimal string, with at least `minDecimals` decimals and no trailing zeros beyond them. */
export function formatAmount(n: Nano, minDecimals = 2): string {
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const units = abs / NANO_PER_UNIT;
  let frac = (abs % NANO_PER_UNIT).toString().padStart(NANO_DIGITS, '0').replace(/0+$/, '');
  if (frac.length < minDecimals) frac = frac.padEnd(minDecimals, '0');
  return `${neg ? '-' : ''}${units}${frac ? '.' + frac : ''}`;
}

/** Rounds half away from zero ("half-up" on amounts) to `decimals` decimals, still in nano. */
export function roundHalfUp(n: Nano, decimals = 2): Nano {
  const step = 10n ** BigInt(NANO_DIGITS - decimals);
  const neg = n < 0n;
  const abs = neg ? -n : n;
  const rounded = ((abs + step / 2n) / step) * step;
  return neg ? -rounded : rounded;
}

/**
 * Splits `total` over `weights` in proportion, exactly (largest remainder; ties to the first).
 * All weights 0: everything to the first.
 */
export function allocate(total: Nano, weights: readonly bigint[]): Nano[] {
  if (weights.length === 0) return [];
  const sum = weights.reduce((a, w) => a + (w > 0n ? w : 0n), 0n);
  if (sum === 0n) return weights.map((_, i) => (i === 0 ? total : 0n));
  const neg = total < 0n;
  const abs = neg ? -total : total;
  const shares = weights.map((w) => (w > 0n ? (abs * w) / sum : 0n));
  const rema = weights.map((w, i) => ({ i, r: w > 0n ? (abs * w) % sum : -1n }));
  let left = abs - shares.reduce((a, s) => a + s, 0n);
  rema.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of rema) {
    if (left === 0n) break;
    shares[i] += 1n;
    left -= 1n;
  }
  return neg ? shares.map((s) => -s) : shares;
}
