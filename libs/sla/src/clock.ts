/**
 * The SLA computations read time only through this, so a test can run a month in seconds: the
 * prober stamps results with it, the month close asks it which month has ended, the burn-rate
 * check asks it what "the last hour" is.
 */
export interface SlaClock {
  /** Unix ms */
  now(): number;
}

export const SLA_CLOCK = Symbol('SLA_CLOCK');

export const systemClock: SlaClock = { now: () => Date.now() };
