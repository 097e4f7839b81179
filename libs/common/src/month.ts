/** Natural months in a time zone (SLA months, billing months), as UTC minute numbers (Unix ms ÷ 60,000). */

export const MINUTE_MS = 60_000;

export interface MonthBounds {
  /** 'YYYY-MM' */
  month: string;
  /** first minute of the month (UTC minute number), inclusive */
  start: number;
  /** first minute of the next month, exclusive */
  end: number;
  /** T of sla.md §4: days in the month × 1440 */
  totalMinutes: number;
}

const MONTH_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function isMonth(s: string): boolean {
  return MONTH_RE.test(s);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The zone's wall clock at `ms`, as if it were UTC (ms). */
function wallClock(ms: number, timeZone: string): number {
  const parts = Object.fromEntries(formatter(timeZone).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
}

/** The UTC instant at which the zone's wall clock reads y-m-d 00:00. */
function zonedMidnight(y: number, m: number, d: number, timeZone: string): number {
  const wall = Date.UTC(y, m - 1, d);
  let guess = wall - (wallClock(wall, timeZone) - wall);
  // a second pass settles an offset that changes between the guess and the answer
  guess = wall - (wallClock(guess, timeZone) - guess);
  return guess;
}

export function monthBounds(month: string, timeZone: string): MonthBounds {
  const m = MONTH_RE.exec(month);
  if (!m) throw new Error(`not a month: ${month}`);
  const y = +m[1];
  const mo = +m[2];
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  const start = zonedMidnight(y, mo, 1, timeZone) / MINUTE_MS;
  const end = zonedMidnight(mo === 12 ? y + 1 : y, mo === 12 ? 1 : mo + 1, 1, timeZone) / MINUTE_MS;
  return { month, start, end, totalMinutes: days * 1440 };
}

/** The month ('YYYY-MM') in `timeZone` that holds instant `ms`. */
export function monthOf(ms: number, timeZone: string): string {
  const wall = new Date(wallClock(ms, timeZone));
  return `${wall.getUTCFullYear()}-${String(wall.getUTCMonth() + 1).padStart(2, '0')}`;
}

export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

export function previousMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

/** ISO 8601 with the zone's offset, e.g. 2026-11-01T00:00:00+08:00. */
export function localIso(ms: number, timeZone: string): string {
  const wall = wallClock(ms, timeZone);
  const offsetMin = Math.round((wall - ms) / MINUTE_MS);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const off = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return new Date(wall).toISOString().slice(0, 19) + off;
}
