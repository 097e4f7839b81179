import { CLOCK, type Clock } from '@app/common';

/**
 * The SLA computations read time only through the app's clock, so a test can run a month in
 * seconds: the prober stamps results with it, the month close asks it which month has ended,
 * the burn-rate check asks it what "the last hour" is.
 */
export type SlaClock = Clock;

export const SLA_CLOCK = CLOCK;

export { systemClock } from '@app/common';
