import { Module } from '@nestjs/common';
import { BillingModule } from '@app/billing';
import { SLA_CLOCK, systemClock } from './clock';
import { MonthClose } from './month-close';
import { SlaSignals } from './signals';
import { SlaOperations } from './operations';

/** SLA accounting: signals, month evaluation and close, credits, reports. Needs BullModule.forRoot in the app. */
@Module({
  imports: [BillingModule],
  providers: [{ provide: SLA_CLOCK, useValue: systemClock }, SlaSignals, MonthClose, SlaOperations],
  exports: [SLA_CLOCK, SlaSignals, MonthClose, SlaOperations],
})
export class SlaModule {}
