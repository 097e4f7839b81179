import { parseAmount } from './money';
import { afterPosting, rearmLevel, StandingBefore } from './standing';

const $ = parseAmount;
const active: StandingBefore = { status: 'active', alertThreshold: null, lowAlertArmed: true };

describe('standing after a posting', () => {
  it('nothing changes while an active account stays at zero or above (the usual answer is null)', () => {
    expect(afterPosting(active, $('10.00'), 0n, 10)).toBeNull();
    expect(afterPosting(active, 0n, 0n, 10)).toBeNull();
  });

  it('cash below zero makes an active account overdue, once', () => {
    expect(afterPosting(active, -1n, 0n, 10)).toEqual({ status: 'overdue', notify: ['overdue'] });
    expect(afterPosting({ ...active, status: 'overdue' }, $('-5.00'), 0n, 10)).toBeNull();
    expect(afterPosting({ ...active, status: 'suspended' }, $('-5.00'), 0n, 10)).toBeNull();
  });

  it('judges cash only: vouchers do not pay a debt', () => {
    expect(afterPosting(active, -1n, $('100.00'), 10)).toEqual({ status: 'overdue', notify: ['overdue'] });
    expect(afterPosting({ ...active, status: 'overdue' }, -1n, $('100.00'), 10)).toBeNull();
  });

  it.each(['overdue', 'suspended', 'released'] as const)('cash back at zero or above restores a %s account', (status) => {
    expect(afterPosting({ ...active, status }, 0n, 0n, 10)).toEqual({ status: 'active', notify: ['restored'] });
    expect(afterPosting({ ...active, status }, $('0.000000001'), 0n, 10)).toEqual({ status: 'active', notify: ['restored'] });
  });

  describe('low-balance alert at 50.00 with 10% hysteresis', () => {
    const armed: StandingBefore = { status: 'active', alertThreshold: $('50.00'), lowAlertArmed: true };
    const fired: StandingBefore = { ...armed, lowAlertArmed: false };

    it('fires once when the funds fall below the threshold, and disarms', () => {
      expect(afterPosting(armed, $('50.00'), 0n, 10)).toBeNull();
      expect(afterPosting(armed, $('49.999999999'), 0n, 10)).toEqual({ lowAlertArmed: false, notify: ['low_balance'] });
      expect(afterPosting(fired, $('10.00'), 0n, 10)).toBeNull();
    });

    it('counts vouchers as funds', () => {
      expect(afterPosting(armed, $('40.00'), $('10.00'), 10)).toBeNull();
      expect(afterPosting(armed, $('40.00'), $('9.99'), 10)).toEqual({ lowAlertArmed: false, notify: ['low_balance'] });
    });

    it('re-arms only at the threshold plus the hysteresis, without a notification', () => {
      expect(rearmLevel($('50.00'), 10)).toBe($('55.00'));
      expect(afterPosting(fired, $('54.999999999'), 0n, 10)).toBeNull();
      expect(afterPosting(fired, $('55.00'), 0n, 10)).toEqual({ lowAlertArmed: true, notify: [] });
      expect(afterPosting(fired, $('50.00'), 0n, 0)).toEqual({ lowAlertArmed: true, notify: [] });
    });

    it('the alert comes before the overdue notice when one posting does both', () => {
      expect(afterPosting(armed, $('-1.00'), 0n, 10)).toEqual({ status: 'overdue', lowAlertArmed: false, notify: ['low_balance', 'overdue'] });
    });

    it('a top-up that restores and re-arms does both', () => {
      expect(afterPosting({ ...fired, status: 'suspended' }, $('60.00'), 0n, 10)).toEqual({
        status: 'active',
        lowAlertArmed: true,
        notify: ['restored'],
      });
    });

    it('the hysteresis is exact in nano', () => {
      expect(rearmLevel($('0.000000033'), 10)).toBe($('0.000000036'));
      expect(rearmLevel($('1.00'), 150)).toBe($('2.50'));
    });
  });
});
