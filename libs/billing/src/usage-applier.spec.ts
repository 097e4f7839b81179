import { hourlyAmounts } from './usage-applier';

describe('hourlyAmounts: each plan line charge spread over its hourly rows', () => {
  it('splits a charge by billable calls, exactly, and adds the shares of rows held by two groups', () => {
    const parts = new Map([
      ['g1', new Map([['h1', 1n], ['h2', 1n], ['h3', 1n]])],
      ['g2', new Map([['h3', 3n], ['h4', 1n]])],
    ]);
    const amounts = hourlyAmounts([{ group: 'g1' }, { group: 'g2' }], [10n, 7n], parts);
    expect(Object.fromEntries(amounts)).toEqual({ h1: 4n, h2: 3n, h3: 3n + 5n, h4: 2n });
    expect([...amounts.values()].reduce((a, b) => a + b, 0n)).toBe(17n);
  });

  it('a line charged nothing (free quota) adds nothing; several lines of one group add up', () => {
    const parts = new Map([['g', new Map([['a', 2n], ['b', 0n], ['c', 6n]])]]);
    expect(hourlyAmounts([{ group: 'g' }], [0n], parts).size).toBe(0);
    const two = hourlyAmounts([{ group: 'g' }, { group: 'g' }], [9n, 1n], parts);
    // 9 over 2:6 is 2.25, 6.75 (the left nano to the larger remainder); 1 over 2:6 is 0.25, 0.75
    expect(Object.fromEntries(two)).toEqual({ a: 2n + 0n, b: 0n, c: 7n + 1n });
  });

  it('refuses a charge with no hourly usage to hold it (it would be lost from the statements)', () => {
    expect(() => hourlyAmounts([{ group: 'x' }], [1n], new Map())).toThrow(/no hourly usage/);
  });
});
