import { CmqError } from '@app/cmq';

/** Runs `fn` and returns the CmqError it threw as "<code> <message>"; fails if it threw none. */
export function cmqErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CmqError) return `${e.code} ${e.message}`;
    throw e;
  }
  throw new Error('expected a CmqError');
}
