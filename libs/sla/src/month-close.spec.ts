import { MonthClose, MonthContext } from './month-close';
import { monthBounds, MINUTE_MS } from './month';
import { DEFAULT_POLICY } from './policy';
import type { AccountSignals, RegionStates } from './signals';

/** An account's month from its signals and the fleet's (MonthClose.evaluate reads nothing else). */
describe('an account’s month from the signals (sla.md §2 and §7 cases 11 and 14)', () => {
  const policy = DEFAULT_POLICY;
  const bounds = monthBounds('2026-11', policy.timeZone);
  const at = (m: number) => bounds.start + m;
  const region = (name: string, down: Array<[number, number]>, unknown: Array<[number, number]> = []): RegionStates => ({
    region: name,
    down: down.map(([s, n]) => ({ start: at(s), end: at(s) + n })),
    unknown: unknown.map(([s, n]) => ({ start: at(s), end: at(s) + n })),
    attempts: 0,
    failures: 0,
  });
  const ctx: MonthContext = {
    month: '2026-11',
    policy,
    bounds,
    from: bounds.start - 5,
    to: bounds.end + 5,
    regions: new Map([
      ['gz', region('gz', [[1000, 30]], [[5000, 180]])],
      ['sh', region('sh', [[2000, 3]])],
    ]),
    maintenance: [],
    attributions: [],
  };
  const close = new MonthClose(null as never, null as never, null as never, null as never, null as never, null as never);
  const wholeMonth = { start: bounds.start - 5, end: bounds.end + 5 };
  const account = (over: Partial<AccountSignals>): AccountSignals => ({
    accountId: 'acct',
    createdAt: (bounds.start - 1440) * MINUTE_MS,
    releasedAt: null,
    resources: new Map([['gz', [wholeMonth]]]),
    errorMinutes: [],
    feeNano: 100_000_000_000n,
    ...over,
  });

  const cases: Array<{ scenario: string; signals: Partial<AccountSignals>; downtime: number; unknown: number; service: boolean; credit: bigint }> = [
    { scenario: 'a gz queue all month: the gz outage and blind hours are its own', signals: {}, downtime: 30, unknown: 180, service: true, credit: 10_000_000_000n },
    { scenario: 'an sh queue only: the 3-minute sh blip does not count, gz is not its concern', signals: { resources: new Map([['sh', [wholeMonth]]]) }, downtime: 0, unknown: 0, service: true, credit: 0n },
    { scenario: 'no resources at all: nothing of its was unavailable', signals: { resources: new Map() }, downtime: 0, unknown: 0, service: true, credit: 0n },
    {
      scenario: 'its gz queue deleted before the outage',
      signals: { resources: new Map([['gz', [{ start: wholeMonth.start, end: at(900) }]]]) },
      downtime: 0,
      unknown: 0,
      service: true,
      credit: 0n,
    },
    {
      scenario: 'case 11: created mid-month: figures for information, no service period, no credit',
      signals: { createdAt: at(600) * MINUTE_MS },
      downtime: 30,
      unknown: 180,
      service: false,
      credit: 0n,
    },
    { scenario: 'released before the month ended: no service period', signals: { releasedAt: at(20_000) * MINUTE_MS }, downtime: 30, unknown: 180, service: false, credit: 0n },
    {
      scenario: 'its own server-error minutes join the region’s: one outage of 40 minutes',
      signals: { errorMinutes: Array.from({ length: 10 }, (_, i) => ({ start: at(1030 + i), end: at(1031 + i) })) },
      downtime: 40,
      unknown: 180,
      service: true,
      credit: 10_000_000_000n,
    },
    { scenario: 'case 14 (no fee): a breach with no cash spent is owed nothing', signals: { feeNano: 0n }, downtime: 30, unknown: 180, service: true, credit: 0n },
    {
      scenario: 'a blind minute that is down is down, not blind',
      signals: { resources: new Map([['gz', [wholeMonth]], ['sh', [wholeMonth]]]), errorMinutes: [{ start: at(5000), end: at(5010) }] },
      downtime: 40,
      unknown: 170,
      service: true,
      credit: 10_000_000_000n,
    },
  ];

  it.each(cases)('$scenario', ({ signals, downtime, unknown, service, credit }) => {
    const r = close.evaluate(ctx, account(signals));
    expect([r.result.downtimeMinutes, r.result.unknownMinutes, r.servicePeriod, r.creditNano]).toEqual([downtime, unknown, service, credit]);
  });
});
