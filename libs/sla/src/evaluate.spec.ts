import { availabilityOf, creditOf, evaluateMonth, Interval, MaintenanceWindow, MonthInput, Attribution } from './evaluate';
import { monthBounds, MINUTE_MS } from './month';
import { DEFAULT_POLICY, SlaPolicy } from './policy';

const policy = DEFAULT_POLICY;
const SH = 'Asia/Shanghai';
/** 2026-11 in Shanghai: 30 days */
const NOV = monthBounds('2026-11', SH);
/** 2027-02 in Shanghai: 28 days */
const FEB = monthBounds('2027-02', SH);

/** minute `m` of the month as a UTC minute number */
const at = (bounds = NOV, m: number) => bounds.start + m;
/** a run of `n` down minutes starting at minute `m` of the month */
const run = (m: number, n: number, bounds = NOV): Interval => ({ start: at(bounds, m), end: at(bounds, m) + n });
const ms = (minute: number) => minute * MINUTE_MS;

function evaluate(over: Partial<MonthInput> & { down: Interval[] }) {
  return evaluateMonth({ policy, bounds: NOV, unknown: [], maintenance: [], attributions: [], ...over });
}

function window(id: string, fromMinute: number, toMinute: number, announcedHoursBefore: number): MaintenanceWindow {
  return { id, startsAt: ms(fromMinute), endsAt: ms(toMinute), announcedAt: ms(fromMinute) - announcedHoursBefore * 3_600_000, reason: `window ${id}` };
}

describe('SLA month evaluation: the cases of sla.md §7', () => {
  const cases: Array<{ n: number; scenario: string; input: Partial<MonthInput> & { down: Interval[] }; downtime: number; check?: (r: ReturnType<typeof evaluate>) => void }> = [
    { n: 1, scenario: '4 consecutive down minutes', input: { down: [run(100, 4)] }, downtime: 0 },
    { n: 2, scenario: 'exactly 5 consecutive down minutes', input: { down: [run(100, 5)] }, downtime: 5 },
    { n: 3, scenario: '4 down, 1 up, 4 down', input: { down: [run(100, 4), run(105, 4)] }, downtime: 0 },
    {
      n: 5,
      scenario: 'outage entirely inside an announced maintenance window',
      input: { down: [run(200, 30)], maintenance: [window('m1', at(NOV, 190), at(NOV, 260), 48)] },
      downtime: 0,
      check: (r) => {
        expect(r.outages[0].exclusions).toEqual([{ cause: 'maintenance', id: 'm1', reason: 'window m1', minutes: 30 }]);
        expect(r.maintenanceApplied).toEqual(['m1']);
      },
    },
    {
      n: 6,
      scenario: 'maintenance announced after the outage began',
      input: {
        down: [run(200, 30)],
        maintenance: [{ id: 'late', startsAt: ms(at(NOV, 190)), endsAt: ms(at(NOV, 260)), announcedAt: ms(at(NOV, 205)), reason: 'late' }],
      },
      downtime: 30,
      check: (r) => expect(r.maintenanceRefused).toEqual(['late']),
    },
    {
      n: 7,
      scenario: 'two overlapping maintenance windows',
      input: {
        down: [run(200, 20)],
        maintenance: [window('a', at(NOV, 195), at(NOV, 210), 30), window('b', at(NOV, 205), at(NOV, 215), 30)],
      },
      downtime: 5,
      check: (r) => {
        const excluded = r.outages[0].exclusions.reduce((n, e) => n + e.minutes, 0);
        expect(excluded).toBe(15); // minutes 200–214 once each, though 205–209 are in both
      },
    },
    { n: 8, scenario: '30-day month, 21 counted minutes', input: { down: [run(1000, 21)] }, downtime: 21, check: (r) => expect(r.meetsTarget).toBe(true) },
    {
      n: 8,
      scenario: '30-day month, 22 counted minutes',
      input: { down: [run(1000, 22)] },
      downtime: 22,
      check: (r) => {
        expect(r.meetsTarget).toBe(false);
        expect(r.creditPct).toBe(10);
        expect(r.availability).toBe('99.9490');
      },
    },
    {
      n: 9,
      scenario: '30-day month, 432 counted minutes (exactly 99%)',
      input: { down: [run(5000, 432)] },
      downtime: 432,
      check: (r) => {
        expect(r.availability).toBe('99.0000');
        expect(r.creditPct).toBe(10);
      },
    },
    {
      n: 10,
      scenario: '28-day month, 21 counted minutes',
      input: { bounds: FEB, down: [run(1000, 21, FEB)] },
      downtime: 21,
      check: (r) => {
        expect(FEB.totalMinutes).toBe(40_320);
        expect(r.meetsTarget).toBe(false); // 2000 × 21 = 42,000 > 40,320
        expect(r.creditPct).toBe(10);
      },
    },
    {
      n: 12,
      scenario: '3 hours with no probe data and no traffic errors',
      input: { down: [], unknown: [run(3000, 180)] },
      downtime: 0,
      check: (r) => {
        expect(r.unknownMinutes).toBe(180);
        expect(r.coveragePpm).toBe(995_833); // the month: 99.58%
        expect(r.worstWindowCoveragePpm).toBe(875_000); // its day: 21 of 24 hours
        expect(r.coverageAlert).toBe(true);
        expect(r.meetsTarget).toBe(true);
      },
    },
  ];

  it.each(cases)('case $n: $scenario → $downtime counted', ({ input, downtime, check }) => {
    const r = evaluate(input);
    expect(r.downtimeMinutes).toBe(downtime);
    check?.(r);
  });

  it('case 4: an 8-minute outage across midnight at the month boundary counts, split between the months', () => {
    const OCT = monthBounds('2026-10', SH);
    // 23:56–00:04 Shanghai: 4 minutes in October, 4 in November
    const outage = { start: NOV.start - 4, end: NOV.start + 4 };
    expect(OCT.end).toBe(NOV.start);
    const oct = evaluateMonth({ policy, bounds: OCT, down: [outage], unknown: [], maintenance: [], attributions: [] });
    const nov = evaluate({ down: [outage] });
    expect([oct.downtimeMinutes, nov.downtimeMinutes]).toEqual([4, 4]);
    expect(nov.outages[0]).toMatchObject({ minutes: 8, monthMinutes: 4, counted: true, countedMinutes: 4 });
    // the boundary is midnight in Shanghai, 16:00 UTC
    expect(new Date(ms(NOV.start)).toISOString()).toBe('2026-10-31T16:00:00.000Z');
  });

  it('case 4 (short): a 4-minute outage across the boundary counts in neither month', () => {
    const OCT = monthBounds('2026-10', SH);
    const outage = { start: NOV.start - 2, end: NOV.start + 2 };
    expect(evaluateMonth({ policy, bounds: OCT, down: [outage], unknown: [], maintenance: [], attributions: [] }).downtimeMinutes).toBe(0);
    expect(evaluate({ down: [outage] }).downtimeMinutes).toBe(0);
  });

  it('case 14: a credit larger than the month’s cash fee is capped at the fee', () => {
    const generous: SlaPolicy = { ...policy, creditBands: [{ belowPpm: 999_500, creditPct: 250 }] };
    const r = evaluate({ down: [run(0, 100)], policy: generous });
    expect(r.creditPct).toBe(250);
    expect(creditOf(12_340_000_000n, r.creditPct)).toBe(12_340_000_000n);
    expect(creditOf(12_340_000_000n, 25)).toBe(3_085_000_000n);
    expect(creditOf(0n, 100)).toBe(0n);
  });

  it('the bands: 99.95% > A ≥ 99% is 10%, 99% > A ≥ 95% is 25%, A < 95% is 100%', () => {
    const T = NOV.totalMinutes;
    const table: Array<[number, number]> = [
      [21, 0],
      [22, 10],
      [432, 10],
      [433, 25],
      [T * 0.05, 25],
      [T * 0.05 + 1, 100],
      [T, 100],
    ];
    for (const [downtime, pct] of table) {
      const r = evaluate({ down: [run(0, downtime)] });
      expect([downtime, r.downtimeMinutes, r.creditPct]).toEqual([downtime, downtime, pct]);
    }
  });

  it('exclusions apply after the 5-minute rule: 20 minutes with 17 in maintenance count 3', () => {
    const r = evaluate({ down: [run(300, 20)], maintenance: [window('m', at(NOV, 303), at(NOV, 330), 25)] });
    expect(r.downtimeMinutes).toBe(3);
    expect(r.outages[0].exclusions).toEqual([{ cause: 'maintenance', id: 'm', reason: 'window m', minutes: 17 }]);
  });

  it('maintenance announced less than the notice period ahead does not exclude', () => {
    const r = evaluate({ down: [run(300, 20)], maintenance: [window('m', at(NOV, 290), at(NOV, 330), 23)] });
    expect(r.downtimeMinutes).toBe(20);
    expect(r.maintenanceRefused).toEqual(['m']);
  });

  it('an attributed outage is excluded with its cause and reason; maintenance takes the minutes it covers first', () => {
    const attribution: Attribution = {
      id: 'inc-7',
      cause: 'third_party',
      startsAt: ms(at(NOV, 400)),
      endsAt: ms(at(NOV, 430)),
      reason: 'carrier fibre cut between the data centres',
    };
    const r = evaluate({ down: [run(395, 30)], attributions: [attribution], maintenance: [window('m', at(NOV, 395), at(NOV, 405), 48)] });
    expect(r.outages[0].exclusions).toEqual([
      { cause: 'maintenance', id: 'm', reason: 'window m', minutes: 10 },
      { cause: 'third_party', id: 'inc-7', reason: 'carrier fibre cut between the data centres', minutes: 20 },
    ]);
    expect(r.downtimeMinutes).toBe(0);
  });

  it('a minute only partly inside a window is not excluded', () => {
    const w: MaintenanceWindow = { id: 'p', startsAt: ms(at(NOV, 500)) + 30_000, endsAt: ms(at(NOV, 510)), announcedAt: 0, reason: 'p' };
    expect(evaluate({ down: [run(500, 10)], maintenance: [w] }).downtimeMinutes).toBe(1);
  });

  it('coverage: a blind hour a day alerts, one blind minute a day does not', () => {
    const hourly = Array.from({ length: 30 }, (_, d) => run(d * 1440 + 600, 60));
    expect(evaluate({ down: [], unknown: hourly }).coverageAlert).toBe(true);
    const minutely = Array.from({ length: 30 }, (_, d) => run(d * 1440 + 600, 1));
    const r = evaluate({ down: [], unknown: minutely });
    expect([r.coverageAlert, r.unknownMinutes, r.worstWindowCoveragePpm]).toEqual([false, 30, 999_305]);
  });

  it('touching and overlapping down intervals are one outage', () => {
    const r = evaluate({ down: [run(10, 2), run(12, 2), run(13, 3)] });
    expect(r.outages).toHaveLength(1);
    expect(r.downtimeMinutes).toBe(6);
  });

  it('a breach never reads as 99.95: availability is rounded down', () => {
    expect(availabilityOf(43_200, 22).text).toBe('99.9490');
    expect(availabilityOf(40_000, 21).text).toBe('99.9475');
    expect(availabilityOf(2_000_001, 1000).text).toBe('99.9500'); // meets: 2000 × 1000 ≤ 2,000,001
    expect(availabilityOf(1_999_999, 1000).text).toBe('99.9499'); // breach
    expect(availabilityOf(44_640, 0)).toEqual({ ppm: 1_000_000, text: '100.0000' });
  });
});
