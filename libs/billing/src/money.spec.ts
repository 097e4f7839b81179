import { allocate, formatAmount, MoneyFormatError, parseAmount, roundHalfUp } from './money';

describe('money', () => {
  it.each([
    ['100.00', 100_000_000_000n],
    ['0.000000001', 1n],
    ['-2.5', -2_500_000_000n],
    ['123456789012345678.123456789', 123456789012345678123456789n],
    ['0', 0n],
  ])('parses %s exactly', (text, nano) => {
    expect(parseAmount(text)).toBe(nano);
  });

  it.each(['', '1.', '.5', '1e3', ' 1', '1,00', '0.0000000001', '+1', 'NaN', '1234567890123456789'])('refuses %j', (text) => {
    expect(() => parseAmount(text)).toThrow(MoneyFormatError);
  });

  it('formats exactly, with at least two decimals', () => {
    expect(formatAmount(100_000_000_000n)).toBe('100.00');
    expect(formatAmount(1n)).toBe('0.000000001');
    expect(formatAmount(-2_500_000_000n)).toBe('-2.50');
    expect(formatAmount(2_000n, 0)).toBe('0.000002');
    expect(formatAmount(0n)).toBe('0.00');
  });

  it('round-trips every amount it formats', () => {
    for (let i = 0; i < 2000; i++) {
      const n = BigInt(Math.floor(Math.random() * 1e15)) * BigInt(Math.floor(Math.random() * 1e3)) * (i % 2 ? -1n : 1n);
      expect(parseAmount(formatAmount(n))).toBe(n);
    }
  });

  it('rounds half away from zero to cents', () => {
    expect(roundHalfUp(parseAmount('1.005'))).toBe(parseAmount('1.01'));
    expect(roundHalfUp(parseAmount('1.004999999'))).toBe(parseAmount('1.00'));
    expect(roundHalfUp(parseAmount('-1.005'))).toBe(parseAmount('-1.01'));
    expect(roundHalfUp(parseAmount('0.000000001'))).toBe(0n);
  });

  describe('allocate', () => {
    it('splits exactly in proportion, the remainder to the largest fractions (ties to the first)', () => {
      expect(allocate(10n, [1n, 1n, 1n])).toEqual([4n, 3n, 3n]);
      expect(allocate(100n, [1n, 2n, 7n])).toEqual([10n, 20n, 70n]);
      // 7 × (1/6, 2/6, 3/6) = 1.1666, 2.333, 3.5: floors 1, 2, 3, one left for the largest fraction (0.5)
      expect(allocate(7n, [1n, 2n, 3n])).toEqual([1n, 2n, 4n]);
      expect(allocate(-10n, [1n, 1n, 1n])).toEqual([-4n, -3n, -3n]);
      expect(allocate(5n, [0n, 3n, 0n])).toEqual([0n, 5n, 0n]);
      expect(allocate(5n, [0n, 0n])).toEqual([5n, 0n]);
      expect(allocate(0n, [4n, 9n])).toEqual([0n, 0n]);
      expect(allocate(5n, [])).toEqual([]);
    });

    it('never loses or makes a nano, and no share leaves its proportion by a nano or more', () => {
      let seed = 11;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      for (let i = 0; i < 2000; i++) {
        const weights = Array.from({ length: 1 + rand(12) }, () => BigInt(rand(3) === 0 ? 0 : rand(1_000_000)));
        const total = BigInt(rand(1_000_000_000)) * BigInt(1 + rand(1000)) * (i % 3 === 0 ? -1n : 1n);
        const shares = allocate(total, weights);
        expect(shares.reduce((a, s) => a + s, 0n)).toBe(total);
        const sum = weights.reduce((a, w) => a + w, 0n);
        if (sum === 0n) continue;
        shares.forEach((s, k) => {
          // |s × sum − total × w| < sum
          const d = s * sum - total * weights[k];
          expect(d < sum && -d < sum).toBe(true);
          if (weights[k] === 0n) expect(s).toBe(0n);
        });
      }
    });
  });
});
