/** Natural months in a time zone: shared with billing, kept in @app/common. */
export { isMonth, localIso, MINUTE_MS, monthBounds, monthOf, nextMonth, previousMonth, type MonthBounds } from '@app/common';
