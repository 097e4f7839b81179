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
