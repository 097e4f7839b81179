import type { Nano } from './money';
import type { MeteringRule } from './metering';

/** One band of a graduated price: calls up to `upTo` (cumulative, exclusive of the free quota) at this price. */
export interface PriceTier {
  /** upper bound of the band in chargeable calls; null for the last, open band */
  upTo: bigint | null;
  /** price per million calls, in nano */
  perMillion: Nano;
}

/** A plan line prices one meter. */
export interface PlanLine {
  meter: 'calls';
  /** calls free each month, before any tier */
  freeQuota: bigint;
  /** graduated over the month's cumulative chargeable calls; one open tier for a flat price */
  tiers: PriceTier[];
}

export interface PricePlan {
  id: string;
  code: string;
  version: number;
  currency: string;
  rule: MeteringRule;
  regions: string[];
  effectiveFrom: Date;
  effectiveTo: Date | null;
  lines: PlanLine[];
}

const MILLION = 1_000_000n;

export class PlanError extends Error {}

/** Tiers must rise strictly and end with one open band. */
export function checkTiers(tiers: PriceTier[]): void {
  if (tiers.length === 0) throw new PlanError('a plan line needs at least one tier');
  let last = 0n;
  tiers.forEach((t, i) => {
    if (t.perMillion < 0n) throw new PlanError('a price cannot be negative');
    const open = i === tiers.length - 1;
    if (open !== (t.upTo === null)) throw new PlanError('only the last tier is open (upTo null)');
    if (t.upTo !== null) {
      if (t.upTo <= last) throw new PlanError('tier bounds must rise strictly');
      last = t.upTo;
    }
  });
}

/**
 * F(u): the month's charge, in nano, for `u` cumulative calls of a line. The free quota comes
 * first; the rest is priced band by band; the sum is floored to the nano once. F is
 * non-decreasing, so each deduction F(after) − F(before) is ≥ 0, and the deductions of a month
 * add up to F(month's usage) exactly, whatever the batches were.
 */
export function monthlyCharge(line: PlanLine, u: bigint): Nano {
  let chargeable = u - line.freeQuota;
  if (chargeable <= 0n) return 0n;
  let floor = 0n;
  let scaled = 0n; // Σ calls × perMillion, divided by a million once at the end
  for (const t of line.tiers) {
    const width = t.upTo === null ? chargeable : t.upTo - floor;
    const inBand = chargeable < width ? chargeable : width;
    scaled += inBand * t.perMillion;
    chargeable -= inBand;
    if (chargeable <= 0n || t.upTo === null) break;
    floor = t.upTo;
  }
  return scaled / MILLION;
}

/** What usage moving from `before` to `after` cumulative calls in the month costs. */
export function deduction(line: PlanLine, before: bigint, after: bigint): Nano {
  if (after < before) throw new PlanError('cumulative usage cannot go down');
  return monthlyCharge(line, after) - monthlyCharge(line, before);
}
