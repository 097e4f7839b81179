import { Module } from '@nestjs/common';
import { BillingModule } from '@app/billing';
import { SLA_CLOCK, systemClock } from './clock';

/** SLA accounting: signals, month evaluation and close, credits, reports. Needs BullModule.forRoot in the app. */
@Module({
  imports: [BillingModule],
  providers: [{ provide: SLA_CLOCK, useValue: systemClock }],
  exports: [SLA_CLOCK],
})
export class SlaModule {}
