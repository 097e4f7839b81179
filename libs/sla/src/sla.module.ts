import { Module } from '@nestjs/common';
import { AccountsModule } from '@app/accounts';
import { BillingModule } from '@app/billing';
import { QueuesModule } from '@app/queues';
import { SLA_CLOCK, systemClock } from './clock';
import { MonthClose } from './month-close';
import { SlaSignals } from './signals';
import { SlaOperations } from './operations';
import { ProbeAccount } from './probe-account';
import { SlaProber } from './prober';

/**
 * SLA accounting: signals, month evaluation and close, credits, reports. Needs BullModule.forRoot
 * in the app, and the account entities in its DbModule (the prober's system account).
 */
@Module({
  imports: [BillingModule, AccountsModule, QueuesModule.forRoot()],
  providers: [{ provide: SLA_CLOCK, useValue: systemClock }, SlaSignals, MonthClose, SlaOperations, ProbeAccount, SlaProber],
  exports: [SLA_CLOCK, SlaSignals, MonthClose, SlaOperations, ProbeAccount, SlaProber],
})
export class SlaModule {}
