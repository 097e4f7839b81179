/**
 * An SLA policy (sla.md): every rule is a field of a versioned row of `sla_policies`, never a
 * constant in code. Ratios are integers (parts per million, or percent) so that every comparison
 * is exact.
 */
export interface CreditBand {
  /** the band applies when availability < belowPpm / 1,000,000 */
  belowPpm: number;
  /** credit, in percent of the month's cash service fee (capped at the fee) */
  creditPct: number;
}

export interface SlaPolicy {
  version: number;
  /** first month (YYYY-MM-01, in the policy's zone) the version applies to */
  effectiveFrom: string;
  /** IANA zone of the natural month, e.g. Asia/Shanghai */
  timeZone: string;
  /** promised availability, ppm (99.95% = 999,500) */
  targetPpm: number;
  /** an outage counts only if it lasts at least this many consecutive minutes */
  minOutageMinutes: number;
  /** a maintenance window excludes only if announced at least this long before it starts */
  noticePeriodSeconds: number;
  /** a region-minute is down when failed probes × 100 ≥ attempts × this */
  probeDownPct: number;
  /** an account-minute is down when server errors × 100 ≥ requests × this … */
  errorRatioPct: number;
  /** … and the minute had at least this many requests */
  errorMinRequests: number;
  /** coverage (minutes with a signal ÷ minutes) of a window below this raises an alert, ppm */
  coverageAlertPpm: number;
  /** the window coverage is judged over, in minutes (a day) */
  coverageWindowMinutes: number;
  /** bands, any order: the one with the lowest `belowPpm` above the availability applies */
  creditBands: CreditBand[];
}

/** The default policy, as seeded by the migration (version 1). */
export const DEFAULT_POLICY: SlaPolicy = {
  version: 1,
  effectiveFrom: '2000-01-01',
  timeZone: 'Asia/Shanghai',
  targetPpm: 999_500,
  minOutageMinutes: 5,
  noticePeriodSeconds: 86_400,
  probeDownPct: 50,
  errorRatioPct: 5,
  errorMinRequests: 20,
  coverageAlertPpm: 990_000,
  coverageWindowMinutes: 1440,
  creditBands: [
    { belowPpm: 999_500, creditPct: 10 },
    { belowPpm: 990_000, creditPct: 25 },
    { belowPpm: 950_000, creditPct: 100 },
  ],
};
