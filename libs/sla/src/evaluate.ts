import type { SlaPolicy } from './policy';
import { MINUTE_MS, type MonthBounds } from './month';

/**
 * The month's availability of one account (sla.md §3–§5), computed from its down minutes. Pure:
 * every input is given, every figure is an integer, and the same inputs always give the same
 * result, so a month can be recomputed and compared.
 */

/** Minutes [start, end) as UTC minute numbers (Unix ms ÷ 60,000). */
export interface Interval {
  start: number;
  end: number;
}

/** Sorted, with overlapping and touching intervals joined: the maximal runs. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ start: i.start, end: i.end });
  }
  return out;
}

export type AttributedCause = 'user' | 'third_party' | 'force_majeure';
export type ExclusionCause = 'maintenance' | AttributedCause;

/** An announced maintenance window (instants in Unix ms). */
export interface MaintenanceWindow {
  id: string;
  startsAt: number;
  endsAt: number;
  announcedAt: number;
  reason: string;
}

/** An operator's attribution of a period of outage to a cause that is not the service's fault. */
export interface Attribution {
  id: string;
  cause: AttributedCause;
  startsAt: number;
  endsAt: number;
  reason: string;
}

export interface OutageExclusion {
  cause: ExclusionCause;
  id: string;
  reason: string;
  /** minutes of this outage, in this month, excluded by it */
  minutes: number;
}

export interface Outage {
  /** first down minute of the whole run (UTC minute number) */
  start: number;
  /** first minute after the run */
  end: number;
  /** length of the whole run, which may reach into the months around */
  minutes: number;
  /** its minutes inside this month */
  monthMinutes: number;
  /** the run lasted at least the policy's minimum */
  counted: boolean;
  /** minutes of this month that count as downtime, after exclusions */
  countedMinutes: number;
  exclusions: OutageExclusion[];
}

export interface MonthInput {
  policy: SlaPolicy;
  bounds: MonthBounds;
  /**
   * The account's down minutes as intervals of UTC minute numbers, in any order, overlapping or
   * touching (they are merged into maximal runs). They must reach at least
   * `policy.minOutageMinutes` minutes beyond either end of the month, so that a run crossing the
   * boundary is judged as a whole.
   */
  down: readonly Interval[];
  /** minutes with no signal (not downtime; lost coverage), as intervals like `down` */
  unknown: readonly Interval[];
  maintenance: readonly MaintenanceWindow[];
  attributions: readonly Attribution[];
}

export interface MonthResult {
  totalMinutes: number;
  downtimeMinutes: number;
  unknownMinutes: number;
  /** (T − downtime) / T in ppm, rounded down */
  availabilityPpm: number;
  /** the same as a percentage with four decimals, rounded down: a breach never reads 99.95 */
  availability: string;
  /** 2000 × downtime ≤ T for 99.95%: the integer form of availability ≥ target */
  meetsTarget: boolean;
  /** minutes of the month with a signal ÷ T, ppm, rounded down */
  coveragePpm: number;
  /** the lowest coverage of any of the month's coverage windows (the policy's length, from the month's start), ppm */
  worstWindowCoveragePpm: number;
  /** some window's coverage is under the policy's alert line */
  coverageAlert: boolean;
  /** percent of the cash fee owed; 0 when the target is met */
  creditPct: number;
  outages: Outage[];
  /** the maintenance windows that excluded minutes (announced in time), merged ids */
  maintenanceApplied: string[];
  /** windows that were not announced in time, so excluded nothing */
  maintenanceRefused: string[];
}

interface Span {
  start: number;
  end: number;
  id: string;
  reason: string;
  cause: ExclusionCause;
}

/** Whole minutes inside [startsAt, endsAt): a minute partly covered is not excluded. */
function minutesWithin(startsAt: number, endsAt: number): { start: number; end: number } {
  return { start: Math.ceil(startsAt / MINUTE_MS), end: Math.floor(endsAt / MINUTE_MS) };
}

/** Pieces of [start, end) not covered by `spans`, and the minutes each span took (first come first). */
function subtract(
  pieces: Array<{ start: number; end: number }>,
  spans: readonly Span[],
  taken: Map<Span, number>,
): Array<{ start: number; end: number }> {
  let rest = pieces;
  for (const s of spans) {
    const next: Array<{ start: number; end: number }> = [];
    for (const p of rest) {
      const a = Math.max(p.start, s.start);
      const b = Math.min(p.end, s.end);
      if (a >= b) {
        next.push(p);
        continue;
      }
      taken.set(s, (taken.get(s) ?? 0) + (b - a));
      if (p.start < a) next.push({ start: p.start, end: a });
      if (b < p.end) next.push({ start: b, end: p.end });
    }
    rest = next;
    if (rest.length === 0) break;
  }
  return rest;
}

const PPM = 1_000_000n;

/** floor((T − D) × 10⁶ / T), and the percentage with four decimals, rounded down. */
export function availabilityOf(totalMinutes: number, downtime: number): { ppm: number; text: string } {
  const up = BigInt(totalMinutes - downtime);
  const t = BigInt(totalMinutes);
  const ppm = (up * PPM) / t;
  const tenThousandths = (up * 1_000_000n) / t; // percent × 10⁴
  const whole = tenThousandths / 10_000n;
  const frac = (tenThousandths % 10_000n).toString().padStart(4, '0');
  return { ppm: Number(ppm), text: `${whole}.${frac}` };
}

/** A < belowPpm / 10⁶, exactly: (T − D) × 10⁶ < belowPpm × T. */
function below(totalMinutes: number, downtime: number, belowPpm: number): boolean {
  return BigInt(totalMinutes - downtime) * PPM < BigInt(belowPpm) * BigInt(totalMinutes);
}

export function evaluateMonth(input: MonthInput): MonthResult {
  const { policy, bounds } = input;
  const T = bounds.totalMinutes;
  const notice = policy.noticePeriodSeconds * 1000;

  const maintenanceApplied: string[] = [];
  const maintenanceRefused: string[] = [];
  const maintenance: Span[] = [];
  for (const w of input.maintenance) {
    if (w.announcedAt > w.startsAt - notice) {
      maintenanceRefused.push(w.id);
      continue;
    }
    const m = minutesWithin(w.startsAt, w.endsAt);
    if (m.end > m.start) maintenance.push({ ...m, id: w.id, reason: w.reason, cause: 'maintenance' });
  }
  // overlapping windows: a minute is excluded once, by the earliest window that holds it
  maintenance.sort((a, b) => a.start - b.start || a.end - b.end);
  const attributions: Span[] = input.attributions
    .map((a) => ({ ...minutesWithin(a.startsAt, a.endsAt), id: a.id, reason: a.reason, cause: a.cause as ExclusionCause }))
    .filter((a) => a.end > a.start)
    .sort((a, b) => a.start - b.start || a.end - b.end);

  const outages: Outage[] = [];
  const applied = new Set<string>();
  let downtime = 0;
  for (const { start, end } of mergeIntervals(input.down)) {
    const inStart = Math.max(start, bounds.start);
    const inEnd = Math.min(end, bounds.end);
    if (inStart >= inEnd) continue;
    const minutes = end - start;
    const counted = minutes >= policy.minOutageMinutes;
    const outage: Outage = { start, end, minutes, monthMinutes: inEnd - inStart, counted, countedMinutes: 0, exclusions: [] };
    if (counted) {
      const taken = new Map<Span, number>();
      const afterMaintenance = subtract([{ start: inStart, end: inEnd }], maintenance, taken);
      const rest = subtract(afterMaintenance, attributions, taken);
      outage.countedMinutes = rest.reduce((n, p) => n + p.end - p.start, 0);
      for (const [s, n] of taken) {
        outage.exclusions.push({ cause: s.cause, id: s.id, reason: s.reason, minutes: n });
        if (s.cause === 'maintenance') applied.add(s.id);
      }
      downtime += outage.countedMinutes;
    }
    outages.push(outage);
  }
  for (const s of maintenance) if (applied.has(s.id) && !maintenanceApplied.includes(s.id)) maintenanceApplied.push(s.id);

  const { ppm, text } = availabilityOf(T, downtime);
  const meetsTarget = !below(T, downtime, policy.targetPpm);
  let creditPct = 0;
  if (!meetsTarget) {
    let best: number | null = null;
    for (const band of policy.creditBands) {
      if (below(T, downtime, band.belowPpm) && (best === null || band.belowPpm < best)) {
        best = band.belowPpm;
        creditPct = band.creditPct;
      }
    }
  }
  // coverage: the month's, and that of each window of the policy's length (the month's last one
  // may be shorter), judged alone, so that three blind hours are seen though the month is 99.6% covered
  const unknownRuns = mergeIntervals(input.unknown)
    .map((u) => ({ start: Math.max(u.start, bounds.start), end: Math.min(u.end, bounds.end) }))
    .filter((u) => u.end > u.start);
  const unknown = Math.min(
    unknownRuns.reduce((n, u) => n + u.end - u.start, 0),
    T,
  );
  const coveragePpm = Number((BigInt(T - unknown) * PPM) / BigInt(T));
  let worst = 1_000_000;
  const width = policy.coverageWindowMinutes;
  for (let w = bounds.start; w < bounds.end; w += width) {
    const wEnd = Math.min(w + width, bounds.end);
    let blind = 0;
    for (const u of unknownRuns) blind += Math.max(0, Math.min(u.end, wEnd) - Math.max(u.start, w));
    worst = Math.min(worst, Number((BigInt(wEnd - w - blind) * PPM) / BigInt(wEnd - w)));
  }
  return {
    totalMinutes: T,
    downtimeMinutes: downtime,
    unknownMinutes: unknown,
    availabilityPpm: ppm,
    availability: text,
    meetsTarget,
    coveragePpm,
    worstWindowCoveragePpm: worst,
    coverageAlert: worst < policy.coverageAlertPpm,
    creditPct,
    outages,
    maintenanceApplied,
    maintenanceRefused,
  };
}

/** The credit owed: pct of the month's cash fee, rounded down to the nano, never more than the fee. */
export function creditOf(feeNano: bigint, creditPct: number): bigint {
  if (feeNano <= 0n || creditPct <= 0) return 0n;
  const credit = (feeNano * BigInt(creditPct)) / 100n;
  return credit > feeNano ? feeNano : credit;
}
