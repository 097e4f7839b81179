import { parseUsageQuery, parseUsageRange, UsageQueryError } from './usage-report';

describe('usage query parameters', () => {
  const TZ = 'Asia/Shanghai';
  const range = { from: '2026-11-01T00:00:00+08:00', to: '2026-11-03T00:00:00+08:00' };

  it('defaults: hourly, every dimension kept, no filter', () => {
    expect(parseUsageQuery(range, TZ)).toEqual({
      from: Date.parse('2026-10-31T16:00:00Z'),
      to: Date.parse('2026-11-02T16:00:00Z'),
      granularity: 'hour',
      groupBy: ['region', 'resource', 'action'],
    });
  });

  it('groupBy is kept in the dimensions’ own order; none keeps nothing; empty is the default', () => {
    expect(parseUsageQuery({ ...range, groupBy: 'action,region' }, TZ).groupBy).toEqual(['region', 'action']);
    expect(parseUsageQuery({ ...range, groupBy: 'none' }, TZ).groupBy).toEqual([]);
    expect(parseUsageQuery({ ...range, groupBy: '' }, TZ).groupBy).toEqual(['region', 'resource', 'action']);
    expect(() => parseUsageQuery({ ...range, groupBy: 'region,' }, TZ)).toThrow(/groupBy must be a comma list/);
    expect(() => parseUsageQuery({ ...range, groupBy: ['region', 'action'] }, TZ)).toThrow(/given once/);
  });

  it('filters are checked and kept', () => {
    const q = parseUsageQuery({ ...range, region: 'gz', resource: 'orders', action: 'SendMessage', actionClass: 'send' }, TZ);
    expect(q).toMatchObject({ region: 'gz', resource: 'orders', action: 'SendMessage', actionClass: 'send' });
    expect(() => parseUsageQuery({ ...range, actionClass: 'sends' }, TZ)).toThrow(UsageQueryError);
    expect(() => parseUsageQuery({ ...range, resource: 'x'.repeat(129) }, TZ)).toThrow(/at most 128/);
  });

  it('hour buckets need whole hours; day buckets need midnights of the billing zone', () => {
    expect(() => parseUsageRange({ from: '2026-11-01T00:30:00+08:00', to: range.to }, 'hour', TZ)).toThrow(/whole hour/);
    expect(() => parseUsageRange({ from: '2026-11-01T00:00:00.5Z', to: range.to }, 'hour', TZ)).toThrow(/whole hour/);
    // a zone offset by half an hour: its whole local hours are not whole UTC hours
    expect(() => parseUsageRange({ from: '2026-11-01T00:00:00+05:30', to: '2026-11-02T00:00:00+05:30' }, 'hour', 'Asia/Kolkata')).toThrow(/whole hour/);
    expect(parseUsageRange(range, 'day', TZ)).toEqual({ from: Date.parse('2026-10-31T16:00:00Z'), to: Date.parse('2026-11-02T16:00:00Z') });
    expect(() => parseUsageRange({ from: '2026-11-01T00:00:00Z', to: range.to }, 'day', TZ)).toThrow(/midnight in the billing time zone Asia\/Shanghai for day buckets \(such as 2026-11-01T00:00:00\+08:00\)/);
    expect(() => parseUsageRange({ from: '2026-11-01', to: '2026-11-02' }, 'day', TZ)).toThrow(/midnight/);
    // across a change of offset (New York leaves daylight time on 2026-11-01): both midnights
    expect(parseUsageRange({ from: '2026-11-01T00:00:00-04:00', to: '2026-11-02T00:00:00-05:00' }, 'day', 'America/New_York')).toEqual({
      from: Date.parse('2026-11-01T04:00:00Z'),
      to: Date.parse('2026-11-02T05:00:00Z'),
    });
  });

  it('the range: both ends, in order, at most 400 days', () => {
    expect(() => parseUsageRange({ to: range.to }, 'hour', TZ)).toThrow(/from is required/);
    expect(() => parseUsageRange({ from: range.to, to: range.from }, 'hour', TZ)).toThrow(/from must be before to/);
    expect(() => parseUsageRange({ from: '2025-01-01T00:00:00Z', to: '2026-02-06T00:00:00Z' }, 'hour', TZ)).toThrow(/more than 400 days/);
    expect(() => parseUsageQuery({ ...range, granularity: 'minute' }, TZ)).toThrow(/granularity must be hour or day/);
  });
});
