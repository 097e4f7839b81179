import { Module } from '@nestjs/common';
import { BillingModule } from '@app/billing';
import { SLA_CLOCK, systemClock } from './clock';
import { MonthClose } from './month-close';
import { SlaSignals } from './signals';

/** SLA accounting: signals, month evaluation and close, credits, reports. Needs BullModule.forRoot in the app. */
@Module({
  imports: [BillingModule],
  providers: [{ provide: SLA_CLOCK, useValue: systemClock }, SlaSignals, MonthClose],
  exports: [SLA_CLOCK, SlaSignals, MonthClose],
})
export class SlaModule {}
