import { DynamicModule, Global, Module } from '@nestjs/common';

/**
 * The time that is recorded as data: the minute a request is metered in, the minute a probe
 * result lands in, which month has ended. Read through this, not Date.now(), so that a drill or
 * a test can run every app of the system on one clock (e.g. a month's end in seconds). Timers,
 * timeouts and locks keep real time.
 */
export interface Clock {
  /** Unix ms */
  now(): number;
}

export const CLOCK = Symbol('CLOCK');

export const systemClock: Clock = { now: () => Date.now() };

/** Provides {@link CLOCK} to the whole app: the system clock unless one is given. */
@Global()
@Module({})
export class ClockModule {
  static forRoot(clock: Clock = systemClock): DynamicModule {
    return { module: ClockModule, global: true, providers: [{ provide: CLOCK, useValue: clock }], exports: [CLOCK] };
  }
}
