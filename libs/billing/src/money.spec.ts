import { formatAmount, MoneyFormatError, parseAmount, roundHalfUp } from './money';

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
});
