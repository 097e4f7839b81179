import { checkNewPlan, NewPlanVersion } from './price-plans';
import { PlanError } from './rating';

describe('checkNewPlan', () => {
  const now = Date.parse('2026-12-03T08:10:00Z');
  const base: NewPlanVersion = {
    code: 'pro',
    currency: 'CNY',
    meteringRule: 'per_64k',
    regions: ['sh', 'gz'],
    effectiveFrom: '2026-12-03T17:00:00+08:00',
    lines: [{ meter: 'calls', freeQuota: '1000000', tiers: [{ upTo: '100000000', perMillion: '2.00' }, { upTo: null, perMillion: '1.5' }] }],
  };

  it('parses money and counts exactly, sorts the regions, names the group custom by default', () => {
    expect(checkNewPlan(base, now)).toEqual({
      code: 'pro',
      regionGroup: 'custom',
      currency: 'CNY',
      rule: 'per_64k',
      regions: ['gz', 'sh'],
      effectiveFrom: new Date('2026-12-03T09:00:00Z'),
      lines: [{ meter: 'calls', freeQuota: 1_000_000n, tiers: [{ upTo: 100_000_000n, perMillion: 2_000_000_000n }, { upTo: null, perMillion: 1_500_000_000n }] }],
    });
    expect(checkNewPlan({ ...base, regionGroup: 'east', lines: [{ meter: 'calls', tiers: [{ upTo: null, perMillion: '0' }] }] }, now)).toMatchObject({
      regionGroup: 'east',
      lines: [{ freeQuota: 0n, tiers: [{ upTo: null, perMillion: 0n }] }],
    });
  });

  it.each<[string, Partial<NewPlanVersion>, RegExp]>([
    ['the start hour now', { effectiveFrom: '2026-12-03T08:00:00Z' }, /in the future/],
    ['a start with milliseconds', { effectiveFrom: '2026-12-03T09:00:00.001Z' }, /whole hour/],
    ['a start on a half-hour offset', { effectiveFrom: '2026-12-04T00:00:00+05:30' }, /whole hour/],
    ['a day its month does not have', { effectiveFrom: '2031-02-30T00:00:00Z' }, /effectiveFrom is not a valid time/],
    ['a month that does not exist', { effectiveFrom: '2031-13-01T00:00:00Z' }, /effectiveFrom is not a valid time/],
    ['a duplicate meter', { lines: [base.lines[0], base.lines[0]] }, /prices a meter twice/],
    ['a bound above bigint', { lines: [{ meter: 'calls', tiers: [{ upTo: '1'.repeat(19), perMillion: '1' }, { upTo: null, perMillion: '1' }] }] }, /upTo must be a positive integer/],
    ['a price of 19 digits', { lines: [{ meter: 'calls', tiers: [{ upTo: null, perMillion: '1234567890123456789' }] }] }, /perMillion must be a decimal/],
  ])('refuses %s', (_, over, reason) => {
    expect(() => checkNewPlan({ ...base, ...over }, now)).toThrow(PlanError);
    expect(() => checkNewPlan({ ...base, ...over }, now)).toThrow(reason);
  });
});
