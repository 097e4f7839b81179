import { parseAmount } from './money';
import { checkTiers, deduction, monthlyCharge, PlanError, PlanLine } from './rating';

const flat = (perMillion: string, freeQuota = 0n): PlanLine => ({
  meter: 'calls',
  freeQuota,
  tiers: [{ upTo: null, perMillion: parseAmount(perMillion) }],
});

const tiered: PlanLine = {
  meter: 'calls',
  freeQuota: 1_000_000n,
  tiers: [
    { upTo: 10_000_000n, perMillion: parseAmount('2.00') },
    { upTo: 100_000_000n, perMillion: parseAmount('1.50') },
    { upTo: null, perMillion: parseAmount('0.999999999') },
  ],
};

/** An independent F: price every call on its own, summing exact fractions, floored once. */
function naiveCharge(line: PlanLine, u: bigint): bigint {
  let scaled = 0n;
  for (let call = 1n; call <= u; call++) {
    if (call <= line.freeQuota) continue;
    const nth = call - line.freeQuota;
    const tier = line.tiers.find((t) => t.upTo === null || nth <= t.upTo)!;
    scaled += tier.perMillion;
  }
  return scaled / 1_000_000n;
}

function randomBigInt(max: number): bigint {
  return BigInt(Math.floor(Math.random() * max));
}

describe('cumulative rating', () => {
  it('the default mainland price: 2.00 per million calls is 2,000 nano a call', () => {
    expect(monthlyCharge(flat('2.00'), 1n)).toBe(2_000n);
    expect(monthlyCharge(flat('2.00'), 1_000_000n)).toBe(parseAmount('2.00'));
    expect(monthlyCharge(flat('3.20'), 123_456_789n)).toBe(parseAmount('395.0617248'));
  });

  it('agrees with pricing each call on its own, free quota and tiers included', () => {
    const small: PlanLine = {
      meter: 'calls',
      freeQuota: 7n,
      tiers: [
        { upTo: 13n, perMillion: parseAmount('2.00') },
        { upTo: 40n, perMillion: parseAmount('1.333333333') },
        { upTo: null, perMillion: parseAmount('0.7') },
      ],
    };
    for (let u = 0n; u <= 120n; u++) expect(monthlyCharge(small, u)).toBe(naiveCharge(small, u));
  });

  it('deductions over random batches add up to F(month) exactly, across the free quota and every tier', () => {
    for (const line of [tiered, flat('2.60'), flat('0.000001', 5n)]) {
      for (let run = 0; run < 50; run++) {
        let u = 0n;
        let charged = 0n;
        const batches = 1 + Math.floor(Math.random() * 200);
        for (let b = 0; b < batches; b++) {
          const next = u + randomBigInt(run % 2 ? 3_000_000 : 50);
          const d = deduction(line, u, next);
          expect(d).toBeGreaterThanOrEqual(0n);
          charged += d;
          u = next;
        }
        expect(charged).toBe(monthlyCharge(line, u));
      }
    }
  });

  it('prices the tiered example by hand', () => {
    // 1M free; of the 104M chargeable calls: 10M at 2.00, 90M at 1.50, 4M at 0.999999999
    expect(monthlyCharge(tiered, 105_000_000n)).toBe(parseAmount('20') + parseAmount('135') + parseAmount('3.999999996'));
    expect(monthlyCharge(tiered, 1_000_000n)).toBe(0n);
    expect(deduction(tiered, 999_999n, 1_000_001n)).toBe(2_000n);
  });

  it('refuses usage going down and malformed tiers', () => {
    expect(() => deduction(tiered, 10n, 9n)).toThrow(PlanError);
    expect(() => checkTiers([])).toThrow(PlanError);
    expect(() => checkTiers([{ upTo: 5n, perMillion: 1n }])).toThrow(PlanError);
    expect(() => checkTiers([{ upTo: 5n, perMillion: 1n }, { upTo: 5n, perMillion: 1n }, { upTo: null, perMillion: 1n }])).toThrow(PlanError);
    expect(() => checkTiers([{ upTo: null, perMillion: -1n }])).toThrow(PlanError);
    expect(() => checkTiers(tiered.tiers)).not.toThrow();
  });
});
